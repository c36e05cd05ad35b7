"""The curated APIs resolve; the ThingsBoard commands run through the testbed and fail in one
line (a missing extra included)."""

from __future__ import annotations

import importlib
import sys
import threading
import time
import urllib.request

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
    assert main(["tb", "press", "X", "--url", "not a url"]) == 2
    assert main(["tb", "serve"]) == 2
    assert main(["up", "--cloud", "thingsboard", "--product", "1:x"]) == 2
    assert main(["up", "--cloud", "thingsboard", "--usb-bridge", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 6 and all(line.startswith("fwsim: error:") for line in err)
    assert "fwsim up --cloud thingsboard" in err[3]


@pytest.mark.parametrize("flag", [["--claim-code-ttl", "60"], ["--timing", "fast"],
                                  ["--firmware-errors", "raise"], ["--username", "a@b.c"],
                                  ["--password", "pw"], ["--token", "t" * 20]])
def test_particle_only_options_are_refused_with_thingsboard(
        flag: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """QA: these were accepted and silently ignored (``--product`` and others were refused)."""
    assert main(["up", "--cloud", "thingsboard", *flag]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line == (f"fwsim: error: {flag[0]} applies to the Particle cloud, not to the "
                    "thingsboard cloud")


def test_the_particle_only_defaults_are_the_parsers() -> None:
    """The refusal compares with these defaults: they must stay the parser's."""
    import argparse

    from firmware_sim.cli.tb_cmd import PARTICLE_ONLY_VALUES
    from firmware_sim.cli.up_cmd import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["up"])
    for attribute, _, default in PARTICLE_ONLY_VALUES:
        assert getattr(args, attribute) == default, attribute


def test_without_the_extra_serving_says_what_to_install(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    # the scenarios' modules are loaded first, as in any process that got this far (fastapi is
    # a base dependency: the world's in-process cloud imports it); only then are the serving
    # modules made to look absent (run alone, the test used to fail on that import instead)
    importlib.import_module("firmware_sim.scenarios.thingsboard")
    for name in ("uvicorn", "fastapi", "cloud_sim.thingsboard.server",
                 "cloud_sim.thingsboard.http_api"):
        monkeypatch.setitem(sys.modules, name, None)
    assert main(["cloud", "serve", "--kind", "thingsboard", "--db", ":memory:", "--http", "0",
                 "--mqtt", "0", "--coap", "0"]) == 2
    assert main(["tb", "scenario", "tb-bodyless-post"]) == 0
    captured = capsys.readouterr()
    assert captured.err.strip().endswith("install fwsim[thingsboard]")
    assert len(captured.err.strip().splitlines()) == 1
    assert "SKIP tb-bodyless-post: needs fastapi: install fwsim[thingsboard]" in captured.out


def test_up_thingsboard_prints_endpoints_logins_tokens_and_a_press_works(
        capsys: pytest.CaptureFixture[str]) -> None:
    status: list[int] = []
    runner = threading.Thread(target=lambda: status.append(main([
        "up", "--cloud", "thingsboard", "--http", "0", "--mqtt", "0", "--coap", "0",
        "--devices", "2", "--db", ":memory:", "--for", "3", "--seed", "4"])))
    runner.start()
    deadline = time.monotonic() + 20
    out = ""
    while "ready" not in out and time.monotonic() < deadline:
        time.sleep(0.05)
        out += capsys.readouterr().out
    lines = out.splitlines()
    labels = [line.split()[2] for line in lines]
    for label in ("REST", "device", "MQTT", "CoAP", "login", "button", "ready"):
        assert label in labels, out
    assert sum("token" in line and "(simulated claim button)" in line for line in lines) == 2
    assert "tenant@thingsboard.org / tenant" in out
    rest = next(line for line in lines if "REST API" in line).split()[4]
    press = main(["tb", "press", "Claim Button 2", "--url", rest])
    runner.join(30)
    assert status == [0] and press == 0
    with pytest.raises(OSError):
        urllib.request.urlopen(rest, timeout=2)  # stopped after --for
