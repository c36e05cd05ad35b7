"""TCP connections as kernel stream links: bytes both ways, orderly close, refusal, failure."""

from __future__ import annotations

import asyncio

import pytest

from firmware_sim.kernel.errors import ConfigurationError
from firmware_sim.kernel.realtime import AsyncioDriver
from firmware_sim.kernel.stream import StreamEnd
from firmware_sim.kernel.world import World
from tests.waiting import until
from transports.tcp import TcpStreamListener, listen_tcp, tcp_connector


def test_echo_through_a_listener_and_a_connector_in_one_world() -> None:
    world = World(1)
    events: list[str] = []
    received = bytearray()

    def accept(end: StreamEnd, peer: str) -> None:
        events.append(f"accepted {peer.split(':')[0]}")

        def echo(data: bytes) -> None:
            end.write(data.upper())

        def eof() -> None:
            events.append("server eof")
            end.close()

        end.on_data = echo
        end.on_eof = eof

    async def main() -> None:
        driver = AsyncioDriver(world)
        runner = asyncio.ensure_future(driver.run())
        listener = TcpStreamListener(world, driver, "echo", accept, max_connections=1,
                                     on_refused=lambda peer: events.append("refused"))
        await listener.start("127.0.0.1", 0)
        ends: list[StreamEnd | None] = []
        connect = tcp_connector("127.0.0.1", listener.port, world, driver)
        connect(ends.append)
        assert await until(lambda: bool(ends), 5.0), "timed out"
        client = ends[0]
        assert client is not None
        client.on_data = received.extend
        client.on_eof = lambda: events.append("client eof")
        driver.sync()
        client.write(b"hello")
        driver.wake()
        assert await until(lambda: bytes(received) == b"HELLO", 5.0), "timed out"
        connect(ends.append)  # a second connection is above the limit
        assert await until(lambda: "refused" in events, 5.0), "timed out"
        driver.sync()
        client.close()
        driver.wake()
        assert await until(lambda: "server eof" in events, 5.0), "timed out"
        await listener.stop()
        driver.stop()
        await runner

    asyncio.run(main())
    assert events[0] == "accepted 127.0.0.1"
    assert world.trace.first("stream.data") is not None  # the bytes went through the World


def test_a_connector_hands_none_when_nobody_listens() -> None:
    world = World(2)
    sock = listen_tcp("127.0.0.1", 0)
    port = sock.getsockname()[1]
    sock.close()

    async def main() -> list[StreamEnd | None]:
        driver = AsyncioDriver(world)
        runner = asyncio.ensure_future(driver.run())
        ends: list[StreamEnd | None] = []
        tcp_connector("127.0.0.1", port, world, driver, timeout_s=2)(ends.append)
        assert await until(lambda: bool(ends), 5.0), "timed out"
        driver.stop()
        await runner
        return ends

    assert asyncio.run(main()) == [None]


def test_a_port_in_use_is_a_one_line_error() -> None:
    sock = listen_tcp("127.0.0.1", 0)
    try:
        with pytest.raises(ConfigurationError, match=r"cannot listen for MQTT on 127\.0\.0\.1"):
            listen_tcp("127.0.0.1", sock.getsockname()[1], "MQTT")
    finally:
        sock.close()
    with pytest.raises(ConfigurationError):
        TcpStreamListener(World(), None, "x", lambda end, peer: None,  # type: ignore[arg-type]
                          max_connections=0)


def test_at_the_cap_the_oldest_connection_not_logged_in_is_evicted() -> None:
    """Security QA: 2,050 connections that never complete an MQTT CONNECT kept real devices
    out. At the cap the oldest connection its protocol does not count as established is reset
    for the newcomer; only when all are established is the newcomer refused."""
    world = World(3)
    accepted: list[StreamEnd] = []
    logged_in: set[int] = set()  # indexes into accepted
    refused: list[str] = []

    def established(end: StreamEnd) -> bool:
        return accepted.index(end) in logged_in

    async def main() -> tuple[list[bytes], TcpStreamListener]:
        driver = AsyncioDriver(world)
        runner = asyncio.ensure_future(driver.run())
        listener = TcpStreamListener(world, driver, "mqtt", lambda end, peer: accepted.append(
            end), max_connections=3, on_refused=refused.append, established=established)
        await listener.start("127.0.0.1", 0)
        streams = []
        for count in range(3):
            streams.append(await asyncio.open_connection("127.0.0.1", listener.port))
            assert await until(lambda n=count: len(accepted) == n + 1, 5.0)
        logged_in.add(1)  # the second one logged in
        fourth = await asyncio.open_connection("127.0.0.1", listener.port)
        assert await until(lambda: len(accepted) == 4, 5.0)  # accepted: the first was evicted
        fifth = await asyncio.open_connection("127.0.0.1", listener.port)
        assert await until(lambda: len(accepted) == 5, 5.0)  # the third evicted
        logged_in.update({3, 4})  # all three open ones are logged in now
        sixth = await asyncio.open_connection("127.0.0.1", listener.port)
        assert await until(lambda: bool(refused), 5.0)
        outcomes = []
        for reader, _ in (*streams, fourth, fifth, sixth):
            try:
                outcomes.append(await asyncio.wait_for(reader.read(1), 0.5))  # b"": closed
            except ConnectionResetError:
                outcomes.append(b"reset")
            except TimeoutError:
                outcomes.append(b"open")
        for _, writer in (*streams, fourth, fifth, sixth):
            writer.close()
        await listener.stop()
        driver.stop()
        await runner
        return outcomes, listener

    outcomes, listener = asyncio.run(main())
    assert listener.evicted == 2 and listener.refused == 1 and len(accepted) == 5
    # evicted (reset or closed at once): the 1st, the 3rd and the refused 6th; still open
    # (nothing to read before the timeout): the 2nd, 4th and 5th
    assert [index for index, got in enumerate(outcomes) if got == b"open"] == [1, 3, 4]
