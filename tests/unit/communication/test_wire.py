from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_sim.communication import wire
from firmware_sim.communication.wire import CoapMessage, CoapType, HandshakeType, RecordType
from firmware_sim.kernel.errors import PeerProtocolError


def test_hello_layout_is_device_os_big_endian() -> None:
    hello = wire.Hello(product_id=32, product_version=0xFFFF, flags=int(wire.DEFAULT_HELLO_FLAGS),
                       platform_id=32, device_id=bytes.fromhex("e00fce68aabbccddeeff0011"),
                       system_version=6200, max_message_size=1100, max_binary_size=0x180000,
                       ota_chunk_size=512)
    raw = hello.encode()
    assert raw[:8] == struct.pack(">HHHH", 32, 0xFFFF, 0x36, 32)
    assert raw[8:10] == b"\x00\x0c"  # reserved 0, device id length 12
    assert raw[10:22] == bytes.fromhex("e00fce68aabbccddeeff0011")
    assert raw[22:] == struct.pack(">HHIH", 6200, 1100, 0x180000, 512)
    assert wire.Hello.decode(raw) == hello
    assert int(wire.DEFAULT_HELLO_FLAGS) == 0x02 | 0x04 | 0x10 | 0x20


def test_hello_flags_for_each_platform() -> None:
    """``Protocol::hello`` (OTA_PROTOCOL_V3 under ``HAL_PLATFORM_OTA_PROTOCOL_V3``) and
    ``system_cloud_internal.cpp`` (COMPRESSED_OTA under ``HAL_PLATFORM_COMPRESSED_OTA`` with a
    bootloader >= 1000)."""
    assert wire.hello_flags_for(32, 2300) == 0x02 | 0x04 | 0x10 | 0x20 | 0x40 | 0x80
    assert wire.hello_flags_for(12, 1000) == 0xF6
    assert wire.hello_flags_for(32, 999) == 0xB6  # an old bootloader: no compressed OTA
    assert wire.hello_flags_for(6, 2300) == wire.DEFAULT_HELLO_FLAGS  # Photon: neither


def test_event_uris() -> None:
    assert wire.event_uri("spark/device/claim/code", True) == ("E", "spark/device/claim/code")
    assert wire.event_uri("x", False) == ("e", "x")
    assert ord(wire.URI_PRIVATE_EVENT) == 0x45 and ord(wire.URI_PUBLIC_EVENT) == 0x65
    assert wire.parse_event_uri(("E", "a/b")) == ("a/b", True)
    assert wire.parse_event_uri(("h",)) is None


def test_coap_round_trip() -> None:
    msg = CoapMessage(CoapType.CON, wire.POST, 0x1234, b"\x07", ("E", "spark/device/session/end"),
                      b"", None)
    assert CoapMessage.decode(msg.encode()) == msg
    rst = CoapMessage(CoapType.RST, wire.EMPTY, 9)
    assert rst.encode() == bytes([0x70, 0x00, 0x00, 0x09])


def test_records() -> None:
    sid = b"\x01" * 8
    rec = wire.decode_record(wire.encode_app_data(sid, b"\x40\x00\x00\x01"))
    assert rec.type is RecordType.APPLICATION_DATA and rec.session_id == sid
    hello = wire.decode_record(wire.encode_handshake(HandshakeType.CLIENT_HELLO, b"\x00" * 12))
    assert hello.subtype == HandshakeType.CLIENT_HELLO
    for bad in (b"", b"\x99", b"\x16\x01short", b"\x17" + b"\x00" * 5, b"\x16\x63",
                b"\x17" * 1501):
        with pytest.raises(PeerProtocolError):
            wire.decode_record(bad)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_datagrams_only_raise_peer_protocol_errors(data: bytes) -> None:
    try:
        record = wire.decode_record(data)
    except PeerProtocolError:
        return
    if record.type is RecordType.APPLICATION_DATA:
        with contextlib.suppress(PeerProtocolError):
            CoapMessage.decode(record.body)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=40))
def test_arbitrary_hello_payloads(data: bytes) -> None:
    with contextlib.suppress(PeerProtocolError):
        wire.Hello.decode(data)
