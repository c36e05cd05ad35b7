"""The listening-mode console on the real pty of ``fwsim serve --serial-pty``: pyserial, and
``particle serial wifi`` from unmodified particle-cli 3.43.1 driving the ``w`` dialog.

particle-cli finds the port through node serialport (a fake ``udevadm`` reports the pty under
the name ``ttyACM0`` with the device's USB ids) and opens the device over USB first (the
``--require`` preload and the USB bridge) - real-clients.md §5.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest
import serial
from support.cli_env import PARTICLE, cli_env, fake_api
from support.served import DEVICE_ID, REPO, Served, node_with, run_node

from transports.usb import BridgeUsbClient

pytestmark = pytest.mark.interop

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def test_pyserial_on_the_pty(tmp_path: Path) -> None:
    code = b"PtyInteropClaimCode-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDE"
    assert len(code) == 63
    served = Served(["--serial-pty", "--serial-link", str(tmp_path / "ttyACM0")], tmp_path)
    try:
        identity = re.search(r" serial (\S+) mobile secret (\S+) ", served.seen[0])
        assert identity, served.seen
        serial_number, secret = identity.groups()
        with serial.Serial(served.serial_pty, 9600, timeout=3) as port:
            _until_listening(port)
            port.write(b"i")
            expected = (f"Device ID: {DEVICE_ID}\r\nDevice Secret: {secret}\r\n"
                        f"Serial Number: {serial_number}\r\n").encode()
            assert port.read(len(expected)) == expected
        with serial.Serial(str(tmp_path / "ttyACM0"), 9600, timeout=3) as port:
            port.write(b"C" + code + b"\r\n")
            expected = (b"Enter 63-digit claim code: " + code + b"\r\nClaim code set to: "
                        + code + b"\r\n")
            assert port.read(len(expected)) == expected
            port.write(b"C" + code[:62] + b"\n")
            expected = (b"Enter 63-digit claim code: " + code[:62] + b"\r\nSorry, claim code "
                        b"is not 63 characters long. Claim code unchanged.\r\n")
            assert port.read(len(expected)) == expected
            port.write(b"c")
            assert port.read(20) == b"Device claimed: no\r\n"
    finally:
        served.stop()
    assert served.claim_code() == code


def _until_listening(port: serial.Serial) -> None:
    """Bytes written before the device booted into listening mode are not read by anyone:
    poll with ``c`` until the console answers."""
    for _ in range(40):
        port.write(b"c")
        port.timeout = 0.25
        if port.read_until(b"\r\n").startswith(b"Device claimed: "):
            port.timeout = 3
            return
    raise AssertionError("the console never answered")


def particle(node: str, env: dict[str, str], *args: str) -> str:
    done = run_node(node, [str(PARTICLE), *args], env, REPO, timeout_s=90)
    output = ANSI.sub("", done.stdout + done.stderr)
    assert done.returncode == 0, f"particle {' '.join(args)} failed:\n{output}"
    return output


def test_particle_serial_wifi_drives_the_w_dialog(tmp_path: Path) -> None:
    node = node_with("particle-cli", "3.43.1")
    tty = tmp_path / "ttyACM0"
    served = Served(["--usb-bridge", "0", "--serial-link", str(tty),
                     "--ap", "HomeNet:home-pass-1"], tmp_path)
    try:
        with fake_api() as api_url:
            env = cli_env(tmp_path / "home", bridge=served.usb_bridge, api_url=api_url, tty=tty)
            listed = particle(node, env, "serial", "list")
            assert f"{tty} - Photon 2 / P2 - {DEVICE_ID.upper()}" in listed, listed
            # a network out of range: the device asks for security, cipher and password
            creds = tmp_path / "net1.json"
            creds.write_text(json.dumps({"network": "Net1", "security": "WPA2_AES",
                                         "password": "hunter22"}))
            out = particle(node, env, "serial", "wifi", "--port", str(tty), "--file", str(creds))
            assert "Done! Your device should now restart." in out, out
            # back to listening mode over USB, then a network in range (security from the scan)
            assert "Done." in particle(node, env, "usb", "start-listening")
            creds.write_text(json.dumps({"network": "HomeNet", "security": "WPA2_AES",
                                         "password": "home-pass-1"}))
            out = particle(node, env, "serial", "wifi", "--port", str(tty), "--file", str(creds))
            assert "Done! Your device should now restart." in out, out
            assert asyncio.run(_wait_connected(served.usb_bridge)), "no cloud connection"
    finally:
        served.stop()
    dialogs = served.records("console.wifi")
    assert [(d["ssid"], d["security"], d["cipher"], d["result"]) for d in dialogs] == [
        ("Net1", "WPA2", "AES", 0), ("HomeNet", "WPA2", "AES_TKIP", 0)]
    stored = json.loads((served.storage / "wifi.json").read_text())
    assert {(n["ssid"], n["password"], n["security"]) for n in stored} == {
        ("Net1", "hunter22", 3), ("HomeNet", "home-pass-1", 3)}
    assert served.records("listening.exit")
    assert any(r.get("state") == "connected" for r in served.records("cloud.state"))


async def _wait_connected(bridge: str, timeout_s: float = 30.0) -> bool:
    client = await BridgeUsbClient.connect(bridge)
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            if int(await client.cloud_connection_status()) == 2:  # CONNECTED
                return True
            await asyncio.sleep(0.25)
        return False
    finally:
        await client.aclose()
