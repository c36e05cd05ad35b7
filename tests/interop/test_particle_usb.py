"""Unmodified particle-usb 4.1.0 against ``fwsim serve --usb-bridge``.

particle-usb runs in Node.js on top of fwsim's node-usb stand-in (transports/usb/js): every
request is real control transfers (INIT/SEND/CHECK/RECV/RESET, raw 'P' requests, descriptor
reads) carried by the loopback bridge to the simulated device. Two entry points are covered:
``openNativeUsbDevice`` with a bridged device object, and particle-usb's own enumeration
(``getDevices`` / ``openDeviceById``) with the ``--require`` preload patching
``usb.getDeviceList``. The claim code the library sets is read back from the device's DCT file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from support.served import (
    DEVICE_ID,
    HELPERS,
    PRELOAD,
    REPO,
    Served,
    node_with,
    run_node,
)

pytestmark = pytest.mark.interop

SCRIPT = HELPERS / "particle_usb_steps.js"
CODE = "fwsimInteropClaimCode0123456789abcdefghijklmnopqrstuvwxyzABCDEF"  # 63 characters


def steps(node: str, bridge: str, plan: list[dict[str, Any]], preload: bool = False
          ) -> list[dict[str, Any]]:
    env = dict(os.environ, FWSIM_USB_BRIDGE=bridge)
    args = ["--require", str(PRELOAD)] if preload else []
    done = run_node(node, [*args, str(SCRIPT), json.dumps(plan)], env, REPO)
    assert done.returncode == 0, done.stderr
    results = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["step"] for r in results] == [s["do"] for s in plan], done.stdout
    return results


def test_particle_usb_control_requests(tmp_path: Path) -> None:
    node = node_with("particle-usb", "4.1.0")
    served = Served(["--usb-bridge", "0", "--ap", "HomeNet:home-pass-1"], tmp_path)
    try:
        assert len(CODE) == 63
        plan: list[dict[str, Any]] = [
            {"do": "open"},
            {"do": "isClaimed"},
            {"do": "setClaimCode", "code": CODE},
            {"do": "getDeviceId"},
            {"do": "systemVersion"},
            {"do": "deviceMode"},
            {"do": "echo", "size": 64},
            {"do": "echo", "size": 65},
            {"do": "echo", "size": 65535},
            {"do": "badType"},
            {"do": "unsupported"},
            {"do": "joinNewWifiNetwork",
             "network": {"ssid": "HomeNet", "password": "home-pass-1", "security": "WPA2_PSK"}},
            {"do": "deviceMode"},
            {"do": "reset"},
            {"do": "close"},
        ]
        results = {f"{i}:{r['step']}": r for i, r in enumerate(steps(node, served.usb_bridge,
                                                                       plan))}
        ok = {key: r["value"] for key, r in results.items() if r["ok"]}
        assert ok["0:open"] == {"type": "p2", "id": DEVICE_ID, "firmwareVersion": "6.2.0",
                                "platformId": 32}
        assert ok["1:isClaimed"] is False
        assert "2:setClaimCode" in ok
        assert ok["3:getDeviceId"] == DEVICE_ID
        assert ok["4:systemVersion"] == "6.2.0"
        assert ok["5:deviceMode"] == "LISTENING"  # no Wi-Fi credentials: listening at boot
        for key in ("6:echo", "7:echo", "8:echo"):
            assert ok[key]["result"] == 0 and ok[key]["same"], results[key]
        assert results["9:badType"]["error"] == "RangeError: Invalid request type"
        assert ok["10:unsupported"] == -120
        assert "11:joinNewWifiNetwork" in ok, results["11:joinNewWifiNetwork"]
        assert "13:reset" in ok and "14:close" in ok
        # the device came back after the reset; particle-usb's own enumeration finds it
        again = steps(node, served.usb_bridge, [
            {"do": "wait", "ms": 2500},
            {"do": "listDevices"},
            {"do": "openById", "id": DEVICE_ID},
            {"do": "isClaimed"},
            {"do": "deviceMode"},
        ], preload=True)
        assert again[1]["value"] == [{"type": "p2", "vendorId": 0x2B04, "productId": 0xC020}]
        assert again[2]["value"] == {"type": "p2", "id": DEVICE_ID, "firmwareVersion": "6.2.0"}
        assert again[3]["value"] is False
        assert again[4]["value"] == "NORMAL"  # it has credentials now
    finally:
        served.stop()
    assert served.claim_code() == CODE.encode()
    inits = served.records("usb.init")
    assert {r["type"] for r in inits} >= {200, 201, 20, 30, 72, 1, 500, 40}
    assert any(r["status"] == "PENDING" and r["size"] == 65 for r in inits)
    assert any(r["status"] == "OK" and r["size"] == 64 for r in inits)
    assert served.records("usb.reset")  # RESET of all on every open
    assert len(served.records("device.boot")) == 2  # the USB RESET request rebooted it
