"""Framing of the USB bridge: raw control transfers over a loopback TCP connection.

How this works
--------------
Every message is one frame: ``u32 length`` (little-endian, counts the kind byte and the body)
| ``u8 kind`` | body. The host (the Node.js module or the Python client) sends requests; the
bridge answers each with the reply kind (request kind | 0x80). Full layout in docs/usb.md:

========  =========================  ==================================================
kind      host -> bridge body        bridge -> host body
========  =========================  ==================================================
LIST 01   (empty)                    LIST_REPLY 81: UTF-8 JSON ``{"version":1,
                                     "devices":[...]}`` (the attached devices)
OPEN 02   u32 epoch (0 = current) |  OPEN_REPLY 82: u8 status (0 ok, 2 no device) |
          UTF-8 serial number        u32 epoch opened
CONTROL   u32 tag | u32 timeout_ms   CONTROL_REPLY 83: u32 tag | u8 transfer status |
03        | 8-byte setup packet |    IN data (0 completed, 1 stall, 2 no device,
          OUT data (wLength bytes)   3 timed out, 4 error)
--        --                         ERROR 7F: UTF-8 message; the bridge then closes
========  =========================  ==================================================

:class:`FrameDecoder` is incremental (feed any split of the byte stream) and refuses frames
longer than :data:`MAX_FRAME_SIZE` or of length 0 with :class:`PeerProtocolError`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from firmware_sim.kernel.errors import PeerProtocolError

from .protocol import SETUP_PACKET_SIZE, SetupPacket
from .transfer import TransferResult, TransferStatus

__all__ = [
    "MAX_FRAME_SIZE",
    "PROTOCOL_VERSION",
    "TRANSFER_STATUS_CODES",
    "ControlFrame",
    "Frame",
    "FrameDecoder",
    "FrameKind",
    "decode_control",
    "decode_control_reply",
    "decode_open",
    "decode_open_reply",
    "encode_control",
    "encode_control_reply",
    "encode_frame",
    "encode_open",
    "encode_open_reply",
]

PROTOCOL_VERSION = 1
#: Larger than any valid frame (a CONTROL frame is at most 1+4+4+8+65535 bytes).
MAX_FRAME_SIZE = 0x20000


class FrameKind(IntEnum):
    LIST = 0x01
    OPEN = 0x02
    CONTROL = 0x03
    LIST_REPLY = 0x81
    OPEN_REPLY = 0x82
    CONTROL_REPLY = 0x83
    ERROR = 0x7F


TRANSFER_STATUS_CODES: dict[TransferStatus, int] = {
    TransferStatus.COMPLETED: 0,
    TransferStatus.STALL: 1,
    TransferStatus.NO_DEVICE: 2,
    TransferStatus.TIMED_OUT: 3,
    TransferStatus.ERROR: 4,
}
_STATUS_BY_CODE = {code: status for status, code in TRANSFER_STATUS_CODES.items()}


@dataclass(frozen=True, slots=True)
class Frame:
    kind: int
    body: bytes


@dataclass(frozen=True, slots=True)
class ControlFrame:
    tag: int
    timeout_ms: int
    setup: SetupPacket
    data: bytes


def encode_frame(kind: int, body: bytes = b"") -> bytes:
    if 1 + len(body) > MAX_FRAME_SIZE:
        raise PeerProtocolError(f"frame of {1 + len(body)} bytes exceeds {MAX_FRAME_SIZE}")
    return struct.pack("<IB", 1 + len(body), kind) + body


class FrameDecoder:
    """Splits a byte stream into frames."""

    def __init__(self, max_frame_size: int = MAX_FRAME_SIZE) -> None:
        self._buffer = bytearray()
        self._max = max_frame_size

    def feed(self, data: bytes) -> list[Frame]:
        self._buffer += data
        frames = []
        while len(self._buffer) >= 4:
            (length,) = struct.unpack_from("<I", self._buffer, 0)
            if length == 0 or length > self._max:
                raise PeerProtocolError(f"bad frame length {length} (1..{self._max})")
            if len(self._buffer) < 4 + length:
                break
            kind = self._buffer[4]
            body = bytes(self._buffer[5:4 + length])
            del self._buffer[:4 + length]
            frames.append(Frame(kind, body))
        return frames

    @property
    def pending(self) -> int:
        return len(self._buffer)


def encode_open(serial: str, epoch: int = 0) -> bytes:
    return encode_frame(FrameKind.OPEN, struct.pack("<I", epoch) + serial.encode("utf-8"))


def decode_open(body: bytes) -> tuple[int, str]:
    if len(body) < 4:
        raise PeerProtocolError("OPEN frame shorter than 4 bytes")
    (epoch,) = struct.unpack_from("<I", body, 0)
    try:
        serial = body[4:].decode("utf-8")
    except UnicodeDecodeError:
        raise PeerProtocolError("OPEN frame: serial number is not UTF-8") from None
    return epoch, serial


def encode_open_reply(status: TransferStatus, epoch: int) -> bytes:
    return encode_frame(FrameKind.OPEN_REPLY,
                        struct.pack("<BI", TRANSFER_STATUS_CODES[status], epoch))


def decode_open_reply(body: bytes) -> tuple[TransferStatus, int]:
    if len(body) != 5:
        raise PeerProtocolError("OPEN_REPLY frame must be 5 bytes")
    code, epoch = struct.unpack("<BI", body)
    return _status(code), epoch


def encode_control(tag: int, setup: SetupPacket, data: bytes = b"",
                   timeout_ms: int = 5000) -> bytes:
    return encode_frame(FrameKind.CONTROL,
                        struct.pack("<II", tag, timeout_ms) + setup.pack() + bytes(data))


def decode_control(body: bytes) -> ControlFrame:
    if len(body) < 8 + SETUP_PACKET_SIZE:
        raise PeerProtocolError(f"CONTROL frame of {len(body)} bytes is shorter than "
                                f"{8 + SETUP_PACKET_SIZE}")
    tag, timeout_ms = struct.unpack_from("<II", body, 0)
    setup = SetupPacket.unpack(body[8:8 + SETUP_PACKET_SIZE])
    data = body[8 + SETUP_PACKET_SIZE:]
    if setup.is_in and data:
        raise PeerProtocolError("CONTROL frame: an IN transfer carries no OUT data")
    if not setup.is_in and len(data) != setup.wLength:
        raise PeerProtocolError(f"CONTROL frame: {len(data)} bytes of OUT data but wLength "
                                f"{setup.wLength}")
    return ControlFrame(tag, timeout_ms, setup, data)


def encode_control_reply(tag: int, result: TransferResult) -> bytes:
    return encode_frame(FrameKind.CONTROL_REPLY,
                        struct.pack("<IB", tag, TRANSFER_STATUS_CODES[result.status])
                        + result.data)


def decode_control_reply(body: bytes) -> tuple[int, TransferResult]:
    if len(body) < 5:
        raise PeerProtocolError("CONTROL_REPLY frame shorter than 5 bytes")
    tag, code = struct.unpack_from("<IB", body, 0)
    return tag, TransferResult(_status(code), body[5:])


def _status(code: int) -> TransferStatus:
    try:
        return _STATUS_BY_CODE[code]
    except KeyError:
        raise PeerProtocolError(f"unknown transfer status {code}") from None
