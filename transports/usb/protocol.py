"""Wire layer of Particle's USB control-request protocol: setup packets and service replies.

How this works
--------------
Every exchange is one USB *control transfer*: an 8-byte setup packet (``bmRequestType``,
``bRequest``, ``wValue``, ``wIndex``, ``wLength``, little-endian) and an optional data stage of
``wLength`` bytes, host-to-device (OUT) or device-to-host (IN) depending on bit 7 of
``bmRequestType``. Device OS reserves ``bRequest`` 0x01-0x0F for the *service requests* that
carry control requests (INIT, CHECK, SEND, RECV, RESET) and answers a few *raw* vendor requests
with ``bRequest`` 0x50 ('P'). Facts: device-os.md §4 (``usb_control_request_channel.cpp``) and
particle-usb's ``usb-protocol.js``.

A service reply (the IN data stage of INIT, CHECK and RESET) is::

    u32 field_flags | u16 status | [u16 id] | [u32 size] | [i32 result]

with the optional fields present when their flag (ID=0x02, SIZE=0x04, RESULT=0x08) is set;
STATUS (0x01) is mandatory. This module is pure: values in, bytes out, and back.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum, IntFlag

from firmware_sim.kernel.errors import PeerProtocolError, UsageError

__all__ = [
    "MAX_CONTROL_TRANSFER_DATA_SIZE",
    "MAX_PAYLOAD_SIZE",
    "MAX_POOLED_PAYLOAD_SIZE",
    "MAX_REQUEST_TYPE",
    "MIN_WLENGTH",
    "PARTICLE_BREQUEST",
    "SETUP_PACKET_SIZE",
    "USB_REQUEST_INVALID_ID",
    "USB_REQUEST_MAX_ACTIVE_COUNT",
    "BmRequestType",
    "FieldFlag",
    "ServiceReply",
    "ServiceStatus",
    "ServiceType",
    "SetupPacket",
    "check_request",
    "init_request",
    "raw_request",
    "recv_request",
    "reset_request",
    "send_request",
]


class ServiceType(IntEnum):
    """``bRequest`` of the service requests."""

    INIT = 1
    CHECK = 2
    SEND = 3
    RECV = 4
    RESET = 5


class ServiceStatus(IntEnum):
    """``status`` of a service reply."""

    OK = 0
    ERROR = 1
    PENDING = 2
    BUSY = 3
    NO_MEMORY = 4
    NOT_FOUND = 5


class FieldFlag(IntFlag):
    STATUS = 0x01
    ID = 0x02
    SIZE = 0x04
    RESULT = 0x08


class BmRequestType(IntEnum):
    """The two ``bmRequestType`` values of the protocol (vendor request, recipient device)."""

    HOST_TO_DEVICE = 0x40
    DEVICE_TO_HOST = 0xC0


#: ``bRequest`` of the raw vendor requests: ASCII 'P'.
PARTICLE_BREQUEST = 0x50
#: The device STALLs INIT, CHECK and RESET whose data stage is shorter than this.
MIN_WLENGTH = 64
#: Request payloads up to this size are taken from the system pool (INIT answers OK).
MAX_POOLED_PAYLOAD_SIZE = 64
#: ``USB_REQUEST_MAX_ACTIVE_COUNT``: a fifth INIT is answered BUSY.
USB_REQUEST_MAX_ACTIVE_COUNT = 4
#: ``USB_REQUEST_MAX_PAYLOAD_SIZE`` (device) = ``MAX_PAYLOAD_SIZE`` (particle-usb).
MAX_PAYLOAD_SIZE = 0xFFFF
#: particle-usb refuses request types above this (the type travels in the 16-bit wIndex).
MAX_REQUEST_TYPE = 0xFFFF
#: ``USB_REQUEST_INVALID_ID``: the RESET id meaning "all requests".
USB_REQUEST_INVALID_ID = 0
#: particle-usb's data-stage chunk (``MAX_CONTROL_TRANSFER_DATA_SIZE``).
MAX_CONTROL_TRANSFER_DATA_SIZE = 4096
SETUP_PACKET_SIZE = 8

_SETUP = struct.Struct("<BBHHH")


def _u16(name: str, value: int) -> int:
    if not isinstance(value, int) or not 0 <= value <= 0xFFFF:
        raise UsageError(f"{name} must be an integer in 0..0xFFFF, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class SetupPacket:
    """The 8-byte SETUP stage of a control transfer."""

    bmRequestType: int  # USB field names, as in the USB specification
    bRequest: int
    wValue: int = 0
    wIndex: int = 0
    wLength: int = 0

    def __post_init__(self) -> None:
        for name in ("bmRequestType", "bRequest"):
            value = getattr(self, name)
            if not isinstance(value, int) or not 0 <= value <= 0xFF:
                raise UsageError(f"{name} must be an integer in 0..0xFF, got {value!r}")
        _u16("wValue", self.wValue)
        _u16("wIndex", self.wIndex)
        _u16("wLength", self.wLength)

    @property
    def is_in(self) -> bool:
        """Device-to-host (the data stage is read by the host)."""
        return bool(self.bmRequestType & 0x80)

    @property
    def request_kind(self) -> int:
        """Bits 5-6 of bmRequestType: 0 standard, 1 class, 2 vendor, 3 reserved."""
        return (self.bmRequestType >> 5) & 0x03

    @property
    def recipient(self) -> int:
        """Bits 0-4 of bmRequestType: 0 device, 1 interface, 2 endpoint, 3 other."""
        return self.bmRequestType & 0x1F

    def pack(self) -> bytes:
        return _SETUP.pack(self.bmRequestType, self.bRequest, self.wValue, self.wIndex,
                           self.wLength)

    @classmethod
    def unpack(cls, data: bytes) -> SetupPacket:
        if len(data) != SETUP_PACKET_SIZE:
            raise PeerProtocolError(f"a setup packet is 8 bytes, got {len(data)}")
        return cls(*_SETUP.unpack(data))

    def describe(self) -> str:
        return (f"bmRequestType=0x{self.bmRequestType:02x} bRequest={self.bRequest} "
                f"wValue={self.wValue} wIndex={self.wIndex} wLength={self.wLength}")


@dataclass(frozen=True, slots=True)
class ServiceReply:
    """A decoded service reply; ``None`` marks an absent optional field."""

    status: int
    id: int | None = None
    size: int | None = None
    result: int | None = None

    def encode(self) -> bytes:
        flags = FieldFlag.STATUS
        out = bytearray(6)
        struct.pack_into("<H", out, 4, self.status)
        if self.id is not None:
            flags |= FieldFlag.ID
            out += struct.pack("<H", self.id)
        if self.size is not None:
            flags |= FieldFlag.SIZE
            out += struct.pack("<I", self.size)
        if self.result is not None:
            flags |= FieldFlag.RESULT
            out += struct.pack("<i", self.result)
        struct.pack_into("<I", out, 0, int(flags))
        return bytes(out)

    @classmethod
    def decode(cls, data: bytes) -> ServiceReply:
        """Parse like particle-usb's ``parseReply`` (trailing bytes are ignored)."""
        try:
            (flags,) = struct.unpack_from("<I", data, 0)
            if not flags & FieldFlag.STATUS:
                raise PeerProtocolError("service reply is missing the mandatory status field")
            (status,) = struct.unpack_from("<H", data, 4)
            offset = 6
            reply_id = size = result = None
            if flags & FieldFlag.ID:
                (reply_id,) = struct.unpack_from("<H", data, offset)
                offset += 2
            if flags & FieldFlag.SIZE:
                (size,) = struct.unpack_from("<I", data, offset)
                offset += 4
            if flags & FieldFlag.RESULT:
                (result,) = struct.unpack_from("<i", data, offset)
        except struct.error as exc:
            raise PeerProtocolError(f"unable to parse service reply ({len(data)} bytes): "
                                    f"{exc}") from None
        return cls(status, reply_id, size, result)


# -- setup packets the host sends (particle-usb's initRequest, checkRequest, ...) ---------------


def init_request(request_type: int, payload_size: int = 0) -> SetupPacket:
    return SetupPacket(BmRequestType.DEVICE_TO_HOST, ServiceType.INIT, payload_size,
                       request_type, MIN_WLENGTH)


def check_request(request_id: int) -> SetupPacket:
    return SetupPacket(BmRequestType.DEVICE_TO_HOST, ServiceType.CHECK, 0, request_id,
                       MIN_WLENGTH)


def send_request(request_id: int, size: int) -> SetupPacket:
    return SetupPacket(BmRequestType.HOST_TO_DEVICE, ServiceType.SEND, 0, request_id, size)


def recv_request(request_id: int, size: int) -> SetupPacket:
    return SetupPacket(BmRequestType.DEVICE_TO_HOST, ServiceType.RECV, 0, request_id, size)


def reset_request(request_id: int = USB_REQUEST_INVALID_ID) -> SetupPacket:
    return SetupPacket(BmRequestType.DEVICE_TO_HOST, ServiceType.RESET, 0, request_id,
                       MIN_WLENGTH)


def raw_request(request_type: int, *, device_to_host: bool, length: int = MIN_WLENGTH
                ) -> SetupPacket:
    """A raw 'P' vendor request (``wIndex`` = the ctrl_request_type)."""
    if device_to_host:
        return SetupPacket(BmRequestType.DEVICE_TO_HOST, PARTICLE_BREQUEST, 0, request_type,
                           length)
    return SetupPacket(BmRequestType.HOST_TO_DEVICE, PARTICLE_BREQUEST, 0, request_type, length)
