"""The loopback TCP bridge: framing, the Python client over real sockets, hostile frames."""

from __future__ import annotations

import asyncio
import json
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
from hypothesis import given
from hypothesis import strategies as st

from control_requests.requests import ControlReply
from firmware_sim.kernel import AsyncioDriver, PeerProtocolError
from firmware_sim.system import Device
from transports.usb import (
    BridgeUsbClient,
    UsbBridgeConnection,
    UsbBridgeError,
    UsbBridgeServer,
    UsbDeviceNotFound,
    attach_usb,
)
from transports.usb import bridge_protocol as bp
from transports.usb.protocol import SetupPacket, init_request
from transports.usb.transfer import TransferResult, TransferStatus

from .conftest import DEVICE_ID, make_device


def test_frame_codec_round_trip_and_split_feeding() -> None:
    setup = SetupPacket(0x40, 3, 0, 1, 3)
    frames = (bp.encode_frame(bp.FrameKind.LIST) + bp.encode_open("ABC", 7)
              + bp.encode_control(9, setup, b"xyz", 1234)
              + bp.encode_control_reply(9, TransferResult.completed(b"hi")))
    decoder = bp.FrameDecoder()
    decoded = [frame for i in range(len(frames)) for frame in decoder.feed(frames[i:i + 1])]
    assert [f.kind for f in decoded] == [0x01, 0x02, 0x03, 0x83]
    assert bp.decode_open(decoded[1].body) == (7, "ABC")
    control = bp.decode_control(decoded[2].body)
    assert (control.tag, control.timeout_ms, control.setup, control.data) == (9, 1234, setup,
                                                                              b"xyz")
    assert bp.decode_control_reply(decoded[3].body) == (9, TransferResult.completed(b"hi"))
    assert frames[:5] == bytes([1, 0, 0, 0, 1])  # u32 LE length (kind + body), kind


@pytest.mark.parametrize("raw", [b"\x00\x00\x00\x00", struct.pack("<I", bp.MAX_FRAME_SIZE + 1),
                                 b"\xff\xff\xff\xff\x03"])
def test_bad_frame_lengths(raw: bytes) -> None:
    with pytest.raises(PeerProtocolError):
        bp.FrameDecoder().feed(raw)


@pytest.mark.parametrize("body", [
    b"",  # shorter than tag + timeout + setup
    struct.pack("<II", 1, 0) + bytes(7),
    struct.pack("<II", 1, 0) + SetupPacket(0xC0, 1, 0, 1, 64).pack() + b"x",  # IN with data
    struct.pack("<II", 1, 0) + SetupPacket(0x40, 3, 0, 1, 4).pack() + b"abcdef",  # > wLength
    struct.pack("<II", 1, 0) + SetupPacket(0x40, 3, 0, 1, 4).pack() + b"ab",  # < wLength
])
def test_malformed_control_frames(body: bytes) -> None:
    with pytest.raises(PeerProtocolError):
        bp.decode_control(body)


@given(st.binary(max_size=200))
def test_decoder_never_crashes(raw: bytes) -> None:
    decoder = bp.FrameDecoder()
    try:
        for frame in decoder.feed(raw):
            if frame.kind == bp.FrameKind.CONTROL:
                bp.decode_control(frame.body)
            elif frame.kind == bp.FrameKind.OPEN:
                bp.decode_open(frame.body)
    except PeerProtocolError:
        pass


@asynccontextmanager
async def served(device: Device) -> AsyncIterator[tuple[str, UsbBridgeServer]]:
    driver = AsyncioDriver(device.world)
    runner = asyncio.ensure_future(driver.run())
    server = UsbBridgeServer(lambda: [attach_usb(device)], sync=driver.sync, wake=driver.wake)
    host, port = await server.start()
    try:
        yield f"{host}:{port}", server
    finally:
        await server.stop()
        driver.stop()
        await runner


def run(body: Callable[[str, UsbBridgeServer, Device], Awaitable[None]],
        profile: str = "p2") -> Device:
    _, device, _ = make_device(profile)

    async def main() -> None:
        async with served(device) as (address, server):
            await asyncio.wait_for(body(address, server, device), 20)

    asyncio.run(main())
    return device


def test_python_client_over_the_bridge() -> None:
    async def body(address: str, server: UsbBridgeServer, device: Device) -> None:
        client = await BridgeUsbClient.connect(address)
        try:
            assert client.usb.device_id == DEVICE_ID
            assert client.usb.firmware_version == "6.2.0"
            assert await client.is_claimed() is False
            await client.set_claim_code("BRIDGED")
            assert await client.get_device_id() == DEVICE_ID
            assert await client.send_raw(1, bytes(5000)) == ControlReply(0, bytes(5000))
            assert (await client.raw_in(20)).data == DEVICE_ID.upper().encode()
        finally:
            await client.aclose()
        assert device.claim.pending_code() == "BRIDGED"
        assert server.transfers > 10

    run(body)


def test_listing_and_opening() -> None:
    async def body(address: str, server: UsbBridgeServer, device: Device) -> None:
        connection = await UsbBridgeConnection.connect(address)
        try:
            [listed] = await connection.list_devices()
            assert listed["serialNumber"] == DEVICE_ID.upper()
            assert (listed["vendorId"], listed["productId"]) == (0x2B04, 0xC020)
            assert listed["quirks"] == ["controlOutTransfersRequireDataStage"]
            with pytest.raises(UsbDeviceNotFound):
                await connection.open("E00F00000000000000000000")
            # CONTROL before a successful OPEN: no device
            result = await connection.control(init_request(1))
            assert result.status is TransferStatus.NO_DEVICE
            epoch = await connection.open(DEVICE_ID)  # case-insensitive
            assert epoch == listed["epoch"]
            result = await connection.control(SetupPacket(0xC0, 0x50, 0, 30, 64))
            assert result == TransferResult.completed(b"6.2.0")
            stall = await connection.control(SetupPacket(0xC0, 9, 0, 0, 64))
            assert stall.status is TransferStatus.STALL
            # the P2 never completes a zero-length OUT: answered TIMED_OUT after the timeout
            late = await connection.control(SetupPacket(0x40, 0x50, 0, 302, 0), timeout_ms=100)
            assert late.status is TransferStatus.TIMED_OUT
        finally:
            await connection.close()
        with pytest.raises(UsbDeviceNotFound):
            await BridgeUsbClient.connect(address, device_id="e00f00000000000000000000")

    run(body)


@pytest.mark.parametrize("garbage", [
    struct.pack("<I", bp.MAX_FRAME_SIZE + 10) + b"\x03",  # oversize
    struct.pack("<I", 0),  # empty frame
    bp.encode_frame(0x42, b"?"),  # unknown kind
    bp.encode_frame(bp.FrameKind.CONTROL, b"\x01\x02"),  # short
    bp.encode_frame(bp.FrameKind.OPEN, b"\x00\x00\x00\x00\xff\xfe"),  # serial not UTF-8
    bp.encode_frame(bp.FrameKind.CONTROL, struct.pack("<II", 1, 0)
                    + SetupPacket(0x40, 3, 0, 1, 10).pack() + b"more than announced!!"),
])
def test_hostile_frames_get_an_error_and_a_closed_connection(garbage: bytes) -> None:
    async def body(address: str, server: UsbBridgeServer, device: Device) -> None:
        host, port = address.split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(garbage)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 5)  # until the bridge closes
        frames = bp.FrameDecoder().feed(answer)
        assert [f.kind for f in frames] == [bp.FrameKind.ERROR]
        assert frames[0].body
        writer.close()
        # nothing corrupted: a fresh client works
        client = await BridgeUsbClient.connect(address)
        assert await client.send_raw(1, b"ok") == ControlReply(0, b"ok")
        await client.aclose()

    run(body)


def test_client_sees_a_bridge_error() -> None:
    async def body(address: str, server: UsbBridgeServer, device: Device) -> None:
        connection = await UsbBridgeConnection.connect(address)
        connection._writer.write(bp.encode_frame(0x55))
        await connection._writer.drain()
        with pytest.raises(UsbBridgeError, match="unknown frame kind"):
            await connection.list_devices()
        assert (await connection.control(init_request(1))).status is TransferStatus.ERROR
        await connection.close()

    run(body)


def test_connect_failures() -> None:
    async def main() -> None:
        with pytest.raises(UsbBridgeError, match="cannot connect"):
            await UsbBridgeConnection.connect("127.0.0.1:1", timeout_s=2)

    asyncio.run(main())
    from transports.usb import parse_address

    assert parse_address("5555") == ("127.0.0.1", 5555)
    assert parse_address("localhost:80") == ("localhost", 80)
    for bad in ("x:y", "1.2.3.4:0", "h:70000"):
        with pytest.raises(Exception, match="invalid bridge address"):
            parse_address(bad)


def test_listing_json_is_compact_and_versioned() -> None:
    async def body(address: str, server: UsbBridgeServer, device: Device) -> None:
        host, port = address.split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(bp.encode_frame(bp.FrameKind.LIST))
        await writer.drain()
        header = await reader.readexactly(5)
        (length,) = struct.unpack_from("<I", header)
        body_bytes = await reader.readexactly(length - 1)
        listing = json.loads(body_bytes)
        assert listing["version"] == 1 and listing["devices"][0]["index"] == 0
        writer.close()

    run(body)


def test_the_bridge_host_asks_for_5000_ms_per_transfer(monkeypatch: pytest.MonkeyPatch) -> None:
    """particle-usb's 5000 ms per-transfer timeout travels in every CONTROL frame."""
    seen: list[int] = []
    original = bp.decode_control

    def recording(body: bytes) -> bp.ControlFrame:
        frame = original(body)
        seen.append(frame.timeout_ms)
        return frame

    monkeypatch.setattr("transports.usb.bridge_server.decode_control", recording)

    async def body(address: str, server: UsbBridgeServer, device: Device) -> None:
        client = await BridgeUsbClient.connect(address)
        try:
            assert await client.is_claimed() is False
        finally:
            await client.aclose()

    run(body)
    assert seen and set(seen) == {5000}
