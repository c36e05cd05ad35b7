"""No input makes the REST API answer 5xx (issue 14, finding 5).

First the reproductions of the finding - one per root cause, on both stores - then a
property-based sweep over every operation of the OpenAPI document with strategies aimed at what
broke it: lone surrogates, non-ASCII digits, huge numbers, deep and large bodies, every body
encoding. Every answer must be below 500 and, when an error, JSON of the API's shapes.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud_sim import Cloud
from cloud_sim.http import create_app
from cloud_sim.http.client import AsgiApiClient
from cloud_sim.http.params import has_lone_surrogate, is_ascii_digits
from firmware_sim.kernel import World

from .conftest import CLIENT, DEVICE, FREE_DEVICE, OTHER_DEVICE, SEED, SLUG, Tokens

SURROGATE = "\ud800"


def send(api: AsgiApiClient, method: str, path: str, *, token: str | None = None,
         body: Any = None, form: str | None = None) -> tuple[int, Any]:
    """Send exact bytes: JSON with ``\\uXXXX`` escapes (a lone surrogate survives), or a form."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    content = b""
    if body is not None:
        headers["Content-Type"] = "application/json"
        content = json.dumps(body).encode()
    elif form is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        content = form.encode()
    response = api.request_raw(method, path, headers=headers, content=content)
    return response.status_code, response.json() if response.content else None


def assert_api_error(status: int, body: Any, expected: int = 400) -> None:
    assert status == expected, body
    assert isinstance(body, dict) and isinstance(body.get("error"), str), body


# -- the reproductions of finding 5 --------------------------------------------------------------


def test_a_unicode_digit_in_a_product_path_is_not_a_server_error(api: AsgiApiClient,
                                                                  tokens: Tokens) -> None:
    status, body = send(api, "GET", "/v1/products/%C2%B2", token=tokens.dev)
    assert_api_error(status, body, 404)  # "²" is not a product id (nor a slug)
    status, body = send(api, "GET", f"/v1/products/{SLUG}/devices?per_page=%C2%B2",
                        token=tokens.dev)
    assert_api_error(status, body)


def test_a_unicode_digit_in_expires_in_is_a_400(api: AsgiApiClient, tokens: Tokens) -> None:
    status, body = send(api, "POST", "/oauth/token", form=(
        "grant_type=password&username=dev%40acme.io&password=dev-pw&client_id=particle"
        "&client_secret=particle&expires_in=%C2%B2"))
    assert status == 400 and body["error"] == "invalid_request"


@pytest.mark.parametrize("case", [
    "user password", "device notes", "team username", "client secret", "device import id",
    "seed username", "seed password", "event data", "claim id"])
def test_a_lone_surrogate_is_a_400_not_a_500(api: AsgiApiClient, tokens: Tokens,
                                             case: str) -> None:
    requests: dict[str, tuple[str, str, str | None, Any]] = {
        "user password": ("POST", "/v1/users", None,
                          {"username": "new@x.io", "password": SURROGATE}),
        "device notes": ("PUT", f"/v1/devices/{OTHER_DEVICE}", tokens.other,
                         {"notes": "a" + SURROGATE}),
        "team username": ("POST", f"/v1/products/{SLUG}/team", tokens.dev,
                          {"username": SURROGATE + "@x.io"}),
        "client secret": ("POST", f"/v1/products/{SLUG}/customers", None,
                          {"email": "z@cust.io", "password": "pw", "client_id": CLIENT[0],
                           "client_secret": SURROGATE}),
        "device import id": ("POST", f"/v1/products/{SLUG}/devices", tokens.dev,
                             {"id": FREE_DEVICE[:-1] + SURROGATE}),
        "seed username": ("POST", "/fwsim/seed", None,
                          {"users": [{"username": SURROGATE, "password": "pw"}]}),
        "seed password": ("POST", "/fwsim/seed", None,
                          {"users": [{"username": "s@x.io", "password": SURROGATE}]}),
        "event data": ("POST", f"/fwsim/devices/{DEVICE}/events", None,
                       {"name": "x", "data": SURROGATE}),
        "claim id": ("POST", "/v1/devices", tokens.b, {"id": SURROGATE}),
    }
    method, path, token, body = requests[case]
    status, answer = send(api, method, path, token=token, body=body)
    assert_api_error(status, answer)
    assert "surrogate" in answer["error"]


def test_text_helpers() -> None:
    assert is_ascii_digits("0123") and not is_ascii_digits("²") and not is_ascii_digits("١٢")
    assert not is_ascii_digits("") and not is_ascii_digits("12a")
    assert has_lone_surrogate("a\udfffb") and not has_lone_surrogate("é€😀")


def test_the_sqlite_store_refuses_unstorable_values_with_a_usage_error() -> None:
    from cloud_sim.model import DeviceRecord
    from cloud_sim.sqlite_store import SqliteStore
    from cloud_sim.store import StoreInputError

    store = SqliteStore(":memory:")
    with pytest.raises(StoreInputError):
        store.put_device(DeviceRecord("e00f" + "00" * 10, notes=SURROGATE))
    with pytest.raises(StoreInputError):
        store.put_device(DeviceRecord("e00f" + "00" * 10, platform_id=2**70))
    with pytest.raises(StoreInputError):
        store.find_user(SURROGATE)
    assert store.find_product("²") is None and store.list_devices() == []
    store.close()


# -- every operation, generated input ------------------------------------------------------------

CLOUD = Cloud(World(3))
APP = create_app(CLOUD)
with AsgiApiClient(APP) as _client:
    _seeded = _client.request("POST", "/fwsim/seed", json=SEED)[1]
TOKEN = _seeded["users"]["dev@acme.io"]["access_token"]
DEV = CLOUD.store.find_user("dev@acme.io")
assert DEV is not None


def fresh_token() -> str:
    """A new token of the team member (a generated DELETE may revoke the one it used)."""
    from cloud_sim.model import Principal

    return CLOUD.issue_tokens(Principal.user(DEV.id), "particle").access.token
#: every operation but the event streams (GET: they never end by design; test_server.py,
#: test_limits.py and the socket campaign in benchmarks/fuzz_rest.py reads their first bytes)
OPERATIONS = sorted((method.upper(), path) for path, ops in APP.openapi()["paths"].items()
                    for method in ops
                    if "/events" not in path or path.startswith("/fwsim") or method != "get")

NASTY_TEXT = st.one_of(
    st.sampled_from(["", "²", "١٢", "𝟗", "0" * 40, "9" * 25, "-1", "1e999", SURROGATE,
                     "a" + SURROGATE + "b", "\udfff", "\x00", "%", "..", "NaN", DEVICE, SLUG,
                     "4242", "dev@acme.io", "true", " " * 3]),
    st.text(max_size=40),
    st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF,
                                   exclude_categories=()), min_size=1, max_size=3),
)
NASTY_VALUE = st.recursive(
    st.one_of(NASTY_TEXT, st.integers(min_value=-(2**70), max_value=2**70), st.booleans(),
              st.none(), st.floats(allow_nan=False, allow_infinity=False)),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(NASTY_TEXT, inner, max_size=4)),
    max_leaves=12)
FIELD_NAMES = st.sampled_from(["id", "username", "password", "email", "notes", "name", "data",
                               "client_id", "client_secret", "grant_type", "expires_in",
                               "expires_at", "scope", "refresh_token", "request_transfer",
                               "per_page", "page", "file", "code", "all", "token", "users",
                               "products", "customers", "devices", "no_password", "deny"])
PATH_SEGMENT = st.one_of(
    st.sampled_from(["%C2%B2", "%D9%A1%D9%A2", "%ED%A0%80", "%FF", "99999999999999999999",
                     DEVICE, DEVICE.upper(), SLUG, "4242", "dev%40acme.io", "approve", "deny",
                     "x" * 300, "%00", "current"]),
    st.text(alphabet="abcdefxyz0123456789-_.~", min_size=1, max_size=30))


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, str, dict[str, Any], bytes]:
    method, template = draw(st.sampled_from(OPERATIONS))
    path = re.sub(r"\{[^}]+\}", lambda _: draw(PATH_SEGMENT), template)
    if draw(st.booleans()):
        key, value = draw(FIELD_NAMES), draw(PATH_SEGMENT)
        path += f"?{key}={value}"
    headers: dict[str, Any] = {}
    token = draw(st.sampled_from(["fresh", "fresh", None, "0" * 40, "²" * 40]))
    if token == "fresh":
        token = fresh_token()
    if token is not None:  # latin-1: a header carries bytes, "²" is 0xB2
        headers["Authorization"] = f"Bearer {token}".encode("latin-1")
    kind = draw(st.sampled_from(["json", "json", "form", "raw", "none"]))
    body = b""
    if kind == "json":
        document = draw(st.dictionaries(FIELD_NAMES, NASTY_VALUE, max_size=5)
                        | NASTY_VALUE)
        headers["Content-Type"] = "application/json"
        body = json.dumps(document).encode()  # ensure_ascii: lone surrogates as \\uXXXX
    elif kind == "form":
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        pairs = draw(st.lists(st.tuples(FIELD_NAMES, PATH_SEGMENT), max_size=5))
        body = "&".join(f"{k}={v}" for k, v in pairs).encode()
    elif kind == "raw":
        headers["Content-Type"] = draw(st.sampled_from([
            "application/json", "text/plain", "multipart/form-data; boundary=x",
            "application/x-www-form-urlencoded", "application/octet-stream"]))
        body = draw(st.binary(max_size=200) | st.sampled_from(
            [b"[" * 5000, b"{\"id\": 1e999999}", b"{\"a\": NaN}", b"\xed\xa0\x80",
             b"{\"id\": " + b"9" * 5000 + b"}"]))
    return method, path, headers, body


@pytest.fixture(scope="module")
def shared_api() -> Any:
    with AsgiApiClient(APP) as api:
        yield api


@settings(max_examples=400, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(request=requests())
def test_no_generated_request_makes_a_server_error(
        shared_api: AsgiApiClient, request: tuple[str, str, dict[str, Any], bytes]) -> None:
    method, path, headers, body = request
    response = shared_api.request_raw(method, path, headers=headers, content=body)
    assert response.status_code < 500, (request, response.text)
    if response.status_code >= 400:
        answer = response.json()
        assert isinstance(answer, dict) and ("error" in answer or "errors" in answer), answer
