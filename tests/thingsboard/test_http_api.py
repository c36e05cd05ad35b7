"""The REST API and the device HTTP API: exact status codes and bodies, and bad input."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import jwt as pyjwt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud_sim.thingsboard.http_api import create_app
from cloud_sim.thingsboard.model import NULL_UUID
from cloud_sim.thingsboard.settings import BodylessClaim, ReclaimBody

from .conftest import Tb, make_tb


class SyncAsgi:
    """httpx through the app's full ASGI stack, on a private loop: no socket, no thread."""

    def __init__(self, app: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                         base_url="http://tb.invalid")

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self._loop.run_until_complete(self._client.request(method, path, **kwargs))

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", path, **kwargs)

    def __enter__(self) -> SyncAsgi:
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.run_until_complete(self._client.aclose())
        self._loop.close()


class Api:
    def __init__(self, tb: Tb) -> None:
        self.tb = tb
        self.client = SyncAsgi(create_app(tb.service))

    def login(self, email: str, password: str) -> dict[str, str]:
        response = self.client.post("/api/auth/login",
                                    json={"username": email, "password": password})
        assert response.status_code == 200, response.text
        return {"X-Authorization": f"Bearer {response.json()['token']}"}

    @property
    def a(self) -> dict[str, str]:
        return self.login("customerA@thingsboard.org", "customer")

    @property
    def tenant(self) -> dict[str, str]:
        return self.login("tenant@thingsboard.org", "tenant")


@pytest.fixture
def api(tb: Tb) -> Iterator[Api]:
    api = Api(tb)
    with api.client:
        yield api


def assert_error(response, status: int, code: int, message: str | None = None) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"status", "message", "errorCode", "timestamp"}
    assert body["status"] == status and body["errorCode"] == code
    if message is not None:
        assert body["message"] == message


def test_login_gives_a_jwt_pair_with_exp(api: Api) -> None:
    response = api.client.post("/api/auth/login", json={"username": "tenant@thingsboard.org",
                                                        "password": "tenant"})
    tokens = response.json()
    claims = pyjwt.decode(tokens["token"], options={"verify_signature": False})
    assert claims["sub"] == "tenant@thingsboard.org" and claims["scopes"] == ["TENANT_ADMIN"]
    assert claims["exp"] - claims["iat"] == 9000
    refreshed = api.client.post("/api/auth/token", json={"refreshToken": tokens["refreshToken"]})
    assert refreshed.status_code == 200 and "token" in refreshed.json()


def test_wrong_password_is_401(api: Api) -> None:
    response = api.client.post("/api/auth/login", json={"username": "tenant@thingsboard.org",
                                                        "password": "nope"})
    assert_error(response, 401, 10, "Invalid username or password")


def test_claim_success_body_is_a_claim_result(api: Api, tb: Tb) -> None:
    device = tb.device()
    tb.send(device, b'{"secretKey":"s","durationMs":60000}')
    response = api.client.post(f"/api/customer/device/{device.name}/claim",
                               json={"secretKey": "s"}, headers=api.a)
    assert response.status_code == 200
    body = response.json()
    assert body["response"] == "SUCCESS"
    assert body["device"]["customerId"] == {"entityType": "CUSTOMER", "id": tb.a.customer_id}
    assert body["device"]["name"] == device.name


def test_claim_failure_and_claimed_are_bare_json_strings(api: Api, tb: Tb) -> None:
    free = tb.device("Free")
    taken = tb.device("Taken", customer_id=tb.b.customer_id)
    failure = api.client.post("/api/customer/device/Free/claim", json={}, headers=api.a)
    assert failure.status_code == 400 and failure.content == b'"FAILURE"'
    claimed = api.client.post("/api/customer/device/Taken/claim", json={"secretKey": None},
                              headers=api.a)
    assert claimed.status_code == 400 and claimed.content == b'"CLAIMED"'
    assert free.name and taken.name


def test_claim_unknown_device_is_404(api: Api) -> None:
    response = api.client.post("/api/customer/device/nothing/claim", json={}, headers=api.a)
    assert_error(response, 404, 32, "Requested item wasn't found!")


def test_tenant_admin_claiming_is_403(api: Api, tb: Tb) -> None:
    tb.device()
    response = api.client.post("/api/customer/device/Dev 1/claim", json={},
                               headers=api.tenant)
    assert_error(response, 403, 20, "You don't have permission to perform this operation!")


def test_bodyless_claim_is_500_by_default_and_a_setting(api: Api, tb: Tb) -> None:
    tb.device()
    response = api.client.post("/api/customer/device/Dev 1/claim", headers=api.a)
    assert_error(response, 500, 2)
    lenient = Api(make_tb(bodyless_claim=BodylessClaim.EMPTY_SECRET))
    with lenient.client:
        lenient.tb.device()
        response = lenient.client.post("/api/customer/device/Dev 1/claim", headers=lenient.a)
        assert response.status_code == 400 and response.json() == "FAILURE"


def test_reclaim_is_200_empty_or_the_documented_body(api: Api, tb: Tb) -> None:
    tb.device(customer_id=tb.a.customer_id)
    response = api.client.delete("/api/customer/device/Dev 1/claim", headers=api.a)
    assert response.status_code == 200 and response.content == b""
    documented = Api(make_tb(reclaim_body=ReclaimBody.DOCUMENTED))
    with documented.client:
        documented.tb.device()
        response = documented.client.delete("/api/customer/device/Dev 1/claim",
                                             headers=documented.tenant)
        assert response.json() == {"result": {}, "setOrExpired": True}


def test_wrong_content_type_is_415(api: Api, tb: Tb) -> None:
    tb.device()
    response = api.client.post("/api/customer/device/Dev 1/claim", content=b'{"secretKey":""}',
                               headers={**api.a, "Content-Type": "text/plain"})
    assert_error(response, 415, 31)


@pytest.mark.parametrize("header", ["", "Bearer", "Bearer garbage", "Basic abc",
                                    "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."])
def test_bad_tokens_are_401(api: Api, header: str) -> None:
    response = api.client.post("/api/customer/device/x/claim", json={},
                               headers={"X-Authorization": header})
    assert_error(response, 401, 10)


def test_expired_jwt_is_401_code_11(api: Api, tb: Tb) -> None:
    headers = api.a
    tb.world.run_for(9001)
    response = api.client.get("/api/auth/user", headers=headers)
    assert_error(response, 401, 11, "Token has expired")


def test_refresh_token_is_not_an_access_token(api: Api) -> None:
    tokens = api.client.post("/api/auth/login", json={"username": "tenant@thingsboard.org",
                                                      "password": "tenant"}).json()
    response = api.client.get("/api/auth/user",
                              headers={"X-Authorization": f"Bearer {tokens['refreshToken']}"})
    assert_error(response, 401, 10)


def test_tenant_setup_customer_user_device_credentials_attributes(api: Api, tb: Tb) -> None:
    tenant = api.tenant
    customer = api.client.post("/api/customer", json={"title": "Acme"}, headers=tenant).json()
    user = api.client.post("/api/user?sendActivationMail=false", headers=tenant, json={
        "email": "bob@acme.test", "authority": "CUSTOMER_USER",
        "customerId": customer["id"]}).json()
    link = api.client.get(f"/api/user/{user['id']['id']}/activationLink", headers=tenant).text
    token = link.split("activateToken=")[1]
    pair = api.client.post("/api/noauth/activate", json={"activateToken": token,
                                                         "password": "pw1"})
    assert pair.status_code == 200 and "token" in pair.json()
    device = api.client.post("/api/device?accessToken=TOKEN123", headers=tenant,
                             json={"name": "Boxed", "type": "default"}).json()
    assert device["customerId"]["id"] == NULL_UUID
    credentials = api.client.get(f"/api/device/{device['id']['id']}/credentials",
                                 headers=tenant).json()
    assert credentials["credentialsId"] == "TOKEN123"
    saved = api.client.post(f"/api/plugins/telemetry/{device['id']['id']}/SERVER_SCOPE",
                            content=json.dumps({"claimingData": {"secretKey": "k",
                                                                 "expirationTime": 2**53}}),
                            headers={**tenant, "Content-Type": "text/plain"})
    assert saved.status_code == 200
    bob = api.login("bob@acme.test", "pw1")
    claimed = api.client.post("/api/customer/device/Boxed/claim", json={"secretKey": "k"},
                              headers=bob)
    assert claimed.json()["device"]["customerId"]["id"] == customer["id"]["id"]
    values = api.client.get(f"/api/plugins/telemetry/DEVICE/{device['id']['id']}/values/"
                            "attributes/SERVER_SCOPE", headers=tenant).json()
    assert values == []


def test_duplicate_device_name_is_400(api: Api) -> None:
    tenant = api.tenant
    assert api.client.post("/api/device", json={"name": "Same"}, headers=tenant).status_code \
        == 200
    assert_error(api.client.post("/api/device", json={"name": "Same"}, headers=tenant), 400, 31)


def test_device_http_claim_200_empty_401_no_body(api: Api, tb: Tb) -> None:
    device = tb.device()
    token = tb.service.access_token_of(device)
    ok = api.client.post(f"/api/v1/{token}/claim", json={"secretKey": "s", "durationMs": 1000})
    assert ok.status_code == 200 and ok.content == b""
    empty = api.client.post(f"/api/v1/{token}/claim")
    assert empty.status_code == 200
    bad = api.client.post("/api/v1/unknown-token/claim", json={})
    assert bad.status_code == 401 and bad.content == b""
    malformed = api.client.post(f"/api/v1/{token}/claim", content=b"[1]")
    assert malformed.status_code == 400 and malformed.content == b""


def test_fwsim_why_and_press_need_a_tenant_admin(api: Api, tb: Tb) -> None:
    device = tb.device()
    pressed: list[str] = []
    tb.service.buttons[device.name] = lambda: pressed.append(device.name)
    assert_error(api.client.post("/fwsim/devices/Dev 1/press", headers=api.a), 403, 20)
    assert api.client.post("/fwsim/devices/Dev 1/press", headers=api.tenant).status_code == 200
    assert pressed == ["Dev 1"]
    why = api.client.get("/fwsim/devices/Dev 1/why", headers=api.tenant).json()
    assert why["device"] == "Dev 1" and why["history"] == []
    assert_error(api.client.post("/fwsim/devices/Nope/press", headers=api.tenant), 404, 32)


def test_openapi_document_lists_the_claim_paths(api: Api) -> None:
    document = api.client.get("/openapi.json").json()
    assert "/api/customer/device/{deviceName}/claim" in document["paths"]
    assert "/api/v1/{deviceToken}/claim" in document["paths"]
    assert api.client.get("/v3/api-docs").json() == document


def test_unknown_route_is_error_json(api: Api) -> None:
    assert_error(api.client.get("/api/nothing/here"), 404, 32)


_API: list[tuple[Api, dict[str, str], str]] = []


@pytest.fixture(scope="module", autouse=True)
def _close_shared_api() -> Iterator[None]:
    yield
    for api, _, _ in _API:
        api.client.__exit__()
    _API.clear()


def shared_api() -> tuple[Api, dict[str, str], str]:
    if not _API:
        api = Api(make_tb())
        api.tb.device("Fuzz")
        _API.append((api, api.a, api.tb.service.access_token_of(api.tb.device("Fuzz 2"))))
    return _API[0]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["secretKey", "durationMs", "x"]), inner, max_size=3), max_leaves=6)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.one_of(st.binary(max_size=64), json_values.map(lambda v: json.dumps(v).encode())),
       content_type=st.sampled_from(["application/json", "text/plain", "", "application/xml"]),
       name=st.text(st.characters(min_codepoint=0x21, max_codepoint=0x2FF,
                                 blacklist_characters="/?#%\x7f"),
                    min_size=1, max_size=12))
def test_claim_bodies_never_give_an_unplanned_5xx(body: bytes, content_type: str,
                                                  name: str) -> None:
    api, headers, token = shared_api()
    request_headers = dict(headers)
    if content_type:
        request_headers["Content-Type"] = content_type
    response = api.client.post(f"/api/customer/device/{name}/claim", content=body,
                               headers=request_headers)
    assert response.status_code in (200, 400, 404, 415) or (
        response.status_code == 500 and not body)
    device = api.client.post(f"/api/v1/{token}/claim", content=body)
    assert device.status_code in (200, 400)
