"""The package's curated API resolves; ``fwsim tb`` runs scenarios and fails in one line."""

from __future__ import annotations

import importlib

import pytest

from firmware_sim.cli import main


@pytest.mark.parametrize("package", ["cloud_sim.thingsboard", "firmware_sim.claim_button",
                                     "firmware_sim.communication.mqtt",
                                     "firmware_sim.testbed.clouds.thingsboard",
                                     "firmware_sim.scenarios.thingsboard"])
def test_all_names_resolve(package: str) -> None:
    module = importlib.import_module(package)
    for name in module.__all__:
        assert getattr(module, name) is not None


def test_fwsim_tb_scenario_lists_and_runs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tb", "scenario"]) == 0
    assert "tb-wrong-key-evicts" in capsys.readouterr().out
    assert main(["tb", "scenario", "tb-second-press", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "kept_first_secret" in out and out.rstrip().splitlines()[-1].startswith("PASS")


def test_fwsim_tb_errors_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tb", "scenario", "nope"]) == 2
    assert main(["tb", "why", "X", "--url", "http://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("fwsim: error:") for line in err)
