"""Publishing an event through the API (``POST /v1/devices/events``, ``POST /v1/products/:p/
events``): the answer and every error status, no input making a 5xx, the event on the
publisher's (the product's) event streams with ``coreid`` ``api``, and its delivery - on
virtual time, through the testbed - to the subscribed devices of the publisher (the product)
only, with subscriptions kept across a resumed session and renewed by a full handshake."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud_sim import Cloud
from cloud_sim.events import CloudEvent
from cloud_sim.http import create_app
from cloud_sim.http.app import context_of
from cloud_sim.http.client import AsgiApiClient
from cloud_sim.model import DeviceRecord, Principal
from firmware_sim.kernel import World
from firmware_sim.system.app import Firmware, Particle
from firmware_sim.testbed import Testbed, TestbedSpec, provisioned
from firmware_sim.testbed.clouds.particle import ParticlePlug

from .conftest import PRODUCT_ID, SEED, SLUG, Tokens

SURROGATE = "\ud800"
MINE = "/v1/devices/events"
PRODUCT = f"/v1/products/{SLUG}/events"


def api_events(cloud: Cloud) -> list[CloudEvent]:
    return [e for e in cloud.bus.history if e.via_api]


# -- the answer ------------------------------------------------------------------------------------


def test_a_publish_answers_ok_and_puts_one_event_on_the_bus(cloud: Cloud, api: AsgiApiClient,
                                                            tokens: Tokens) -> None:
    dev = cloud.store.find_user("dev@acme.io")
    assert dev is not None
    assert api.request("POST", MINE, token=tokens.dev,
                       json={"name": "provision/wifi", "data": "ssid=Home", "private": False,
                             "ttl": 30}) == (200, {"ok": True})
    # a form body (particle-cli's and curl's) with the token in it, defaults for the rest
    assert api.request("POST", MINE, form={"name": "provision/done",
                                           "access_token": tokens.dev}) == (200, {"ok": True})
    # a customer publishes to its own devices; a team member to the product
    assert api.request("POST", MINE, token=tokens.a, json={"name": "hi"})[0] == 200
    assert api.request("POST", f"/v1/products/{PRODUCT_ID}/events", token=tokens.dev,
                       json={"name": "fleet/update", "data": "v2"}) == (200, {"ok": True})
    first, second, third, product = api_events(cloud)
    assert (first.name, first.data, first.public, first.ttl, first.coreid) == (
        "provision/wifi", "ssid=Home", True, 30, "api")
    assert first.publisher == Principal.user(dev.id) and first.product_id is None
    assert first.device_id is None and first.published_us == cloud.unix_us
    assert (second.data, second.public, second.ttl) == ("", False, 60)
    assert third.publisher is not None and third.publisher.is_customer
    assert (product.product_id, product.publisher, product.coreid) == (PRODUCT_ID, None, "api")


def test_every_error_status(cloud: Cloud, api: AsgiApiClient, tokens: Tokens) -> None:
    bad_requests: list[tuple[dict[str, Any], str]] = [
        ({}, "name is required"),
        ({"name": ""}, "name is required"),
        ({"name": "x" * 65}, "name is longer than 64 characters"),
        ({"name": "spark/device/claim/confirm"}, "reserved"),
        ({"name": "Particle/device/updates/forced"}, "reserved"),
        ({"name": "a\nb"}, "control characters"),
        ({"name": "x", "data": "x" * 1025}, "data is longer than 1024 characters"),
        ({"name": "x", "data": "é" * 513}, "data is longer than 1024 bytes"),
        ({"name": 5}, "name must be a string"),
        ({"name": "x", "data": {"a": 1}}, "data must be a string"),
        ({"name": "x", "private": "maybe"}, "private must be true or false"),
        ({"name": "x", "ttl": -1}, "ttl must be an integer between 0"),
        ({"name": "x", "ttl": "soon"}, "ttl must be an integer"),
        ({"name": "x", "ttl": 1.5}, "ttl must be an integer"),
    ]
    for path in (MINE, PRODUCT):
        for document, error in bad_requests:
            status, answer = api.request("POST", path, token=tokens.dev, json=document)
            assert status == 400 and error in answer["error"], (path, document, answer)
            assert answer["ok"] is False
    assert api.request("POST", MINE, token=tokens.dev, form={"name": "x", "ttl": "²"})[0] == 400
    # exactly 64 characters and 1024 bytes pass
    assert api.request("POST", MINE, token=tokens.dev,
                       json={"name": "n" * 64, "data": "é" * 512})[0] == 200
    # tokens: missing (400, the OAuth shape), unknown (401)
    assert api.request("POST", MINE, json={"name": "x"}) == (400, {
        "error": "invalid_request", "error_description": "The access token was not found"})
    status, answer = api.request("POST", MINE, token="0" * 40, json={"name": "x"})
    assert status == 401 and answer["error"] == "invalid_token"
    # products: a product of another team (403), a customer (403), an unknown product (404)
    for token in (tokens.other, tokens.a):
        status, answer = api.request("POST", PRODUCT, token=token, json={"name": "x"})
        assert (status, answer["error"]) == (403, "Permission Denied")
    status, answer = api.request("POST", "/v1/products/nope/events", token=tokens.dev,
                                 json={"name": "x"})
    assert (status, answer["error"]) == (404, "Product not found")
    response = api.request_raw("POST", MINE, content=b"x" * (65 * 1024), headers={
        "Authorization": f"Bearer {tokens.dev}", "Content-Type": "text/plain"})
    assert response.status_code == 413
    assert [e.name for e in api_events(cloud)] == ["n" * 64]  # no error published anything


# -- no input makes a 5xx --------------------------------------------------------------------------

FUZZ_CLOUD = Cloud(World(5))
FUZZ_APP = create_app(FUZZ_CLOUD)
with AsgiApiClient(FUZZ_APP) as _client:
    _seeded = _client.request("POST", "/fwsim/seed", json=SEED)[1]
FUZZ_TOKEN = _seeded["users"]["dev@acme.io"]["access_token"]

TEXT = st.one_of(
    st.text(max_size=70),
    st.sampled_from([SURROGATE, "a" + SURROGATE, "\udfff", "spark/x", "PARTICLE", "x" * 64,
                     "x" * 65, "é" * 513, "\x00", "a/b", "²", "-1", "60", "true", "false"]),
    st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF,
                                   exclude_categories=()), min_size=1, max_size=2),
)
VALUE = st.one_of(TEXT, st.integers(min_value=-(2**70), max_value=2**70), st.booleans(),
                  st.none(), st.floats(allow_nan=False, allow_infinity=False),
                  st.lists(TEXT, max_size=2), st.dictionaries(TEXT, TEXT, max_size=2))
#: about half the values are good ones, so the success path is exercised too
PARAMS = st.fixed_dictionaries(
    {"name": st.from_regex(r"[a-z][a-z0-9/_-]{0,20}", fullmatch=True) | VALUE},
    optional={"data": st.text(max_size=40) | VALUE, "private": st.booleans() | VALUE,
              "ttl": st.integers(min_value=0, max_value=10**6) | VALUE})


def _form(params: dict[str, Any]) -> bytes:
    """A form body of the values' text (a lone surrogate becomes bytes that are not UTF-8)."""
    return "&".join(f"{key}={quote(str(value).encode('utf-8', 'surrogatepass'))}"
                    for key, value in params.items()).encode()


@settings(max_examples=150, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(path=st.sampled_from([MINE, PRODUCT]), params=PARAMS,
       encoding=st.sampled_from(["json", "form", "raw"]), raw=st.binary(max_size=120))
def test_no_input_makes_a_server_error(path: str, params: dict[str, Any], encoding: str,
                                       raw: bytes) -> None:
    if encoding == "json":
        content, kind = json.dumps(params).encode(), "application/json"  # surrogates escaped
    elif encoding == "form":
        content, kind = _form(params), "application/x-www-form-urlencoded"
    else:
        content, kind = raw, "application/octet-stream"
    before = len(api_events(FUZZ_CLOUD))
    with AsgiApiClient(FUZZ_APP) as api:
        response = api.request_raw("POST", path, content=content, headers={
            "Authorization": f"Bearer {FUZZ_TOKEN}", "Content-Type": kind})
    answer = response.json()
    assert response.status_code in (200, 400), (params, encoding, answer)
    published = api_events(FUZZ_CLOUD)[before:]
    if response.status_code == 200:
        assert answer == {"ok": True}
        assert len(published) == 1
        if encoding == "json":  # what the server read (a surrogate pair is one character)
            sent = json.loads(content)
            assert (published[0].name, published[0].data) == (sent["name"],
                                                              sent.get("data") or "")
    else:
        assert answer["ok"] is False and isinstance(answer["error"], str), answer
        assert published == []


def test_the_openapi_document_has_both_operations() -> None:
    """(The generic fuzz runs, test_schemathesis.py and test_no_server_errors.py, take them.)"""
    paths = create_app(Cloud(World(9))).openapi()["paths"]
    for path in ("/v1/devices/events", "/v1/products/{product}/events"):
        operation = paths[path]["post"]
        assert operation["requestBody"]["content"]["application/json"]["schema"][
            "required"] == ["name"]
    assert "get" in paths["/v1/devices/events"]  # the stream is still there


# -- event streams ---------------------------------------------------------------------------------


def _events_of(body: str) -> list[tuple[str, dict[str, Any]]]:
    events, name = [], ""
    for line in body.splitlines():
        if line.startswith("event: "):
            name = line[len("event: "):]
        elif line.startswith("data: "):
            events.append((name, json.loads(line[len("data: "):])))
    return events


def test_event_streams_show_a_published_event_as_the_real_cloud_does() -> None:
    """Streams opened through the app, ended by closing them (server shutdown): what they
    sent is each response's whole body."""
    cloud = Cloud(World(6))
    app = create_app(cloud)
    hub = context_of(app).hub

    async def scenario() -> dict[str, str]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://fwsim.invalid") as http:
            seeded = (await http.post("/fwsim/seed", json=SEED)).json()
            dev = {"Authorization": f"Bearer {seeded['users']['dev@acme.io']['access_token']}"}
            other = {"Authorization":
                     f"Bearer {seeded['users']['other@dev.io']['access_token']}"}
            streams = {"mine": (MINE, dev), "mine/provision": (f"{MINE}/provision", dev),
                       "all (dev)": ("/v1/events", dev), "other": (MINE, other),
                       "all (other)": ("/v1/events", other), "product": (PRODUCT, dev)}
            tasks = {key: asyncio.create_task(http.get(path, headers=headers))
                     for key, (path, headers) in streams.items()}
            for _ in range(10_000):
                if len(hub) == len(tasks):
                    break
                await asyncio.sleep(0)
            for path, document in [(MINE, {"name": "provision/wifi", "data": "ssid=Home"}),
                                   (MINE, {"name": "hello", "data": "hi", "private": False}),
                                   (PRODUCT, {"name": "fleet/update", "data": "v2"})]:
                answer = await http.post(path, json=document, headers=dev)
                assert answer.json() == {"ok": True}
            hub.close_all()
            return {key: (await asyncio.wait_for(task, 5)).text for key, task in tasks.items()}

    bodies = asyncio.run(scenario())
    seen = {key: [name for name, _ in _events_of(body)] for key, body in bodies.items()}
    assert seen == {"mine": ["provision/wifi", "hello"], "mine/provision": ["provision/wifi"],
                    "all (dev)": ["provision/wifi", "hello"], "other": [],
                    "all (other)": ["hello"], "product": ["fleet/update"]}
    (_, event), *_ = _events_of(bodies["mine"])
    assert event == {"data": "ssid=Home", "ttl": 60, "published_at": "2026-01-01T00:00:00.000Z",
                     "coreid": "api"}


# -- delivery to devices, on virtual time ----------------------------------------------------------


def listener(device: str, prefixes: list[str], received: list[tuple[str, str, bytes]]
             ) -> Callable[[], Firmware]:
    """Firmware subscribing to ``prefixes`` (read at each boot) that records what it gets."""

    class Listener(Firmware):
        def setup(self, particle: Particle) -> None:
            for prefix in prefixes:
                particle.subscribe(prefix,
                                   lambda name, data: received.append((device, name, data)))

    return Listener


def test_delivery_goes_to_subscribed_devices_of_the_publisher_and_survives_a_resume() -> None:
    received: list[tuple[str, str, bytes]] = []
    provisioning, other_app = ["provision/"], ["other/"]
    subscribing = {"mine": provisioning, "theirs": ["provision/"], "elsewhere": other_app,
                   "fleet": ["provision/", "fleet/"]}
    specs = tuple(spec for name, prefixes in subscribing.items()
                  for spec in provisioned(name, firmware=listener(name, prefixes, received)))
    with Testbed(TestbedSpec(seed=11, devices=specs, timing="fast")) as bed:
        plug = bed.cloud
        assert isinstance(plug, ParticlePlug)
        cloud = plug.cloud
        dev, them = cloud.create_user("dev@x.io", "pw"), cloud.create_user("them@x.io", "pw")
        me = Principal.user(dev.id)
        product = cloud.create_product(77, "fleet", team={dev.id})
        customer = cloud.create_customer(product.id, "c@x.io")
        owners = {"mine": me, "theirs": Principal.user(them.id), "elsewhere": me,
                  "fleet": Principal.customer(customer.id)}
        for name, owner in owners.items():
            device = bed.devices[name]
            cloud.store.put_device(DeviceRecord(device.device_id, 32,
                                                product.id if name == "fleet" else None, owner))
        bed.power_on()
        assert bed.run_until(lambda: all(d.cloud_connected for d in bed), 30)
        bed.run_for(1)
        ids = {name: device.device_id for name, device in bed.devices.items()}
        token = cloud.issue_tokens(me, "particle").access.token

        def publish(path: str, name: str, data: str) -> None:
            with plug.api() as api:
                assert api.request("POST", path, token=token,
                                   json={"name": name, "data": data}) == (200, {"ok": True})
            bed.run_for(1)

        # the user's devices subscribed to a prefix of the name, and no other
        publish(MINE, "provision/wifi", "1")
        assert received == [("mine", "provision/wifi", b"1")]
        assert cloud.endpoint.subscriptions_of(ids["mine"]) == ("particle", "spark",
                                                               "provision/")
        # the product's devices (whoever owns them), and no other
        publish("/v1/products/fleet/events", "fleet/ota", "2")
        assert received[1:] == [("fleet", "fleet/ota", b"2")]

        # a reset resumes the session: the device does not subscribe again ...
        bed.devices["mine"].reset("user")
        bed.run_for(3)
        assert bed.run_until(lambda: bed.devices["mine"].cloud_connected, 30)
        bed.run_for(1)
        assert bed.devices["mine"].cloud.handshakes == {"full": 0, "resumed": 1}
        logged = [r.get("message") for r in bed.world.trace.find("log", node="mine")]
        assert logged.count("Checksum has not changed; not sending subscriptions") == 1
        # ... and the cloud still knows what it subscribed to
        publish(MINE, "provision/wifi", "3")
        assert received[2:] == [("mine", "provision/wifi", b"3")]

        # a power cut loses the session: the full handshake starts a new list (the firmware
        # now subscribes to nothing of its own)
        provisioning.clear()
        bed.devices["mine"].power_cycle(off_s=0.5)
        bed.run_for(3)
        assert bed.run_until(lambda: bed.devices["mine"].cloud_connected, 30)
        bed.run_for(1)
        assert bed.devices["mine"].cloud.handshakes == {"full": 1, "resumed": 0}
        assert cloud.endpoint.subscriptions_of(ids["mine"]) == ("particle", "spark")
        sent_before = len(bed.world.trace.find("event.to_device", node="cloud"))
        publish(MINE, "provision/wifi", "4")
        assert received[3:] == []
        assert len(bed.world.trace.find("event.to_device", node="cloud")) == sent_before

        # a session the cloud forgets takes its subscriptions with it
        assert cloud.endpoint.subscriptions_of(ids["elsewhere"]) == ("particle", "spark",
                                                                    "other/")
        assert plug.forget_session(ids["elsewhere"])
        assert cloud.endpoint.subscriptions_of(ids["elsewhere"]) == ()
        assert cloud.publish_event(me, "other/x") == []
        assert [r.get("name") for r in bed.world.trace.find("event.api_publish")] == [
            "provision/wifi", "fleet/ota", "provision/wifi", "provision/wifi", "other/x"]
