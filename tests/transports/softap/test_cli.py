"""``fwsim serve --profile photon --softap-http PORT --softap-tcp PORT`` prints SSID and ports."""

from __future__ import annotations

import re

import pytest

from firmware_sim.cli import main


def test_serve_prints_the_ssid_and_both_endpoints(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["serve", "--profile", "photon", "--seed", "3", "--softap-http", "0",
                   "--softap-tcp", "0", "--for", "0.2"])
    out = capsys.readouterr().out
    assert status == 0, out
    code = re.search(r"setup code ([2-9A-HJ-NP-Z]{6})", out)
    assert code is not None
    assert f"softap: SSID Photon-{code.group(1)} (up while the device is in listening mode)" in out
    assert re.search(r"^softap tcp: 127\.0\.0\.1:\d+$", out, re.M)
    assert re.search(r"^softap http: http://127\.0\.0\.1:\d+/$", out, re.M)


def test_serve_refuses_softap_on_a_modern_profile(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["serve", "--profile", "p2", "--softap-tcp", "0", "--for", "0.2"])
    assert status == 2
    assert "need a profile with SoftAP" in capsys.readouterr().err


def test_bad_port_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--profile", "photon", "--softap-tcp", "70000"])
    assert exit_info.value.code == 2
    assert "out of range" in capsys.readouterr().err
