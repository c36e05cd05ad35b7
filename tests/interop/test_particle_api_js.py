"""Unmodified particle-api-js 12.0.3 against the emulated cloud on loopback.

The cloud (REST API on uvicorn, device link on UDP) and a simulated P2 run in this process in
real time (sped up 5x). ``tests/interop/js/api_js_claim_flow.js`` then drives the library: the
product developer logs in; the app creates customer B with the product's OAuth client; B gets a
product claim code; B's ``claimDevice`` on customer A's device is refused (403, ``errors:
["That belongs to someone else."]``); the developer opens the product event stream. When the
script prints the claim code, this test sets it on the device over the control-request channel
and power-cycles it: the full handshake sends ``spark/device/claim/code``, which the stream
shows; the cloud consumes the code, and ``listDevices`` shows B as the new owner.

A second flow publishes events with the library's ``publishEvent`` (``POST /v1/devices/events``
and, with ``product``, ``POST /v1/products/:p/events``): the developer's own event stream and the
product's show them with ``coreid`` ``api``, a simulated device subscribed to their prefixes gets
them in its firmware's handler, and the refusals (a missing name, a bad token) reach the library
as JSON errors.

A third flow calls a live device's function and reads its variables with ``callFunction`` and
``getVariable`` (``getDevice`` lists them), and meets the 404s of unknown names.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from support.live_device import Lamp, serve_with_device

from cloud_sim import Cloud, Principal
from cloud_sim.model import DeviceRecord
from cloud_sim.sqlite_store import SqliteStore
from firmware_sim.kernel import World
from firmware_sim.scenarios.catalog import default_provisioning
from firmware_sim.system import Device
from firmware_sim.system.app import Firmware, Particle

pytestmark = pytest.mark.interop

REPO = Path(__file__).resolve().parents[2]
NODE_MODULES = REPO / "tests/interop/node/node_modules"
API_JS = NODE_MODULES / "particle-api-js"
SCRIPT = REPO / "tests/interop/js/api_js_claim_flow.js"
DEVICE_ID = "e00fce68aabbccddeeff0011"
BELONGS = "That belongs to someone else."


def toolchain() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (CI installs Node 20)")
    if not (API_JS / "package.json").exists():
        pytest.skip("particle-api-js is not installed: run `npm ci` in tests/interop/node")
    version = json.loads((API_JS / "package.json").read_text())["version"]
    assert version == "12.0.3", f"expected particle-api-js 12.0.3, found {version}"
    return node


async def _flow(node: str) -> tuple[list[dict[str, Any]], Cloud, Device, str]:
    world = World(21, trace_memory_limit=50_000)
    cloud = Cloud(world, store=SqliteStore(":memory:"))
    developer = cloud.create_user("dev@acme.example", "dev-password")
    product = cloud.create_product(4242, "acme-sensors", team={developer.id})
    cloud.create_product_client(product, "acme-app", "acme-secret")
    alice = cloud.create_customer(product.id, "alice@example.com", "alice-pw")
    alice_token = cloud.issue_tokens(Principal.customer(alice.id), "acme-app").access.token
    cloud.store.put_device(DeviceRecord(DEVICE_ID, 32, product.id,
                                        Principal.customer(alice.id)))
    server, device = await serve_with_device(cloud, DEVICE_ID)
    config = {"baseUrl": server.http_url, "developer": "dev@acme.example",
              "password": "dev-password", "clientId": "acme-app", "clientSecret": "acme-secret",
              "product": "acme-sensors", "customerB": "bob@example.com",
              "deviceId": DEVICE_ID, "customerAToken": alice_token}
    proc = await asyncio.create_subprocess_exec(
        node, str(SCRIPT), json.dumps(config), stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env={**os.environ, "NODE_PATH": str(NODE_MODULES)})
    steps: list[dict[str, Any]] = []
    results: list[int] = []
    try:
        assert proc.stdout is not None
        while True:
            line = await asyncio.wait_for(proc.stdout.readline(), timeout=40)
            if not line:
                break
            step = json.loads(line)
            steps.append(step)
            if step["step"] == "claim_code":
                # the phone sets the code over the control channel; once the device answered,
                # a power cycle: the next power-up does a full handshake and sends it (a power
                # cut before the request is handled would lose it, as on hardware)
                def then_power_cycle(result: int) -> None:
                    results.append(result)
                    device.power_cycle(off_s=0.5)

                server.driver.sync()
                default_provisioning(device).set_claim_code(step["code"], then_power_cycle)
                server.driver.wake()
        await asyncio.wait_for(proc.wait(), timeout=10)
        assert proc.stderr is not None
        stderr = (await proc.stderr.read()).decode()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        device.power_off()
        await server.stop()
    assert proc.returncode == 0, f"{steps} {stderr}"
    assert results == [0]
    bob = cloud.store.find_customer(product.id, "bob@example.com")
    assert bob is not None
    return steps, cloud, device, bob.id


def test_particle_api_js_claim_flow() -> None:
    node = toolchain()
    steps, cloud, device, bob_id = asyncio.run(_flow(node))
    by_step = {s["step"]: s for s in steps}
    assert by_step["version"]["version"] == "12.0.3"
    assert by_step["login"] == {"step": "login", "statusCode": 200, "tokenType": "bearer",
                                "expiresIn": 7776000}
    assert by_step["create_customer"] == {"step": "create_customer", "statusCode": 201,
                                          "scope": "customer=bob@example.com"}
    assert by_step["claim_code_created"]["length"] == 63
    assert by_step["claim_code_created"]["deviceIds"] == []
    conflict = by_step["claim_conflict"]["conflict"]
    assert conflict["statusCode"] == 403
    # particle-api-js parses the JSON error body (and attaches the raw response to it)
    assert {k: v for k, v in conflict["body"].items() if k != "response"} == {
        "ok": False, "errors": [BELONGS]}
    assert conflict["errorDescription"].startswith("HTTP error 403 from ")
    assert by_step["event"] == {"step": "event", "name": "spark/device/claim/code",
                                "coreid": DEVICE_ID, "hasPublishedAt": True}
    result = by_step["result"]
    assert result["mine"] == [DEVICE_ID] and result["aDevices"] == []
    assert result["productOwner"] == "bob@example.com" and result["productId"] == 4242
    assert "spark/status" in result["eventNames"]
    assert cloud.owner_of(DEVICE_ID) == Principal.customer(bob_id)
    assert device.claim.pending_code() is None


# -- publishEvent ----------------------------------------------------------------------------------

PUBLISH_SCRIPT = r"""
'use strict';
const Particle = require('particle-api-js');
const config = JSON.parse(process.argv[2]);
const particle = new Particle({ baseUrl: config.baseUrl });
const auth = config.token;
const say = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
async function until(check, what) {
  for (const deadline = Date.now() + 20000; Date.now() < deadline; await sleep(50)) {
    const value = check();
    if (value) return value;
  }
  throw new Error(`timed out waiting for ${what}`);
}
async function refused(options) {
  try {
    await particle.publishEvent(options);
    return null;
  } catch (err) {
    const body = { ...err.body };
    delete body.response;
    return { statusCode: err.statusCode, body };
  }
}
async function main() {
  const mine = [];
  const product = [];
  const myStream = await particle.getEventStream({ deviceId: 'mine', auth });
  myStream.on('event', (e) => mine.push(e));
  const productStream = await particle.getEventStream({ product: config.product, auth });
  productStream.on('event', (e) => product.push(e));
  const published = await particle.publishEvent({ name: 'provision/wifi', data: 'ssid=Home',
    isPrivate: true, auth });
  say({ step: 'publish', statusCode: published.statusCode, body: published.body });
  const seen = await until(() => mine.find((e) => e.name === 'provision/wifi'), 'my event');
  say({ step: 'my_stream', event: seen });
  const toProduct = await particle.publishEvent({ name: 'fleet/ota', data: 'v2',
    isPrivate: true, product: config.product, auth });
  say({ step: 'publish_product', statusCode: toProduct.statusCode, body: toProduct.body });
  const fleet = await until(() => product.find((e) => e.name === 'fleet/ota'), 'product event');
  say({ step: 'product_stream', event: fleet });
  say({ step: 'no_name', error: await refused({ name: '', data: 'x', auth }) });
  say({ step: 'bad_token', error: await refused({ name: 'x', auth: '0'.repeat(40) }) });
  say({ step: 'names', mine: mine.map((e) => e.name), product: product.map((e) => e.name) });
  myStream.abort();
  productStream.abort();
}
main().then(() => process.exit(0), (err) => {
  say({ step: 'error', message: String(err && (err.stack || err.message || err)) });
  process.exit(1);
});
"""


def subscriber(received: list[tuple[str, bytes]]) -> type[Firmware]:
    class Subscriber(Firmware):
        def setup(self, particle: Particle) -> None:
            for prefix in ("provision/", "fleet/"):
                particle.subscribe(prefix, lambda name, data: received.append((name, data)))

    return Subscriber


async def run_steps(node: str, script: Path, config: dict[str, Any]) -> list[dict[str, Any]]:
    """Run a node script with ``config`` (JSON, its argument) and return the steps it printed,
    one JSON document per line (the script must exit 0 within 60 s)."""
    proc = await asyncio.create_subprocess_exec(
        node, str(script), json.dumps(config), stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env={**os.environ, "NODE_PATH": str(NODE_MODULES)})
    try:
        stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout=60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    steps = [json.loads(line) for line in stdout.decode().splitlines()]
    assert proc.returncode == 0, f"{steps} {stderr.decode()}"
    return steps


async def _publish_flow(node: str, script: Path) -> tuple[list[dict[str, Any]],
                                                          list[tuple[str, bytes]]]:
    world = World(22, trace_memory_limit=50_000)
    cloud = Cloud(world, store=SqliteStore(":memory:"))
    developer = cloud.create_user("dev@acme.example", "dev-password")
    product = cloud.create_product(4242, "acme-sensors", team={developer.id})
    token = cloud.issue_tokens(Principal.user(developer.id), "particle-api").access.token
    cloud.store.put_device(DeviceRecord(DEVICE_ID, 32, product.id,
                                        Principal.user(developer.id)))
    received: list[tuple[str, bytes]] = []
    server, device = await serve_with_device(cloud, DEVICE_ID, subscriber(received))
    try:
        # publishing reaches the device once it has subscribed (after its handshake)
        for _ in range(400):
            if "fleet/" in cloud.endpoint.subscriptions_of(DEVICE_ID):
                break
            await asyncio.sleep(0.05)
        assert device.cloud_connected, "the device did not connect"
        steps = await run_steps(node, script, {"baseUrl": server.http_url, "token": token,
                                               "product": "acme-sensors"})
        for _ in range(100):  # the device has the events a few round trips later
            if len(received) >= 2:
                break
            await asyncio.sleep(0.05)
    finally:
        device.power_off()
        await server.stop()
    return steps, received


def test_particle_api_js_publish_event(tmp_path: Path) -> None:
    node = toolchain()
    script = tmp_path / "publish_event.js"
    script.write_text(PUBLISH_SCRIPT)
    steps, received = asyncio.run(_publish_flow(node, script))
    by_step = {s["step"]: s for s in steps}
    assert by_step["publish"] == {"step": "publish", "statusCode": 200, "body": {"ok": True}}
    assert by_step["publish_product"]["body"] == {"ok": True}
    for step, name, data in (("my_stream", "provision/wifi", "ssid=Home"),
                             ("product_stream", "fleet/ota", "v2")):
        event = by_step[step]["event"]
        assert (event["name"], event["data"], event["coreid"], event["ttl"]) == (
            name, data, "api", 60)
        assert event["published_at"].endswith("Z")
    # the developer's stream has its own event, the product's the product's
    names = by_step["names"]
    assert "fleet/ota" not in names["mine"] and "provision/wifi" not in names["product"]
    assert by_step["no_name"]["error"] == {"statusCode": 400, "body": {
        "ok": False, "error": "name is required", "error_description": "name is required"}}
    assert by_step["bad_token"]["error"]["statusCode"] == 401
    assert by_step["bad_token"]["error"]["body"]["error"] == "invalid_token"
    # the device's firmware got both (it is the developer's and the product's)
    assert received == [("provision/wifi", b"ssid=Home"), ("fleet/ota", b"v2")]


# -- callFunction / getVariable --------------------------------------------------------------------

CALL_SCRIPT = r"""
'use strict';
const Particle = require('particle-api-js');
const config = JSON.parse(process.argv[2]);
const particle = new Particle({ baseUrl: config.baseUrl });
const auth = config.token;
const deviceId = config.deviceId;
const say = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');
async function attempt(step, call) {
  try {
    const answer = await call();
    say({ step, statusCode: answer.statusCode, body: answer.body });
  } catch (err) {
    const body = { ...err.body };
    delete body.response;
    say({ step, error: { statusCode: err.statusCode, body } });
  }
}
async function main() {
  await attempt('device', () => particle.getDevice({ deviceId, auth }));
  await attempt('call', () => particle.callFunction({ deviceId, name: 'brightness',
    argument: 'abcd', auth }));
  await attempt('level', () => particle.getVariable({ deviceId, name: 'level', auth }));
  await attempt('label', () => particle.getVariable({ deviceId, name: 'label', auth }));
  await attempt('temp', () => particle.getVariable({ deviceId, name: 'temp', auth }));
  await attempt('unknown_function', () => particle.callFunction({ deviceId, name: 'nope',
    argument: '', auth }));
  await attempt('unknown_variable', () => particle.getVariable({ deviceId, name: 'nope',
    auth }));
}
main().then(() => process.exit(0), (err) => {
  say({ step: 'error', message: String(err && (err.stack || err.message || err)) });
  process.exit(1);
});
"""




async def _call_flow(node: str, script: Path) -> list[dict[str, Any]]:
    world = World(23, trace_memory_limit=50_000)
    cloud = Cloud(world, store=SqliteStore(":memory:"))
    developer = cloud.create_user("dev@acme.example", "dev-password")
    token = cloud.issue_tokens(Principal.user(developer.id), "particle-api").access.token
    cloud.store.put_device(DeviceRecord(DEVICE_ID, 32, None, Principal.user(developer.id)))
    server, device = await serve_with_device(cloud, DEVICE_ID, Lamp)
    try:
        for _ in range(400):  # the application describe arrives after the handshake
            if cloud.endpoint.interface_of(DEVICE_ID) is not None:
                break
            await asyncio.sleep(0.05)
        assert device.cloud_connected, "the device did not connect"
        return await run_steps(node, script, {"baseUrl": server.http_url, "token": token,
                                              "deviceId": DEVICE_ID})
    finally:
        device.power_off()
        await server.stop()


def test_particle_api_js_call_function_and_get_variable(tmp_path: Path) -> None:
    node = toolchain()
    script = tmp_path / "call_function.js"
    script.write_text(CALL_SCRIPT)
    by_step = {s["step"]: s for s in asyncio.run(_call_flow(node, script))}
    device = by_step["device"]["body"]
    assert device["functions"] == ["brightness"]
    assert device["variables"] == {"level": "int32", "label": "string", "temp": "double"}
    call = by_step["call"]
    assert call["statusCode"] == 200
    assert call["body"] == {"id": DEVICE_ID, "name": device["name"], "connected": True,
                            "return_value": 4}
    for step, value in (("level", 4), ("label", "kitchen"), ("temp", 21.5)):
        body = by_step[step]["body"]
        assert (body["name"], body["result"]) == (step, value)
        assert body["coreInfo"]["deviceID"] == DEVICE_ID and body["coreInfo"]["connected"]
    assert by_step["unknown_function"]["error"] == {"statusCode": 404, "body": {
        "ok": False, "error": "Function nope not found"}}
    assert by_step["unknown_variable"]["error"] == {"statusCode": 404, "body": {
        "ok": False, "error": "Variable not found"}}


# -- a QA run's findings: deleteAccessToken without auth, product list sort/groups, rename "" -----

QA_SCRIPT = r"""
const Particle = require('particle-api-js');
const cfg = JSON.parse(process.argv[1]);
const api = new Particle({ baseUrl: cfg.baseUrl });
const failure = (e) => [e.statusCode, e.body && e.body.error, e.shortErrorDescription || null];
(async () => {
    const out = {};
    const auth = cfg.token;
    const names = async (options) => (await api.listDevices(
        Object.assign({ product: cfg.product, auth }, options))).body.devices.map(d => d.name);
    out.byName = await names({ sortAttr: 'deviceName', sortDir: 'asc' });
    out.byNameDesc = await names({ sortAttr: 'deviceName', sortDir: 'desc' });
    out.grouped = await names({ groups: ['foo', 'bar'] });
    try { await names({ sortAttr: 'bogus' }); } catch (e) { out.badSort = failure(e); }
    try { await names({ sortDir: 'sideways' }); } catch (e) { out.badDir = failure(e); }
    try { await names({ perPage: -1 }); } catch (e) { out.badPerPage = failure(e); }
    try { await api.renameDevice({ deviceId: cfg.deviceId, name: '', auth }); }
    catch (e) { out.emptyName = failure(e); }
    try { await api.renameDevice({ deviceId: cfg.deviceId, name: 'h\u00e9llo', auth }); }
    catch (e) { out.unicodeName = failure(e); }
    const login = await api.login({ username: cfg.username, password: cfg.password });
    const token = login.body.access_token;
    out.before = (await api.getUserInfo({ auth: token })).statusCode;
    out.deleted = (await api.deleteAccessToken({ token })).body;  // sends no Authorization
    try { await api.getUserInfo({ auth: token }); out.after = 200; }
    catch (e) { out.after = e.statusCode; }
    try { await api.deleteAccessToken({ token }); } catch (e) { out.again = failure(e); }
    console.log(JSON.stringify(out));
})().catch((e) => { console.error(e); process.exit(1); });
"""


def test_particle_api_js_token_revoke_product_list_and_rename() -> None:
    node = toolchain()
    from cloud_sim.server import CloudServer, ServerConfig

    async def flow() -> dict[str, Any]:
        cloud = Cloud(World(26))
        developer = cloud.create_user("dev@acme.example", "dev-password")
        product = cloud.create_product(4242, "acme-sensors", team={developer.id})
        owner = Principal.user(developer.id)
        for suffix, name in (("0101", "bravo"), ("0102", "alpha"), ("0103", "charlie")):
            cloud.store.put_device(DeviceRecord(f"e00fce68aabbccddeeff{suffix}", 32,
                                                product.id, owner, name=name))
        token = cloud.issue_tokens(owner, "particle-api").access.token
        server = CloudServer(cloud, ServerConfig(http_port=0, coap_port=0))
        await server.start()
        try:
            config = {"baseUrl": server.http_url, "token": token, "product": "acme-sensors",
                      "deviceId": "e00fce68aabbccddeeff0101", "username": "dev@acme.example",
                      "password": "dev-password"}
            proc = await asyncio.create_subprocess_exec(
                node, "-e", QA_SCRIPT, json.dumps(config), stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env={**os.environ, "NODE_PATH": str(NODE_MODULES)})
            out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
        finally:
            await server.stop()
        assert proc.returncode == 0, err.decode()
        result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
        return result

    out = asyncio.run(flow())
    assert out["byName"] == ["alpha", "bravo", "charlie"]
    assert out["byNameDesc"] == ["charlie", "bravo", "alpha"]
    assert out["grouped"] == []  # fwsim's devices are in no group
    for key, error in (
            ("badSort", "sortAttr must be one of deviceId, deviceName, firmwareVersion, "
                        "lastConnection"),
            ("badDir", "sortDir must be asc or desc"),
            ("badPerPage", "per_page must be an integer between 1 and 1000"),
            ("emptyName", "name must not be empty (1 to 64 of A-Z a-z 0-9 _ -)"),
            ("unicodeName", "name may only contain the ASCII letters A-Z a-z, digits 0-9, '_' "
                            "and '-'")):
        assert out[key] == [400, error, error], (key, out[key])
    assert (out["before"], out["deleted"], out["after"]) == (200, {"ok": True}, 401)
    assert out["again"] == [400, "invalid_request", "The access token was not found"]
