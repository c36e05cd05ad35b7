"""The direct lane (``cloud_sim.http.direct``) answers exactly as FastAPI's request handling does.

Two clouds from the same seed, one app with the lane and one without, get the same generated
requests - good and bad tokens, bodies of every content type, malformed bytes, lone surrogates,
query strings - and must give byte-identical answers (status, headers, body) and traces."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.requests import Request
from starlette.responses import Response

from cloud_sim import Cloud
from cloud_sim.http import create_app
from cloud_sim.http.direct import DirectEndpoints, qualifies
from cloud_sim.store import MemoryStore
from firmware_sim.kernel import World

from .conftest import DEVICE, FREE_DEVICE, SEED

Answer = tuple[int, list[tuple[bytes, bytes]], bytes]


async def _call(app: Any, method: str, path: str, query: bytes,
                headers: list[tuple[bytes, bytes]], body: bytes) -> Answer:
    scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
             "http_version": "1.1", "server": ("127.0.0.1", 8080),
             "client": ("127.0.0.1", 5555), "scheme": "http", "method": method,
             "root_path": "", "path": path, "raw_path": path.encode(), "query_string": query,
             "headers": [(b"host", b"127.0.0.1:8080"), *headers], "state": {}}
    sent: list[dict[str, Any]] = []
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = sent[0]
    return (start["status"], list(start.get("headers", [])),
            b"".join(m.get("body", b"") for m in sent[1:]))


class Pair:
    """The same cloud twice: ``direct`` with the lane, ``plain`` without."""

    def __init__(self) -> None:
        self.clouds = [Cloud(World(7), store=MemoryStore()) for _ in range(2)]
        self.direct = create_app(self.clouds[0])
        self.plain = create_app(self.clouds[1], direct_endpoints=False)
        self.loop = asyncio.new_event_loop()
        seeded = self.both("POST", "/fwsim/seed", b"",
                           [(b"content-type", b"application/json")],
                           json.dumps(SEED).encode())
        body = json.loads(seeded[2])
        self.tokens = [body["users"]["dev@acme.io"]["access_token"],
                       body["customers"]["a@cust.io"]["access_token"]]

    def both(self, method: str, path: str, query: bytes, headers: list[tuple[bytes, bytes]],
             body: bytes) -> Answer:
        direct = self.loop.run_until_complete(
            _call(self.direct, method, path, query, headers, body))
        plain = self.loop.run_until_complete(
            _call(self.plain, method, path, query, headers, body))
        assert direct == plain, (method, path, query, headers, body)
        traces = [list(cloud.world.trace.records) for cloud in self.clouds]
        assert traces[0] == traces[1]
        return direct


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    made = Pair()
    yield made
    made.loop.close()


# the lane's routes, minus event streams (they never end) and password-hashing account
# creation (slow); plus a route with a parameter and an unknown path, which go the usual way
ROUTES = [("POST", "/v1/devices"), ("GET", "/v1/devices"), ("POST", "/v1/device_claims"),
          ("POST", "/oauth/token"), ("GET", "/v1/user"), ("GET", "/v1/products"),
          ("GET", "/v1/access_tokens/current"), ("DELETE", "/v1/access_tokens/current"),
          ("GET", "/fwsim/claim_codes"), ("POST", "/fwsim/claim_codes/expire"),
          ("GET", "/fwsim/state"), ("GET", "/fwsim/outbox"),
          ("GET", f"/v1/devices/{DEVICE}"), ("GET", "/v1/no-such-thing"),
          # unknown first segments (answered without the walk), near misses and the root
          ("GET", "/no-such-thing"), ("POST", "/wp-login.php"), ("GET", "/v1x/devices"),
          ("GET", "/v1"), ("GET", "/v1/"), ("GET", "/"), ("GET", "//v1/devices"),
          ("DELETE", "/oauth/"), ("GET", "/openapi.jsonx"), ("GET", "/fwsim"),
          ("POST", "/v1/devices/"), ("GET", "/\u00e9t\u00e9/x"),
          # routes with parameters (the prefiltered walk), a 405 and a redirect among them
          ("PUT", f"/v1/devices/{DEVICE}"), ("DELETE", f"/v1/devices/{FREE_DEVICE}"),
          ("PATCH", f"/v1/devices/{DEVICE}"), ("GET", f"/v1/devices/{DEVICE}/"),
          ("GET", "/v1/products/acme"), ("GET", "/v1/products/4242/customers"),
          ("GET", "/v1/products/acme/team"), ("POST", "/v1/products/nope/team"),
          ("GET", "/fwsim/sessions"), ("GET", f"/fwsim/devices/{DEVICE}")]
TEXT = st.one_of(st.sampled_from(["", DEVICE, FREE_DEVICE, DEVICE.upper(), "true", "0",
                                  "password", "client_credentials", "\ud800", "x" * 70]),
                 st.text(max_size=12))
VALUES = st.one_of(TEXT, st.integers(-3, 10**20), st.booleans(), st.none(),
                   st.lists(st.integers(), max_size=2))
PARAMS = st.dictionaries(st.sampled_from(["id", "request_transfer", "iccid", "grant_type",
                                          "username", "password", "access_token",
                                          "expires_in", "claim_code"]), VALUES, max_size=4)


@st.composite
def requests(draw: st.DrawFn, tokens: list[str]) -> tuple[str, str, bytes,
                                                          list[tuple[bytes, bytes]], bytes]:
    method, path = draw(st.sampled_from(ROUTES))
    headers: list[tuple[bytes, bytes]] = []
    token = draw(st.sampled_from([None, *tokens, "f" * 40, "", "not a token"]))
    if token is not None:
        scheme = draw(st.sampled_from(["Bearer ", "bearer ", "Basic ", ""]))
        headers.append((b"authorization", (scheme + token).encode()))
    params = draw(PARAMS)
    kind = draw(st.sampled_from(["json", "form", "none", "raw", "multipart"]))
    body = b""
    if kind == "json":
        headers.append((b"content-type", b"application/json"))
        body = json.dumps(params).encode()
    elif kind == "form":
        headers.append((b"content-type", b"application/x-www-form-urlencoded"))
        body = "&".join(f"{quote(k)}={quote(str(v), errors='surrogatepass')}"
                        for k, v in params.items()).encode()
    elif kind == "raw":
        content_type = draw(st.sampled_from([b"application/json", b"text/plain",
                                             b"application/x-www-form-urlencoded"]))
        headers.append((b"content-type", content_type))
        body = draw(st.binary(max_size=40))
    elif kind == "multipart":
        headers.append((b"content-type", b"multipart/form-data; boundary=b"))
        body = draw(st.sampled_from([b"--b\r\nContent-Disposition: form-data; name=\"id\"\r\n"
                                     b"\r\n" + DEVICE.encode() + b"\r\n--b--\r\n", b"--b\r\n"]))
    if body:
        headers.append((b"content-length", str(len(body)).encode()))
    query = draw(st.sampled_from([b"", b"request_transfer=true", b"%zz=1", b"a=1&a=2",
                                  f"access_token={tokens[0]}".encode()]))
    return method, path, query, headers, body


def test_the_404_shortcut_sees_later_routes_and_steps_aside_for_included_routers() -> None:
    """The shortcut's answer is the walk's (the Hypothesis test below compares them); a route
    added after the app was made is found, a parameter anywhere is matched by its regex, and an
    included router (matched through FastAPI's per-request contexts) turns the shortcut off."""
    from fastapi import APIRouter
    from starlette.routing import Route

    async def hello(request: Request) -> Response:
        return Response(b"hello")

    app = create_app(Cloud(World(1), store=MemoryStore()))
    loop = asyncio.new_event_loop()
    try:
        def get(path: str) -> Answer:
            return loop.run_until_complete(_call(app, "GET", path, b"", [], b""))

        status, _, body = get("/late")
        assert status == 404 and json.loads(body)["error"] == "Not Found"
        app.router.routes.append(Route("/late", hello))
        assert get("/late")[0::2] == (200, b"hello")
        app.router.routes.append(Route("/{anything}/x", hello))
        assert get("/whatever/x")[0::2] == (200, b"hello")
        assert get("/nothing-here")[0] == 404
        static = app.router.middleware_stack
        assert static._route_regexes() is not None  # the shortcut is on
        included = APIRouter(prefix="/inc")
        included.add_api_route("/here", hello, methods=["GET"])
        app.include_router(included)  # matched through per-request contexts: the walk
        assert static._route_regexes() is None
        assert get("/inc/here")[0::2] == (200, b"hello")
        assert get("/nothing-here")[0] == 404
    finally:
        loop.close()


def test_the_lane_serves_the_busy_routes() -> None:
    table = DirectEndpoints(create_app(Cloud(World(1), store=MemoryStore()))).table
    for route in [("POST", "/v1/devices"), ("GET", "/v1/devices"),
                  ("POST", "/v1/device_claims"), ("POST", "/oauth/token")]:
        assert route in table
    assert not any("{" in path for _, path in table)


def test_an_endpoint_with_fastapi_parameters_does_not_qualify() -> None:
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/plain")
    async def plain(request: Request) -> Response:
        return Response()

    @app.get("/query")
    async def with_query(request: Request, q: int = 0) -> Response:
        return Response()

    @app.get("/sync")
    def sync(request: Request) -> Response:
        return Response()

    table = DirectEndpoints(app).table
    assert ("GET", "/plain") in table
    assert ("GET", "/query") not in table and ("GET", "/sync") not in table
    assert all(qualifies(route) for route in table.values())


@settings(max_examples=150, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_same_answers_with_and_without_the_lane(pair: Pair, data: st.DataObject) -> None:
    for method, path, query, headers, body in data.draw(
            st.lists(requests(pair.tokens), min_size=1, max_size=4)):
        status, _, answer = pair.both(method, path, query, headers, body)
        assert status < 500, answer
