"""Scenario files: a misspelt step parameter, an unknown fault point and an unknown expected
property are one-line errors (exit status 2) naming what is allowed; a file without steps runs
to its horizon; ``file.py:Class:key=value`` passes parameters to a user property."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_sim.cli import main
from firmware_sim.explore import execute, loads, resolve_all
from firmware_sim.explore.properties import parse_property_arg
from firmware_sim.explore.scenario_file import FAULT_POINT
from firmware_sim.kernel.errors import ConfigurationError

BASE = (Path(__file__).parent / "data" / "resume-bug.toml").read_text()
FAULT = '\n[[faults]]\npoint = "{point}"\noccurrence = 1\n'


def run_file(capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str
             ) -> tuple[int, str, str]:
    path = tmp_path / "s.toml"
    path.write_text(text)
    status = main(["scenario", "run", "--file", str(path), "--quiet"])
    out, err = capsys.readouterr()
    return status, out, err


def test_a_misspelt_step_parameter_is_an_error(capsys: pytest.CaptureFixture[str],
                                               tmp_path: Path) -> None:
    text = BASE.replace('network = "NewNet"', 'network = "NewNet"\nvai = "usb"')
    status, _, err = run_file(capsys, tmp_path, text)
    assert status == 2
    assert err.strip().endswith("[steps[0]] unknown parameter 'vai' of phone.provision "
                                "(allowed: button, device, network, owner, via)")


@pytest.mark.parametrize("point", ["link:cloud-link-1:dorp", "no-such-thing",
                                   "dct:p2:power_cut:modify:x", "endpoint:cloud:drop"])
def test_an_unknown_fault_point_is_an_error(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                            point: str) -> None:
    status, _, err = run_file(capsys, tmp_path, BASE + FAULT.format(point=point))
    assert status == 2 and len(err.strip().splitlines()) == 1
    assert f"unknown fault point {point!r} (known: link:<link>:drop" in err


@pytest.mark.parametrize("point", ["link:cloud-link-2:drop", "link:x:delay", "stream:s:reset",
                                   "endpoint:particle:skip_confirm", "dct:p2:power_cut:modify:31",
                                   "dct:p2:power_cut:persist:0", "dct:p2:power_cut:sync-dir"])
def test_the_documented_fault_points_load(point: str) -> None:
    assert loads(BASE + FAULT.format(point=point)).schedule.faults[0].point == point


@settings(max_examples=50, deadline=None)
@given(st.text(max_size=40))
def test_any_fault_point_loads_or_is_a_one_line_error(point: str) -> None:
    text = BASE + '\n[[faults]]\npoint = """{}"""\noccurrence = 1\n'.format(
        point.replace("\\", "").replace('"', ""))
    try:
        loads(text)
    except ConfigurationError as exc:
        assert "\n" not in str(exc)
    else:
        assert FAULT_POINT.fullmatch(point.replace("\\", "").replace('"', ""))


def test_a_misspelt_expected_property_is_an_error(capsys: pytest.CaptureFixture[str],
                                                  tmp_path: Path) -> None:
    text = BASE.replace('violation = "claim-liveness"', 'violation = "claim-livenes"')
    status, _, err = run_file(capsys, tmp_path, text)
    assert status == 2
    assert "[expect] violation: unknown property 'claim-livenes' (the file's [properties]: " \
        "claim-liveness)" in err


def test_a_file_without_steps_runs_to_its_horizon() -> None:
    text = BASE.split("[[steps]]")[0].replace("horizon_s = 120.0", "horizon_s = 12.0")
    scenario = loads(text)
    outcome = execute(scenario, resolve_all(scenario.properties), keep_records=True)
    assert outcome.end_us == 12_000_000
    assert any(r.kind == "log" for r in outcome.records)  # the device booted and logged


def test_a_user_property_takes_parameters_after_a_second_colon() -> None:
    assert parse_property_arg("checks.py:ProvisionedOnce:limit=2") == (
        "checks.py:ProvisionedOnce", {"limit": 2})
    assert parse_property_arg("checks:ProvisionedOnce?limit=3") == (
        "checks:ProvisionedOnce", {"limit": 3})
    assert parse_property_arg("checks.py:nothing_lost") == ("checks.py:nothing_lost", {})
