"""Unmodified @particle/softap-setup 4.1.2 against ``fwsim serve --profile photon``.

For each of the library's protocols (``tcp`` and ``http``) a ``fwsim serve`` subprocess runs a
Photon in listening mode with its SoftAP servers on free loopback ports and a claim code issued
by its in-process cloud. ``tests/interop/js/softap_setup_flow.js`` then drives the library:
deviceInfo, publicKey, scan, a refused ``set`` (the library's error path), setClaimCode,
configure (the device decrypts the password the library encrypted with the device key) and
connect. The test then waits for the simulated Photon to join the network, connect to the cloud
with a full handshake, send the claim code, get it confirmed and clear it - read back from the
device's DCT file and the trace.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from firmware_sim.kernel.trace import read_jsonl
from firmware_sim.services.log import log_lines

pytestmark = pytest.mark.interop

REPO = Path(__file__).resolve().parents[2]
SOFTAP_SETUP = REPO / "tests/interop/node/node_modules/@particle/softap-setup"
SCRIPT = REPO / "tests/interop/js/softap_setup_flow.js"
OWNER = "owner@example.com"
CLAIM_CODE_OFFSET, CLAIMED_OFFSET = 1762, 1825


def _toolchain() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (CI installs Node 20)")
    if not (SOFTAP_SETUP / "package.json").exists():
        pytest.skip("@particle/softap-setup is not installed: run `npm ci` in tests/interop/node")
    version = json.loads((SOFTAP_SETUP / "package.json").read_text())["version"]
    assert version == "4.1.2", f"expected @particle/softap-setup 4.1.2, found {version}"
    return node


class Serve:
    """``fwsim serve`` in a subprocess; stdout lines collected by a reader thread."""

    def __init__(self, args: list[str], stderr_path: Path) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.stderr_path = stderr_path
        with stderr_path.open("w") as stderr:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "firmware_sim.cli", "serve", *args],
                stdout=subprocess.PIPE, stderr=stderr, text=True, cwd=REPO, env=env)
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def wait_ready(self, timeout_s: float = 30.0) -> list[str]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            self.seen.append(line)
            if line.startswith("ready"):
                return self.seen
        self.stop()
        raise AssertionError(f"fwsim serve did not get ready: {self.seen} {self.stderr()}")

    def stderr(self) -> str:
        return self.stderr_path.read_text() if self.proc.poll() is not None else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._reader.join(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


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
    node = _toolchain()
    storage, trace = tmp_path / "device", tmp_path / "trace.jsonl"
    serve = Serve(["--profile", "photon", "--seed", "5", "--ap", "HomeNet:home-pass-1",
                   "--storage", str(storage), "--trace", str(trace), "--for", "180",
                   f"--softap-{protocol}", "0", "--softap-claim-owner", OWNER],
                  tmp_path / "serve.stderr")
    try:
        lines = serve.wait_ready()
        text = "\n".join(lines)
        ssid = re.search(r"^softap: SSID (Photon-[2-9A-HJ-NP-Z]{6}) ", text, re.M)
        port = re.search(rf"^softap {protocol}: (?:http://)?127\.0\.0\.1:(\d+)", text, re.M)
        code = re.search(r"^softap: claim code (\S{63}) for ", text, re.M)
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
