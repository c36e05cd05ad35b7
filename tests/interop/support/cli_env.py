"""The environment particle-cli 3.43.1 needs to reach a simulated device over USB and serial.

* ``NODE_OPTIONS=--require transports/usb/js/preload.js`` and ``FWSIM_USB_BRIDGE``: node-usb's
  device list comes from the fwsim USB bridge;
* the fake ``udevadm`` of this directory first on ``PATH`` with ``FWSIM_TTY`` (a symlink named
  ``ttyACM0`` to the serial pty) and ``FWSIM_DEVICE_ID``: node serialport lists that port;
* a scratch ``HOME`` with a ``local`` profile whose ``apiUrl`` is a small local HTTP server
  answering ``GET /v1/devices/<id>`` (``particle usb list`` asks the cloud for the name);
* ``PARTICLE_DISABLE_UPDATE=1``.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from .served import DEVICE_ID, HELPERS, NODE_MODULES, PRELOAD

PARTICLE = NODE_MODULES / "particle-cli/src/index.js"
DEVICE_NAME = "fwsim-p2"


class _Api(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.split("?")[0] == f"/v1/devices/{DEVICE_ID}":
            self._json(200, {"id": DEVICE_ID, "name": DEVICE_NAME, "platform_id": 32,
                             "connected": False})
        else:
            self._json(404, {"ok": False, "error": "Permission Denied"})

    def _json(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def fake_api() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Api)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def cli_env(home: Path, *, bridge: str, api_url: str, tty: Path | None = None) -> dict[str, str]:
    particle = home / ".particle"
    particle.mkdir(parents=True, exist_ok=True)
    (particle / "profile.json").write_text(json.dumps({"name": "local"}))
    (particle / "local.config.json").write_text(json.dumps({"apiUrl": api_url,
                                                            "access_token": "tok123"}))
    env = dict(os.environ, HOME=str(home), PARTICLE_DISABLE_UPDATE="1", FWSIM_USB_BRIDGE=bridge,
               NODE_OPTIONS=f"--require {PRELOAD}", FWSIM_DEVICE_ID=DEVICE_ID.upper(),
               PATH=f"{HELPERS}{os.pathsep}{os.environ.get('PATH', '')}", NO_COLOR="1",
               FORCE_COLOR="0")
    if tty is not None:
        env["FWSIM_TTY"] = str(tty)
    return env
