"""Unmodified particle-cli 3.43.1 against the emulated cloud (``fwsim cloud serve``).

The CLI runs with a scratch HOME holding a ``local`` profile whose ``apiUrl`` is the emulator
(real-clients.md §5) and ``PARTICLE_DISABLE_UPDATE=1``. It logs in (``POST /oauth/token`` with
its own client ``CLI2``, then ``GET /v1/user``), claims an online unclaimed device, meets a
device owned by someone else (the transfer prompt: "no" fails, "yes" requests a transfer that
reaches the owner's simulated mailbox), fails on an unknown id with the message its own e2e test
expects ("device not found"), lists and removes a device (answering the confirmation prompt).
``particle publish`` publishes to the user's own event stream (seen there with ``coreid``
``api``) and, with ``--product``, to a product's; a reserved name fails with the API's message.
``particle call`` / ``particle get`` reach a live simulated device's function and variables
(its return value and values printed; an unknown name fails with the CLI's own messages).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support.live_device import Lamp, serve_with_device

from cloud_sim import Cloud, Principal
from cloud_sim.device_endpoint import EndpointOptions
from cloud_sim.model import DeviceRecord
from firmware_sim.kernel import World

pytestmark = pytest.mark.interop

REPO = Path(__file__).resolve().parents[2]
CLI_PACKAGE = REPO / "tests/interop/node/node_modules/particle-cli"
FREE = "e00fce68aabbccddeeff0011"
THEIRS = "e00fce68aabbccddeeff0022"
UNKNOWN = "e00fce68aabbccddeeff9999"
ADMIN_TOKEN = "interop-admin-token-0123456789"
SEED = {"users": [{"username": "dev@example.com", "password": "dev-password"},
                  {"username": "owner@example.com", "password": "owner-password"}],
        "devices": [{"id": FREE, "online": True, "platform_id": 32},
                    {"id": THEIRS, "online": True, "platform_id": 32,
                     "owner": "user:owner@example.com"}]}


def toolchain() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (CI installs Node 20)")
    if not (CLI_PACKAGE / "package.json").exists():
        pytest.skip("particle-cli is not installed: run `npm ci` in tests/interop/node")
    version = json.loads((CLI_PACKAGE / "package.json").read_text())["version"]
    assert version == "3.43.1", f"expected particle-cli 3.43.1, found {version}"
    return node


@pytest.fixture
def node() -> str:
    return toolchain()


@pytest.fixture
def cloud_url(node: str) -> Iterator[str]:
    proc = subprocess.Popen([sys.executable, "-m", "firmware_sim.cli", "cloud", "serve",
                             "--http", "0", "--coap", "0", "--db", ":memory:", "--for", "120",
                             "--admin-token", ADMIN_TOKEN],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert proc.stdout is not None
        url = None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            if "REST API" in line:
                url = line.split()[4]
            if "ready" in line:
                break
        assert url is not None, proc.stderr.read() if proc.stderr else ""
        yield url
    finally:
        proc.terminate()
        proc.communicate(timeout=20)


class Cli:
    """particle-cli with ``home`` as its HOME, switched to a ``local`` profile whose settings are
    ``config`` (``apiUrl`` and, when given, ``access_token``...: what `particle config` and
    `particle login` write)."""

    def __init__(self, node: str, home: Path, **config: str) -> None:
        self.node = node
        self.particle_dir = home / ".particle"
        self.particle_dir.mkdir(exist_ok=True)
        (self.particle_dir / "profile.json").write_text(json.dumps({"name": "local"}))
        (self.particle_dir / "local.config.json").write_text(json.dumps(config))
        self.env = {**os.environ, "HOME": str(home), "PARTICLE_DISABLE_UPDATE": "1",
                    "NO_COLOR": "1", "FORCE_COLOR": "0"}

    def __call__(self, *args: str, answer: str = "") -> tuple[int, str]:
        result = subprocess.run([self.node, str(CLI_PACKAGE / "src/index.js"), *args],
                                input=answer, capture_output=True, text=True, env=self.env,
                                timeout=60)
        return result.returncode, result.stdout + result.stderr


def test_particle_cli_login_device_add_transfer_and_remove(node: str, cloud_url: str,
                                                           tmp_path: Path) -> None:
    with httpx.Client(base_url=cloud_url,
                      headers={"X-Fwsim-Admin-Token": ADMIN_TOKEN}) as http:
        assert http.post("/fwsim/seed", json=SEED).status_code == 200
        # the local profile (writing the files is what `particle config` does)
        cli = Cli(node, tmp_path, apiUrl=cloud_url)
        particle_dir = cli.particle_dir

        code, out = cli("login", "-u", "dev@example.com", "-p", "dev-password")
        assert code == 0 and "Successfully completed login!" in out, out
        config = json.loads((particle_dir / "local.config.json").read_text())
        assert config["username"] == "dev@example.com" and len(config["access_token"]) == 40
        token = config["access_token"]

        code, out = cli("device", "add", FREE)
        assert code == 0 and f"Successfully claimed device {FREE}" in out, out

        code, out = cli("device", "add", THEIRS, answer="n\n")
        assert code != 0
        assert "That device belongs to someone else. Would you like to request a transfer?" \
            in out
        assert "You cannot claim a device owned by someone else" in out, out

        code, out = cli("device", "add", THEIRS, answer="y\n")
        assert code == 0, out
        assert ("Transfer requested. You will receive an email if your transfer is approved "
                "or denied.") in out
        emails = http.get("/fwsim/outbox").json()["emails"]
        assert [(e["to"], e["kind"]) for e in emails] == [("owner@example.com",
                                                           "transfer_request")]

        code, out = cli("device", "add", UNKNOWN)
        assert code != 0 and "Failed to claim device: device not found" in out, out

        code, out = cli("list")
        assert code == 0 and FREE in out, out

        code, out = cli("device", "remove", FREE, answer="y\n")
        assert code == 0 and f"releasing device {FREE}" in out and "Okay!" in out, out
        mine = http.get("/v1/devices", headers={"Authorization": f"Bearer {token}"}).json()
        assert mine == []

        # approving the emailed transfer moves the device to the CLI user
        transfer = emails[0]["actions"]["approve"]
        assert http.post(transfer, json={}).json()["decision"] == "approved"
        code, out = cli("list")
        assert code == 0 and THEIRS in out, out


def test_particle_cli_publish(node: str, cloud_url: str, tmp_path: Path) -> None:
    with httpx.Client(base_url=cloud_url,
                      headers={"X-Fwsim-Admin-Token": ADMIN_TOKEN}) as http:
        seed = {"users": SEED["users"][:1],
                "products": [{"id": 4242, "slug": "acme", "team": ["dev@example.com"]}]}
        assert http.post("/fwsim/seed", json=seed).status_code == 200
        cli = Cli(node, tmp_path, apiUrl=cloud_url)
        particle_dir = cli.particle_dir
        code, out = cli("login", "-u", "dev@example.com", "-p", "dev-password")
        assert code == 0, out
        token = json.loads((particle_dir / "local.config.json").read_text())["access_token"]

        results: dict[str, tuple[int, str]] = {}

        def publish() -> None:
            results["mine"] = cli("publish", "provision/wifi", "ssid=Home")
            results["product"] = cli("publish", "fleet/ota", "v2", "--product", "acme")
            results["reserved"] = cli("publish", "spark/device/reset", "reboot")

        seen: list[tuple[str, dict[str, object]]] = []
        with http.stream("GET", "/v1/devices/events", headers={
                "Authorization": f"Bearer {token}"}, timeout=30) as stream:
            publisher = threading.Thread(target=publish)
            publisher.start()
            name = ""
            deadline = time.monotonic() + 60  # keep-alive comments come every 5 s
            for line in stream.iter_lines():
                if time.monotonic() > deadline:
                    break
                if line.startswith("event: "):
                    name = line[len("event: "):]
                elif line.startswith("data: "):
                    seen.append((name, json.loads(line[len("data: "):])))
                    break
        publisher.join(timeout=90)
        assert seen and seen[0][0] == "provision/wifi", (seen, results)
        assert {k: v for k, v in seen[0][1].items() if k != "published_at"} == {
            "data": "ssid=Home", "ttl": 60, "coreid": "api"}

        code, out = results["mine"]
        assert code == 0 and "Published private event: provision/wifi" in out, out
        code, out = results["product"]
        assert code == 0 and "Published private event: fleet/ota to product: acme" in out, out
        code, out = results["reserved"]
        assert code != 0 and "Error publishing event" in out, out
        assert "event names starting with 'spark' or 'particle' are reserved" in out, out
        published = [(e["name"], e["product_id"], e["public"])
                     for e in http.get("/fwsim/events").json()["events"]
                     if e["direction"] == "device"]
        assert published == [("provision/wifi", None, False), ("fleet/ota", 4242, False)]


# -- particle call / particle get ------------------------------------------------------------------




def test_particle_cli_call_and_get(node: str, tmp_path: Path) -> None:
    """``particle call``, ``particle get`` and ``particle nyan`` against a served cloud with a
    live simulated device whose firmware registers a function and variables (the cloud and the
    device run in this process in real time, as in test_particle_api_js.py)."""

    async def flow() -> list[tuple[int, str]]:
        world = World(24, trace_memory_limit=50_000)
        cloud = Cloud(world)
        developer = cloud.create_user("dev@example.com", "dev-password")
        token = cloud.issue_tokens(Principal.user(developer.id), "CLI2").access.token
        cloud.store.put_device(DeviceRecord(FREE, 32, None, Principal.user(developer.id)))
        server, device = await serve_with_device(cloud, FREE, Lamp)
        cli = Cli(node, tmp_path, apiUrl=server.http_url, access_token=token,
                  username="dev@example.com")
        outputs = []
        try:
            for _ in range(400):
                if cloud.endpoint.interface_of(FREE) is not None:
                    break
                await asyncio.sleep(0.05)
            async def particle(*args: str) -> tuple[int, str]:
                proc = await asyncio.create_subprocess_exec(
                    node, str(CLI_PACKAGE / "src/index.js"), *args, env=cli.env,
                    stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.STDOUT)
                out, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
                # (the spinner's erase-line escapes stripped)
                return proc.returncode or 0, re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", out.decode())

            outputs.append(await particle("call", FREE, "brightness", "abcde"))
            # the rest read what the call did, or fail: at once (each CLI start takes seconds)
            outputs.extend(await asyncio.gather(
                particle("get", FREE, "level"), particle("get", FREE, "label"),
                particle("call", FREE, "nope"), particle("get", FREE, "nope"),
                particle("nyan", FREE, "on")))
            for _ in range(100):  # the signal reaches the device a round trip later
                if any(r.kind == "led.nyan" for r in world.trace.records):
                    break
                await asyncio.sleep(0.05)
            signaled.extend(r.fields["on"] for r in world.trace.records
                            if r.kind == "led.nyan")
        finally:
            device.power_off()
            await server.stop()
        return outputs

    signaled: list[bool] = []
    (call_code, call_out), (level_code, level_out), (label_code, label_out), \
        (nope_code, nope_out), (var_code, var_out), (nyan_code, nyan_out) = asyncio.run(flow())
    assert nyan_code == 0 and signaled == [True], nyan_out  # `particle nyan`: the rainbow
    assert call_code == 0 and call_out.strip().splitlines()[-1] == "5", call_out
    assert level_code == 0 and level_out.strip().splitlines()[-1] == "5", level_out
    assert label_code == 0 and label_out.strip().splitlines()[-1] == "kitchen", label_out
    assert nope_code != 0 and "Function call failed: Function `nope` not found" in nope_out, \
        nope_out
    assert var_code != 0 and "Error: Variable not found" in var_out, var_out


# -- particle token create / revoke, product device list --groups (a QA run's findings) ----------


def test_particle_cli_token_create_and_revoke(node: str, cloud_url: str, tmp_path: Path) -> None:
    """``particle token create`` logs in with particle-cli's OAuth client ``user``; ``particle
    token revoke`` deletes a token with no authorization at all (particle-api-js 11)."""
    with httpx.Client(base_url=cloud_url,
                      headers={"X-Fwsim-Admin-Token": ADMIN_TOKEN}) as http:
        assert http.post("/fwsim/seed", json={"users": SEED["users"][:1]}).status_code == 200
        cli = Cli(node, tmp_path, apiUrl=cloud_url)
        code, out = cli("login", "-u", "dev@example.com", "-p", "dev-password")
        assert code == 0, out

        created = {}
        for flags, says in (((), "New access token expires on"),
                            (("--expires-in", "3600"), "New access token expires on"),
                            (("--never-expires",), "New access token never expires")):
            code, out = cli("token", "create", *flags, answer="dev-password\n")
            message, token = [line.strip() for line in out.strip().splitlines()[-2:]]
            assert code == 0 and says in message and len(token) == 40, out
            created[flags] = token
        lifetimes = {flags: http.get("/v1/access_tokens/current", headers={
            "Authorization": f"Bearer {token}"}).json()["expires_at"]
            for flags, token in created.items()}
        assert lifetimes[("--never-expires",)] is None
        assert None not in (lifetimes[()], lifetimes[("--expires-in", "3600")])
        assert lifetimes[("--expires-in", "3600")] < lifetimes[()]  # 1 hour, 90 days

        token = created[("--expires-in", "3600")]
        code, out = cli("token", "revoke", token)
        assert code == 0 and "Successfully revoked all provided tokens" in out, out
        assert http.get("/v1/user", headers={"Authorization": f"Bearer {token}"}
                        ).status_code == 401
        assert http.get("/v1/user", headers={"Authorization": f"Bearer {created[()]}"}
                        ).status_code == 200
        code, out = cli("token", "revoke", token)  # gone: the CLI's not-found message
        assert "Failed to revoke the following access tokens" in out, out
        assert f"token: {token}; reason: The access token was not found" in out, out


def test_particle_cli_product_device_list_groups(node: str, cloud_url: str,
                                                 tmp_path: Path) -> None:
    """``particle product device list 4242 --groups foo bar`` lists the devices in either group:
    the seeded device is in none, so none (every device was listed before); assigning groups is
    tests/interop/test_particle_cli_groups.py."""
    with httpx.Client(base_url=cloud_url,
                      headers={"X-Fwsim-Admin-Token": ADMIN_TOKEN}) as http:
        seed = {"users": SEED["users"][:1],
                "products": [{"id": 4242, "slug": "acme", "team": ["dev@example.com"]}],
                "devices": [{"id": FREE, "product": "acme", "online": True,
                             "platform_id": 32}]}
        assert http.post("/fwsim/seed", json=seed).status_code == 200
        cli = Cli(node, tmp_path, apiUrl=cloud_url)
        assert cli("login", "-u", "dev@example.com", "-p", "dev-password")[0] == 0
        code, out = cli("product", "device", "list", "4242")
        assert code == 0 and FREE in out, out
        code, out = cli("product", "device", "list", "4242", "--groups", "foo", "bar")
        assert code == 0 and FREE not in out, out


def test_particle_cli_meets_an_offline_device(node: str, tmp_path: Path) -> None:
    """A live device loses power: once the cloud shows it offline (here after 10 virtual
    seconds without a message, 2 s at speed 5; ``fwsim up`` waits 75) it keeps the device's
    session for resumption, but ``particle nyan`` / ``call`` / ``get`` fail at once rather
    than sending into it."""

    async def flow() -> tuple[bool, list[tuple[int, str]]]:
        world = World(25, trace_memory_limit=50_000)
        cloud = Cloud(world, options=EndpointOptions(offline_after_s=10.0))
        developer = cloud.create_user("dev@example.com", "dev-password")
        token = cloud.issue_tokens(Principal.user(developer.id), "CLI2").access.token
        cloud.store.put_device(DeviceRecord(FREE, 32, None, Principal.user(developer.id)))
        server, device = await serve_with_device(cloud, FREE, Lamp)
        cli = Cli(node, tmp_path, apiUrl=server.http_url, access_token=token,
                  username="dev@example.com")
        try:
            for _ in range(400):
                if cloud.endpoint.interface_of(FREE) is not None:
                    break
                await asyncio.sleep(0.05)
            device.power_off()
            for _ in range(200):
                record = cloud.store.get_device(FREE)
                if record is not None and not record.online:
                    break
                await asyncio.sleep(0.05)
            kept = cloud.endpoint.session_for_device(FREE) is not None

            async def particle(*args: str) -> tuple[int, str]:
                proc = await asyncio.create_subprocess_exec(
                    node, str(CLI_PACKAGE / "src/index.js"), *args, env=cli.env,
                    stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.STDOUT)
                out, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
                return proc.returncode or 0, re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", out.decode())

            outputs = list(await asyncio.gather(particle("nyan", FREE, "on"),
                                                particle("call", FREE, "brightness", "abc"),
                                                particle("get", FREE, "label")))
            sent = [r.kind for r in world.trace.records
                    if r.kind in ("signal.to_device", "function.to_device",
                                  "variable.to_device")]
            assert sent == [], sent  # nothing went into the kept session
        finally:
            await server.stop()
        return kept, outputs

    kept, ((nyan_code, nyan_out), (call_code, call_out), (get_code, get_out)) = \
        asyncio.run(flow())
    assert kept  # the cloud still holds the session a resume would use
    assert nyan_code != 0 and "Device is not connected" in nyan_out, nyan_out
    assert call_code != 0 and "HTTP error 408" in call_out, call_out
    assert get_code != 0 and "Error: Timed out." in get_out, get_out
