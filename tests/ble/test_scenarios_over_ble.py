"""Every claim-code scenario gives the same verdict when the phone provisions over BLE."""

from __future__ import annotations

import pytest

from firmware_sim.scenarios.catalog import SCENARIOS
from transports.ble.provisioning import ble_provisioning

# product-customer-transfer does not provision through a phone
PHONE_SCENARIOS = [name for name in SCENARIOS if name != "product-customer-transfer"]


@pytest.mark.parametrize("name", PHONE_SCENARIOS)
def test_scenario_verdict_is_the_same_over_ble(name: str) -> None:
    scenario = SCENARIOS[name]
    direct = scenario.run(0)
    over_ble = scenario.run(0, provisioning=ble_provisioning())
    assert over_ble.passed, [c.description for c in over_ble.checks if not c.ok]
    assert over_ble.passed == direct.passed and over_ble.verdict == direct.verdict
    assert [c.ok for c in over_ble.checks] == [c.ok for c in direct.checks]
    trace = over_ble.world.trace
    node = over_ble.device.name
    assert trace.count("ble.handshake_done", node=node) == 1
    steps = trace.count("phone.step", node="phone")
    assert trace.count("ble.request", node=node) == steps
    assert any("[system.ctrl.ble] TRACE: Handshake done" in line
               for line in over_ble.timeline)


def test_a_wrong_secret_makes_every_step_fail_with_io() -> None:
    result = SCENARIOS["resume-bug"].run(0, provisioning=ble_provisioning(
        mobile_secret="WRONGWRONGWRONG"))
    assert not result.passed
    results = result.world.trace.find("phone.result", node="phone")
    assert results and all(r.fields["result"] == -220 for r in results)
    assert result.world.trace.count("ble.handshake_failed", node=result.device.name) >= 1
