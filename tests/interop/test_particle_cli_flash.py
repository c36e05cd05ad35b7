"""Unmodified particle-cli 3.43.1 ``particle flash --local`` against ``fwsim serve --usb-bridge``.

* a bootloader goes through particle-usb's ``updateFirmware`` in normal mode (START/DATA/FINISH
  _FIRMWARE_UPDATE): the device resets with the reason ``update`` and GET_MODULE_INFO reports
  the new bootloader;
* a bundle made by ``particle bundle`` (binary-version-reader adds the asset dependency to the
  user part's prefix and moves its start) holds a P2 user part and an asset. The CLI writes the
  user part over DFU at its start address, leaves DFU - the boot finds the user part at the
  slot's fixed end, sees its asset missing and enters safe mode - then sends the asset through
  ``updateFirmware``: the device stores it and resets into the application. GET_MODULE_INFO
  lists the user part with its SHA-256 and asset dependency, GET_ASSET_INFO the asset as
  available and required;
* flashing the same bundle again, the CLI asks GET_ASSET_INFO and skips the asset
  (``_skipAsset``: same name and hash).

The environment is tests/interop/support/cli_env.py's; the module and asset lists are read with
particle-usb by support/device_modules.js.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import struct
import time
from pathlib import Path
from typing import Any

import pytest
from support.cli_env import PARTICLE, cli_env, fake_api
from support.served import HELPERS, REPO, Served, node_with, run_node

from firmware_sim.hal.module_binary import (
    Dependency,
    ExtensionType,
    ModuleFunction,
    build_module,
    extension,
)

pytestmark = pytest.mark.interop

ANSI = re.compile(r"\x1b\[[0-9;]*m")
ASSET = b"fwsim asset over particle flash --local\n" * 40
#: a P2 bootloader v2301 (module_bootloader: 0x08004000..0x08014000)
BOOTLOADER = build_module(platform_id=32, function=ModuleFunction.BOOTLOADER, index=0,
                          version=2301, start_address=0x08004000, body=b"\x5a" * 1500)
#: a P2 user part v9 as Device OS builds one: ending at the user slot's fixed end (its CRC-32
#: the last word before 0x08600000), a DYNAMIC_LOCATION then a PRODUCT_DATA extension in the
#: suffix, depending on system part 1 v6200 (asset support needs 5.5.0)
USER_PART = build_module(
    platform_id=32, function=ModuleFunction.USER_PART, index=1, version=9,
    end_address=0x08600000 - 4, body=bytes(range(256)) * 12, dynamic_location=True,
    dependency=Dependency(ModuleFunction.SYSTEM_PART, 1, 6200),
    suffix_extensions=extension(ExtensionType.PRODUCT_DATA, struct.pack("<HHH", 0xFFFF, 32, 9)))


def particle(node: str, env: dict[str, str], cwd: Path, *args: str) -> str:
    done = run_node(node, [str(PARTICLE), *args], env, cwd, timeout_s=120)
    output = ANSI.sub("", done.stdout + done.stderr)
    assert done.returncode == 0, f"particle {' '.join(args)} failed:\n{output}"
    return output


def wait_boots(served: Served, count: int, timeout_s: float = 30) -> bool:
    """The trace is written as it happens: wait for the device's ``count``-th boot."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if len(served.records("device.boot")) >= count:
            time.sleep(0.3)  # the USB device comes back right after the boot
            return True
        time.sleep(0.1)
    return False


def device_state(node: str, bridge: str) -> dict[str, Any]:
    env = dict(os.environ, FWSIM_USB_BRIDGE=bridge)
    done = run_node(node, [str(HELPERS / "device_modules.js")], env, REPO)
    assert done.returncode == 0, done.stderr
    state: dict[str, Any] = json.loads(done.stdout)
    return state


def _setup(tmp_path: Path) -> tuple[str, Path, Served]:
    node = node_with("particle-cli", "3.43.1")
    work = tmp_path / "work"
    (work / "assets").mkdir(parents=True)
    (work / "boot.bin").write_bytes(BOOTLOADER)
    (work / "app.bin").write_bytes(USER_PART)
    (work / "assets" / "hello.txt").write_bytes(ASSET)
    return node, work, Served(["--usb-bridge", "0"], tmp_path)


def test_particle_flash_local_bootloader(tmp_path: Path) -> None:
    """A bootloader: normal mode, updateFirmware, reset 'update'."""
    node, work, served = _setup(tmp_path)
    try:
        with fake_api() as api_url:
            env = cli_env(tmp_path / "home", bridge=served.usb_bridge, api_url=api_url)
            flashed = particle(node, env, work, "flash", "--local", "boot.bin")
            assert "Flashing boot.bin" in flashed and "Flash success!" in flashed, flashed
            assert "dfu mode" not in flashed
            assert wait_boots(served, 2)
            boot = device_state(node, served.usb_bridge)["modules"][0]
            assert (boot["type"], boot["version"], boot["size"]) == ("BOOTLOADER", 2301,
                                                                     len(BOOTLOADER))
            assert boot["hash"] == BOOTLOADER[-38:-6].hex() and boot["validityErrors"] == []
    finally:
        served.stop()
    boots = served.records("device.boot")
    assert [(b["reset_reason"], b["safe_mode"]) for b in boots] == [
        ("power_down", False), ("update", False)]


def test_particle_flash_local_bundle_with_an_asset(tmp_path: Path) -> None:
    """A bundle: the user part over DFU, the asset through updateFirmware; then again, the
    asset being on the device already."""
    node, work, served = _setup(tmp_path)
    try:
        with fake_api() as api_url:
            env = cli_env(tmp_path / "home", bridge=served.usb_bridge, api_url=api_url)
            bundled = particle(node, env, work, "bundle", "app.bin", "--assets", "assets",
                               "--saveTo", "bundle.zip")
            assert "Bundling successful." in bundled, bundled
            flashed = particle(node, env, work, "flash", "--local", "bundle.zip")
            assert re.search(r"Switching device to dfu mode\s+Flashing app.bin\s+"
                             r"Switching device to normal mode\s+Flashing hello.txt\s+"
                             r"Flash success!", flashed), flashed
            assert wait_boots(served, 3)
            state = device_state(node, served.usb_bridge)
            user = state["modules"][2]
            digest = hashlib.sha256(ASSET).hexdigest()
            assert (user["type"], user["version"], user["validityErrors"]) == ("USER_PART", 9,
                                                                               [])
            assert user["assetDependencies"] == [{"name": "hello.txt", "hash": digest}]
            assert user["size"] > len(USER_PART)  # the prefix grew by the asset dependency
            assert state["assets"]["required"] == [{"name": "hello.txt", "hash": digest}]
            [available] = state["assets"]["available"]
            assert (available["name"], available["hash"], available["size"]) == (
                "hello.txt", digest, len(ASSET))
            assert 0 < available["storageSize"] < len(ASSET)  # compressed

            # the same bundle again: the asset is on the device already
            flashed = particle(node, env, work, "flash", "--local", "bundle.zip")
            assert "Skipping hello.txt because it already exists on the device" in flashed, \
                flashed
    finally:
        served.stop()
    boots = served.records("device.boot")
    assert [(b["reset_reason"], b["safe_mode"]) for b in boots] == [
        ("power_down", False), ("dfu_mode", True), ("update", False), ("dfu_mode", False)]
    assert [r["reason"] for r in served.records("system.safe_mode")] == ["missing assets"]
