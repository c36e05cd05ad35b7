"""Finding 6 of issue 14 on the SoftAP servers: a connection cap, idle and slow-request timeouts.

Real loopback sockets against ``serve_softap`` with small limits, the world at 10x wall speed:
idle connections beyond the cap are evicted (least recently active first) or, when every one
has a request executing, the newcomer is refused; a connection that sends nothing is closed
after ``idle_timeout_s`` wall seconds even when the world's request timeout is far away; a
slowloris that keeps trickling header bytes is closed by the request timeout; a well-behaved
client is served throughout.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from firmware_sim.kernel.realtime import AsyncioDriver
from firmware_sim.kernel.world import World
from firmware_sim.system.device import Device
from firmware_sim.system.radio import radio_environment
from firmware_sim.testbed.adapters import surface_for
from tests.waiting import until
from transports.softap import SoftApClient, softap_for
from transports.softap.edge import SoftApLimits, SoftApServer, serve_softap

from .conftest import HOME
from .test_client_sockets import Ctx

SPEED = 10.0

Check = Callable[[dict[str, SoftApServer], dict[str, int]], Awaitable[None]]


def run(check: Check, limits: SoftApLimits) -> None:
    async def main() -> None:
        world = World(8)
        radio_environment(world).add(HOME)
        device = Device(world, "photon", profile="photon")
        driver = AsyncioDriver(world, speed=SPEED)
        ctx = Ctx(world, driver, [surface_for(device)])
        device.power_on()
        runner = asyncio.ensure_future(driver.run())
        listeners: dict[str, SoftApServer] = {}
        try:
            handle = await serve_softap(ctx, surface_for(device), tcp_port=0, http_port=0,
                                        limits=limits, listeners=listeners)
            ports = {}
            for line in handle.lines[1:]:
                protocol = "tcp" if line.startswith("softap tcp") else "http"
                ports[protocol] = int(line.rsplit(":", 1)[1].strip("/"))
            try:
                assert await until(lambda: softap_for(surface_for(device)).active)
                await check(listeners, ports)
            finally:
                assert handle.stop is not None
                await handle.stop()
        finally:
            driver.stop()
            await runner

    asyncio.run(main())


async def _closed(reader: asyncio.StreamReader, timeout_s: float = 3.0) -> bool:
    try:
        while await asyncio.wait_for(reader.read(1024), timeout_s):
            pass
    except (TimeoutError, ConnectionError):
        return False
    return True


def test_idle_connections_beyond_the_cap_are_evicted_oldest_first() -> None:
    async def check(listeners: dict[str, SoftApServer], ports: dict[str, int]) -> None:
        for protocol in ("tcp", "http"):
            opened: list[Any] = []
            for _ in range(6):
                opened.append(await asyncio.open_connection("127.0.0.1", ports[protocol]))
            server = listeners[protocol]
            assert await until(lambda s=server: s.evicted == 2)  # type: ignore[misc]
            assert len(server.connections) == 4
            assert await _closed(opened[0][0]) and await _closed(opened[1][0])
            # the newest are still open, and a client is served
            client = SoftApClient("127.0.0.1", ports[protocol], protocol=protocol,
                                  timeout_s=5)
            assert await client.version() == 2
            for _, writer in opened:
                writer.close()

    run(check, SoftApLimits(max_connections=4))


def test_a_newcomer_is_refused_when_every_connection_is_busy() -> None:
    class Busy:
        busy = True

        def drop(self, reason: str) -> None:
            raise AssertionError("a busy connection is never evicted")

    server = SoftApServer("tcp", SoftApLimits(max_connections=2))
    first, second = Busy(), Busy()
    assert server.admit(first) and server.admit(second)  # type: ignore[arg-type]
    assert not server.admit(Busy())  # type: ignore[arg-type]
    assert server.refused == 1 and server.evicted == 0


def test_a_silent_connection_is_closed_after_the_idle_timeout() -> None:
    async def check(listeners: dict[str, SoftApServer], ports: dict[str, int]) -> None:
        loop = asyncio.get_running_loop()
        for protocol in ("tcp", "http"):
            started = loop.time()
            reader, writer = await asyncio.open_connection("127.0.0.1", ports[protocol])
            assert await _closed(reader)
            # well before the world's request timeout (10 virtual s = 1 wall s)
            assert loop.time() - started < 0.9
            assert listeners[protocol].idle_closed == 1
            writer.close()

    run(check, SoftApLimits(idle_timeout_s=0.3))


def test_a_slowloris_is_closed_by_the_request_timeout() -> None:
    async def check(listeners: dict[str, SoftApServer], ports: dict[str, int]) -> None:
        loop = asyncio.get_running_loop()
        for protocol, head in (("http", b"GET /version HTTP/1.1\r\nHost: x\r\nX-Slow: "),
                               ("tcp", b"version\n000000000000000000000000000000")):
            reader, writer = await asyncio.open_connection("127.0.0.1", ports[protocol])
            started = loop.time()
            closed = asyncio.ensure_future(_closed(reader, timeout_s=5))
            for byte in head:  # one byte every 50 ms: never idle, never complete
                if closed.done():
                    break
                writer.write(bytes([byte]))
                await asyncio.sleep(0.05)
            assert await closed
            # 10 virtual seconds at 10x: about a second, long before the head would complete
            assert 0.7 < loop.time() - started < 2.0
            writer.close()
            client = SoftApClient("127.0.0.1", ports[protocol], protocol=protocol,
                                  timeout_s=5)
            assert await client.version() == 2

    run(check, SoftApLimits())
