"""Connection limits of the served REST API and the event-stream fan-out (issue 14, finding 6).

The finding: with an open-file limit of 1,024, 1,000 idle connections plus slowloris requests
denied service to everyone; 1,000 event streams made each device event block the server for
~42 ms. Now connections have a request-head deadline, a cap that evicts idle connections for
new ones, JSON answers for malformed HTTP, and a stream index whose cost per event does not
depend on idle streams (figures: benchmarks/bench_event_streams.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import subprocess
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from cloud_sim import Cloud, CloudEvent, DeviceRecord, Principal
from cloud_sim.connections import ConnectionLimits, effective_cap
from cloud_sim.http.fanout import (
    PUBLIC,
    StreamHub,
    StreamLimitError,
    device_key,
    owner_key,
    product_key,
)
from cloud_sim.server import CloudServer, ServerConfig
from firmware_sim.kernel import World

from .conftest import open_cloud

LIMITS = ConnectionLimits(max_connections=6, head_timeout_s=0.4, keep_alive_s=1.0)


def served(body: Callable[[CloudServer, str, int], Awaitable[None]],
           limits: ConnectionLimits = LIMITS, **api: Any) -> None:
    async def main() -> None:
        cloud = open_cloud(":memory:", seed=2, epoch=1_767_225_600)
        config = ServerConfig(http_port=0, coap_port=0, admin=True, limits=limits)
        for name, value in api.items():
            setattr(config.api, name, value)
        server = CloudServer(cloud, config)
        await server.start()
        try:
            await asyncio.wait_for(body(server, "127.0.0.1", server.http_port), 20)
        finally:
            await server.stop()
            cloud.store.close()

    asyncio.run(main())


async def read_all(reader: asyncio.StreamReader, timeout: float = 5.0) -> bytes:
    return await asyncio.wait_for(reader.read(65536), timeout)


def status_and_json(raw: bytes) -> tuple[int, Any]:
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body) if body else None


def test_a_silent_or_slowloris_connection_gets_408_and_is_closed() -> None:
    async def body(server: CloudServer, host: str, port: int) -> None:
        silent_reader, silent = await asyncio.open_connection(host, port)
        slow_reader, slow = await asyncio.open_connection(host, port)
        head = f"GET /v1/devices HTTP/1.1\r\nHost: {host}:{port}\r\n".encode()
        answers = {}
        for byte in head:  # one byte every 50 ms: the head never completes in time
            slow.write(bytes([byte]))
            try:
                answers["slow"] = await asyncio.wait_for(slow_reader.read(65536), 0.05)
                break  # the server answered (and closed)
            except TimeoutError:
                continue
        answers["silent"] = await read_all(silent_reader)
        for name, raw in answers.items():
            status, answer = status_and_json(raw)
            assert status == 408 and answer["error"] == "Request timeout", name
        assert await read_all(silent_reader) == b""  # closed
        assert server.connections.timed_out == 2
        silent.close()
        slow.close()

    served(body)


def test_the_head_deadline_starts_again_after_each_response() -> None:
    """A keep-alive connection that answered a request has head_timeout_s from that answer,
    not from when it opened, before it gets its 408."""
    async def body(server: CloudServer, host: str, port: int) -> None:
        reader, writer = await asyncio.open_connection(host, port)
        loop = asyncio.get_running_loop()
        for _ in range(2):  # two requests, each 0.3 s into a 0.4 s deadline
            await asyncio.sleep(0.3)
            writer.write(f"GET /v1/devices HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
            status, _ = status_and_json(await read_all(reader))
            assert status in (400, 401)  # no token: answered, not timed out
        answered = loop.time()
        status, answer = status_and_json(await read_all(reader))
        waited = loop.time() - answered
        assert status == 408 and answer["error"] == "Request timeout"
        assert 0.3 < waited < 2.0, waited
        assert server.connections.timed_out == 1
        writer.close()

    served(body)


def _user_post(host: str, port: int, body: bytes) -> tuple[bytes, bytes]:
    """A ``POST /v1/users`` head declaring ``body`` (and that body)."""
    head = (f"POST /v1/users HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    return head, body


def test_a_body_is_read_whole_at_once_late_in_pieces_or_answered_408() -> None:
    """Three ways a body arrives: with its head in one packet (read in one go), after the head
    in pieces (read as a stream), or not in time (408, and the connection stays usable)."""
    async def body(server: CloudServer, host: str, port: int) -> None:
        reader, writer = await asyncio.open_connection(host, port)
        head, payload = _user_post(host, port, b'{"username":"a@x.io","password":"pw"}')
        writer.write(head + payload)  # one packet; a second request pipelined behind it
        writer.write(b"".join(_user_post(host, port, b'{"username":"a@x.io"}')))
        raw = b""
        while raw.count(b"HTTP/1.1 ") < 2 or not raw.endswith(b"}"):
            raw += await read_all(reader)
        first, _, second = raw.partition(b"HTTP/1.1 400")
        assert status_and_json(first)[0] == 200 and b"password" in second

        head, payload = _user_post(host, port, b'{"username":"b@x.io","password":"pw"}')
        writer.write(head)
        for start in range(0, len(payload), 10):  # the body later, in pieces
            await asyncio.sleep(0.02)
            writer.write(payload[start:start + 10])
        status, answer = status_and_json(await read_all(reader))
        assert status == 200 and answer["ok"] is True

        head, payload = _user_post(host, port, b'{"username":"c@x.io","password":"pw"}')
        writer.write(head + payload[:5])  # the rest never comes
        status, answer = status_and_json(await read_all(reader))
        assert status == 408 and "did not arrive within 0.3 s" in answer["error_description"]
        writer.close()

    served(body, ConnectionLimits(max_connections=6, head_timeout_s=5.0), body_timeout_s=0.3)


def test_x_forwarded_for_does_not_change_the_client_address() -> None:
    """No proxy stands in front of the emulator, so a loopback client's ``X-Forwarded-For`` is
    not believed (uvicorn's default would take it from 127.0.0.1)."""
    from cloud_sim.serving import bind_tcp, start_uvicorn

    async def echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": scope["client"][0].encode()})

    async def main() -> str:
        sock = bind_tcp("127.0.0.1", 0)
        server, task = await start_uvicorn(echo, sock, name="echo", log_level="error")
        try:
            async with httpx.AsyncClient() as http:
                answer = await http.get(f"http://127.0.0.1:{sock.getsockname()[1]}/",
                                        headers={"X-Forwarded-For": "203.0.113.9"})
                return answer.text
        finally:
            server.should_exit = True
            await task

    assert asyncio.run(main()) == "127.0.0.1"


def test_at_the_cap_a_new_connection_evicts_an_idle_one() -> None:
    async def body(server: CloudServer, host: str, port: int) -> None:
        idle = [await asyncio.open_connection(host, port) for _ in range(6)]
        await asyncio.sleep(0.05)
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as http:
            created = await http.post("/v1/users", json={"username": "u@x.io",
                                                         "password": "pw"})
            assert created.status_code == 200
        status, answer = status_and_json(await read_all(idle[0][0]))
        assert status == 408 and "make room" in answer["error_description"]
        assert server.connections.evicted >= 1
        for _, writer in idle:
            writer.close()

    served(body, ConnectionLimits(max_connections=6, head_timeout_s=5.0))


def test_at_the_cap_with_busy_connections_newcomers_get_503_and_streams_are_capped() -> None:
    async def body(server: CloudServer, host: str, port: int) -> None:
        admin = {"X-Fwsim-Admin-Token": server.admin_token or ""}
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}", headers=admin) as http:
            users = [{"username": f"s{i}@x.io", "password": "pw"} for i in range(6)]
            seeded = (await http.post("/fwsim/seed", json={"users": users})).json()
        tokens = [seeded["users"][u["username"]]["access_token"] for u in users]
        streams = []
        for token in tokens[:2]:  # a token may hold one stream (max_streams_per_token=1)
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(f"GET /v1/devices/events HTTP/1.1\r\nHost: {host}:{port}\r\n"
                         f"Authorization: Bearer {token}\r\n\r\n".encode())
            assert b" 200 " in await read_all(reader)
            streams.append((reader, writer))
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(f"GET /v1/devices/events HTTP/1.1\r\nHost: {host}:{port}\r\n"
                     f"Authorization: Bearer {tokens[0]}\r\n\r\n".encode())
        status, answer = status_and_json(await read_all(reader))
        assert status == 429 and answer["error"] == "Too many event streams"
        writer.close()
        for token in tokens[2:4]:
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(f"GET /v1/devices/events HTTP/1.1\r\nHost: {host}:{port}\r\n"
                         f"Authorization: Bearer {token}\r\n\r\n".encode())
            assert b" 200 " in await read_all(reader)
            streams.append((reader, writer))
        # four streams (busy) + two connections in use: the cap (6) has no idle connection
        others = [await asyncio.open_connection(host, port) for _ in range(2)]
        for reader, writer in others:
            writer.write(f"GET /v1/devices/events HTTP/1.1\r\nHost: {host}:{port}\r\n"
                         f"Authorization: Bearer {tokens[4 + others.index((reader, writer))]}"
                         "\r\n\r\n".encode())
            assert b" 200 " in await read_all(reader)
        reader, writer = await asyncio.open_connection(host, port)
        status, answer = status_and_json(await read_all(reader))
        assert status == 503 and answer["error"] == "Service unavailable"
        assert server.connections.refused == 1
        for _, w in [*streams, *others, (reader, writer)]:
            w.close()

    served(body, ConnectionLimits(max_connections=6, head_timeout_s=5.0),
           max_streams_per_token=1)


@pytest.mark.parametrize("request_bytes", [
    b"GARBAGE\r\n\r\n",
    b"GET /v1/\xff\xfe HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\nContent-Length: x\r\n\r\n",
])
def test_malformed_http_gets_the_json_error_shape(request_bytes: bytes) -> None:
    async def body(server: CloudServer, host: str, port: int) -> None:
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(request_bytes)
        status, answer = status_and_json(await read_all(reader))
        assert status == 400 and answer["ok"] is False and answer["error"] == "Bad request"
        writer.close()

    served(body)


def test_the_cap_fits_the_open_file_limit() -> None:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert effective_cap(ConnectionLimits(max_connections=10**6)) == max(8, soft - 128)
    assert effective_cap(ConnectionLimits(max_connections=5)) == 5


def _limited(limit: int) -> Callable[[], None]:
    return lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))


def test_idle_and_slowloris_connections_at_the_fd_limit_do_not_deny_service() -> None:
    """The reproduction of finding 6, scaled down: open-file limit 256, 300 idle connections
    and 50 slowloris heads; every legitimate request is still answered at once."""
    proc = subprocess.Popen([sys.executable, "-m", "firmware_sim.cli", "cloud", "serve",
                             "--http", "0", "--coap", "0", "--db", ":memory:", "--for", "30"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            preexec_fn=_limited(256), env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert proc.stdout is not None
        url = ""
        for line in proc.stdout:
            url = line.split()[4] if "REST API" in line else url
            if "ready" in line:
                break
        host, port = url.split("//")[1].split(":")

        async def attack() -> int:
            idle = [await asyncio.open_connection(host, int(port)) for _ in range(300)]
            slow = [await asyncio.open_connection(host, int(port)) for _ in range(50)]
            for _, writer in slow:
                writer.write(b"GET /v1/devices HTTP/1.1\r\n")
            answered = 0
            async with httpx.AsyncClient(base_url=url, timeout=3) as http:
                for i in range(5):
                    for _, writer in slow:
                        writer.write(b"X")
                    response = await http.post("/v1/users", json={"username": f"u{i}@x.io",
                                                                  "password": "pw"})
                    answered += response.status_code == 200
            for _, writer in [*idle, *slow]:
                writer.close()
            return answered

        assert asyncio.run(attack()) == 5
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


# -- event streams ------------------------------------------------------------------------------


def _hub() -> tuple[Cloud, StreamHub]:
    cloud = Cloud(World(1))
    cloud.store.put_device(DeviceRecord("a" * 24, owner=Principal.user("alice"), product_id=7))
    cloud.store.put_device(DeviceRecord("b" * 24, owner=Principal.customer("bob")))
    return cloud, StreamHub(cloud, queue_size=10, max_streams=10_000, max_per_token=10_000)


def _event(device: str | None, name: str = "temp", public: bool = False) -> CloudEvent:
    return CloudEvent(name, "21", device, 0, public=public)


def test_streams_get_the_events_they_follow() -> None:
    async def main() -> None:
        cloud, hub = _hub()
        mine = hub.open([owner_key(Principal.user("alice"))], None, "t1")
        public = hub.open([PUBLIC, owner_key(Principal.customer("bob"))], None, "t2")
        device = hub.open([device_key("b" * 24)], "te", "t3")
        product = hub.open([product_key(7)], None, "t4")
        product_device = hub.open([product_key(7, "a" * 24)], None, "t5")
        for event in (_event("a" * 24), _event("b" * 24), _event("c" * 24, public=True),
                      _event("b" * 24, "other", public=True), _event(None, public=True)):
            cloud.bus.publish(event)

        def names(stream: Any) -> list[tuple[str, str]]:
            got = []
            while not stream.queue.empty():
                event = stream.queue.get_nowait()
                got.append(((event.device_id or "-")[0], event.name))
            return got

        assert names(mine) == [("a", "temp")]
        assert sorted(names(public)) == sorted([("b", "temp"), ("c", "temp"), ("b", "other"),
                                                ("-", "temp")])
        assert names(device) == [("b", "temp")]  # prefix "te"
        assert names(product) == names(product_device) == [("a", "temp")]
        hub.close(mine)
        assert len(hub) == 4

    asyncio.run(main())


def test_the_cost_of_an_event_does_not_depend_on_idle_streams() -> None:
    async def main() -> None:
        cloud, hub = _hub()
        for i in range(3000):  # other users' streams: idle for this device's events
            hub.open([owner_key(Principal.user(f"u{i}"))], None, f"t{i}")
        follower = hub.open([device_key("a" * 24)], None, "follower")
        for _ in range(100):
            cloud.bus.publish(_event("a" * 24))
        assert hub.visited == 100 and hub.delivered == 100
        assert follower.queue.qsize() == 10  # bounded: the oldest were dropped

    asyncio.run(main())


def test_stream_caps() -> None:
    async def main() -> None:
        cloud = Cloud(World(1))
        hub = StreamHub(cloud, max_streams=3, max_per_token=2)
        hub.open([PUBLIC], None, "a")
        hub.open([PUBLIC], None, "a")
        with pytest.raises(StreamLimitError, match="per token"):
            hub.open([PUBLIC], None, "a")
        third = hub.open([PUBLIC], None, "b")
        with pytest.raises(StreamLimitError, match="at most 3"):
            hub.open([PUBLIC], None, "c")
        hub.close(third)
        hub.open([PUBLIC], None, "c")

    asyncio.run(main())
