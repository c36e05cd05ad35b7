"""Eviction at the connection cap by what a connection is doing (``cloud_sim.connections``).

The finding (security QA of ``fwsim up``): 530 connections each sending ``POST /v1/users`` with
``Content-Length: 1000`` and one body byte - reconnecting after each 408 - kept the REST API
answering 503 to a legitimate ``GET /openapi.json`` (20/20 tries over 10 s), because at the cap
only connections with no request in progress could be evicted and a request whose body is still
arriving counted as busy. Now such a connection is evicted too, after idle and slow-head ones;
a request received whole and an event stream are still never evicted. Both HTTP protocols.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from importlib.util import find_spec
from typing import Any

import httpx
import pytest

from cloud_sim.connections import ConnectionLimits
from cloud_sim.server import CloudServer, ServerConfig

from .conftest import open_cloud

PROTOCOLS = [
    "h11",
    pytest.param("httptools", marks=pytest.mark.skipif(find_spec("httptools") is None,
                                                       reason="httptools is not installed")),
]
Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]


def served(protocol: str, limits: ConnectionLimits,
           body: Callable[[CloudServer, str, int], Awaitable[None]]) -> None:
    async def main() -> None:
        cloud = open_cloud(":memory:", seed=2, epoch=1_767_225_600)
        server = CloudServer(cloud, ServerConfig(http_port=0, coap_port=0, admin=True,
                                                 limits=limits, http_protocol=protocol))
        await server.start()
        try:
            await asyncio.wait_for(body(server, "127.0.0.1", server.http_port), 20)
        finally:
            await server.stop()
            cloud.store.close()

    asyncio.run(main())


def slow_body_head(host: str, port: int) -> bytes:
    """A request head announcing a 1,000-byte body, and its first byte."""
    return (f"POST /v1/users HTTP/1.1\r\nHost: {host}:{port}\r\n"
            "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{").encode()


async def answer_of(reader: asyncio.StreamReader) -> tuple[int, Any]:
    raw = await asyncio.wait_for(reader.read(65536), 5)
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body) if body else None


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_client_is_served_during_a_slow_body_flood(protocol: str) -> None:
    cap = 8

    async def body(server: CloudServer, host: str, port: int) -> None:
        stop = asyncio.Event()
        answers: list[int] = []

        async def attacker() -> None:  # one body byte, then wait; again after each answer
            while not stop.is_set():
                reader, writer = await asyncio.open_connection(host, port)
                try:
                    writer.write(slow_body_head(host, port))
                    answers.append((await answer_of(reader))[0])
                except ConnectionError:
                    pass
                finally:
                    writer.close()

        attackers = [asyncio.create_task(attacker()) for _ in range(cap + 4)]
        while len(server.connections.open) < cap or not answers:
            await asyncio.sleep(0.01)  # the cap is full of slow bodies and churning
        served_ok = []
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as http:
            for _ in range(10):
                reply = await http.get("/openapi.json", headers={"Connection": "close"})
                served_ok.append(reply.status_code)
                await asyncio.sleep(0.02)
        stop.set()
        for task in attackers:
            task.cancel()
        await asyncio.gather(*attackers, return_exceptions=True)
        assert served_ok == [200] * 10
        assert set(answers) == {408} and server.connections.refused == 0

    served(protocol, ConnectionLimits(max_connections=cap, head_timeout_s=5.0), body)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_at_the_cap_idle_goes_first_then_a_slow_head_then_a_slow_body_never_a_stream(
        protocol: str) -> None:
    async def body(server: CloudServer, host: str, port: int) -> None:
        admin = {"X-Fwsim-Admin-Token": server.admin_token or ""}
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}", headers=admin) as http:
            seeded = (await http.post("/fwsim/seed", json={
                "users": [{"username": "s@x.io", "password": "pw"}]})).json()
        token = seeded["users"]["s@x.io"]["access_token"]
        stream = await asyncio.open_connection(host, port)
        stream[1].write(f"GET /v1/devices/events HTTP/1.1\r\nHost: {host}:{port}\r\n"
                        f"Authorization: Bearer {token}\r\n\r\n".encode())
        assert b" 200 " in await asyncio.wait_for(stream[0].read(65536), 5)
        # least recently active first: the slow body, the slow head, the silent one
        slow_body = await asyncio.open_connection(host, port)
        slow_body[1].write(slow_body_head(host, port))
        await asyncio.sleep(0.05)
        slow_head = await asyncio.open_connection(host, port)
        slow_head[1].write(f"GET /openapi.json HTTP/1.1\r\nHost: {host}".encode())
        silent = await asyncio.open_connection(host, port)
        await asyncio.sleep(0.9)  # past new_grace_s: the silent one is idle
        newcomers: list[Streams] = []

        async def newcomer_evicts(victim: Streams, doing: str) -> None:
            newcomers.append(await asyncio.open_connection(host, port))
            status, answer = await answer_of(victim[0])
            assert (status, answer["error_description"]) == (
                408, f"closed to make room for another connection ({doing})")

        await newcomer_evicts(silent, "it was idle")
        await newcomer_evicts(slow_head, "its request head was still arriving")
        # the newcomers have sent nothing either, but they are new (new_grace_s)
        await newcomer_evicts(slow_body, "its request body was still arriving")
        await newcomer_evicts(newcomers[0], "it had sent nothing yet")
        assert server.connections.evicted == 4 and server.connections.refused == 0
        reader, writer = newcomers[-1]  # the API goes on serving after the evictions
        writer.write(f"GET /openapi.json HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
        assert (await asyncio.wait_for(reader.readline(), 5)).startswith(b"HTTP/1.1 200 ")
        with contextlib.suppress(TimeoutError):  # the stream stays open (no EOF)
            assert await asyncio.wait_for(stream[0].read(65536), 0.1) != b""
        for _, w in [stream, slow_body, slow_head, silent, *newcomers]:
            w.close()

    served(protocol, ConnectionLimits(max_connections=4, head_timeout_s=5.0, new_grace_s=0.8),
           body)
