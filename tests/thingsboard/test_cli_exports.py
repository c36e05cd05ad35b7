"""The curated APIs resolve; the ThingsBoard commands run through the testbed and fail in one
line (a missing extra included)."""

from __future__ import annotations

import importlib
import re
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from cloud_sim.accounts import verify_password
from cloud_sim.thingsboard.demo import ACCOUNTS, PUBLISHED_PASSWORDS
from cloud_sim.thingsboard.store import TbStore
from firmware_sim.cli import main

LOGIN = re.compile(r"login\s+.+?\s(\S+@thingsboard\.org) / (\S+)$")


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


def test_fwsim_tb_errors_are_one_line(capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FWSIM_TB_PASSWORD", raising=False)
    assert main(["tb", "scenario", "nope"]) == 2
    assert main(["tb", "why", "X", "--url", "http://127.0.0.1:9", "--password", "p"]) == 2
    assert main(["tb", "press", "X", "--url", "not a url", "--password", "p"]) == 2
    assert main(["tb", "serve"]) == 2
    assert main(["up", "--cloud", "thingsboard", "--product", "1:x"]) == 2
    assert main(["up", "--cloud", "thingsboard", "--usb-bridge", "0"]) == 2
    assert main(["tb", "why", "X", "--url", "http://127.0.0.1:9"]) == 2  # no password
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 7 and all(line.startswith("fwsim: error:") for line in err)
    assert "fwsim up --cloud thingsboard" in err[3]
    assert "set FWSIM_TB_PASSWORD (or --password)" in err[6]


@pytest.mark.parametrize("flag", [["--claim-code-ttl", "60"], ["--timing", "fast"],
                                  ["--firmware-errors", "raise"], ["--username", "a@b.c"],
                                  ["--password", "pw"], ["--token", "t" * 20]])
def test_particle_only_options_are_refused_with_thingsboard(
        flag: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """QA: these were accepted and silently ignored (``--product`` and others were refused)."""
    assert main(["up", "--cloud", "thingsboard", *flag]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"fwsim: error: {flag[0]} applies to the Particle cloud, not to "
                           "the thingsboard cloud")
    assert line.endswith("--tb-password)") == (flag[0] == "--password")


@pytest.mark.parametrize("command", [["up"], ["cloud", "serve"]])
def test_tb_password_is_refused_with_the_particle_cloud(
        command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*command, "--tb-password", "pw", "--db", ":memory:"]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line == "fwsim: error: --tb-password applies to the thingsboard cloud's demo accounts"


def _logins(out: str) -> dict[str, str]:
    return dict(match.groups() for line in out.splitlines() if (match := LOGIN.search(line)))


def test_served_demo_passwords_are_fresh_on_every_start_or_fixed(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Security QA: the published demo passwords let any local user in as the tenant
    administrator (every device token, the /fwsim routes). A served world's are random per
    start and reset those a database file kept; --tb-password fixes them all."""
    db = str(tmp_path / "tb.db")
    serve = ["cloud", "serve", "--kind", "thingsboard", "--http", "0", "--mqtt", "0", "--coap",
             "0", "--db", db, "--for", "0.1"]
    assert main([*serve, "--tb-password", "fixed-pw"]) == 0
    assert _logins(capsys.readouterr().out) == {email: "fixed-pw" for _, email in ACCOUNTS}
    firsts = []
    for _ in range(2):
        assert main(serve) == 0
        logins = _logins(capsys.readouterr().out)
        assert set(logins) == set(PUBLISHED_PASSWORDS)
        assert all(re.fullmatch(r"[A-Za-z0-9]{16}", password) for password in logins.values())
        assert len(set(logins.values())) == len(logins)  # one per account
        firsts.append(logins)
    assert not set(firsts[0].values()) & set(firsts[1].values())
    store = TbStore(db)
    for email, password in firsts[1].items():  # the database holds this start's only
        user = store.find_user(email)
        assert user is not None and verify_password(password, user.password_hash)
        for stale in ("fixed-pw", PUBLISHED_PASSWORDS[email], firsts[0][email]):
            assert not verify_password(stale, user.password_hash)


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
    logins = _logins(out)
    assert logins["tenant@thingsboard.org"] != "tenant", out  # fresh, not the published one
    rest = next(line for line in lines if "REST API" in line).split()[4]
    try_line = next(line for line in lines if " try " in line)
    assert f"FWSIM_TB_PASSWORD={logins['tenant@thingsboard.org']} fwsim tb press" in try_line
    assert main(["tb", "press", "Claim Button 2", "--url", rest, "--password", "tenant"]) == 2
    assert "401 Invalid username or password" in capsys.readouterr().err
    press = main(["tb", "press", "Claim Button 2", "--url", rest, "--password",
                  logins["tenant@thingsboard.org"]])
    runner.join(30)
    assert status == [0] and press == 0
    with pytest.raises(OSError):
        urllib.request.urlopen(rest, timeout=2)  # stopped after --for
