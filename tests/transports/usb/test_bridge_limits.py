"""Limits of the USB bridge (issue 14, finding 6: it never timed out idle connections).

Idle connections and half-sent frames are closed with an ERROR frame saying why; at the
connection cap a newcomer evicts an idle connection (or is refused when all are busy); one
connection cannot pile up delayed replies without bound.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from firmware_sim.kernel import AsyncioDriver
from firmware_sim.system import Device
from transports.usb import UsbBridgeConnection, attach_usb
from transports.usb import bridge_protocol as bp
from transports.usb.bridge_server import BridgeLimits, UsbBridgeServer
from transports.usb.protocol import SetupPacket

from .conftest import DEVICE_ID, make_device

LIMITS = BridgeLimits(max_connections=3, idle_timeout_s=0.4, frame_timeout_s=0.3,
                      max_pending_replies=4)


@asynccontextmanager
async def bridge(device: Device, limits: BridgeLimits = LIMITS
                 ) -> AsyncIterator[tuple[UsbBridgeServer, str, int]]:
    driver = AsyncioDriver(device.world)
    runner = asyncio.ensure_future(driver.run())
    server = UsbBridgeServer(lambda: [attach_usb(device)], sync=driver.sync, wake=driver.wake,
                             limits=limits)
    host, port = await server.start()
    try:
        yield server, host, port
    finally:
        await server.stop()
        driver.stop()
        await runner


def run(body: Callable[[UsbBridgeServer, str, int], Awaitable[None]],
        limits: BridgeLimits = LIMITS) -> None:
    _, device, _ = make_device()

    async def main() -> None:
        async with bridge(device, limits) as (server, host, port):
            await asyncio.wait_for(body(server, host, port), 20)

    asyncio.run(main())


async def error_frame(reader: asyncio.StreamReader, timeout: float = 5.0) -> str:
    """Read until the ERROR frame and the close; return its message."""
    decoder = bp.FrameDecoder()
    while True:
        chunk = await asyncio.wait_for(reader.read(65536), timeout)
        assert chunk, "closed without an ERROR frame"
        for frame in decoder.feed(chunk):
            if frame.kind == bp.FrameKind.ERROR:
                assert await asyncio.wait_for(reader.read(1), timeout) == b""  # then closed
                return frame.body.decode()


def test_idle_connections_and_slow_frames_are_closed() -> None:
    async def body(server: UsbBridgeServer, host: str, port: int) -> None:
        idle_reader, idle = await asyncio.open_connection(host, port)
        slow_reader, slow = await asyncio.open_connection(host, port)
        slow.write(bp.encode_frame(bp.FrameKind.LIST)[:3])  # a frame that never completes
        assert await error_frame(slow_reader) == "frame incomplete for too long"
        assert await error_frame(idle_reader) == "idle for too long"
        assert server.timed_out == 2
        idle.close()
        slow.close()

    run(body)


def test_at_the_cap_an_idle_connection_makes_room() -> None:
    async def body(server: UsbBridgeServer, host: str, port: int) -> None:
        idle = [await asyncio.open_connection(host, port) for _ in range(3)]
        await asyncio.sleep(0.05)
        connection = await UsbBridgeConnection.connect(f"{host}:{port}")
        [listed] = await connection.list_devices()
        assert listed["serialNumber"] == DEVICE_ID.upper()
        assert "make room" in await error_frame(idle[0][0])
        assert server.evicted == 1
        await connection.close()
        for _, writer in idle:
            writer.close()

    run(body, BridgeLimits(max_connections=3, idle_timeout_s=30.0))


def test_at_the_cap_with_busy_connections_a_newcomer_is_refused() -> None:
    async def body(server: UsbBridgeServer, host: str, port: int) -> None:
        busy = []
        for _ in range(2):  # each waits for a delayed TIMED_OUT reply: busy
            connection = await UsbBridgeConnection.connect(f"{host}:{port}")
            await connection.open(DEVICE_ID)
            connection._writer.write(bp.encode_control(
                1, SetupPacket(0x40, 0x50, 0, 302, 0), timeout_ms=3000))
            busy.append(connection)
        await asyncio.sleep(0.1)
        reader, writer = await asyncio.open_connection(host, port)
        assert "too many USB bridge connections" in await error_frame(reader)
        assert server.refused == 1
        writer.close()
        for connection in busy:
            await connection.close()

    run(body, BridgeLimits(max_connections=2, idle_timeout_s=30.0))


def test_delayed_replies_per_connection_are_bounded() -> None:
    async def body(server: UsbBridgeServer, host: str, port: int) -> None:
        reader, writer = await asyncio.open_connection(host, port)
        decoder = bp.FrameDecoder()
        writer.write(bp.encode_open(DEVICE_ID))
        [opened] = decoder.feed(await asyncio.wait_for(reader.read(65536), 5))
        assert bp.decode_open_reply(opened.body)[0].name == "COMPLETED"
        for tag in range(10):  # zero-length OUTs the P2 never completes: TIMED_OUT replies
            writer.write(bp.encode_control(tag, SetupPacket(0x40, 0x50, 0, 302, 0),
                                           timeout_ms=60_000))
        replies = []
        while len(replies) < 6:  # 4 are held (the cap); 6 are answered at once
            for frame in decoder.feed(await asyncio.wait_for(reader.read(65536), 5)):
                replies.append(bp.decode_control_reply(frame.body))
        assert [r.status.name for _, r in replies] == ["TIMED_OUT"] * 6
        writer.close()

    run(body, BridgeLimits(max_connections=4, idle_timeout_s=30.0, max_pending_replies=4))


def test_a_bad_frame_length_still_gets_its_error_frame() -> None:
    async def body(server: UsbBridgeServer, host: str, port: int) -> None:
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(struct.pack("<I", 0))
        assert "bad frame length" in await error_frame(reader)
        writer.close()

    run(body)
