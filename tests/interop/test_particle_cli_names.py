"""Unmodified particle-cli 3.43.1 calls a ``fwsim up`` device by the name fwsim gives it.

A QA run: ``fwsim up --device lamp:...`` named the device ``lamp`` in fwsim, ``fwsim ctl`` and
the dashboard, but the cloud called it ``fwsim_ad6943`` and the banner did not say so, so
``particle call lamp brightness x`` got a 403. ``fwsim up`` now names each cloud device as fwsim
does (when that is a valid Particle device name no other device has) and prints the cloud's
name. The CLI runs with a scratch HOME whose ``local`` profile points at the emulator with the
access token ``fwsim up`` printed (as test_particle_cli_cloud.py).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.steering.test_steering import Running

pytestmark = pytest.mark.interop

REPO = Path(__file__).resolve().parents[2]
CLI_PACKAGE = REPO / "tests/interop/node/node_modules/particle-cli"
LAMP = """
from firmware_sim import Firmware


class Lamp(Firmware):
    def setup(self, particle):
        self.level = 0
        particle.function("brightness", self.brightness)
        particle.variable("level", lambda: self.level, "int")

    def brightness(self, argument):
        self.level = len(argument)
        return self.level
"""


@pytest.fixture
def node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (CI installs Node 20)")
    if not (CLI_PACKAGE / "package.json").exists():
        pytest.skip("particle-cli is not installed: run `npm ci` in tests/interop/node")
    version = json.loads((CLI_PACKAGE / "package.json").read_text())["version"]
    assert version == "3.43.1", f"expected particle-cli 3.43.1, found {version}"
    return node


@pytest.fixture
def up(node: str, tmp_path: Path) -> Iterator[Running]:
    (tmp_path / "lamp.py").write_text(LAMP)
    server = Running(["up", "--http", "0", "--coap", "0", "--db", ":memory:", "--timing",
                      "fast", "--for", "120", "--device", f"lamp:p2:{tmp_path / 'lamp.py'}",
                      "--device", "plain:photon2"], "ready;")
    try:
        yield server
    finally:
        server.stop()


def test_particle_call_and_get_by_the_fwsim_name(node: str, up: Running, tmp_path: Path
                                                 ) -> None:
    url = up.value(r"REST API\s+(http://\S+)")
    token = up.value(r"access token\s+([0-9a-f]{40})")
    lamp_id = up.value(r"device lamp\s+([0-9a-f]{24})")
    assert re.search(r", cloud name lamp, cloud link coap://", up.wait_for(r"device lamp ", 1))
    up.wait_for(r"^lamp .*Cloud connected", 20)
    with httpx.Client(base_url=url, headers={"authorization": f"Bearer {token}"}) as api:
        assert api.post("/v1/devices", data={"id": lamp_id}).json()["ok"] is True

    home = tmp_path / "home"
    (home / ".particle").mkdir(parents=True)
    (home / ".particle/profile.json").write_text(json.dumps({"name": "local"}))
    (home / ".particle/local.config.json").write_text(json.dumps(
        {"apiUrl": url, "access_token": token, "username": "developer@fwsim.local"}))
    env = {**os.environ, "HOME": str(home), "PARTICLE_DISABLE_UPDATE": "1", "NO_COLOR": "1",
           "FORCE_COLOR": "0"}

    def particle(*args: str) -> tuple[int, str]:
        done = subprocess.run([node, str(CLI_PACKAGE / "src/index.js"), *args],
                              capture_output=True, text=True, env=env, timeout=90,
                              stdin=subprocess.DEVNULL)
        # (the spinner's erase-line escapes stripped)
        return done.returncode, re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", done.stdout + done.stderr)

    code, out = particle("call", "lamp", "brightness", "hello")
    assert code == 0 and out.strip().splitlines()[-1] == "5", out
    code, out = particle("get", "lamp", "level")
    assert code == 0 and out.strip().splitlines()[-1] == "5", out
    code, out = particle("list")
    assert code == 0 and re.search(rf"^lamp \[{lamp_id}\]", out, re.MULTILINE), out
