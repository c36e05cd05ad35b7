"""Fleets in shards: worlds in separate processes claiming devices from one cloud process over
real UDP (``fwsim fleet run``). The figures live in benchmarks/bench_fleet.py; here a small
fleet proves the wiring."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from firmware_sim.cli import main
from firmware_sim.fleet import FleetPlan, ProcessBackend, RayBackend, ShardTask, run_fleet
from firmware_sim.kernel.errors import ConfigurationError, UsageError


def test_two_shard_processes_claim_every_device_through_one_cloud_process() -> None:
    result = run_fleet(FleetPlan(devices=12, shards=2, timeout_s=60), ProcessBackend())
    assert [shard.devices for shard in result.shards] == [6, 6]
    assert result.cleared == 12 and result.consumed == 12 and result.ok
    assert result.devices_per_s > 0
    assert result.window_s >= max(shard.run_s for shard in result.shards) - 0.5
    text = "\n".join(result.lines())
    assert "12/12" in text and "devices/s" in text


@pytest.mark.parametrize("devices, shards", [(0, 1), (3, 0), (2, 3)])
def test_a_plan_refuses_impossible_splits(devices: int, shards: int) -> None:
    with pytest.raises(UsageError):
        FleetPlan(devices=devices, shards=shards)


def test_the_cli_refuses_more_shards_than_devices(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fleet", "run", "--devices", "2", "--shards", "3"]) == 2
    assert "--shards must not exceed --devices" in capsys.readouterr().err


def test_shard_tasks_are_plain_values_any_pool_can_ship() -> None:
    import pickle

    task = ShardTask(1, "coap://127.0.0.1:5683", ("CODE",), seed=3)
    assert pickle.loads(pickle.dumps(task)) == task


@pytest.mark.skipif(importlib.util.find_spec("ray") is not None, reason="ray is installed")
def test_the_ray_backend_without_ray_is_a_one_line_error() -> None:
    with pytest.raises(ConfigurationError, match="fwsim\\[ray\\]"):
        RayBackend().run([ShardTask(0, "coap://127.0.0.1:5683", ("CODE",))])


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("ray") is None or not os.environ.get("FWSIM_TEST_RAY"),
                    reason="needs the ray extra and FWSIM_TEST_RAY=1 (a local Ray takes ~15 s)")
def test_the_same_shards_run_as_ray_tasks_on_a_local_ray() -> None:
    result = run_fleet(FleetPlan(devices=6, shards=2, timeout_s=60),
                       RayBackend(num_cpus=2, include_dashboard=False))
    assert result.ok and result.backend == "ray"
    assert [shard.index for shard in result.shards] == [0, 1]


def test_without_the_cloud_extra_the_fleet_says_which_in_one_line(tmp_path: Path) -> None:
    """QA (base install): the cloud process's traceback reached the terminal and the last line
    said only "the fleet's cloud did not start (exit 1)"."""
    hidden = tmp_path / "no-uvicorn" / "uvicorn"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'uvicorn'\", name='uvicorn')\n")
    env = dict(os.environ, PYTHONPATH=str(hidden.parent))
    done = subprocess.run([sys.executable, "-m", "firmware_sim.cli", "fleet", "run",
                           "--devices", "2", "--shards", "1"], capture_output=True, text=True,
                          env=env, timeout=120, check=False)
    assert done.returncode == 2
    assert done.stderr.strip() == ("fwsim: error: this needs the Particle cloud's REST API, "
                                   "which needs uvicorn: install fwsim[cloud]")


def test_the_cloud_process_keeps_its_admin_token_off_the_command_line() -> None:
    """Security QA: any local user read the fleet cloud's admin token from /proc/PID/cmdline
    and took over the cloud (seeded an account, read every claim code)."""
    from firmware_sim.fleet.runner import _start_cloud

    token = "fleet-token-" + "0123456789abcdef" * 2
    proc, started = _start_cloud(FleetPlan(devices=2), token)
    try:
        command_line = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
        assert token.encode() not in command_line
        assert started["codes"] and isinstance(started["http"], str)
    finally:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.close()
        proc.wait(timeout=30)
        proc.stdout.close()
