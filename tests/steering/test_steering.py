"""Steering a testbed: the operations on virtual time, then ``fwsim ctl`` against a running
``fwsim up`` and ``fwsim cloud serve --admin`` (the admin routes behind the admin guard), and the
curl ``fwsim up`` prints."""

from __future__ import annotations

import json
import os
import queue
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import pytest

from firmware_sim.testbed import Testbed, TestbedSpec, provisioned
from firmware_sim.testbed.steering import Steering, UnknownDevice

REPO = Path(__file__).resolve().parents[2]
TOKEN = "5e7e5e7e5e7e5e7e5e7e5e7e5e7e5e7e5e7e5e7e"


# -- the operations on virtual time ----------------------------------------------------------------


@pytest.fixture
def steered() -> Iterator[tuple[Testbed, Steering]]:
    bed = Testbed(TestbedSpec(seed=3, devices=provisioned("a", "b"), timing="fast"))
    steering = Steering(bed)
    bed.power_on()
    bed.run_for(10)
    yield bed, steering
    steering.close()
    bed.close()


def test_state_reports_connection_sessions_and_the_cloud_view(
        steered: tuple[Testbed, Steering]) -> None:
    bed, steering = steered
    state = steering.state("a")
    assert state["state"] == "connected" and state["cloud"]["connected"]
    assert state["sessions"] == {"full": 1, "resumed": 0} and state["last_session"] == "full"
    assert state["cloud_session"] == {"full_handshakes": 1, "resumes": 0}
    assert state["claim_code_pending"] is False and state["owner"] is None
    assert steering.state(bed.devices["b"].device_id.upper())["name"] == "b"  # by id too
    assert [s["name"] for s in steering.states()] == ["a", "b"]
    with pytest.raises(UnknownDevice, match=r"unknown device 'zz' \(devices: a, b\)"):
        steering.state("zz")


def test_drop_session_makes_the_next_message_a_full_handshake(
        steered: tuple[Testbed, Steering]) -> None:
    bed, steering = steered
    results: list[dict[str, Any]] = []
    code = bed.cloud.create_claim_code(bed.cloud.user("b@example.com"))  # type: ignore[union-attr]
    steering.set_claim_code("a", code, results.append)
    bed.run_for(1)
    assert results == [{"device": "a", "result": 0}]
    steering.network("a", up=False)
    bed.run_for(1)
    assert steering.state("a")["state"] == "disconnected"
    steering.network("a", up=True)
    bed.run_for(10)
    state = steering.state("a")
    assert state["last_session"] == "resumed" and state["claim_code_pending"]  # the bug
    assert steering.drop_session("a") == {"device": "a", "dropped": True}
    assert steering.publish("a", "my/event", "x")["sent"] is True
    bed.run_for(10)
    state = steering.state("a")
    assert state["sessions"] == {"full": 2, "resumed": 1}
    assert not state["claim_code_pending"] and state["owner"] == "user:b@example.com"
    assert steering.drop_session("a")["dropped"] is True
    assert steering.drop_session("a")["dropped"] is False  # nothing left to forget


def test_a_key_change_from_the_cloud_makes_the_device_start_a_full_session(
        steered: tuple[Testbed, Steering]) -> None:
    """The resume bug again, ended from the cloud's side: a key change message makes the
    device discard its session, reconnect with a full handshake and send its claim code."""
    bed, steering = steered
    results: list[dict[str, Any]] = []
    code = bed.cloud.create_claim_code(bed.cloud.user("b@example.com"))  # type: ignore[union-attr]
    steering.set_claim_code("a", code, results.append)
    bed.run_for(1)
    steering.network("a", up=False)
    bed.run_for(1)
    steering.network("a", up=True)
    bed.run_for(10)
    assert steering.state("a")["last_session"] == "resumed"
    assert steering.state("a")["claim_code_pending"]
    assert steering.key_change("a") == {"device": "a", "sent": True}
    bed.run_for(10)
    state = steering.state("a")
    assert state["sessions"] == {"full": 2, "resumed": 1} and state["last_session"] == "full"
    assert not state["claim_code_pending"] and state["owner"] == "user:b@example.com"
    log = bed.devices["a"].log_lines()
    assert any(line.endswith("[comm.protocol] WARN: Received a key change message; discarding "
                             "session") for line in log), log[-10:]
    assert [r.kind for r in bed.world.trace.records
            if r.kind in ("operator.cloud_key_change", "key_change.to_device")] == [
        "operator.cloud_key_change", "key_change.to_device"]
    steering.power_cycle("b", off_s=100)
    bed.run_for(1)
    assert steering.key_change("b") == {"device": "b", "sent": True}  # its session lingers
    bed.run_for(90)  # nobody acknowledges it: retransmitted, then given up
    assert [r.fields["device_id"] for r in bed.world.trace.find("key_change.timeout")] == [
        bed.devices["b"].device_id]
    bed.cloud.forget_session(bed.devices["b"].device_id)  # type: ignore[union-attr]
    assert steering.key_change("b") == {"device": "b", "sent": False}
    with pytest.raises(UnknownDevice):
        steering.key_change("zz")


def test_the_steering_routes_keep_the_apps_404_shortcut(
        steered: tuple[Testbed, Steering]) -> None:
    """``mount_steering`` adds plain routes, not an included router, so the served app still
    answers unknown paths without walking every route (``cloud_sim/http/app.py``)."""
    from cloud_sim.http import create_app
    from firmware_sim.testbed.steering_routes import mount_steering

    bed, steering = steered
    app = create_app(bed.cloud.cloud)  # type: ignore[union-attr]
    mount_steering(app, steering)
    assert app.router.middleware_stack._route_regexes() is not None
    assert any(getattr(r, "path", "") == "/fwsim/devices/{device}/key-change"
               for r in app.router.routes)


def test_power_listening_reset_and_link(steered: tuple[Testbed, Steering]) -> None:
    bed, steering = steered
    steering.listening("b", True)
    assert steering.state("b")["state"] == "listening"
    steering.listening("b", False)
    steering.power_cycle("b", off_s=2)
    assert steering.state("b")["state"] == "off"
    with pytest.raises(Exception, match="is off"):
        steering.reset("b")
    bed.run_for(12)
    assert steering.state("b")["state"] == "connected"
    assert steering.state("b")["sessions"]["resumed"] == 0  # the power cut lost the session
    assert steering.link("b", loss=0.25, latency_s=0.2) == {"device": "b", "loss": 0.25,
                                                            "latency_ms": 200}
    with pytest.raises(Exception, match="loss must be between 0 and 1"):
        steering.link("b", loss=2)
    steering.reset("a")
    bed.run_for(10)
    assert steering.state("a")["last_session"] == "resumed"  # a reset keeps the session
    kinds = [r.kind for r in bed.world.trace.records if r.layer == "operator"]
    assert kinds == ["operator.listening", "operator.listening", "operator.power_cut",
                     "operator.link_conditions", "operator.reset"]


# -- fwsim ctl against running servers -------------------------------------------------------------


class Running:
    """A fwsim server command in a subprocess, its stdout read as it is printed."""

    def __init__(self, argv: list[str], ready: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "firmware_sim.cli", *argv],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, cwd=REPO,
                                     env=dict(os.environ, PYTHONUNBUFFERED="1"))
        self.lines: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.wait_for(ready, 30)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))

    def wait_for(self, pattern: str, timeout_s: float, *, since: int = 0) -> str:
        """The first line matching ``pattern`` from line ``since`` on (0: the first)."""
        deadline = time.monotonic() + timeout_s
        index = since
        while True:
            for line in self.lines[index:]:
                if re.search(pattern, line):
                    return line
            index = len(self.lines)
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise AssertionError(f"no {pattern!r} in:\n" + "\n".join(self.lines[-40:]))
            try:
                self.lines.append(self._queue.get(timeout=0.2))
            except queue.Empty:
                continue

    def value(self, pattern: str) -> str:
        match = re.search(pattern, self.wait_for(pattern, 5))
        assert match is not None
        return match.group(1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        assert self.proc.stdout is not None
        self.proc.stdout.close()


def ctl(url: str, *argv: str, token: str | None = TOKEN,
        options_first: bool = False) -> subprocess.CompletedProcess[str]:
    """``fwsim ctl ARGV --url URL [--token T]`` in this process (its client is stdlib HTTP);
    ``options_first``: ``fwsim ctl --url URL --token T ARGV``."""
    import contextlib
    import io

    from firmware_sim.cli import main

    out, err = io.StringIO(), io.StringIO()
    options = ["--url", url, "--token", token or ""]
    args = [*options, *argv] if options_first else [*argv, *options]
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(["ctl", *args])
        except SystemExit as exc:
            code = int(exc.code or 0)
    return subprocess.CompletedProcess(["fwsim", "ctl", *args], code, out.getvalue(),
                                       err.getvalue())


def answer(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert done.returncode == 0, done.stdout + done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def one_line_error(done: subprocess.CompletedProcess[str], text: str) -> None:
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.strip() == f"fwsim: error: {text}" or text in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_ctl_against_fwsim_up_and_the_printed_curl() -> None:
    up = Running(["up", "--http", "0", "--coap", "0", "--db", ":memory:", "--timing", "fast",
                  "--speed", "4", "--for", "120", "--admin-token", TOKEN], "ready;")
    try:
        url = up.value(r"REST API\s+(http://\S+)")
        assert f"FWSIM_ADMIN_TOKEN={TOKEN}" in up.wait_for(r"steer ", 1)
        code = up.value(r"claim code\s+(\S{63})")
        # the developer's password is fresh on every start (a fixed default let any local user
        # log in) and is the one that logs in
        password = up.value(r"developer\s+developer@fwsim.local / (\S+)")
        assert len(password) >= 16 and password != "fwsim-password"
        login = subprocess.run(
            ["curl", "-s", "-u", "particle:particle", "-d", "grant_type=password", "-d",
             "username=developer@fwsim.local", "-d", f"password={password}",
             f"{url}/oauth/token"], capture_output=True, text=True, timeout=30, check=True)
        assert json.loads(login.stdout)["token_type"] == "bearer", login.stdout
        secret_line = up.wait_for(r"mobile secret", 1)
        assert re.search(r"serial P046\w{11}  mobile secret \w{15}  setup code \w{6}",
                         secret_line)
        up.wait_for(r"^dev1 .*Cloud connected", 20)

        # the printed curl claims dev1 for the developer; GET /v1/devices then lists it
        curl = up.wait_for(r"try ", 1).split("try", 1)[1].split("(claims", 1)[0].strip()
        claimed = subprocess.run(shlex.split(curl), capture_output=True, text=True,
                                 timeout=30, check=True)
        assert json.loads(claimed.stdout)["ok"] is True, claimed.stdout
        listing = up.wait_for(r"try ", 1).split("then ", 1)[1].split(" lists it", 1)[0]
        listed = subprocess.run(shlex.split(listing), capture_output=True, text=True,
                                timeout=30, check=True)
        assert [d["name"] for d in json.loads(listed.stdout)] != []

        state = answer(ctl(url, "state", "dev1", "--json"))
        assert state["state"] == "connected" and state["owner"].startswith("user:")
        assert answer(ctl(url, "set-claim-code", "dev1", code, "--json"))["result"] == 0
        assert answer(ctl(url, "state", "dev1", "--json"))["claim_code"] == code
        assert answer(ctl(url, "drop-session", "dev1", "--reconnect", "--json"))["dropped"]
        up.wait_for(r"^dev1 .*Send spark/device/claim/code event for code " + re.escape(code),
                    30)
        mark = len(up.lines)
        assert answer(ctl(url, "key-change", "dev1", "--json"))["sent"] is True
        up.wait_for(r"^dev1 .*Received a key change message; discarding session", 10,
                    since=mark)
        up.wait_for(r"^dev1 .*Handshake completed", 20, since=mark)
        up.wait_for(r"^dev1 .*Cloud connected", 20, since=mark)
        assert answer(ctl(url, "publish", "dev1", "hello", "world", "--json"))["sent"]
        up.wait_for(r"^cloud .*event hello from dev1", 10)
        cut = ctl(url, "network", "dev1", "down")
        assert cut.stdout.strip() == "dev1: network cut (Wi-Fi on, no access point)", cut.stdout
        restored = ctl(url, "network", "dev1", "up")
        assert restored.stdout.startswith("dev1: network restored (Wi-Fi "), restored.stdout
        # as over USB: SetClaimCodeRequest takes 64 bytes, the HAL keeps 63; 65 are refused
        assert answer(ctl(url, "set-claim-code", "dev1", "E" * 64, "--json"))["result"] == 0
        assert answer(ctl(url, "state", "dev1", "--json"))["claim_code"] == "E" * 63
        one_line_error(ctl(url, "set-claim-code", "dev1", "E" * 65),
                       "400: code is longer than 64 characters")
        link = answer(ctl(url, "link", "dev1", "--loss", "0", "--latency", "50", "--json"))
        assert link["latency_ms"] == 50
        assert answer(ctl(url, "listening", "dev1", "on", "--json"))["listening"] is True
        assert answer(ctl(url, "power-cycle", "dev1", "--off", "600", "--json"))["off_s"] == 600
        devices = answer(ctl(url, "devices", "--json"))["devices"]
        assert [d["name"] for d in devices] == ["dev1"]
        text = ctl(url, "devices")
        assert text.stdout.splitlines()[0].split()[:4] == ["name", "id", "profile", "state"]
        # the options may also come before the subcommand (and --json after it)
        assert answer(ctl(url, "devices", "--json", options_first=True))["devices"] == [
            {**d, "boots_in_s": ANY} for d in devices]  # (it counts down)
        one_line_error(ctl(url, "state", "dev1", token="f" * 40, options_first=True),
                       "the server wants its admin token")
        up.wait_for(r"^operator .*power cut device=dev1", 5)

        one_line_error(ctl(url, "state", "nope"), "404: unknown device 'nope' (devices: dev1)")
        one_line_error(ctl(url, "state", "dev1", token="f" * 40),
                       "the server wants its admin token")
        one_line_error(ctl(url, "state", "dev1", token=None), "the server wants its admin token")
        one_line_error(ctl(url, "reset", "dev1"), "409: device dev1 is off")
    finally:
        up.stop()
    one_line_error(ctl(url, "devices"), "cannot reach")


def test_ctl_against_a_cloud_without_devices() -> None:
    cloud = Running(["cloud", "serve", "--http", "0", "--coap", "0", "--db", ":memory:",
                     "--for", "60", "--admin-token", TOKEN], "ready")
    try:
        url = cloud.value(r"REST API\s+(http://\S+)")
        device = "e00fce68aabbccddeeff0011"
        dropped = answer(ctl(url, "drop-session", device, "--json"))
        assert dropped == {"ok": True, "device_id": device, "dropped": False}
        # QA: 'devices' was a bare 404 and --reconnect was ignored without a word
        listed = answer(ctl(url, "devices", "--json"))
        assert listed["simulated"] is False and isinstance(listed["devices"], list)
        assert ctl(url, "devices").stdout.startswith("this server is a cloud without simulated")
        assert "--reconnect needs simulated devices" in ctl(
            url, "drop-session", device, "--reconnect").stdout
        one_line_error(ctl(url, "state", device), f"the cloud knows no device '{device}'")
        one_line_error(ctl(url, "reset", device), "needs simulated devices")
        one_line_error(ctl(url, "drop-session", "not-an-id"), "400: invalid device id")
        one_line_error(ctl(url, "key-change", device),
                       f"404: the cloud has no session of {device}")
        one_line_error(ctl(url, "key-change", "not-an-id"), "400: invalid device id")
        one_line_error(ctl(url, "call", device, "brightness"), "404: no device " + device)
        one_line_error(ctl(url, "get", "not-an-id", "level"), "400: invalid device id")
    finally:
        cloud.stop()


LAMP = """
from firmware_sim.system.app import Firmware


class Lamp(Firmware):
    def setup(self, particle):
        self.particle = particle
        self.level = 0
        particle.function("brightness", self.brightness)
        particle.variable("level", lambda: self.level, "int")
        particle.variable("label", "kitchen")
        particle.function("crash_soon", self.crash_soon)

    def brightness(self, argument):
        self.level = len(argument)
        return self.level

    def crash_soon(self, argument):
        def crash():
            raise RuntimeError("lamp bug")
        self.particle.after(0.5, crash)
        return 0
"""


def test_ctl_calls_a_function_and_reads_a_variable_of_a_running_device(tmp_path: Path) -> None:
    """``fwsim ctl call`` / ``get`` against ``fwsim up --firmware lamp.py`` in another process:
    by device name and by id, the live log's cloud lines, and the errors in one line."""
    firmware = tmp_path / "lamp.py"
    firmware.write_text(LAMP)
    # --speed 4: the panic below flashes its SOS pattern for 10.4 virtual seconds
    up = Running(["up", "--http", "0", "--coap", "0", "--db", ":memory:", "--timing", "fast",
                  "--speed", "4", "--firmware", str(firmware), "--for", "120", "--admin-token",
                  TOKEN], "ready;")
    try:
        url = up.value(r"REST API\s+(http://\S+)")
        device_id = up.value(r"device dev1\s+([0-9a-f]{24})")
        up.wait_for(r"^dev1 .*Cloud connected", 20)
        assert ctl(url, "call", "dev1", "brightness", "hello").stdout.strip() == \
            "dev1: brightness returned 5"
        up.wait_for(r"^cloud .*answered brightness: 2.04 \(ok\)", 10)
        assert ctl(url, "get", "dev1", "level").stdout.strip() == "dev1: level = 5"
        assert answer(ctl(url, "get", device_id, "label", "--json"))["result"] == "kitchen"
        one_line_error(ctl(url, "get", "dev1", "nope"), "404: Variable not found")
        one_line_error(ctl(url, "call", "dev1", "nope"), "404: Function nope not found")
        one_line_error(ctl(url, "call", "dev9", "brightness"), "404: unknown device 'dev9'")
        # a bug in the firmware (a timer that raises) panics the device, as a fault does on
        # hardware; the world keeps running, and the device comes back with fresh RAM
        seen = len(up.lines)
        assert ctl(url, "call", "dev1", "crash_soon").stdout.strip() == \
            "dev1: crash_soon returned 0"
        up.wait_for(r"^dev1 .*\[app\] ERROR: a timer raised RuntimeError: lamp bug; panic "
                    r"\(hard_fault\)", 10, since=seen)
        up.wait_for(r"^dev1 .*Cloud connected", 20, since=seen)
        assert ctl(url, "get", "dev1", "level").stdout.strip() == "dev1: level = 0"
    finally:
        up.stop()
