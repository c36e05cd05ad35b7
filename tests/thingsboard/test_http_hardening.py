"""The REST API's QA findings, through the whole ASGI app in process: lone surrogates and
non-finite numbers in JSON bodies, JWTs of a server whose cloud time runs ahead of the wall
clock, ``Authorization: Bearer``, logout, device paging, and the claim's ``secretKey`` coercion.
(The served-only findings - Host/Origin, CoAP transports, random tokens - are in
``test_served_hardening.py``.)"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud_sim.thingsboard.demo import seed_demo
from cloud_sim.thingsboard.service import ThingsBoardService
from firmware_sim.kernel.world import World

from .conftest import Tb, make_tb
from .test_http_api import Api, assert_error


@pytest.fixture
def api(tb: Tb) -> Iterator[Api]:
    client = Api(tb)
    with client.client:
        yield client


# -- lone surrogates ----------------------------------------------------------------------------

#: text holding exactly one lone surrogate (hypothesis's text() draws none, so no neighbour can
#: pair with it into a valid character)
lone_surrogate_text = st.tuples(st.text(max_size=4), st.integers(0xD800, 0xDFFF),
                                st.text(max_size=4)).map(lambda t: t[0] + chr(t[1]) + t[2])

#: ``(route, body with S where the text goes, who calls)`` - every route that reads JSON
SURROGATE_ROUTES: list[tuple[str, Any, str]] = [
    ("/api/auth/login", {"username": "S", "password": "p"}, "nobody"),
    ("/api/auth/login", {"username": "tenant@thingsboard.org", "password": "S"}, "nobody"),
    ("/api/auth/token", {"refreshToken": "S"}, "nobody"),
    ("/api/noauth/activate", {"activateToken": "S", "password": "p"}, "nobody"),
    ("/api/customer", {"title": "S"}, "tenant"),
    ("/api/customer", {"title": "T", "email": "S"}, "tenant"),
    ("/api/user", {"email": "S", "authority": "TENANT_ADMIN"}, "tenant"),
    ("/api/device", {"name": "S"}, "tenant"),
    ("/api/device", {"name": "D", "label": "S"}, "tenant"),
    ("/api/plugins/telemetry/DEVICE/{id}/attributes/SERVER_SCOPE", {"S": 1}, "tenant"),
    ("/api/plugins/telemetry/DEVICE/{id}/SERVER_SCOPE", {"k": {"n": ["S"]}}, "tenant"),
    ("/api/plugins/telemetry/{id}/SHARED_SCOPE", {"k": "S"}, "tenant"),
    ("/api/customer/device/Dev 1/claim", {"secretKey": "S"}, "customer"),
]


def _with_text(template: Any, text: str) -> Any:
    if isinstance(template, dict):
        return {(text if k == "S" else k): _with_text(v, text) for k, v in template.items()}
    if isinstance(template, list):
        return [_with_text(v, text) for v in template]
    return text if template == "S" else template


_SHARED: list[tuple[Api, dict[str, dict[str, str]], str]] = []


@pytest.fixture(scope="module", autouse=True)
def _close_shared() -> Iterator[None]:
    yield
    for shared_api, _, _ in _SHARED:
        shared_api.client.__exit__()
    _SHARED.clear()


def shared() -> tuple[Api, dict[str, dict[str, str]], str]:
    if not _SHARED:
        api = Api(make_tb())
        device = api.tb.device()
        _SHARED.append((api, {"nobody": {}, "tenant": api.tenant, "customer": api.a},
                        device.id))
    return _SHARED[0]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(route=st.sampled_from(SURROGATE_ROUTES), text=lone_surrogate_text)
def test_a_lone_surrogate_in_any_json_body_is_400_not_500(route: tuple[str, Any, str],
                                                          text: str) -> None:
    api, headers, device_id = shared()
    path, template, who = route
    body = json.dumps(_with_text(template, text)).encode()  # ensure_ascii: "\udXXX" escapes
    response = api.client.post(path.format(id=device_id), content=body,
                               headers={**headers[who], "Content-Type": "application/json"})
    if path == "/api/auth/login":  # as for any unknown user or wrong password
        assert_error(response, 401, 10, "Invalid username or password")
    else:
        assert_error(response, 400, 31)


@pytest.mark.parametrize("number", [b"NaN", b"-Infinity", b"1e999"])
def test_non_finite_numbers_are_400_and_never_reach_an_answer(api: Api, tb: Tb,
                                                              number: bytes) -> None:
    device = tb.device()
    headers = {**api.tenant, "Content-Type": "application/json"}
    response = api.client.post(f"/api/plugins/telemetry/DEVICE/{device.id}/SERVER_SCOPE",
                               content=b'{"k":' + number + b"}", headers=headers)
    assert_error(response, 400, 31)
    values = api.client.get(
        f"/api/plugins/telemetry/DEVICE/{device.id}/values/attributes/SERVER_SCOPE",
        headers=api.tenant)
    assert values.status_code == 200 and values.json() == []


def test_a_gateway_claim_naming_a_device_with_a_lone_surrogate_is_skipped(tb: Tb) -> None:
    gateway = tb.device("GW", gateway=True)
    ack = tb.service.gateway_claim(gateway, b'{"\\ud800x": {"secretKey": "s"}, "Ok": {}}',
                                   transport="mqtt")
    assert ack.value == "accepted"
    assert tb.service.store.find_device(tb.demo.tenant.id, "Ok") is not None


# -- JWTs and cloud time ------------------------------------------------------------------------


def test_jwts_work_when_cloud_time_is_ahead_of_the_wall_clock() -> None:
    """``fwsim up --speed 60``: cloud time runs ahead, so a fresh JWT's ``iat`` lies in the
    wall clock's future; PyJWT refused it ("not yet valid"), every call was 401. Expiry is
    still checked, on cloud time."""
    world = World(3)
    service = ThingsBoardService(world, epoch_ms=int(time.time() * 1000) + 86_400_000)
    api = Api(Tb(world, service, seed_demo(service)))
    with api.client:
        headers = api.tenant
        response = api.client.get("/api/auth/user", headers=headers)
        assert response.status_code == 200, response.text
        world.run_for(9_001)
        assert_error(api.client.get("/api/auth/user", headers=headers), 401, 11)


# -- Authorization header -----------------------------------------------------------------------


def test_authorization_bearer_is_accepted_when_x_authorization_is_blank(api: Api) -> None:
    token = api.tenant["X-Authorization"]
    plain = api.client.get("/api/auth/user", headers={"Authorization": token})
    assert plain.status_code == 200 and plain.json()["email"] == "tenant@thingsboard.org"
    blank = api.client.get("/api/auth/user", headers={"X-Authorization": " ",
                                                      "Authorization": token})
    assert blank.status_code == 200
    # X-Authorization wins when present, as ThingsBoard reads it first
    both = api.client.get("/api/auth/user", headers={"X-Authorization": "Bearer garbage",
                                                     "Authorization": token})
    assert_error(both, 401, 10)
    assert_error(api.client.get("/api/auth/user", headers={"Authorization": "Basic eA=="}),
                 401, 10)


# -- logout -------------------------------------------------------------------------------------


def _login(api: Api, email: str = "tenant@thingsboard.org",
           password: str = "tenant") -> dict[str, str]:
    response = api.client.post("/api/auth/login", json={"username": email,
                                                        "password": password})
    assert response.status_code == 200
    tokens: dict[str, str] = response.json()
    return tokens


def test_logout_ends_that_session_access_and_refresh_tokens(api: Api) -> None:
    first, second = _login(api), _login(api)
    refreshed = api.client.post("/api/auth/token",
                                json={"refreshToken": first["refreshToken"]}).json()
    bearer = {"X-Authorization": f"Bearer {first['token']}"}
    assert api.client.post("/api/auth/logout", headers=bearer).status_code == 200
    # ThingsBoard's outdated access token: 401 "Token has expired" (JwtExpiredTokenException)
    assert_error(api.client.get("/api/auth/user", headers=bearer), 401, 11, "Token has expired")
    # the tokens refreshed from that session belong to it too
    assert_error(api.client.get("/api/auth/user",
                                headers={"X-Authorization": f"Bearer {refreshed['token']}"}),
                 401, 11)
    for refresh in (first["refreshToken"], refreshed["refreshToken"]):
        assert_error(api.client.post("/api/auth/token", json={"refreshToken": refresh}),
                     401, 10)
    # another login of the same user is another session: it goes on
    other = api.client.get("/api/auth/user",
                           headers={"X-Authorization": f"Bearer {second['token']}"})
    assert other.status_code == 200
    assert_error(api.client.post("/api/auth/logout", headers=bearer), 401, 11)


def test_one_login_is_one_session_in_both_tokens(api: Api) -> None:
    import jwt as pyjwt

    tokens = _login(api)
    access, refresh = (pyjwt.decode(tokens[k], options={"verify_signature": False})
                       for k in ("token", "refreshToken"))
    assert access["sessionId"] == refresh["sessionId"]
    assert _login(api)["token"] != tokens["token"]


# -- paging -------------------------------------------------------------------------------------


def _names(response: Any) -> list[str]:
    return [device["name"] for device in response.json()["data"]]


def test_tenant_devices_page_data(api: Api, tb: Tb) -> None:
    for name in ("Alpha", "beta", "Gamma", "delta", "Epsilon"):
        tb.device(name, type="sensor" if name[0].islower() else None)
    headers = api.tenant

    def get(query: str) -> Any:
        return api.client.get(f"/api/tenant/devices?{query}", headers=headers)

    first = get("pageSize=2&page=0").json()
    assert len(first["data"]) == 2
    assert (first["totalPages"], first["totalElements"], first["hasNext"]) == (3, 5, True)
    last = get("pageSize=2&page=2").json()
    assert len(last["data"]) == 1 and last["hasNext"] is False
    assert get("pageSize=2&page=3").json()["data"] == []
    assert _names(get("pageSize=10&page=0&textSearch=ALP")) == ["Alpha"]
    searched = get("pageSize=1&page=0&textSearch=ta").json()  # beTA, delTA
    assert searched["totalElements"] == 2 and searched["hasNext"] is True
    assert sorted(_names(get("pageSize=10&page=0&type=sensor"))) == ["beta", "delta"]
    assert _names(get("pageSize=10&page=0&sortProperty=name&sortOrder=DESC")) == [
        "delta", "beta", "Gamma", "Epsilon", "Alpha"]
    single = get("deviceName=Gamma")
    assert single.status_code == 200 and single.json()["name"] == "Gamma"
    assert_error(get("deviceName=nothing"), 404, 32)
    assert_error(get("page=0"), 400, 31)
    assert_error(get("pageSize=x&page=0"), 400, 31)
    assert_error(get("pageSize=10&page=0&sortProperty=secret"), 400, 31)


def test_customer_devices_are_paged_too(api: Api, tb: Tb) -> None:
    customer = tb.a.customer_id
    for index in range(3):
        tb.device(f"Mine {index}", customer_id=customer)
    tb.device("Not mine")  # not the customer's
    tb.device("Other", customer_id=customer)  # the customer's, but no "mine" in the name
    page = api.client.get(f"/api/customer/{customer}/devices?pageSize=2&page=1&textSearch=mine",
                          headers=api.a).json()
    assert (len(page["data"]), page["totalElements"], page["hasNext"]) == (1, 3, False)


# -- the claim body's secretKey -----------------------------------------------------------------


@pytest.mark.parametrize(("literal", "secret"), [(b"123", "123"), (b"1.50", "1.50"),
                                                 (b"-7e3", "-7e3"), (b"true", "true")])
def test_a_scalar_secret_key_is_coerced_to_its_text_as_jackson_does(
        api: Api, tb: Tb, literal: bytes, secret: str) -> None:
    device = tb.device()
    tb.send(device, json.dumps({"secretKey": secret, "durationMs": 60_000}).encode())
    response = api.client.post(f"/api/customer/device/{device.name}/claim",
                               content=b'{"secretKey":' + literal + b"}",
                               headers={**api.a, "Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    assert response.json()["response"] == "SUCCESS"


def test_a_structured_secret_key_is_still_400(api: Api, tb: Tb) -> None:
    tb.device()
    response = api.client.post("/api/customer/device/Dev 1/claim",
                               content=b'{"secretKey":{"a":1}}',
                               headers={**api.a, "Content-Type": "application/json"})
    assert_error(response, 400, 31)
