"""Bad input at the REST API: always a clear JSON error, never a 500, nothing corrupted."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud_sim import Cloud
from cloud_sim.http import ApiConfig, create_app
from cloud_sim.http.client import AsgiApiClient

from .conftest import DEVICE, SLUG, Tokens


def raw(api: AsgiApiClient, method: str, path: str, content: bytes | list[bytes],
        content_type: str | None, token: str | None = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if content_type is not None:
        headers["Content-Type"] = content_type
    response = api.request_raw(method, path, headers=headers, content=content)
    return response.status_code, response.json() if response.content else None


@pytest.mark.parametrize("body", [b"{", b"{\"id\": }", b"\xff\xfe", b"[" * 100_00,
                                  b"{\"id\": 1e999999999}", b"{\"id\": \"\\ud800\"}"])
def test_malformed_json_is_a_400(api: AsgiApiClient, tokens: Tokens, body: bytes) -> None:
    status, answer = raw(api, "POST", "/v1/devices", body, "application/json", tokens.b)
    assert status in (400, 404), answer  # 404: a lone surrogate parses, as an unknown id
    assert isinstance(answer, dict) and answer["ok"] is False


def test_malformed_form_and_multipart_are_400(api: AsgiApiClient, tokens: Tokens) -> None:
    status, answer = raw(api, "POST", "/v1/devices", b"id=%ff%fe",
                         "application/x-www-form-urlencoded", tokens.b)
    assert (status, answer) == (400, {"ok": False, "error": "Malformed form body",
                                      "error_description": "Malformed form body"})
    many = b"&".join(b"k%d=v" % i for i in range(1000))
    assert raw(api, "POST", "/v1/devices", many, "application/x-www-form-urlencoded",
               tokens.b)[0] == 400
    status, answer = raw(api, "POST", "/v1/products/4242/devices", b"--x\r\ngarbage",
                         "multipart/form-data; boundary=x", tokens.dev)
    assert status == 400
    status, answer = raw(api, "POST", "/oauth/token", b"grant_type=password&%zz",
                         "application/x-www-form-urlencoded")
    assert status in (400, 401) and isinstance(answer, dict)


def test_multipart_import_file(api: AsgiApiClient, tokens: Tokens) -> None:
    body = (b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"ids.txt\"\r\n"
            b"Content-Type: text/plain\r\n\r\ne00fce68aabbccddeeff0055\r\n--XyZ--\r\n")
    status, answer = raw(api, "POST", f"/v1/products/{SLUG}/devices", body,
                         "multipart/form-data; boundary=XyZ", tokens.dev)
    assert (status, answer) == (200, {"updated": 1, "nonmemberDeviceIds": [],
                                      "invalidDeviceIds": []})


def test_wrong_types_are_400(api: AsgiApiClient, tokens: Tokens) -> None:
    for body in ({"id": 12}, {"id": ["x"]}, {"id": DEVICE, "request_transfer": "maybe"},
                 {"id": DEVICE, "request_transfer": 3}, {"id": None}):
        status, answer = api.request("POST", "/v1/devices", token=tokens.b, json=body)
        assert status == 400 and answer["ok"] is False, body
    assert api.request("GET", "/v1/products/4242/devices?per_page=0", token=tokens.dev)[0] == 400
    assert api.request("GET", "/v1/products/4242/devices?page=x", token=tokens.dev)[0] == 400
    assert api.request("GET", "/v1/devices?access_token=%ff")[0] == 400


def test_oversized_bodies_are_413(cloud: Cloud, tokens: Tokens) -> None:
    with AsgiApiClient(create_app(cloud, config=ApiConfig(max_body_bytes=1024))) as api:
        big = json.dumps({"id": DEVICE, "pad": "x" * 2000}).encode()
        status, answer = raw(api, "POST", "/v1/devices", big, "application/json", tokens.b)
        assert status == 413 and answer["error"] == "Request body too large"
        chunks = [b"{\"pad\": \"" + b"x" * 600, b"x" * 600, b"\"}"]
        status, answer = raw(api, "POST", "/v1/devices", chunks, "application/json", tokens.b)
        assert status == 413
        assert api.request("POST", "/v1/devices", token=tokens.b, json={"id": DEVICE})[0] == 403


def test_unknown_ids_do_not_leak(api: AsgiApiClient, tokens: Tokens) -> None:
    unknown = "e00fce68aabbccddeeff9999"
    for method in ("GET", "PUT", "DELETE"):
        theirs = api.request(method, f"/v1/devices/{DEVICE}", token=tokens.c, json={})
        missing = api.request(method, f"/v1/devices/{unknown}", token=tokens.c, json={})
        assert theirs == missing and theirs[0] == 403
    # an unclaimed developer device that is offline answers like an unknown id
    assert api.request("POST", "/v1/devices", token=tokens.b, json={"id": unknown}) == \
        api.request("POST", "/v1/devices", token=tokens.c, json={"id": DEVICE.replace(
            "0011", "0077")})


JSONISH = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                       lambda inner: st.lists(inner, max_size=3)
                       | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                       max_leaves=8)
ENDPOINTS = [("POST", "/v1/devices"), ("POST", "/v1/device_claims"),
             ("POST", f"/v1/products/{SLUG}/device_claims"), ("POST", "/oauth/token"),
             ("POST", "/v1/users"), ("POST", f"/v1/products/{SLUG}/customers"),
             ("POST", f"/v1/products/{SLUG}/devices"), ("PUT", f"/v1/devices/{DEVICE}"),
             ("DELETE", f"/v1/products/{SLUG}/devices/{DEVICE}"), ("POST", "/fwsim/seed"),
             ("POST", "/fwsim/claim_codes/expire")]


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(endpoint=st.sampled_from(ENDPOINTS),
       body=st.one_of(JSONISH.map(lambda v: ("application/json", json.dumps(v).encode())),
                      st.dictionaries(st.text(max_size=10), st.text(max_size=20), max_size=4)
                      .map(lambda d: ("application/x-www-form-urlencoded",
                                      "&".join(f"{k}={v}" for k, v in d.items()).encode())),
                      st.binary(max_size=64).map(lambda b: (None, b))),
       who=st.sampled_from(["dev", "a", "b", "none"]))
def test_fuzzed_bodies_never_cause_a_server_error(
        api: AsgiApiClient, tokens: Tokens, endpoint: tuple[str, str],
        body: tuple[str | None, bytes], who: str) -> None:
    token = getattr(tokens, who, None)
    status, answer = raw(api, endpoint[0], endpoint[1], body[1], body[0], token)
    assert status < 500 and isinstance(answer, dict | list | None)
    assert answer is not None or status == 204
