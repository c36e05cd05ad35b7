"""BLE across processes through bumble's TCP virtual controllers.

1. ``fwsim serve --ble bumble:tcp-server:127.0.0.1:PORT`` hosts the virtual radio; ``fwsim ble
   provision --hci tcp-client:127.0.0.1:PORT`` (another process, a bumble central) scans,
   handshakes and provisions the device.
2. ``python -m bumble.apps.controllers tcp-server:A tcp-server:B`` hosts it; ``fwsim serve
   --ble-hci tcp-client:A`` attaches the device's host, the provisioning central uses B. That
   controller does not forward scan responses, so the device is found by its manufacturer data.

Skipped when bumble (extra ``[bumble]``) is not installed. Each test starts its own processes
(a controller left with a half-closed connection refuses later ones).
"""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

pytestmark = pytest.mark.interop

try:
    import bumble  # noqa: F401

    HAVE_BUMBLE = True
except ImportError:  # pragma: no cover - depends on the environment
    HAVE_BUMBLE = False

SECRET = "ABCDEFGHJKLMNPQ"
FWSIM = [sys.executable, "-m", "firmware_sim.cli"]


@pytest.fixture(autouse=True)
def _need_bumble() -> None:
    if not HAVE_BUMBLE:
        pytest.skip("bumble is not installed: pip install 'fwsim[bumble]'")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def _process(argv: list[str], ready: str | None, timeout_s: float = 20.0
             ) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stdout is not None
    output = b""
    try:
        if ready is not None:
            deadline = time.monotonic() + timeout_s
            while ready.encode() not in output:
                if time.monotonic() > deadline:
                    pytest.fail(f"{argv[2:]} did not print {ready!r}: {output.decode()!r}")
                readable, _, _ = select.select([proc.stdout], [], [], 0.2)
                if readable:
                    chunk = os.read(proc.stdout.fileno(), 4096)
                    if not chunk:
                        pytest.fail(f"{argv[2:]} exited early: {output.decode()!r}")
                    output += chunk
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        proc.stdout.close()


def _provision(hci: str, *extra: str) -> list[str]:
    result = subprocess.run(
        [*FWSIM, "ble", "provision", "--hci", hci, "--secret", SECRET, "--ssid", "HomeNet",
         "--password", "home-pass-1", "--scan-for", "2", *extra],
        capture_output=True, text=True, timeout=90)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.splitlines()


def test_serve_hosts_the_radio_and_another_process_provisions() -> None:
    port = _free_port()
    with _process([*FWSIM, "serve", "--timing", "fast", "--secret", SECRET, "--for", "120",
                   "--ble", f"bumble:tcp-server:127.0.0.1:{port}"], ready="ready"):
        lines = _provision(f"tcp-client:127.0.0.1:{port}", "--claim-code", "interop-code")
    assert any(line.startswith("found ") and "P2-" in line and "platform 32" in line
               for line in lines)
    for expected in ("handshake done", "join_new_network HomeNet: ok", "set_claim_code: ok",
                     "is_claimed: no", "stop_listening: ok"):
        assert expected in lines


def test_external_controllers_process() -> None:
    device_port, phone_port = _free_port(), _free_port()
    controllers = [sys.executable, "-m", "bumble.apps.controllers",
                   f"tcp-server:127.0.0.1:{device_port}", f"tcp-server:127.0.0.1:{phone_port}"]
    with _process(controllers, ready=None):
        time.sleep(1.5)
        with _process([*FWSIM, "serve", "--timing", "fast", "--secret", SECRET, "--for", "120",
                       "--ble-hci", f"tcp-client:127.0.0.1:{device_port}"], ready="ready"):
            lines = _provision(f"tcp-client:127.0.0.1:{phone_port}")
    assert "handshake done" in lines and "join_new_network HomeNet: ok" in lines
