"""Unmodified particle-cli 3.43.1 filters a product's devices by the device groups the emulated
cloud keeps (``fwsim cloud serve``).

Groups are created and assigned over HTTP as a script would (particle-cli has no group
commands): one group created with ``POST /v1/products/:p/groups``, one device put in it with
``PUT /v1/products/:p/devices/:id``, another put in a second group by the batch ``PUT
/v1/products/:p/devices``. ``particle product device list <product> --groups <name>`` then shows
only the members. The CLI runs with a scratch HOME holding a ``local`` profile whose ``apiUrl`` is
the emulator and whose token is the team member's (what ``particle login`` would write).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support.served import NODE_MODULES, node_with

from tests.processes import ReadyServer

pytestmark = pytest.mark.interop

REPO = Path(__file__).resolve().parents[2]
ADMIN_TOKEN = "interop-groups-admin-token-0123456789"
IN_X = "e00fce68aabbccddeeff00a1"
IN_Y = "e00fce68aabbccddeeff00a2"
IN_NONE = "e00fce68aabbccddeeff00a3"
SEED = {"users": [{"username": "dev@example.com", "password": "dev-password"}],
        "products": [{"id": 4242, "slug": "acme", "team": ["dev@example.com"]}],
        "devices": [{"id": d, "product": "acme", "online": True, "platform_id": 32}
                    for d in (IN_X, IN_Y, IN_NONE)]}


@pytest.fixture
def node() -> str:
    """The node binary; skips (with the reason) when node or particle-cli is missing."""
    return node_with("particle-cli", "3.43.1")


@pytest.fixture
def cloud_url(node: str) -> Iterator[str]:
    server = ReadyServer([sys.executable, "-m", "firmware_sim.cli", "cloud", "serve",
                          "--http", "0", "--coap", "0", "--db", ":memory:", "--for", "120",
                          "--admin-token", ADMIN_TOKEN], REPO,
                         {**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        yield server.value(r"REST API.*?(http://\S+)")
    finally:
        server.stop()


def particle(node: str, home: Path, *args: str) -> tuple[int, str]:
    result = subprocess.run([node, str(NODE_MODULES / "particle-cli/src/index.js"), *args],
                            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
                            env={**os.environ, "HOME": str(home), "PARTICLE_DISABLE_UPDATE": "1",
                                 "NO_COLOR": "1", "FORCE_COLOR": "0"})
    return result.returncode, re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", result.stdout + result.stderr)


def test_particle_cli_lists_only_the_members_of_a_group(node: str, cloud_url: str,
                                                        tmp_path: Path) -> None:
    with httpx.Client(base_url=cloud_url) as http:
        seeded = http.post("/fwsim/seed", json=SEED, headers={"X-Fwsim-Admin-Token": ADMIN_TOKEN})
        assert seeded.status_code == 200, seeded.text
        token = seeded.json()["users"]["dev@example.com"]["access_token"]
        http.headers["Authorization"] = f"Bearer {token}"
        assert http.post("/v1/products/acme/groups",
                         json={"name": "x", "color": "#34495e"}).status_code == 201
        assert http.put(f"/v1/products/4242/devices/{IN_X}",
                        json={"groups": ["x"]}).json()["groups"] == ["x"]
        assert http.put("/v1/products/acme/devices", json={
            "action": "groups", "devices": [IN_Y], "metadata": {"add": ["y"]}}).json() == {
            "ok": True}
    particle_dir = tmp_path / ".particle"
    particle_dir.mkdir()
    (particle_dir / "profile.json").write_text(json.dumps({"name": "local"}))
    (particle_dir / "local.config.json").write_text(json.dumps(
        {"apiUrl": cloud_url, "access_token": token, "username": "dev@example.com"}))

    code, out = particle(node, tmp_path, "product", "device", "list", "4242")
    assert code == 0 and all(d in out for d in (IN_X, IN_Y, IN_NONE)), out
    code, out = particle(node, tmp_path, "product", "device", "list", "4242", "--groups", "x")
    assert code == 0 and IN_X in out and IN_Y not in out and IN_NONE not in out, out
    code, out = particle(node, tmp_path, "product", "device", "list", "acme", "--groups", "x",
                         "y")
    assert code == 0 and IN_X in out and IN_Y in out and IN_NONE not in out, out
