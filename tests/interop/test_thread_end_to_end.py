"""The forum thread end to end across processes, with only ``fwsim up``, unmodified
particle-usb and particle-api-js, and ``fwsim ctl``.

One ``fwsim up --product 4242:acme --usb-bridge 0`` runs two P2s: ``w`` with the thread's
``session-end-workaround`` firmware and ``c`` with the default (empty) app. Through
particle-api-js the product's app creates customers A and B, A claims both devices, B's
``claimDevice`` is refused (403 "That belongs to someone else.") and B gets product claim
codes. Through particle-usb the "phone" sets B's codes over USB while the devices hold their
cloud sessions:

* ``w``: particle-usb also joins the device to its network again (``joinNewWifiNetwork``), as the
  thread's app did; the device reconnects, *resumes* its session and does not send the code; the
  workaround then publishes ``spark/device/session/end``, the cloud drops the session, the RST
  forces a full handshake and the code is sent;
* ``c``: ``fwsim ctl network c down/up`` makes it reconnect - resumed, code not sent - and
  ``fwsim ctl drop-session c --reconnect`` forces the full handshake that sends it.

B then owns both devices (particle-api-js ``listDevices``). The live log of ``fwsim up`` is read
while it runs: ``Skipping HELLO message``, ``cloud connected from existing session.`` and
``Send spark/device/claim/code event for code ...`` are seen as they happen, in that order.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from support.served import HELPERS, PRELOAD, REPO, node_with, run_node

from tests.processes import stop_process

pytestmark = pytest.mark.interop

API_STEPS = REPO / "tests/interop/js/api_js_steps.js"
USB_STEPS = HELPERS / "particle_usb_steps.js"
PRODUCT = 4242
BELONGS = "That belongs to someone else."
#: virtual seconds per wall second: the 25 s keepalive that meets the dropped session is ~6 s
SPEED = "4"
SEND = "Send spark/device/claim/code event for code "


class Up:
    """``fwsim up ARGS`` with its stdout read line by line as it is printed."""

    def __init__(self, args: list[str], workdir: Path) -> None:
        self.stderr = (workdir / "up.stderr").open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "firmware_sim.cli", "up", "--http", "0", "--coap", "0",
             "--db", ":memory:", "--timing", "fast", "--speed", SPEED, "--for", "240",
             *args],
            stdout=subprocess.PIPE, stderr=self.stderr, text=True, cwd=REPO,
            env=dict(os.environ, PYTHONUNBUFFERED="1"))
        self.queue: queue.Queue[str] = queue.Queue()
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        self.wait_for(r"ready;", 30)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.queue.put(line.rstrip("\n"))

    def wait_for(self, pattern: str, timeout_s: float, after: int = 0) -> int:
        """Index of the first line from ``after`` on matching ``pattern``, read while the
        process runs (so it was printed live, not at exit)."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout_s
        while True:
            for index in range(after, len(self.lines)):
                if regex.search(self.lines[index]):
                    return index
            after = max(after, len(self.lines))
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.proc.poll() is not None:
                raise AssertionError(f"no line matching {pattern!r}:\n" + "\n".join(
                    self.lines[-60:]))
            with contextlib.suppress(queue.Empty):
                self.lines.append(self.queue.get(timeout=min(remaining, 0.2)))

    def value(self, pattern: str) -> str:
        for line in self.lines:
            match = re.search(pattern, line)
            if match:
                return match.group(1)
        raise AssertionError(f"no line matching {pattern!r}")

    def stop(self) -> None:
        stop_process(self.proc, self.proc.stdout, self.stderr)


def api(node: str, base_url: str, steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    done = run_node(node, [str(API_STEPS), json.dumps({"baseUrl": base_url, "steps": steps})],
                    dict(os.environ), REPO)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def usb(node: str, bridge: str, steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    env = dict(os.environ, FWSIM_USB_BRIDGE=bridge)
    done = run_node(node, ["--require", str(PRELOAD), str(USB_STEPS), json.dumps(steps)], env,
                    REPO)
    assert done.returncode == 0, done.stderr
    results = [json.loads(line) for line in done.stdout.splitlines()]
    assert all(r["ok"] for r in results), results
    return results


def ctl(up_env: dict[str, str], *argv: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "firmware_sim.cli", "ctl", *argv, "--json"],
                          capture_output=True, text=True, cwd=REPO, env=up_env, timeout=30,
                          check=False)
    assert done.returncode == 0, done.stderr + done.stdout
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def test_the_thread_across_processes_with_real_clients(tmp_path: Path) -> None:
    node = node_with("particle-usb", "4.1.0")
    node_with("particle-api-js", "12.0.3")
    up = Up(["--product", f"{PRODUCT}:acme", "--usb-bridge", "0",
             "--device", "w:p2:session-end-workaround", "--device", "c:p2"], tmp_path)
    try:
        base = up.value(r"REST API\s+(http://\S+)")
        bridge = up.value(r"usb bridge: (\S+)")
        ids = {name: up.value(rf"device {name}\s+([0-9a-f]{{24}})") for name in ("w", "c")}
        # the product's OAuth client, its secret fresh on every start
        client = (up.value(r"OAuth client (\S+) /"), up.value(r"OAuth client \S+ / (\S+)"))
        env = dict(os.environ, FWSIM_URL=base,
                   FWSIM_ADMIN_TOKEN=up.value(r"X-Fwsim-Admin-Token: ([0-9a-f]+)"))
        for name in ("w", "c"):  # both connected (full handshake) before anything else
            up.wait_for(rf"^{name} .*INFO: Cloud connected", 30)

        # the product's app: customers A and B; A owns both devices; B is refused
        tokens = [r["value"] for r in api(node, base, [
            {"do": "createCustomer", "email": email, "password": "pw-" + email[0],
             "product": PRODUCT, "clientId": client[0], "clientSecret": client[1]}
            for email in ("alice@example.com", "bob@example.com")])]
        alice, bob = tokens
        claims = api(node, base, [
            *({"do": "claimDevice", "deviceId": ids[n], "auth": alice} for n in ("w", "c")),
            *({"do": "claimDevice", "deviceId": ids[n], "auth": bob} for n in ("w", "c")),
            *({"do": "getClaimCode", "product": PRODUCT, "auth": bob} for _ in range(2))])
        assert [c["ok"] for c in claims[:2]] == [True, True], claims
        for refused in claims[2:4]:
            assert refused["statusCode"] == 403 and BELONGS in json.dumps(refused["body"])
        codes = {"w": claims[4]["value"], "c": claims[5]["value"]}
        assert all(len(code) == 63 for code in codes.values())

        # w: the phone sets B's code over USB and joins the network again (the thread's app)
        mark = len(up.lines)
        usb(node, bridge, [{"do": "openById", "id": ids["w"]},
                           {"do": "setClaimCode", "code": codes["w"]},
                           {"do": "joinNewWifiNetwork", "network": {
                               "ssid": "HomeNet", "password": "home-pass-1",
                               "security": "WPA2_PSK"}},
                           {"do": "close"}])
        skip = up.wait_for(r"^w .*Skipping HELLO message", 30, mark)
        resumed = up.wait_for(r"^w .*cloud connected from existing session\.", 30, skip)
        sent = up.wait_for(rf"^w .*{re.escape(SEND + codes['w'])}", 60, resumed)
        between = up.lines[resumed:sent]
        assert any("spark/device/session/end" in line for line in between), between
        assert any(re.search(r"^w .*Received RST message; discarding session", line)
                   for line in between), between
        assert not any(re.search(rf"^w .*{SEND}", line) for line in up.lines[mark:sent])

        # c: the code set over USB waits; a reconnect resumes and does not send it ...
        usb(node, bridge, [{"do": "openById", "id": ids["c"]},
                           {"do": "setClaimCode", "code": codes["c"]}, {"do": "close"}])
        state = ctl(env, "state", "c")
        assert state["claim_code_pending"] and state["state"] == "connected"
        mark = len(up.lines)
        ctl(env, "network", "c", "down")
        ctl(env, "network", "c", "up")
        up.wait_for(r"^c .*Skipping HELLO message", 30, mark)
        resumed = up.wait_for(r"^c .*cloud connected from existing session\.", 30, mark)
        time.sleep(1.0)
        assert not any(re.search(rf"^c .*{SEND}", line) for line in up.lines[mark:])
        state = ctl(env, "state", "c")
        assert state["claim_code_pending"] and state["last_session"] == "resumed"
        # ... until fwsim ctl drops the session: the full handshake sends it
        assert ctl(env, "drop-session", "c", "--reconnect")["dropped"] is True
        up.wait_for(r"^cloud .*session of c .* dropped", 10, resumed)
        up.wait_for(rf"^c .*{re.escape(SEND + codes['c'])}", 60, resumed)

        # B owns both devices, still in the product
        for name in ("w", "c"):
            up.wait_for(rf"^cloud .*claim code received from {name} .*: claimed; owner "
                        r"changed customer:\S+ -> customer:", 30)
        deadline = time.monotonic() + 20
        while True:
            listed = api(node, base, [{"do": "listDevices", "auth": bob}])[0]
            owned = {d["id"] for d in listed.get("value") or []}
            if owned >= set(ids.values()) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert owned >= set(ids.values()), listed
        states = {s["name"]: s for s in ctl(env, "devices")["devices"]}
        for name in ("w", "c"):
            assert not states[name]["claim_code_pending"]
            assert states[name]["product_id"] == PRODUCT
            assert states[name]["sessions"]["full"] >= 2
            assert states[name]["sessions"]["resumed"] >= 1
    finally:
        up.stop()
