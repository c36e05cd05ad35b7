"""``fwsim cloud serve``, ``fwsim device run`` and ``fwsim up`` as separate processes."""

from __future__ import annotations

import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

FWSIM = [sys.executable, "-m", "firmware_sim.cli"]
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


class Proc:
    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen([*FWSIM, *args], stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, env=ENV)
        self.lines: list[str] = []
        self._partial = b""

    def wait_for(self, text: str, timeout: float = 20.0, *, since: int = 0) -> str:
        """Read stdout (unbuffered, line by line) until a line from line ``since`` on contains
        ``text``."""
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while time.monotonic() < deadline:
                found = next((line for line in self.lines[since:] if text in line), None)
                if found is not None:
                    return found
                if not selector.select(timeout=max(0.0, deadline - time.monotonic())):
                    break
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                self._partial += chunk
                *complete, self._partial = self._partial.split(b"\n")
                self.lines += [line.decode() for line in complete]
        raise AssertionError(f"{text!r} not printed; got {self.lines}; "
                             f"stderr {self.stderr_now()}")

    def stderr_now(self) -> str:
        if self.process.poll() is None:
            return "(running)"
        assert self.process.stderr is not None
        return self.process.stderr.read().decode()

    def value(self, label: str) -> str:
        line = next(line for line in self.lines if f" {label} " in f" {line} ")
        return line.split(label, 1)[1].split()[0]

    def finish(self, timeout: float = 20.0) -> tuple[int, str, str]:
        out, err = self.process.communicate(timeout=timeout)
        text = (self._partial + out).decode()
        return self.process.returncode, "\n".join([*self.lines, text]), err.decode()


@contextmanager
def running(*args: str) -> Iterator[Proc]:
    proc = Proc(*args)
    try:
        yield proc
    finally:
        if proc.process.poll() is None:
            proc.process.kill()
            proc.process.communicate()


def test_cloud_serve_prints_its_endpoints_and_persists(tmp_path: Path) -> None:
    db = tmp_path / "cloud.db"
    with running("cloud", "serve", "--http", "0", "--coap", "0", "--db", str(db),
                 "--for", "30") as serve:
        serve.wait_for("ready")
        api = serve.value("REST API")
        assert serve.value("CoAP/UDP").startswith("coap://127.0.0.1:")
        with httpx.Client(base_url=api) as http:
            assert http.post("/v1/users", data={"username": "me@x.io",
                                                "password": "pw"}).json() == {"ok": True}
            assert http.get("/openapi.json").status_code == 200
        serve.process.send_signal(signal.SIGINT)
        code, _, err = serve.finish()
    assert code == 0 and "Traceback" not in err and "stopped (interrupted)" in err
    # a restart keeps the user
    with running("cloud", "serve", "--http", "0", "--coap", "0", "--db", str(db),
                 "--for", "30") as again:
        again.wait_for("ready")
        with httpx.Client(base_url=again.value("REST API")) as http:
            token = http.post("/oauth/token", data={
                "grant_type": "password", "username": "me@x.io", "password": "pw",
                "client_id": "particle", "client_secret": "particle"})
            assert token.status_code == 200
        again.process.send_signal(signal.SIGTERM)
        assert again.finish()[0] == 0


def test_up_runs_the_cloud_and_devices_and_exits_cleanly_on_ctrl_c() -> None:
    with running("up", "--http", "0", "--coap", "0", "--db", ":memory:", "--devices", "2",
                 "--speed", "10", "--product", "4242:acme") as up:
        up.wait_for("ready")
        token = up.value("access token")
        api = up.value("REST API")
        devices = [line.split()[4] for line in up.lines if "device dev" in line]
        assert len(devices) == 2 and all(len(d) == 24 for d in devices)
        with httpx.Client(base_url=api, headers={"Authorization": f"Bearer {token}"}) as http:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                listing = http.get("/v1/products/acme/devices").json()["devices"]
                if all(d["online"] for d in listing) and len(listing) == 2:
                    break
                time.sleep(0.1)
            assert all(d["online"] for d in listing)
            claimed = http.post("/v1/devices", json={"id": devices[0]})
            assert claimed.status_code == 200 and claimed.json()["ok"] is True
            assert [d["id"] for d in http.get("/v1/devices").json()] == [devices[0]]
        up.process.send_signal(signal.SIGINT)
        code, _, err = up.finish()
    assert code == 0, err
    assert "Traceback" not in err and "fwsim up: stopped" in err


def test_up_for_a_bounded_time() -> None:
    with running("up", "--http", "0", "--coap", "0", "--db", ":memory:", "--for",
                 "0.5") as up:
        code, out, err = up.finish()
    assert code == 0, err
    for label in ("REST API", "CoAP/UDP", "access token", "device dev1", "ready"):
        assert label in out


def test_the_scenario_across_processes_over_coap_udp() -> None:
    with running("cloud", "serve", "--http", "0", "--coap", "0", "--db", ":memory:",
                 "--speed", "20", "--for", "60", "--admin") as serve:
        serve.wait_for("ready")
        api, coap = serve.value("REST API"), serve.value("CoAP/UDP")
        admin_token = serve.wait_for("X-Fwsim-Admin-Token").split()[-1].rstrip(")")
        with running("device", "run", "--cloud", coap, "--api", api, "--scenario",
                     "product-customer-transfer", "--speed", "25", "--timeout", "40",
                     "--admin-token", admin_token) as dev:
            code, out, err = dev.finish(timeout=60)
        assert code == 0, out + err
        assert "PASS product-customer-transfer" in out
        assert "[FAILED]" not in out
        assert "Received RST message; discarding session" in out


def test_device_run_enrols_its_key_and_connects_over_dtls() -> None:
    """``fwsim device run --api --admin-token`` registers its key and connects over DTLS (an
    unenrolled device is refused: tests/cloud/test_device_auth.py); a wrong admin token is a
    one-line error."""
    with running("cloud", "serve", "--http", "0", "--coap", "0", "--db", ":memory:",
                 "--speed", "20", "--for", "60", "--admin") as serve:
        serve.wait_for("ready")
        api, coap = serve.value("REST API"), serve.value("CoAP/UDP")
        admin_token = serve.wait_for("X-Fwsim-Admin-Token").split()[-1].rstrip(")")
        with running("device", "run", "--cloud", coap, "--speed", "20", "--api", api,
                     "--admin-token", admin_token) as dev:
            line = dev.wait_for("fwsim device:")
            device_id = line.split(" id ")[1].split()[0]
            dev.wait_for("Handshake completed")
            with httpx.Client(base_url=api,
                              headers={"X-Fwsim-Admin-Token": admin_token}) as http:
                deadline = time.monotonic() + 10
                online: list[str] = []
                while time.monotonic() < deadline and device_id not in online:
                    online = [d["id"] for d in http.get("/fwsim/state").json()["devices"]
                              if d["online"]]
                    time.sleep(0.1)
                assert device_id in online
                # the cloud tells the device to discard its session: a full handshake follows
                def session_ids() -> set[str]:
                    return {s["session_id"] for s in http.get("/fwsim/sessions").json()[
                        "sessions"] if s["device_id"] == device_id}

                before = session_ids()
                mark = len(dev.lines)
                changed = http.post(f"/fwsim/sessions/{device_id}/key-change", json={})
                assert changed.status_code == 200 and changed.json()["sent"] is True
                dev.wait_for("Received a key change message; discarding session", since=mark)
                dev.wait_for("Handshake completed", since=mark)
                assert session_ids() - before  # a new session, from a full handshake
                unknown = http.post("/fwsim/sessions/e00fce68aabbccddeeff0011/key-change",
                                    json={})
                assert unknown.status_code == 404
            # Ctrl-C: the summary counts the handshakes of every boot (two full ones here)
            dev.process.send_signal(signal.SIGINT)
            _, _, err = dev.finish(timeout=20)
            assert "fwsim device: stopped; handshakes full=2 resumed=0" in err, err
        with running("device", "run", "--cloud", coap, "--api", api, "--admin-token",
                     "wrong", "--for", "1") as dev:
            code, _, err = dev.finish(timeout=20)
        assert code == 2 and err.count("\n") == 1 and "refused to enrol" in err, err


def test_usage_errors_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    from firmware_sim.cli import main

    for args in (["device", "run", "--cloud", "http://127.0.0.1:1"],
                 ["device", "run", "--cloud", "coap://127.0.0.1:1", "--scenario",
                  "product-customer-transfer"],
                 ["cloud", "serve", "--db", "/nonexistent/dir/x.db", "--http", "0",
                  "--coap", "0"]):
        assert main(args) == 2, args
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("fwsim: error:"), err
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    try:
        assert main(["cloud", "serve", "--db", ":memory:", "--http",
                     str(busy.getsockname()[1]), "--coap", "0"]) == 2
    finally:
        busy.close()
    err = capsys.readouterr().err
    assert "cannot listen for HTTP" in err and err.count("\n") == 1
