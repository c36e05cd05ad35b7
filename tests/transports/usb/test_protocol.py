"""Setup packets, service replies, descriptors and the platform table (device-os.md §4)."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_sim.kernel.errors import PeerProtocolError, UsageError
from transports.usb import protocol as p
from transports.usb.descriptors import (
    DeviceDescriptor,
    UsbDescriptors,
    decode_string_descriptor,
    encode_string_descriptor,
)
from transports.usb.platforms import QUIRK_OUT_DATA_STAGE, platform_for_usb_ids


def test_constants_match_device_os() -> None:
    assert [t.value for t in p.ServiceType] == [1, 2, 3, 4, 5]
    assert {s.name: s.value for s in p.ServiceStatus} == {
        "OK": 0, "ERROR": 1, "PENDING": 2, "BUSY": 3, "NO_MEMORY": 4, "NOT_FOUND": 5}
    assert [f.value for f in p.FieldFlag] == [0x01, 0x02, 0x04, 0x08]
    assert [int(v) for v in p.BmRequestType] == [0x40, 0xC0]
    assert p.PARTICLE_BREQUEST == 0x50 == ord("P")
    assert p.MIN_WLENGTH == 64 and p.USB_REQUEST_MAX_ACTIVE_COUNT == 4
    assert p.MAX_POOLED_PAYLOAD_SIZE == 64 and p.MAX_PAYLOAD_SIZE == 65535
    assert p.MAX_CONTROL_TRANSFER_DATA_SIZE == 4096 and p.USB_REQUEST_INVALID_ID == 0


def test_setup_packets_as_particle_usb_sends_them() -> None:
    # INIT type=200, payload 13 bytes (real-clients.md §3 capture)
    assert p.init_request(200, 13) == p.SetupPacket(0xC0, 1, 13, 200, 64)
    assert p.check_request(1) == p.SetupPacket(0xC0, 2, 0, 1, 64)
    assert p.send_request(1, 13) == p.SetupPacket(0x40, 3, 0, 1, 13)
    assert p.recv_request(2, 2) == p.SetupPacket(0xC0, 4, 0, 2, 2)
    assert p.reset_request() == p.SetupPacket(0xC0, 5, 0, 0, 64)
    assert p.raw_request(30, device_to_host=True) == p.SetupPacket(0xC0, 0x50, 0, 30, 64)
    setup = p.SetupPacket(0xC0, 1, 13, 200, 64)
    assert setup.pack() == bytes([0xC0, 1, 13, 0, 200, 0, 64, 0])
    assert p.SetupPacket.unpack(setup.pack()) == setup
    assert setup.is_in and setup.request_kind == 2 and setup.recipient == 0


@pytest.mark.parametrize("raw", [b"", b"\xc0\x01", bytes(7), bytes(9)])
def test_short_or_long_setup_packets_are_refused(raw: bytes) -> None:
    with pytest.raises(PeerProtocolError):
        p.SetupPacket.unpack(raw)


@pytest.mark.parametrize("fields", [(0x100, 1, 0, 0, 0), (0xC0, -1, 0, 0, 0),
                                    (0xC0, 1, 0x10000, 0, 0), (0xC0, 1, 0, 0x10000, 0),
                                    (0xC0, 1, 0, 0, 0x10000)])
def test_out_of_range_fields_are_refused(fields: tuple[int, ...]) -> None:
    with pytest.raises(UsageError):
        p.SetupPacket(*fields)
    with pytest.raises(UsageError):  # a request type above 0xFFFF cannot be put in wIndex
        p.init_request(0x10000)


def test_service_reply_layout() -> None:
    # u32 flags | u16 status | [u16 id] | [u32 size] | [i32 result], little-endian
    assert p.ServiceReply(0).encode() == struct.pack("<IH", 1, 0)
    assert p.ServiceReply(0, id=7).encode() == struct.pack("<IHH", 3, 0, 7)
    assert p.ServiceReply(0, size=2, result=0).encode() == struct.pack("<IHIi", 0xD, 0, 2, 0)
    assert p.ServiceReply(0, result=-140).encode() == struct.pack("<IHi", 9, 0, -140)
    assert p.ServiceReply(3).encode() == bytes.fromhex("010000000300")


@given(st.integers(0, 0xFFFF), st.none() | st.integers(0, 0xFFFF),
       st.none() | st.integers(0, 0xFFFFFFFF), st.none() | st.integers(-2**31, 2**31 - 1))
def test_service_reply_round_trip(status: int, rid: int | None, size: int | None,
                                  result: int | None) -> None:
    reply = p.ServiceReply(status, rid, size, result)
    assert p.ServiceReply.decode(reply.encode()) == reply
    assert p.ServiceReply.decode(reply.encode() + b"\x00" * 10) == reply  # trailing ignored


@pytest.mark.parametrize("raw", [b"", b"\x01\x00\x00", struct.pack("<IH", 0, 0),
                                 struct.pack("<IH", 0x03, 0), struct.pack("<IHH", 0xF, 0, 1)])
def test_malformed_service_replies(raw: bytes) -> None:
    with pytest.raises(PeerProtocolError):
        p.ServiceReply.decode(raw)


@given(st.binary(max_size=40))
def test_service_reply_decoder_never_crashes(raw: bytes) -> None:
    with contextlib.suppress(PeerProtocolError):
        p.ServiceReply.decode(raw)


def test_descriptors() -> None:
    descriptors = UsbDescriptors(vendor_id=0x2B04, product_id=0xC020,
                                 serial="E00FCE68AABBCCDDEEFF0011", product="P2")
    device = descriptors.get(1, 0, 0)
    assert device is not None and len(device) == 18
    parsed = DeviceDescriptor.decode(device)
    assert (parsed.idVendor, parsed.idProduct, parsed.iSerialNumber) == (0x2B04, 0xC020, 3)
    serial = descriptors.get(3, parsed.iSerialNumber, 0x0409)
    assert serial is not None
    assert decode_string_descriptor(serial) == "E00FCE68AABBCCDDEEFF0011"
    assert descriptors.get(3, 0, 0) == bytes([4, 3, 0x09, 0x04])
    config = descriptors.get(2, 0, 0)
    assert config is not None and struct.unpack_from("<H", config, 2)[0] == len(config)
    assert descriptors.get(3, 9, 0x0409) is None and descriptors.get(7, 0, 0) is None
    assert encode_string_descriptor("ab") == bytes([6, 3, ord("a"), 0, ord("b"), 0])
    with pytest.raises(PeerProtocolError):
        DeviceDescriptor.decode(bytes(18))
    with pytest.raises(PeerProtocolError):
        decode_string_descriptor(b"\x04\x01ab")


def test_platform_table() -> None:
    p2, dfu = platform_for_usb_ids(0x2B04, 0xC020)  # type: ignore[misc]
    assert (p2.name, p2.platform_id, dfu) == ("p2", 32, False)
    assert QUIRK_OUT_DATA_STAGE in p2.quirks
    argon, _ = platform_for_usb_ids(0x2B04, 0xC00C)  # type: ignore[misc]
    assert argon.name == "argon" and not argon.quirks
    assert platform_for_usb_ids(0x2B04, 0xD006) is not None
    assert platform_for_usb_ids(0x1234, 0xC020) is None
    assert platform_for_usb_ids(0x2B04, 0xBEEF) is None
