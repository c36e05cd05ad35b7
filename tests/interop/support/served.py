"""``fwsim serve`` in a subprocess for the interop tests, and the Node.js toolchain checks."""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.processes import stop_process

REPO = Path(__file__).resolve().parents[3]
NODE_MODULES = REPO / "tests/interop/node/node_modules"
HELPERS = Path(__file__).resolve().parent
PRELOAD = REPO / "transports/usb/js/preload.js"
FWSIM_USB_JS = REPO / "transports/usb/js/fwsim-usb.js"
DEVICE_ID = "e00fce68aabbccddeeff0011"
CLAIM_CODE_OFFSET = 1762


def node_with(package: str, version: str) -> str:
    """The node binary, or skip with a reason when node or ``package`` is missing."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (CI installs Node 20)")
    manifest = NODE_MODULES / package / "package.json"
    if not manifest.exists():
        pytest.skip(f"{package} is not installed: run `npm ci` in tests/interop/node")
    found = json.loads(manifest.read_text())["version"]
    assert found == version, f"expected {package} {version}, found {found}"
    return node


class Served:
    """``fwsim serve ARGS`` until stopped; collects stdout and parses the endpoint lines."""

    def __init__(self, args: list[str], workdir: Path, duration_s: float = 300) -> None:
        self.trace = workdir / "trace.jsonl"
        self.storage = workdir / "storage"
        self.storage.mkdir(exist_ok=True)
        self.stderr_path = workdir / "serve.stderr"
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        command = [sys.executable, "-m", "firmware_sim.cli", "serve", "--timing", "fast",
                   "--device-id", DEVICE_ID,
                   "--storage", str(self.storage), "--trace", str(self.trace),
                   "--for", str(duration_s), *args]
        with self.stderr_path.open("w") as stderr:
            self.proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr,
                                         text=True, cwd=REPO, env=env)
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        self._wait_ready()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def _wait_ready(self, timeout_s: float = 30.0) -> None:
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
                return
        self.stop()
        raise AssertionError(f"fwsim serve did not become ready: {self.seen}\n"
                             f"{self.stderr_path.read_text()}")

    def endpoint(self, pattern: str) -> str:
        for line in self.seen:
            match = re.search(pattern, line)
            if match:
                return match.group(1)
        raise AssertionError(f"no line matches {pattern!r}: {self.seen}")

    @property
    def usb_bridge(self) -> str:
        return self.endpoint(r"^usb bridge: (\S+)")

    @property
    def serial_pty(self) -> str:
        return self.endpoint(r"^serial pty: (\S+)")

    def stop(self) -> None:
        stop_process(self.proc, self.proc.stdout)

    def claim_code(self) -> bytes:
        """The 63 claim-code bytes of the device's DCT file."""
        data = (self.storage / "dct.bin").read_bytes()
        return data[CLAIM_CODE_OFFSET:CLAIM_CODE_OFFSET + 63]

    def records(self, kind: str) -> list[dict[str, Any]]:
        from firmware_sim.kernel.trace import read_jsonl

        return [dict(r.fields, t_us=r.t_us) for r in read_jsonl(self.trace) if r.kind == kind]


def run_node(node: str, args: list[str], env: dict[str, str], cwd: Path,
             timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([node, *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout_s, check=False)
