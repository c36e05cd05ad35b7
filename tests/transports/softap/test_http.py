"""The SoftAP HTTP front: pages, command replies, keep-alive, bad input (sans-IO on h11)."""

from __future__ import annotations

import json
from collections.abc import Callable

import h11
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transports.softap import SoftApOptions, encrypt_password, load_public_key

from .conftest import Photon, Probe, make_photon


def request(method: str, path: str, body: bytes | None = None, *,
            content_type: str = "application/x-www-form-urlencoded",
            version: str = "1.1", extra: str = "") -> bytes:
    head = f"{method} {path} HTTP/{version}\r\nHost: 192.168.0.1\r\n{extra}"
    if body is not None:
        head += f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + (body or b"")


def responses(raw: bytes, method: bytes = b"GET") -> list[tuple[h11.Response, bytes]]:
    """Parse the server's bytes with an h11 client (one response per request sent)."""
    client = h11.Connection(h11.CLIENT)
    out: list[tuple[h11.Response, bytes]] = []
    client.send(h11.Request(method=method, target="/", headers=[("Host", "x")]))
    client.send(h11.EndOfMessage())
    client.receive_data(raw)
    response: h11.Response | None = None
    body = b""
    while True:
        event = client.next_event()
        if event is h11.NEED_DATA or event is h11.PAUSED:
            break
        if isinstance(event, h11.Response):
            response, body = event, b""
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            assert response is not None
            out.append((response, body))
            if client.our_state is h11.DONE and client.their_state is h11.DONE:
                client.start_next_cycle()
                client.send(h11.Request(method=method, target="/", headers=[("Host", "x")]))
                client.send(h11.EndOfMessage())
        elif isinstance(event, h11.ConnectionClosed):
            break
    return out


def headers(response: h11.Response) -> dict[str, str]:
    return {k.decode().lower(): v.decode() for k, v in response.headers}


def one(photon: Photon, data: bytes, method: bytes = b"GET") -> tuple[h11.Response, bytes]:
    found = responses(bytes(photon.http(data).output), method)
    assert len(found) == 1, found
    return found[0]


def test_command_reply_is_chunked_json_with_cors(photon: Photon) -> None:
    probe = photon.http(request("GET", "/version"))
    raw = bytes(probe.output)
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Transfer-Encoding: chunked\r\n" in raw and b"\r\n7\r\n{\"v\":2}\r\n0\r\n\r\n" in raw
    response, body = responses(raw)[0]
    assert response.status_code == 200 and json.loads(body) == {"v": 2}
    assert headers(response) == {
        "content-type": "application/json", "transfer-encoding": "chunked",
        "cache-control": "no-store, no-cache, must-revalidate", "pragma": "no-cache",
        "access-control-allow-origin": "*"}
    assert not probe.closed  # HTTP/1.1 keep-alive


@pytest.mark.parametrize("path", ["/device-id", "/public-key", "/scan-ap", "/device-id?x=1"])
def test_get_commands(photon: Photon, path: str) -> None:
    response, body = one(photon, request("GET", path))
    assert response.status_code == 200
    reply = json.loads(body)
    assert {"/device-id": "id", "/public-key": "b", "/scan-ap": "scans",
            "/device-id?x=1": "c"}[path] in reply


def test_post_bodies_are_json_whatever_the_content_type(photon: Photon) -> None:
    body = json.dumps({"k": "cc", "v": "FROMHTTP"}).encode()
    response, reply = one(photon, request("POST", "/set", body))
    assert response.status_code == 200 and json.loads(reply) == {"r": 0}
    assert photon.device.claim.pending_code() == "FROMHTTP"
    body = json.dumps({"k": "cc", "v": "PLAINTEXT"}).encode()
    _, reply = one(photon, request("POST", "/set", body, content_type="text/plain"))
    assert json.loads(reply) == {"r": 0}


def test_configure_and_connect_over_http(photon: Photon) -> None:
    _, key_reply = one(photon, request("GET", "/public-key"))
    key = load_public_key(bytes.fromhex(json.loads(key_reply)["b"]))
    assert key is not None
    body = json.dumps({"idx": 0, "ssid": "HomeNet", "sec": 0x00400004, "ch": 6,
                       "pwd": encrypt_password(key, "home-pass-1")}).encode()
    _, reply = one(photon, request("POST", "/configure-ap", body))
    assert json.loads(reply) == {"r": 0}
    _, reply = one(photon, request("POST", "/connect-ap", b'{"idx":0}'))
    assert json.loads(reply) == {"r": 0}
    assert photon.world.run_until(lambda: photon.device.network.ready, 10)


@pytest.mark.parametrize("body", [b"{not json", b"", b'{"k":"cc","v":"x","q":"1"}'])
def test_unparseable_json_gets_an_empty_200(photon: Photon, body: bytes) -> None:
    response, reply = one(photon, request("POST", "/set", body))
    assert response.status_code == 200 and reply == b""
    assert headers(response)["content-type"] == "application/json"


def test_pages(photon: Photon) -> None:
    response, body = one(photon, request("GET", "/"))
    assert response.status_code == 301 and headers(response)["location"] == "/index"
    response, body = one(photon, request("GET", "/index"))
    assert response.status_code == 301 and headers(response)["location"] == "/hello"
    assert headers(response)["access-control-allow-origin"] == "*"
    response, body = one(photon, request("GET", "/hello"))
    assert response.status_code == 200 and body == b"Soft AP Setup\x00"
    assert headers(response)["content-type"] == "text/html"
    for path in ("/nothing", "/version/", "/VERSION", "/ant-internal", "/index.html"):
        response, body = one(photon, request("GET", path))
        assert response.status_code == 404 and body == b""


def test_head_request_has_no_body(photon: Photon) -> None:
    response, body = one(photon, request("HEAD", "/version"), method=b"HEAD")
    assert response.status_code == 200 and body == b""


def test_keep_alive_serves_several_requests(photon: Photon) -> None:
    probe = photon.http(request("GET", "/version") + request("GET", "/device-id")
                        + request("GET", "/nothing"))
    found = responses(bytes(probe.output))
    assert [r.status_code for r, _ in found] == [200, 200, 404]
    assert json.loads(found[0][1]) == {"v": 2}
    assert not probe.closed


def test_http_1_0_and_connection_close(photon: Photon) -> None:
    probe = photon.http(request("GET", "/version", version="1.0"))
    assert probe.closed and bytes(probe.output).endswith(b'{"v":2}')
    probe = photon.http(request("GET", "/version", extra="Connection: close\r\n"))
    assert probe.closed


def test_malformed_http_gets_400_and_close(photon: Photon) -> None:
    probe = photon.http(b"THIS IS NOT HTTP\r\n\r\n")
    assert probe.closed and bytes(probe.output).startswith(b"HTTP/1.1 400 ")
    probe = photon.http(b"GET /version HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n")
    assert probe.closed and bytes(probe.output).startswith(b"HTTP/1.1 400 ")
    probe = photon.http(b"GET /version HTTP/1.1\r\nX: " + b"a" * 10000 + b"\r\n\r\n")
    assert probe.closed and bytes(probe.output).startswith(b"HTTP/1.1 400 ")
    assert photon.reply("version") == {"v": 2}


def test_oversize_body_is_not_read(photon_factory: Callable[..., Photon]) -> None:
    photon = photon_factory(options=SoftApOptions(max_body_bytes=100))
    data = request("POST", "/set", b"x" * 5000)
    probe = photon.http(data[:400])
    response, body = responses(bytes(probe.output))[0]
    assert response.status_code == 200 and body == b""
    assert probe.closed


@pytest.mark.parametrize("path, status", [("/set", 200), ("/hello", 200), ("/nope", 404)])
def test_an_announced_oversize_body_is_answered_at_once(
        photon_factory: Callable[..., Photon], path: str, status: int) -> None:
    photon = photon_factory(options=SoftApOptions(max_body_bytes=100))
    probe = Probe()
    session = photon.softap.open_http(probe.send, probe.close)
    assert session is not None
    # only the head (and two body bytes) arrive: the length alone decides
    session.data_received(b"POST " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n"
                          b"Content-Length: 999999999\r\n\r\n{}")
    assert probe.closed  # no virtual time has passed
    response, body = responses(bytes(probe.output))[0]
    assert response.status_code == status
    assert (b"connection", b"close") in list(response.headers)
    assert path != "/set" or body == b""
    request_record = photon.world.trace.first("softap.http_request")
    assert request_record is not None and request_record.fields["too_large"] is True
    sent = bytes(probe.output)
    session.data_received(request("GET", "/version"))  # the rest of the input is ignored
    assert bytes(probe.output) == sent


def test_a_body_at_the_limit_is_read(photon_factory: Callable[..., Photon]) -> None:
    photon = photon_factory(options=SoftApOptions(max_body_bytes=100))
    body = json.dumps({"k": "cc", "v": "x" * 70}).encode().ljust(100)
    assert len(body) == 100
    data = request("POST", "/set", body)
    probe = Probe()
    session = photon.softap.open_http(probe.send, probe.close)
    assert session is not None
    session.data_received(data[:-1])
    assert probe.output == b"" and not probe.closed  # waiting for the last byte
    session.data_received(data[-1:])
    response, reply = responses(bytes(probe.output))[0]
    assert response.status_code == 200 and json.loads(reply) == {"r": 0}


def test_a_chunked_body_over_the_limit_is_not_read(photon_factory: Callable[..., Photon]
                                                   ) -> None:
    photon = photon_factory(options=SoftApOptions(max_body_bytes=100))
    probe = photon.http(b"POST /set HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                        b"Content-Length: 5\r\n\r\n80\r\n" + b"x" * 0x80, run_s=0.1)
    response, body = responses(bytes(probe.output))[0]
    assert response.status_code == 200 and body == b"" and probe.closed


def test_idle_and_silent_connections_time_out(photon: Photon) -> None:
    timeout = photon.softap.options.request_timeout_s
    silent = photon.http(b"", run_s=timeout - 1)
    assert not silent.closed
    partial = photon.http(b"GET /version HTTP/1.1\r\nHo", run_s=0.1)
    photon.world.run_for(1.5)
    assert silent.closed and silent.output == b""
    kept = photon.http(request("GET", "/version"), run_s=timeout + 1)
    assert kept.closed and b'{"v":2}' in kept.output  # idle after its response
    photon.world.run_for(timeout)
    assert partial.closed
    assert photon.softap.open_sessions == 0


def test_concurrent_http_clients(photon: Photon) -> None:
    probes = [Probe() for _ in range(4)]
    sessions = [photon.softap.open_http(p.send, p.close) for p in probes]
    paths = ["/version", "/scan-ap", "/device-id", "/public-key"]
    datas = [request("GET", p) for p in paths]
    for index in range(max(map(len, datas))):
        for session, data in zip(sessions, datas, strict=True):
            if index < len(data):
                assert session is not None
                session.data_received(data[index:index + 1])
    photon.world.run_for(2)
    bodies = [json.loads(responses(bytes(p.output))[0][1]) for p in probes]
    assert bodies[0] == {"v": 2} and "scans" in bodies[1] and "id" in bodies[2]
    assert bodies[3]["r"] == 0


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_break_the_http_server(data: bytes) -> None:
    photon = make_photon(seed=5)
    probe = photon.http(data, run_s=photon.softap.options.request_timeout_s + 2)
    assert probe.closed
    assert photon.softap.open_sessions == 0
    assert photon.reply("version") == {"v": 2}


def test_client_half_close(photon: Photon) -> None:
    probe = Probe()
    session = photon.softap.open_http(probe.send, probe.close)
    assert session is not None
    session.data_received(request("GET", "/version"))
    session.eof_received()
    photon.world.run_for(0.1)
    assert b'{"v":2}' in probe.output and probe.closed
    probe = Probe()
    session = photon.softap.open_http(probe.send, probe.close)
    assert session is not None
    session.data_received(b"GET /vers")
    session.eof_received()
    assert probe.closed
    assert photon.softap.open_sessions == 0
