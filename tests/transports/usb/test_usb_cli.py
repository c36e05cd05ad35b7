"""``fwsim serve --usb-bridge`` in a subprocess and ``fwsim usb ...`` against it."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator

import pytest

from firmware_sim.cli import main


@pytest.fixture(scope="module")
def bridge() -> Iterator[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "firmware_sim.cli", "serve", "--usb-bridge", "0",
         "--device-id", "e00fce68aabbccddeeff0011", "--for", "60"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        address = None
        assert process.stdout is not None
        for line in process.stdout:
            match = re.match(r"usb bridge: (\S+) ", line)
            if match:
                address = match.group(1)
            if line.startswith("ready"):
                break
        assert address, "fwsim serve did not print the bridge address"
        yield address
    finally:
        process.terminate()
        process.wait(10)
        if process.stdout is not None:
            process.stdout.close()


def test_usb_commands(bridge: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["usb", "list", "--bridge", bridge]) == 0
    assert "e00fce68aabbccddeeff0011  p2        2b04:c020  dev" in capsys.readouterr().out
    assert main(["usb", "identify", "--bridge", bridge]) == 0
    out = capsys.readouterr().out
    assert "Your device id is e00fce68aabbccddeeff0011" in out
    assert "Your system firmware version is 6.2.0" in out and "Mode: LISTENING" in out
    assert main(["usb", "is-claimed", "--bridge", bridge]) == 0
    assert capsys.readouterr().out == "not claimed\n"
    assert main(["usb", "set-claim-code", "--bridge", bridge, "CODE123"]) == 0
    assert main(["usb", "request", "--bridge", bridge, "ECHO", "--data", "cafe"]) == 0
    assert main(["usb", "request", "--bridge", bridge, "9999"]) == 0
    out = capsys.readouterr().out
    assert "result 0 (NONE)\nreply cafe" in out and "result -120 (NOT_SUPPORTED)" in out
    assert main(["usb", "request", "--bridge", bridge, "--device", "e00fce68aabbccddeeff0011",
                 "DEVICE_ID"]) == 0
    assert "reply 0a18" in capsys.readouterr().out


@pytest.mark.parametrize(("argv", "message"), [
    (["request", "70000"], "Invalid request type 70000"),
    (["request", "NO_SUCH_TYPE"], "unknown control request type name"),
    (["request", "1", "--data", "zz"], "--data is not hex"),
    (["is-claimed", "--device", "e00f00000000000000000000"], "no device found"),
])
def test_usb_command_errors_are_one_line(bridge: str, capsys: pytest.CaptureFixture[str],
                                         argv: list[str], message: str) -> None:
    assert main(["usb", argv[0], "--bridge", bridge, *argv[1:]]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and err.startswith("fwsim: error: ")


def test_unreachable_bridge(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["usb", "list", "--bridge", "127.0.0.1:1"]) == 2
    assert "cannot connect to the USB bridge" in capsys.readouterr().err
