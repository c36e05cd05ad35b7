"""``POST /v1/devices/:id/:function`` and ``GET /v1/devices/:id/:variable`` on virtual time: the
answers (and ``?format=raw``), the functions and variables ``GET /v1/devices/:id`` lists, who
may call (owner, product team, the customer owning it), every error status, and no name or
argument making a 5xx."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud_sim.http.client import AsgiApiClient
from cloud_sim.model import DeviceRecord, Principal
from firmware_sim.system.app import Firmware, Particle
from firmware_sim.testbed import Testbed, TestbedSpec, provisioned
from firmware_sim.testbed.clouds.particle import ParticlePlug


class Lamp(Firmware):
    def setup(self, particle: Particle) -> None:
        self.level = 3
        particle.function("brightness", self.brightness)
        particle.variable("level", lambda: self.level, "int")
        particle.variable("temp", 21.0)
        particle.variable("on", True)
        particle.variable("label", "kitchen")

    def brightness(self, argument: str) -> int:
        self.level = len(argument)
        return self.level


@dataclass
class World:
    bed: Testbed
    plug: ParticlePlug
    api: AsgiApiClient
    mine: str  # the developer's device
    fleet: str  # the product's device, owned by a customer
    tokens: dict[str, str]


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    devices = (*provisioned("mine", firmware=Lamp), *provisioned("fleet", firmware=Lamp))
    with Testbed(TestbedSpec(seed=31, devices=devices, timing="fast")) as bed:
        plug = bed.cloud
        assert isinstance(plug, ParticlePlug)
        cloud = plug.cloud
        dev, other, team = (cloud.create_user(f"{n}@x.io", "pw") for n in ("dev", "other",
                                                                          "team"))
        product = cloud.create_product(55, "lamps", team={team.id})
        customer = cloud.create_customer(product.id, "c@x.io")
        mine, fleet = bed.devices["mine"].device_id, bed.devices["fleet"].device_id
        cloud.store.put_device(DeviceRecord(mine, 32, None, Principal.user(dev.id)))
        cloud.store.put_device(DeviceRecord(fleet, 32, product.id,
                                            Principal.customer(customer.id)))
        bed.power_on()
        assert bed.run_until(lambda: all(d.cloud_connected for d in bed), 30)
        bed.run_for(1)
        tokens = {name: cloud.issue_tokens(principal, "particle").access.token
                  for name, principal in (("dev", Principal.user(dev.id)),
                                          ("other", Principal.user(other.id)),
                                          ("team", Principal.user(team.id)),
                                          ("customer", Principal.customer(customer.id)))}
        with plug.api() as api:
            yield World(bed, plug, api, mine, fleet, tokens)


def test_calls_and_reads_answer_as_the_real_api(world: World) -> None:
    api, mine, dev = world.api, world.mine, world.tokens["dev"]
    name = f"fwsim_{mine[-6:]}"
    assert api.request("POST", f"/v1/devices/{mine}/brightness", token=dev,
                       json={"arg": "12345"}) == (200, {
                           "id": mine, "name": name, "connected": True, "return_value": 5})
    # particle-api-js sends ``args``; a form body (curl, particle-cli) works too
    assert api.request("POST", f"/v1/devices/{mine}/brightness", token=dev,
                       json={"args": "ab"})[1]["return_value"] == 2
    assert api.request("POST", f"/v1/devices/{mine}/brightness",
                       form={"arg": "abc", "access_token": dev})[1]["return_value"] == 3
    assert api.request("POST", f"/v1/devices/{mine}/brightness", token=dev)[1][
        "return_value"] == 0
    status, body = api.request("GET", f"/v1/devices/{mine}/level", token=dev)
    assert status == 200 and (body["name"], body["result"]) == ("level", 0)
    info = body["coreInfo"]
    assert (info["deviceID"], info["connected"], info["product_id"]) == (mine, True, 32)
    assert info["last_heard"].endswith("Z") and info["last_handshake_at"].endswith("Z")
    for variable, value, raw in (("temp", 21.0, "21"), ("on", True, "true"),
                                 ("label", "kitchen", "kitchen")):
        assert api.request("GET", f"/v1/devices/{mine}/{variable}", token=dev)[1][
            "result"] == value
        response = api.request_raw("GET", f"/v1/devices/{mine}/{variable}?format=raw",
                                   headers={"Authorization": f"Bearer {dev}"})
        assert (response.status_code, response.text) == (200, raw)
    device = api.request("GET", f"/v1/devices/{mine}", token=dev)[1]
    assert device["functions"] == ["brightness"]
    assert device["variables"] == {"level": "int32", "temp": "double", "on": "bool",
                                   "label": "string"}
    listed = api.request("GET", "/v1/devices", token=dev)[1]
    assert [d["functions"] for d in listed] == [["brightness"]]


def test_the_product_team_and_the_customer_may_call_others_may_not(world: World) -> None:
    api, fleet, mine = world.api, world.fleet, world.mine
    for who in ("team", "customer"):
        assert api.request("POST", f"/v1/devices/{fleet}/brightness", token=world.tokens[who],
                           json={"arg": "x"})[1]["return_value"] == 1
        assert api.request("GET", f"/v1/devices/{fleet}/label", token=world.tokens[who])[0] \
            == 200
    for who, device in (("other", mine), ("other", fleet), ("customer", mine),
                        ("team", mine), ("dev", fleet)):
        for method, path in (("POST", f"/v1/devices/{device}/brightness"),
                             ("GET", f"/v1/devices/{device}/level")):
            status, body = api.request(method, path, token=world.tokens[who])
            assert (status, body["error"]) == (403, "Permission Denied"), (who, path)


def test_the_product_form_is_for_the_team(world: World) -> None:
    api, fleet, mine = world.api, world.fleet, world.mine
    team = world.tokens["team"]
    for product in ("55", "lamps"):
        base = f"/v1/products/{product}/devices/{fleet}"
        assert api.request("POST", f"{base}/brightness", token=team,
                           form={"arg": "abcd"})[1]["return_value"] == 4
        status, body = api.request("GET", f"{base}/level", token=team)
        assert (status, body["result"], body["coreInfo"]["product_id"]) == (200, 4, 55)
    assert api.request("GET", f"/v1/products/55/devices/{fleet}/nope", token=team) == (
        404, {"ok": False, "error": "Variable not found"})
    # a device of another product (or none), an unknown product, a caller off the team
    assert api.request("GET", f"/v1/products/55/devices/{mine}/level", token=team)[0] == 404
    assert api.request("GET", f"/v1/products/56/devices/{fleet}/level", token=team)[0] == 404
    for who in ("dev", "customer", "other"):
        assert api.request("POST", f"/v1/products/55/devices/{fleet}/brightness",
                           token=world.tokens[who])[0] == 403, who


def test_every_error_status(world: World) -> None:
    api, mine, dev = world.api, world.mine, world.tokens["dev"]
    call, read = f"/v1/devices/{mine}/brightness", f"/v1/devices/{mine}/level"
    assert api.request("POST", call)[0] == 400  # no token
    assert api.request("GET", read, token="0" * 40)[0] == 401
    assert api.request("GET", f"/v1/devices/{'0' * 24}/level", token=dev)[0] == 403
    assert api.request("POST", f"/v1/devices/{mine}/nope", token=dev) == (
        404, {"ok": False, "error": "Function nope not found"})
    assert api.request("GET", f"/v1/devices/{mine}/nope", token=dev) == (
        404, {"ok": False, "error": "Variable not found"})
    assert api.request("GET", f"/v1/devices/{mine}/{'v' * 65}", token=dev)[0] == 404
    for document in ({"arg": "x" * 1025}, {"arg": "é" * 513}, {"arg": 5}, {"args": ["a"]}):
        status, body = api.request("POST", call, token=dev, json=document)
        assert status == 400 and body["ok"] is False, document
    assert api.request("POST", call, token=dev, json={"arg": "é" * 512})[0] == 200
    # a device that is gone (the cloud has not noticed): 408 once the call times out, on
    # virtual time; a device the cloud knows is offline: 408 at once
    world.bed.devices["mine"].power_off()
    now = world.bed.world.clock.now_us
    status, body = api.request("POST", call, token=dev, json={"arg": "x"})
    assert (status, body) == (408, {"ok": False, "error": "Timed out."})
    assert world.bed.world.clock.now_us - now >= 20_000_000
    world.plug.forget_session(mine)
    assert api.request("GET", read, token=dev) == (408, {"ok": False, "error": "Timed out."})
    assert api.request("GET", f"/v1/devices/{mine}", token=dev)[1]["functions"] == [
        "brightness"]  # still listed from the last describe
    world.bed.devices["mine"].power_on()
    assert world.bed.run_until(lambda: world.bed.devices["mine"].cloud_connected, 30)


#: (not ``events``: ``GET /v1/devices/:id/events`` is the device's event stream)
NAMES = st.one_of(st.text(max_size=70), st.sampled_from(
    ["brightness", "level", "x" * 64, "x" * 65, "\ud800", "a/b", "%00", "..", " "])
    ).filter(lambda name: not name.strip("/").startswith("events"))
ARGS = st.one_of(st.text(max_size=1100), st.integers(), st.none(), st.booleans(),
                 st.lists(st.text(max_size=3), max_size=2), st.sampled_from(["é" * 513]))


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(name=NAMES, arg=ARGS, method=st.sampled_from(["GET", "POST"]),
       key=st.sampled_from(["arg", "args"]))
def test_no_name_or_argument_makes_a_server_error(world: World, name: str, arg: object,
                                                  method: str, key: str) -> None:
    path = f"/v1/devices/{world.fleet}/{quote(name.encode('utf-8', 'surrogatepass'), safe='')}"
    response = world.api.request_raw(method, path, headers={
        "Authorization": f"Bearer {world.tokens['team']}",
        "Content-Type": "application/json"},
        content=json.dumps({key: arg}).encode())
    assert response.status_code < 500, (name, arg, response.text)
    # (307: the router's redirect of an empty name's trailing slash)
    assert response.status_code in (200, 307, 400, 404, 405, 408), (name, arg, response.text)
    if response.status_code != 307:
        assert isinstance(response.json(), (dict, list))  # ``..``: the device list
