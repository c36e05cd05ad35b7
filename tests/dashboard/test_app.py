"""The dashboard's pages and JSON API in process: a testbed on virtual time, the app called
through its whole ASGI stack (httpx), the world stepped where a real driver would run it.

Covers the login and the guard (token, cookie, CSRF, Host/Origin, content type), the pages, the
resume bug steered and seen through the API (set the code while connected -> a reconnect
resumes -> "resumed, claim code pending" -> drop the session -> full handshake -> owner
changes), refusals (unknown device, a second action during a power cycle, a device of another
process), the live stream's first messages, ThingsBoard's press/claim/reclaim, and bad input
of every shape (hypothesis): a clear 4xx, never a 5xx.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.routing import Mount

from cloud_sim.http.guard import HostPolicy
from cloud_sim.model import DeviceRecord
from firmware_sim.dashboard.app import DashboardApp, Settings, build_app
from firmware_sim.dashboard.backends import ParticleBackend, ThingsBoardBackend
from firmware_sim.dashboard.security import SameOrigin, Sessions, cookie_name
from firmware_sim.system.app import Firmware, Particle
from firmware_sim.testbed import CloudSpec, Testbed, TestbedSpec, provisioned
from firmware_sim.testbed.clouds.particle import ParticlePlug
from firmware_sim.testbed.clouds.thingsboard import TbCloudSettings, ThingsBoardPlug
from firmware_sim.testbed.steering import Steering

TOKEN = "d45b" * 10
BASE = "http://127.0.0.1:8080"
JSON = {"content-type": "application/json"}


class Stepping:
    """A runtime for the app in process: ``wake`` runs the world a little, as the real-time
    driver would after a request."""

    def __init__(self, bed: Testbed, step_s: float = 0.2) -> None:
        self.bed = bed
        self.step_s = step_s

    def sync(self) -> None:
        pass

    def wake(self) -> None:
        self.bed.run_for(self.step_s)


def dashboard_of(backend: Any) -> tuple[DashboardApp, Starlette]:
    app = build_app(backend, Sessions(TOKEN), SameOrigin(HostPolicy.for_bound("127.0.0.1", 8080)),
                    Settings(base="/ui", cookie=cookie_name(8080), title="test dashboard"))
    return app, Starlette(routes=[Mount("/ui", app=app.asgi)])


@contextmanager
def particle_dashboard(bed: Testbed) -> Iterator[tuple[DashboardApp, Starlette, ParticlePlug]]:
    """The dashboard of ``bed`` (its devices powered on and run for 10 s first)."""
    steering = Steering(bed)  # as `fwsim up`: the session counts start with the world
    bed.power_on()
    bed.run_for(10)
    plug = bed.cloud
    assert isinstance(plug, ParticlePlug)
    # the dashboard comes later: the log and events it shows are read back from the trace
    backend = ParticleBackend(bed, plug, Stepping(bed), steering=steering)
    app, root = dashboard_of(backend)
    try:
        yield app, root, plug
    finally:
        backend.close()
        steering.close()
        bed.close()


@pytest.fixture
def particle() -> Iterator[tuple[Testbed, DashboardApp, Starlette]]:
    bed = Testbed(TestbedSpec(seed=5, devices=provisioned("dev1", "dev2"), timing="fast"))
    with particle_dashboard(bed) as (app, root, _):
        yield bed, app, root


def run(root: Starlette, body: Callable[[httpx.AsyncClient], Awaitable[None]]) -> None:
    async def main() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=root),
                                     base_url=BASE) as client:
            await body(client)

    asyncio.run(main())


async def login(client: httpx.AsyncClient) -> dict[str, str]:
    """Log in; the headers a page's script sends with a POST (its CSRF token)."""
    answer = await client.post("/ui/login", json={"token": TOKEN})
    assert answer.status_code == 200, answer.text
    page = await client.get("/ui/", headers={"accept": "text/html"})
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
    assert csrf is not None
    return {**JSON, "x-csrf-token": csrf.group(1)}


# -- log in and the guard ------------------------------------------------------------------------


def test_nothing_without_the_token_and_the_cookie_is_strict(
        particle: tuple[Testbed, DashboardApp, Starlette]) -> None:
    _, _, root = particle

    async def body(client: httpx.AsyncClient) -> None:
        page = await client.get("/ui/", headers={"accept": "text/html"})
        assert page.status_code == 200 and "Admin token" in page.text and "dev1" not in page.text
        assert "default-src 'none'" in page.headers["content-security-policy"]
        assert page.headers["x-frame-options"] == "DENY"
        api = await client.get("/ui/api/devices")
        assert api.status_code == 401 and "log in first" in api.json()["error"]
        wrong = await client.post("/ui/login", json={"token": "guess"})
        assert wrong.status_code == 401 and "not the admin token" in wrong.json()["error"]
        form = await client.post("/ui/login", content=f"token={TOKEN}",
                                 headers={"content-type": "application/x-www-form-urlencoded"})
        assert form.status_code == 303 and form.headers["location"] == "/ui/"
        cookie = form.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/ui" in cookie
        assert TOKEN not in cookie
        listed = await client.get("/ui/api/devices")
        assert [row["name"] for row in listed.json()["devices"]] == ["dev1", "dev2"]
        static = await client.get("/ui/static/dashboard.js")
        assert static.status_code == 200 and "EventSource" in static.text
        assert (await client.get("/ui/static/../app.py")).status_code == 404

    run(root, body)


def test_wrong_tokens_are_limited(particle: tuple[Testbed, DashboardApp, Starlette]) -> None:
    _, _, root = particle

    async def body(client: httpx.AsyncClient) -> None:
        for _ in range(10):
            assert (await client.post("/ui/login", json={"token": "x"})).status_code == 401
        blocked = await client.post("/ui/login", json={"token": "x"})
        assert blocked.status_code == 429 and "wait a minute" in blocked.json()["error"]
        # only wrong tokens are braked: the right one still logs in
        assert (await client.post("/ui/login", json={"token": TOKEN})).status_code == 200

    run(root, body)


@pytest.mark.parametrize(("headers", "status", "message"), [
    ({"origin": "http://evil.example"}, 403, "cross-origin"),
    ({"sec-fetch-site": "cross-site"}, 403, "cross-site"),
    ({"host": "attacker.example:8080"}, 400, "Host"),
    ({"x-csrf-token": "forged"}, 403, "CSRF"),
    ({"content-type": "text/plain"}, 415, "application/json"),
])
def test_forged_requests_are_refused(particle: tuple[Testbed, DashboardApp, Starlette],
                                     headers: dict[str, str], status: int,
                                     message: str) -> None:
    _, _, root = particle

    async def body(client: httpx.AsyncClient) -> None:
        good = await login(client)
        answer = await client.post("/ui/api/devices/dev1/reset", content=b"{}",
                                   headers={**good, **headers})
        assert answer.status_code == status and message in answer.json()["error"]

    run(root, body)


@pytest.mark.parametrize(("raw", "message"), [
    (b"{", "not valid JSON"), (b"\xff\xfe", "not valid JSON"),
    (b'{"up": NaN}', "not valid JSON"), (b'{"active": Infinity}', "not valid JSON"),
    (b"[" * 8000 + b"]" * 8000, "not valid JSON"), (b"[]", "must be a JSON object"),
    (b'{"up": "yes"}', "up must be true or false"), (b"{}", "up must be true or false"),
    (b"x" * 20_000, "at most 16384 bytes"),
])
def test_malformed_bodies_are_a_clear_4xx(particle: tuple[Testbed, DashboardApp, Starlette],
                                          raw: bytes, message: str) -> None:
    _, _, root = particle

    async def body(client: httpx.AsyncClient) -> None:
        headers = await login(client)
        answer = await client.post("/ui/api/devices/dev1/network", content=raw,
                                   headers=headers)
        assert answer.status_code in (400, 413) and message in answer.json()["error"]

    run(root, body)


def test_logout_ends_the_session(particle: tuple[Testbed, DashboardApp, Starlette]) -> None:
    _, _, root = particle

    async def body(client: httpx.AsyncClient) -> None:
        headers = await login(client)
        out = await client.post("/ui/logout", json={}, headers=headers)
        assert out.status_code == 200 and "Max-Age=0" in out.headers["set-cookie"]
        assert (await client.get("/ui/api/devices")).status_code == 401

    run(root, body)


# -- pages and the resume bug ----------------------------------------------------------------


def test_pages_show_devices_and_an_unknown_device_is_a_clear_404(
        particle: tuple[Testbed, DashboardApp, Starlette]) -> None:
    bed, _, root = particle

    async def body(client: httpx.AsyncClient) -> None:
        await login(client)
        index = await client.get("/ui/", headers={"accept": "text/html"})
        assert index.text.count('data-field="state">connected<') == 2
        page = await client.get("/ui/devices/dev1", headers={"accept": "text/html"})
        assert page.status_code == 200
        for text in ("Device OS log", "Cloud connected", "DCT bytes: claim code at 0x06e2",
                     "Last flow", "<svg", "spark/device/last_reset", bed.devices["dev1"].device_id):
            assert text in page.text, text
        missing = await client.get("/ui/devices/nope", headers={"accept": "text/html"})
        assert missing.status_code == 404
        assert "unknown device &#39;nope&#39; (devices: dev1, dev2)" in missing.text
        api = await client.get("/ui/api/devices/nope")
        assert api.status_code == 404 and api.json() == {
            "ok": False, "error": "unknown device 'nope' (devices: dev1, dev2)"}
        assert (await client.get("/ui/no/such/page")).status_code == 404

    run(root, body)


def test_the_resume_bug_seen_and_worked_around_through_the_dashboard(
        particle: tuple[Testbed, DashboardApp, Starlette]) -> None:
    bed, _, root = particle

    async def state(client: httpx.AsyncClient) -> dict[str, Any]:
        answer = await client.get("/ui/api/devices/dev2")
        assert answer.status_code == 200
        payload: dict[str, Any] = answer.json()
        return payload

    async def body(client: httpx.AsyncClient) -> None:
        headers = await login(client)
        issued = await client.post("/ui/api/devices/dev2/new-claim-code",
                                   json={"owner": "b@example.com"}, headers=headers)
        assert issued.status_code == 200, issued.text
        code = issued.json()["code"]
        stored = await client.post("/ui/api/devices/dev2/claim-code", json={"code": code},
                                   headers=headers)
        assert stored.json() == {"ok": True, "action": "claim-code", "device": "dev2",
                                 "result": 0, "stored": True}
        secret = await client.get("/ui/api/devices/dev2/secret")
        assert secret.json()["secret"] == code
        for up in (False, True):
            answer = await client.post("/ui/api/devices/dev2/network", json={"up": up},
                                       headers=headers)
            assert answer.status_code == 200
        bed.run_for(10)
        seen = await state(client)
        assert seen["row"]["summary"] == "resumed, claim code pending"
        assert "Session resumed with a claim code pending" in seen["why_html"]
        assert seen["row"]["owner"] is None
        dropped = await client.post("/ui/api/devices/dev2/drop-session",
                                    json={"reconnect": True}, headers=headers)
        assert dropped.json()["dropped"] is True
        bed.run_for(15)
        seen = await state(client)
        assert seen["row"]["last_session"] == "full" and seen["row"]["owner"] == "b@example.com"
        assert seen["row"]["claim_pending"] is False and seen["row"]["full"] == 2
        assert "Claim code accepted by the cloud" in seen["why_html"]
        assert "owner (none) -&gt; b@example.com" in seen["why_html"]
        assert "RST (unknown session)" in seen["diagram"]
        assert any(e["name"] == "spark/device/claim/code" and "chars" in e["data"]
                   for e in seen["events"])
        assert code not in str(seen["events"])

    run(root, body)


def test_a_second_action_during_a_power_cycle_is_refused_until_the_boot(
        particle: tuple[Testbed, DashboardApp, Starlette]) -> None:
    bed, _, root = particle

    async def body(client: httpx.AsyncClient) -> None:
        headers = await login(client)
        first = await client.post("/ui/api/devices/dev1/power-cycle", json={}, headers=headers)
        assert first.status_code == 200
        for action in ("power-cycle", "reset"):
            again = await client.post(f"/ui/api/devices/dev1/{action}", json={},
                                      headers=headers)
            assert again.status_code == 409
            assert again.json()["error"] == ("dev1: power-cycle in progress; wait for it to "
                                             "finish")
        busy = (await client.get("/ui/api/devices/dev1")).json()["busy"]
        assert busy == "power-cycle"
        bed.run_for(5)
        assert (await client.post("/ui/api/devices/dev1/reset", json={},
                                  headers=headers)).status_code == 200
        assert (await client.post("/ui/api/devices/dev2/reset", json={},
                                  headers=headers)).status_code == 200

    run(root, body)


def test_a_key_change_from_the_dashboard_starts_a_full_session(
        particle: tuple[Testbed, DashboardApp, Starlette]) -> None:
    bed, _, root = particle

    async def body(client: httpx.AsyncClient) -> None:
        headers = await login(client)
        async def row() -> dict[str, Any]:
            answer = await client.get("/ui/api/devices/dev1")
            assert answer.status_code == 200
            found: dict[str, Any] = answer.json()["row"]
            return found

        before = (await row())["full"]
        sent = await client.post("/ui/api/devices/dev1/key-change", json={}, headers=headers)
        assert sent.status_code == 200 and sent.json()["sent"] is True
        bed.run_for(10)
        after = await row()
        assert after["full"] == before + 1 and after["last_session"] == "full"
        page = (await client.get("/ui/api/devices/dev1")).json()
        assert "The cloud sent a key change" in page["why_html"]
        assert "key change: discard the session" in page["diagram"]
        assert any("Received a key change message; discarding session" in line
                   for line in bed.devices["dev1"].log_lines())

    run(root, body)


class _Lamp(Firmware):
    def setup(self, particle: Particle) -> None:
        self.level = 0
        particle.function("brightness", self.brightness)
        particle.variable("level", lambda: self.level, "int")

    def brightness(self, argument: str) -> int:
        self.level = len(argument)
        return self.level


def test_functions_and_variables_from_the_device_page() -> None:
    bed = Testbed(TestbedSpec(seed=6, devices=provisioned("lamp", firmware=_Lamp),
                              timing="fast"))

    async def body(client: httpx.AsyncClient) -> None:
        headers = await login(client)
        page = await client.get("/ui/devices/lamp", headers={"accept": "text/html"})
        assert page.status_code == 200
        assert '<option value="brightness">function</option>' in page.text
        assert "Functions: brightness. Variables: level (int32)." in page.text
        called = await client.post("/ui/api/devices/lamp/call", headers=headers,
                                   json={"name": "brightness", "arg": " two words "})
        assert called.status_code == 200, called.text
        assert called.json() == {"ok": True, "action": "call", "device": "lamp",
                                 "name": "brightness",
                                 "return_value": 11}  # the argument as typed, spaces kept
        read = await client.post("/ui/api/devices/lamp/get", headers=headers,
                                 json={"name": "level"})
        assert read.json()["result"] == 11
        for action, payload, status, error in (
                ("get", {"name": "nope"}, 404, "lamp has no variable 'nope'"),
                ("call", {"name": "nope"}, 404, "lamp has no function 'nope'"),
                ("call", {"name": ""}, 400, "name is required"),
                ("call", {"name": "brightness", "arg": 5}, 400, "arg must be text"),
                ("call", {"name": "brightness", "arg": "x" * 1025}, 400, "at most 1024")):
            answer = await client.post(f"/ui/api/devices/lamp/{action}", headers=headers,
                                       json=payload)
            assert answer.status_code == status and error in answer.json()["error"], answer.text
        lone = await client.post("/ui/api/devices/lamp/call", headers=headers,
                                 content=b'{"name": "brightness", "arg": "\\ud800"}')
        assert lone.status_code == 400 and "no lone surrogates" in lone.json()["error"]
        # a device of another process the cloud has no session of: refused at once
        remote = "e00f" + "cd" * 10
        plug.cloud.store.put_device(DeviceRecord(remote, platform_id=32))
        offline = await client.post(f"/ui/api/devices/{remote}/get", headers=headers,
                                    json={"name": "level"})
        assert offline.status_code == 409, offline.text
        assert offline.json()["error"] == f"{remote} is not connected to the cloud"

    with particle_dashboard(bed) as (_, root, plug):
        run(root, body)


def test_a_device_of_another_process_can_only_lose_its_session(
        particle: tuple[Testbed, DashboardApp, Starlette]) -> None:
    bed, _, root = particle
    plug = bed.cloud
    assert isinstance(plug, ParticlePlug)
    remote = "e00f" + "ab" * 10
    plug.cloud.store.put_device(DeviceRecord(remote, platform_id=32))

    async def body(client: httpx.AsyncClient) -> None:
        headers = await login(client)
        rows = (await client.get("/ui/api/devices")).json()["devices"]
        assert [(r["name"], r["state"], r["kind"]) for r in rows][-1] == (remote, "offline",
                                                                          "remote")
        page = await client.get(f"/ui/devices/{remote}", headers={"accept": "text/html"})
        assert page.status_code == 200 and "runs in another process" in page.text
        reset = await client.post(f"/ui/api/devices/{remote}/reset", json={}, headers=headers)
        assert reset.status_code == 409 and "only drop-session" in reset.json()["error"]
        drop = await client.post(f"/ui/api/devices/{remote}/drop-session", json={},
                                 headers=headers)
        assert drop.status_code == 200 and drop.json()["dropped"] is False
        change = await client.post(f"/ui/api/devices/{remote}/key-change", json={},
                                   headers=headers)
        assert change.status_code == 200 and change.json()["sent"] is False  # no session
        assert "Key change from the cloud" in page.text

    run(root, body)


def test_the_live_stream_sends_the_rows_then_a_device_payload(
        particle: tuple[Testbed, DashboardApp, Starlette]) -> None:
    _, app, _ = particle
    session = app.sessions.login(TOKEN)
    assert session is not None

    async def first(stream: AsyncIterator[str], count: int) -> list[str]:
        return [await anext(stream) for _ in range(count)]

    async def main() -> None:
        rows = app._events(session, None, [0, 0])
        sent = await first(rows, 2)
        assert sent[0] == "retry: 2000\n\n" and sent[1].startswith("event: rows\ndata: [")
        device = app._events(session, "dev1", [0, 0])
        sent = await first(device, 2)
        assert re.match(r"id: \d+\.\d+\nevent: device\ndata: \{", sent[1])
        assert '"diagram":"<svg' in sent[1] and "Cloud connected" in sent[1]
        app.backend.feed.close()
        assert [item async for item in device] == []

    asyncio.run(main())


# -- bad input -------------------------------------------------------------------------------

ACTIONS = ["power-cycle", "reset", "listening", "network", "drop-session", "key-change",
           "claim-code", "new-claim-code", "press", "claim", "call", "get", "nope"]
VALUES = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True),
                   st.text(max_size=80), st.lists(st.integers(), max_size=3))


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(device=st.sampled_from(["dev1", "dev2", "nope", "e00f" + "0" * 20, "%00", "a" * 300]),
       action=st.sampled_from(ACTIONS),
       body=st.one_of(st.dictionaries(st.sampled_from(["active", "up", "reconnect", "code",
                                                       "owner", "customer", "secret", "name",
                                                       "arg"]), VALUES,
                                      max_size=3),
                      st.binary(max_size=40).map(lambda b: b"\x00raw" + b)))
def test_bad_input_is_a_clear_4xx_never_a_5xx(
        particle: tuple[Testbed, DashboardApp, Starlette], device: str, action: str,
        body: dict[str, Any] | bytes) -> None:
    _, _, root = particle

    async def send(client: httpx.AsyncClient) -> None:
        headers = await login(client)
        # NaN and Infinity as Python's json writes them (not JSON; the server must cope)
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        answer = await client.post(f"/ui/api/devices/{device}/{action}", content=raw,
                                   headers=headers)
        assert answer.status_code < 500, answer.text
        if answer.status_code >= 400:
            error = answer.json()["error"]
            assert error and "\n" not in error and "Traceback" not in error

    run(root, send)


# -- ThingsBoard -----------------------------------------------------------------------------


@pytest.fixture
def thingsboard() -> Iterator[tuple[Testbed, DashboardApp, Starlette]]:
    bed = Testbed(TestbedSpec(seed=2, access_points=(), cloud=CloudSpec(
        "thingsboard", settings=TbCloudSettings(buttons=1))))
    plug = bed.cloud
    assert isinstance(plug, ThingsBoardPlug)
    plug.power_on()
    bed.run_for(5)
    plug.service.create_device(plug.demo.tenant.id, "Sensor 7")  # type: ignore[union-attr]
    backend = ThingsBoardBackend(bed, plug, Stepping(bed))
    app, root = dashboard_of(backend)
    yield bed, app, root
    backend.close()
    bed.close()


def test_thingsboard_press_claim_as_a_customer_and_reclaim(
        thingsboard: tuple[Testbed, DashboardApp, Starlette]) -> None:
    bed, _, root = thingsboard
    name = "Claim%20Button%201"

    async def body(client: httpx.AsyncClient) -> None:
        headers = await login(client)
        rows = {r["name"]: r for r in (await client.get("/ui/api/devices")).json()["devices"]}
        assert rows["Claim Button 1"]["summary"] == "connected, claim secret pending"
        assert rows["Sensor 7"]["state"] == "remote" and rows["Sensor 7"]["claim"] == "none"
        secret = (await client.get(f"/ui/api/devices/{name}/secret")).json()["secret"]
        assert len(secret) == 12
        page = await client.get(f"/ui/devices/{name}", headers={"accept": "text/html"})
        assert "<svg" in page.text and "QR code of Claim Button 1" in page.text
        wrong = await client.post(f"/ui/api/devices/{name}/claim",
                                  json={"customer": "B", "secret": "nope"}, headers=headers)
        assert wrong.json()["response"] == "FAILURE"
        pressed = await client.post(f"/ui/api/devices/{name}/press", json={}, headers=headers)
        assert pressed.status_code == 200
        bed.run_for(2)
        fresh = (await client.get(f"/ui/api/devices/{name}/secret")).json()["secret"]
        claimed = await client.post(f"/ui/api/devices/{name}/claim",
                                    json={"customer": "b", "secret": fresh}, headers=headers)
        assert claimed.json()["response"] == "SUCCESS", claimed.text
        seen = (await client.get(f"/ui/api/devices/{name}")).json()
        assert seen["row"]["owner"] == "Customer B" and seen["row"]["claimed"] is True
        assert "claim: FAILURE (secret_mismatch)" in seen["why_html"]
        assert "claim: SUCCESS (claimed)" in seen["why_html"]
        assert "press the claim button" in seen["diagram"]
        reclaimed = await client.post(f"/ui/api/devices/{name}/reclaim", json={},
                                      headers=headers)
        assert reclaimed.status_code == 200
        assert (await client.get(f"/ui/api/devices/{name}")).json()["row"]["owner"] is None
        for device, action, payload, status in (
                ("Sensor%207", "press", {}, 409), (name, "claim", {"customer": "Z"}, 400),
                (name, "claim", {"customer": 3}, 400), ("Nope", "press", {}, 404),
                (name, "power-cycle", {}, 404)):
            answer = await client.post(f"/ui/api/devices/{device}/{action}", json=payload,
                                       headers=headers)
            assert answer.status_code == status, (device, action, answer.text)

    run(root, body)
