"""``fwsim up --cloud thingsboard`` in a subprocess, with its printed endpoints."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
PREFIX = "fwsim up:"


class ServedTb:
    def __init__(self, *args: str, timeout_s: float = 30.0) -> None:
        command = [sys.executable, "-m", "firmware_sim.cli", "up", "--cloud", "thingsboard",
                   "--seed", "11", "--for", "300", "--db", ":memory:", *args]
        self.proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, cwd=REPO, env=dict(os.environ,
                                                                   PYTHONUNBUFFERED="1"))
        self.lines: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=0.2)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            self.lines.append(line)
            if line.startswith(f"{PREFIX} ready"):
                return
        self.stop()
        raise AssertionError(f"the ThingsBoard emulator did not start: {self.lines}")

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))

    def _find(self, pattern: str) -> re.Match[str]:
        for line in self.lines:
            match = re.search(pattern, line)
            if match:
                return match
        raise AssertionError(f"no line matches {pattern!r}: {self.lines}")

    @property
    def http_url(self) -> str:
        return self._find(rf"^{PREFIX} REST API\s+(\S+)").group(1)

    @property
    def mqtt_port(self) -> int:
        return int(self._find(rf"^{PREFIX} MQTT\s+mqtt://[^:]+:(\d+)").group(1))

    @property
    def coap_port(self) -> int:
        return int(self._find(rf"^{PREFIX} CoAP\s+coap://[^:]+:(\d+)").group(1))

    def token(self, device: str) -> str:
        return self._find(rf"^{PREFIX} device\s+'{re.escape(device)}' token (\S+)").group(1)

    def password(self, email: str) -> str:
        """The demo account's password this start printed (fresh on every start)."""
        return self._find(rf"^{PREFIX} login\s.*\s{re.escape(email)} / (\S+)$").group(1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
