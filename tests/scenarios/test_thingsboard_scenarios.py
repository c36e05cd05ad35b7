"""The ThingsBoard scenarios pass through the testbed and replay byte-identically."""

from __future__ import annotations

from pathlib import Path

import pytest

from firmware_sim.kernel.errors import UsageError
from firmware_sim.scenarios.thingsboard import TB_SCENARIOS, TbScenario, get_tb_scenario
from firmware_sim.testbed.clouds.thingsboard import ThingsBoardPlug


@pytest.mark.parametrize("name", sorted(TB_SCENARIOS))
def test_scenario_passes(name: str) -> None:
    result = TB_SCENARIOS[name].run(seed=1)
    assert result.passed, [c.description for c in result.checks if not c.ok]
    assert result.timeline and result.skipped is None
    assert isinstance(result.cloud, ThingsBoardPlug)


def test_same_seed_same_trace(tmp_path: Path) -> None:
    scenario = TB_SCENARIOS["tb-wrong-key-evicts"]
    scenario.run(5, trace_path=tmp_path / "a.jsonl")
    scenario.run(5, trace_path=tmp_path / "b.jsonl")
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()


def test_mqtt_runs_on_the_kernel_stream_link() -> None:
    result = TB_SCENARIOS["tb-device-key"].run(seed=2)
    opened = result.world.trace.first("stream.open", node="thingsboard-mqtt-1")
    assert opened is not None and opened.get("latency_s") == 0.02
    assert result.world.trace.first("stream.accepted", node="thingsboard-mqtt-1") is not None


def test_a_scenario_missing_an_extra_is_skipped_with_a_hint() -> None:
    scenario = TbScenario("tb-needs-nothing-real", "needs a module that does not exist",
                          lambda stage: "never played", needs=("fwsim_no_such_module",))
    result = scenario.run(0)
    assert not result.passed and result.checks == []
    assert result.skipped == "needs fwsim_no_such_module: install fwsim[thingsboard]"
    assert result.world.trace.first("scenario.skipped") is not None


def test_unknown_scenario_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="tb-device-key"):
        get_tb_scenario("nope")
