"""``fwsim ble scan`` / ``fwsim ble provision`` (in process: virtual air, virtual time)."""

from __future__ import annotations

import pytest

from firmware_sim.cli import main

from .conftest import SECRET


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_ble_scan_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "ble", "scan", "--in-process", "--device-secret", SECRET)
    assert code == 0
    (line,) = out.splitlines()
    assert "  P2-" in line and "platform 32" in line and "rssi -50" in line


def test_ble_provision_prints_each_step(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "ble", "provision", "--in-process", "--secret", SECRET,
                         "--ssid", "HomeNet", "--password", "home-pass-1",
                         "--claim-code", "c0de", "--setup-done")
    assert code == 0, err
    lines = out.splitlines()
    expected = ["scanning for 2 s", "connected, ATT MTU 247", "protocol version 2",
                "notifications enabled", "handshake: sending round one", "handshake done",
                "join_new_network HomeNet: ok", "set_claim_code: ok", "is_claimed: no",
                "set_device_setup_done: ok", "stop_listening: ok", "disconnected",
                "device after 30 more virtual seconds: cloud connected"]
    positions = [next(i for i, line in enumerate(lines) if line == want) for want in expected]
    assert positions == sorted(positions)
    assert any("Send spark/device/claim/code event for code c0de" in line for line in lines)


def test_ble_provision_wrong_secret_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "ble", "provision", "--in-process", "--secret",
                         "WRONGWRONGWRONG", "--device-secret", SECRET, "--ssid", "HomeNet")
    assert code == 2
    assert err.strip().splitlines() == [
        "fwsim: error: the device disconnected during the handshake (wrong mobile secret?)"]
    assert "handshake done" not in out


def test_ble_provision_failing_request_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "ble", "provision", "--in-process", "--secret", SECRET,
                       "--ssid", "Nowhere", "--password", "whatever-1")
    assert code == 1
    assert "join_new_network Nowhere: failed: " in out and "[NOT_FOUND -170]" in out
    assert out.splitlines()[-1] == "disconnected"


def test_ble_needs_a_place_to_look(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "ble", "scan")
    assert code == 2 and "--hci TRANSPORT" in err
    code, _, err = run(capsys, "ble", "provision", "--in-process", "--secret", SECRET,
                       "--name", "P2-NOPE00")
    assert code == 2 and "P2-NOPE00 not found" in err
