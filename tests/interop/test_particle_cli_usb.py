"""Unmodified particle-cli 3.43.1: ``particle usb list``, ``particle identify``, ``particle usb
start-listening`` / ``stop-listening`` against ``fwsim serve --usb-bridge``.

particle-cli loads node-usb and particle-usb itself; ``NODE_OPTIONS=--require preload.js``
makes node-usb list the bridged device (real-clients.md §5). ``identify`` also lists serial
ports (node serialport runs ``udevadm``), so a fake ``udevadm`` reports the device's pty under
the name ``ttyACM0``. See tests/interop/support/cli_env.py.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from support.cli_env import DEVICE_NAME, PARTICLE, cli_env, fake_api
from support.served import DEVICE_ID, REPO, Served, node_with, run_node

from transports.usb import BridgeUsbClient

pytestmark = pytest.mark.interop

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def particle(node: str, env: dict[str, str], *args: str) -> str:
    done = run_node(node, [str(PARTICLE), *args], env, REPO, timeout_s=90)
    output = ANSI.sub("", done.stdout + done.stderr)
    assert done.returncode == 0, f"particle {' '.join(args)} failed:\n{output}"
    return output


async def device_mode(bridge: str) -> int:
    client = await BridgeUsbClient.connect(bridge)
    try:
        return int(await client.get_device_mode())
    finally:
        await client.aclose()


def test_particle_cli_over_usb(tmp_path: Path) -> None:
    node = node_with("particle-cli", "3.43.1")
    tty = tmp_path / "ttyACM0"
    served = Served(["--usb-bridge", "0", "--serial-link", str(tty),
                     "--wifi", "HomeNet:home-pass-1"], tmp_path)
    try:
        with fake_api() as api_url:
            env = cli_env(tmp_path / "home", bridge=served.usb_bridge, api_url=api_url, tty=tty)
            listed = particle(node, env, "usb", "list")
            assert f"{DEVICE_NAME} [{DEVICE_ID}] (Photon 2 / P2)" in listed, listed
            assert "LISTENING" not in listed

            identified = particle(node, env, "identify")
            assert f"Your device id is {DEVICE_ID.upper()}" in identified, identified
            assert "Your system firmware version is 6.2.0" in identified

            # NETWORK_GET_INTERFACE_LIST / NETWORK_GET_INTERFACE (the serial console's ``m``
            # reports the same MAC)
            mac = particle(node, env, "serial", "mac")
            assert re.search(r"Your device MAC address is ([0-9a-f]{2}:){5}[0-9a-f]{2}", mac), mac
            assert "Interface is Wifi" in mac
            interfaces = particle(node, env, "usb", "network-interfaces")
            assert "lo0(LOOPBACK): flags=73<UP,LOOPBACK,LOWER_UP>" in interfaces, interfaces
            assert "wl3(WIFI): flags=98371<UP,BROADCAST,LOWER_UP,MULTICAST,NOND6> mtu 1500" \
                in interfaces
            assert re.search(r"inet 192\.168\.\d+\.\d+ netmask 255\.255\.255\.0", interfaces)
            assert f"ether {mac.split('is ')[1].split()[0]}" in interfaces

            # GET_MODULE_INFO: the modules the console's ``s`` prints too
            inspected = particle(node, env, "serial", "inspect")
            assert "Platform: 32 - Photon 2 / P2" in inspected, inspected
            assert "Bootloader module #0 - version 2300" in inspected
            assert "System part module #1 - version 6200" in inspected
            assert re.search(r"User part module #1 - version \d+", inspected)
            assert re.search(r"UUID: [0-9a-f]{64}", inspected)
            assert "FAIL" not in inspected

            assert "Done." in particle(node, env, "usb", "start-listening")
            assert asyncio.run(device_mode(served.usb_bridge)) == 1
            assert "LISTENING" in particle(node, env, "usb", "list")

            assert "Done." in particle(node, env, "usb", "stop-listening")
            assert asyncio.run(device_mode(served.usb_bridge)) == 0
    finally:
        served.stop()
    types = [r["type"] for r in served.records("usb.init")]
    assert 70 in types and 71 in types and 72 in types  # start/stop listening, device mode
    assert served.records("listening.enter")
