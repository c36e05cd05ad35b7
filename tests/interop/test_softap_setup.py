"""Unmodified @particle/softap-setup 4.1.2 against ``fwsim serve --profile photon``.

For each of the library's protocols (``tcp`` and ``http``) a ``fwsim serve`` subprocess runs a
Photon in listening mode with its SoftAP servers on free loopback ports and a claim code issued
by its in-process cloud. ``tests/interop/js/softap_setup_flow.js`` then drives the library:
deviceInfo, publicKey, scan, a refused ``set`` (the library's error path), setClaimCode,
configure (the device decrypts the password the library encrypted with the device key) and
connect. The test then waits for the simulated Photon to join the network, connect to the cloud
with a full handshake, send the claim code, get it confirmed and clear it - read back from the
device's DCT file and the trace.

Then the SoftAP is gone with listening mode: ``tests/interop/js/softap_setup_gone.js`` asks it
for deviceInfo and scan, and each callback must get an error (a connection accepted and closed
cleanly would crash softap-setup with a TypeError instead).
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest
from support.served import REPO, Served, node_with

from firmware_sim.kernel.trace import read_jsonl
from firmware_sim.services.log import log_lines

pytestmark = pytest.mark.interop

SCRIPT = REPO / "tests/interop/js/softap_setup_flow.js"
GONE_SCRIPT = REPO / "tests/interop/js/softap_setup_gone.js"
OWNER = "owner@example.com"
CLAIM_CODE_OFFSET, CLAIMED_OFFSET = 1762, 1825


def _wait_for_claim(dct: Path, timeout_s: float = 45.0) -> bytes:
    deadline = time.monotonic() + timeout_s
    image = b""
    while time.monotonic() < deadline:
        if dct.exists():
            image = dct.read_bytes()
            if len(image) > CLAIMED_OFFSET and image[CLAIMED_OFFSET] == ord("1"):
                return image
        time.sleep(0.1)
    raise AssertionError("the device did not mark itself claimed in time")


@pytest.mark.parametrize("protocol", ["tcp", "http"])
def test_softap_setup_js_claims_a_simulated_photon(protocol: str, tmp_path: Path) -> None:
    node = node_with("@particle/softap-setup", "4.1.2")
    serve = Served(["--profile", "photon", "--seed", "5", "--ap", "HomeNet:home-pass-1",
                    f"--softap-{protocol}", "0", "--softap-claim-owner", OWNER],
                   tmp_path, duration_s=180)
    storage, trace = serve.storage, serve.trace
    try:
        text = "\n".join(serve.seen)
        ssid = re.search(r"^softap: SSID (Photon-[2-9A-HJ-NP-Z]{6}) ", text, re.M)
        port = re.search(rf"^softap {protocol}: (?:http://)?127\.0\.0\.1:(\d+)", text, re.M)
        code = re.search(r"^claim code (\S{63}) for ", text, re.M)
        assert ssid and port and code, text
        flow = subprocess.run(
            [node, str(SCRIPT), "--protocol", protocol, "--host", "127.0.0.1",
             "--port", port.group(1), "--claim-code", code.group(1), "--ssid", "HomeNet",
             "--password", "home-pass-1"],
            capture_output=True, text=True, timeout=90, cwd=REPO)
        steps = [json.loads(line) for line in flow.stdout.splitlines() if line.startswith("{")]
        assert flow.returncode == 0, (flow.stdout, flow.stderr)
        by_step = {step["step"]: step for step in steps}
        assert list(by_step) == ["deviceInfo", "publicKey", "scan", "setUnknownKey",
                                 "setClaimCode", "configure", "connect"]
        assert by_step["deviceInfo"]["claimed"] is False
        assert by_step["publicKey"]["keyBits"] == 1024
        assert by_step["scan"]["securities"] == ["wpa2_aes"]
        assert by_step["configure"]["reply"] == {"r": 0}

        image = _wait_for_claim(storage / "dct.bin")
        assert image[CLAIM_CODE_OFFSET] == 0  # the code was cleared after the confirmation

        # listening mode has ended: the library's callbacks get an error, it does not crash
        gone = subprocess.run(
            [node, str(GONE_SCRIPT), "--protocol", protocol, "--host", "127.0.0.1",
             "--port", port.group(1)], capture_output=True, text=True, timeout=30, cwd=REPO)
        assert gone.returncode == 0, (gone.stdout, gone.stderr)
        calls = [json.loads(line) for line in gone.stdout.splitlines() if line.startswith("{")]
        assert [c["step"] for c in calls] == ["deviceInfo", "scan"], gone.stdout
        for result in calls:
            assert result["error"] and result["value"] is None, result
    finally:
        serve.stop()

    records = read_jsonl(trace)
    log = log_lines(records, "dev")
    assert any(f"Send spark/device/claim/code event for code {code.group(1)}" in line
               for line in log)
    assert any("Claim code received by the cloud and cleared locally." in line for line in log)
    assert any("Starting handshake: presense_announce=1" in line for line in log)
    stored = [r for r in records if r.kind == "softap.credentials_stored"]
    assert stored and stored[0].fields["ssid"] == "HomeNet"
    assert stored[0].fields["password_length"] == len("home-pass-1")  # decrypted on the device
    redeemed = [r.fields for r in records if r.kind == "claim.redeem"]
    assert redeemed and redeemed[0]["outcome"] == "claimed"
    assert redeemed[0]["new_owner"] == f"user:{OWNER}"
    assert [r.fields["protocol"] for r in records if r.kind == "softap.connection"] == (
        [protocol] * len([r for r in records if r.kind == "softap.connection"]))
