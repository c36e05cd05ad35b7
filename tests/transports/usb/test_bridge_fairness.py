"""Fairness and backpressure of the USB bridge (QA: a LIST flood starved everyone else).

One 64 KiB read of LIST frames (13,107 of them, a 574-byte reply each) used to be handled in one
go: two flooding connections pushed the REST API's median latency to 3.5 s, and connections
that never read their replies grew the server's memory without bound; stalling CONTROL frames
each wrote a trace record as fast as they came.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time

import pytest

from firmware_sim.system import Device
from transports.accept import AcceptLimits
from transports.usb import UsbBridgeConnection
from transports.usb import bridge_protocol as bp
from transports.usb.bridge_server import BridgeLimits, UsbBridgeServer
from transports.usb.protocol import SetupPacket

from ..open_file_limit import FailingAccepts
from .conftest import DEVICE_ID, make_device
from .test_bridge_limits import bridge

LIST_BLOB = bp.encode_frame(bp.FrameKind.LIST) * (65536 // 5)


def _flood(host: str, port: int, stop: threading.Event, *, read: bool) -> socket.socket:
    """A thread sending 64 KiB of LIST frames at a time (reading and dropping the replies)."""
    sock = socket.create_connection((host, port))
    if not read:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(0.2)

    def send() -> None:
        while not stop.is_set():
            try:
                sock.sendall(LIST_BLOB)
            except TimeoutError:
                continue
            except OSError:
                return

    def drain() -> None:
        while not stop.is_set():
            try:
                if not sock.recv(1 << 20):
                    return
            except TimeoutError:
                continue
            except OSError:
                return

    threading.Thread(target=send, daemon=True).start()
    if read:
        threading.Thread(target=drain, daemon=True).start()
    return sock


def _run(body: object, limits: BridgeLimits) -> None:
    _, device, _ = make_device()

    async def main(device: Device = device) -> None:
        async with bridge(device, limits) as (server, host, port):
            await asyncio.wait_for(body(server, host, port), 30)  # type: ignore[operator]

    asyncio.run(main())


def test_a_list_flood_does_not_starve_another_client() -> None:
    async def body(server: UsbBridgeServer, host: str, port: int) -> None:
        stop = threading.Event()
        socks = [_flood(host, port, stop, read=True) for _ in range(2)]
        try:
            await asyncio.sleep(0.3)  # the floods are going
            latencies = []
            for _ in range(5):
                started = time.monotonic()
                connection = await UsbBridgeConnection.connect(f"{host}:{port}")
                [listed] = await connection.list_devices()
                latencies.append(time.monotonic() - started)
                assert listed["serialNumber"] == DEVICE_ID.upper()
                await connection.close()
                await asyncio.sleep(0.1)
            # unfair, one read of 13,107 LISTs was handled before anything else (~1 s each)
            assert max(latencies) < 0.5, latencies
        finally:
            stop.set()
            for sock in socks:
                sock.close()

    _run(body, BridgeLimits(idle_timeout_s=30.0))


def test_a_client_that_does_not_read_its_replies_is_not_served_then_closed() -> None:
    limits = BridgeLimits(idle_timeout_s=30.0, max_write_buffer=64 * 1024, write_timeout_s=1.0)

    async def body(server: UsbBridgeServer, host: str, port: int) -> None:
        stop = threading.Event()
        sock = _flood(host, port, stop, read=False)
        try:
            peak, samples_after = 0, 0
            deadline = time.monotonic() + 10  # first the kernel's socket buffers fill
            while samples_after < 8 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
                peak = max([peak, *server.unsent_reply_bytes()])
                samples_after += peak > 0
            # at most one turn's replies past the limit (16 LIST replies of 574 bytes)
            assert 0 < peak <= limits.max_write_buffer + limits.frames_per_turn * 600, peak
            # another client is still served meanwhile
            connection = await UsbBridgeConnection.connect(f"{host}:{port}")
            assert len(await connection.list_devices()) == 1
            await connection.close()
            # after write_timeout_s of unread replies the connection is closed
            deadline = time.monotonic() + 5
            while server.timed_out == 0 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert server.timed_out == 1
            assert server.unsent_reply_bytes() == []
        finally:
            stop.set()
            sock.close()

    _run(body, limits)


def test_stalled_transfers_are_paced_not_dropped() -> None:
    limits = BridgeLimits(idle_timeout_s=30.0, stalls_per_s=200.0, stall_burst=10)
    stalling = SetupPacket(0x41, 0x01, 0, 0, 0)  # a vendor request to an interface: stalled

    async def body(server: UsbBridgeServer, host: str, port: int) -> None:
        reader, writer = await asyncio.open_connection(host, port)
        decoder = bp.FrameDecoder()
        writer.write(bp.encode_open(DEVICE_ID))
        [opened] = decoder.feed(await asyncio.wait_for(reader.read(65536), 5))
        assert bp.decode_open_reply(opened.body)[0].name == "COMPLETED"
        started = time.monotonic()
        writer.write(b"".join(bp.encode_control(tag, stalling) for tag in range(110)))
        replies = []
        while len(replies) < 110:
            for frame in decoder.feed(await asyncio.wait_for(reader.read(65536), 5)):
                replies.append(bp.decode_control_reply(frame.body))
        elapsed = time.monotonic() - started
        assert {r.status.name for _, r in replies} == {"STALL"}
        assert [tag for tag, _ in replies] == list(range(110))
        assert elapsed >= (110 - 10) / 200.0 * 0.9, elapsed  # 10 at once, then 200 a second
        writer.close()

    _run(body, limits)



def test_accept_failing_at_the_open_file_limit_logs_one_line_and_recovers(
        caplog: pytest.LogCaptureFixture) -> None:
    limits = BridgeLimits(accept=AcceptLimits(retry_delay_s=0.001, log_interval_s=60.0))
    _, device, _ = make_device()

    async def main() -> None:
        accepts = FailingAccepts(100)
        async with bridge(device, limits) as (_, host, port):
            connection = await UsbBridgeConnection.connect(f"{host}:{port}")
            assert len(await asyncio.wait_for(connection.list_devices(), 10)) == 1
            await connection.close()
        assert accepts.left == 0

    with caplog.at_level(logging.WARNING):
        asyncio.run(main())
    lines = [r for r in caplog.records if "accept failed" in r.getMessage()]
    assert len(lines) == 1 and "USB bridge" in lines[0].getMessage()
    assert not any(r.exc_info for r in caplog.records)
