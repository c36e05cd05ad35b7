"""particle-usb 4.1.0's real ``updateFirmware()`` against ``fwsim serve --usb-bridge``.

The binaries are made by binary-version-reader's own ``createFirmwareBinary`` (in
``support/particle_usb_ota.js``): START_FIRMWARE_UPDATE, 1024-byte FIRMWARE_UPDATE_DATA chunks,
FINISH_FIRMWARE_UPDATE. A valid user part is applied after the FINISH reply; the device resets
with the reason ``update`` and GET_MODULE_INFO (``getFirmwareModuleInfo``) reports the new
module with the SHA-256 of its suffix. A binary with a flipped byte fails the CRC-32: particle-usb
raises a RequestError with the result -1330 (Device OS's "Module integrity check failed";
particle-usb has no text of its own for it and says "Request error").
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from support.served import HELPERS, REPO, Served, node_with, run_node

pytestmark = pytest.mark.interop

SCRIPT = HELPERS / "particle_usb_ota.js"
#: a P2 user part v7 for system part 1 v6200, at the top of the user slot (fixed end 0x08600000)
USER_PART = {"platformId": 32, "moduleFunction": 5, "moduleIndex": 1, "moduleVersion": 7,
             "moduleStartAddress": 0x085F0000, "dataSize": 3000,
             "deps": [{"func": 4, "index": 1, "version": 6200}]}


def steps(node: str, bridge: str, plan: list[dict[str, Any]]) -> list[dict[str, Any]]:
    env = dict(os.environ, FWSIM_USB_BRIDGE=bridge)
    done = run_node(node, [str(SCRIPT), json.dumps(plan)], env, REPO)
    assert done.returncode == 0, done.stderr
    results = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["step"] for r in results] == [s["do"] for s in plan], done.stdout
    return results


def test_update_firmware_applies_the_module_and_resets(tmp_path: Path) -> None:
    node = node_with("particle-usb", "4.1.0")
    served = Served(["--usb-bridge", "0"], tmp_path)
    try:
        opened, before, corrupt, after_corrupt, update = steps(node, served.usb_bridge, [
            {"do": "open"}, {"do": "moduleInfo"},
            {"do": "updateFirmware", "binary": USER_PART, "corrupt": True},
            {"do": "moduleInfo"},
            {"do": "updateFirmware", "binary": USER_PART},
        ])
        assert opened["ok"], opened
        assert [(m["type"], m["version"]) for m in before["value"]] == [
            ("BOOTLOADER", 2300), ("SYSTEM_PART", 6200), ("USER_PART", 1)]
        assert corrupt == {"step": "updateFirmware", "ok": False, "result": -1330,
                           "error": "RequestError: Request error"}
        assert after_corrupt["value"] == before["value"]  # nothing applied, no reset
        assert update["ok"], update
        binary = update["value"]
        assert binary["chunks"] == 3  # 3096 bytes in 1024-byte chunks
        assert binary["events"] == ["start-erase", "erased", "start-download", "downloaded",
                                    "complete-download"]
        again = steps(node, served.usb_bridge, [{"do": "wait", "ms": 2500}, {"do": "open"},
                                                {"do": "moduleInfo"}])
        user = again[2]["value"][2]
        assert user == {"type": "USER_PART", "index": 1, "version": 7, "size": binary["size"],
                        "hash": binary["sha"], "validityErrors": []}
    finally:
        served.stop()
    boots = served.records("device.boot")
    assert [b["reset_reason"] for b in boots] == ["power_down", "update"]
    assert [r["result"] for r in served.records("ota.finish")] == [-1330, 0]
    installed = served.records("bootloader.module_installed")
    assert [(r["type"], r["version"]) for r in installed] == [(5, 7)]
    saved = json.loads((served.storage / "modules.json").read_text())
    assert [m["version"] for m in saved["installed"]] == [7]
