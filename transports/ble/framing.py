"""Byte-stream framing of the BLE control channel (device-os.md §5).

How it works: TX notifications and RX writes carry a byte stream, not messages. One
notification may hold the end of a message and the start of the next; a message may span many
notifications. Two framings run over the stream, one after the other on each connection:

* handshake packets: ``u16 LE size`` + ``size`` bytes, with ``0 < size <= 512``
  (``MAX_HANDSHAKE_PAYLOAD_SIZE``); any other size is ``TOO_LARGE`` and ends the connection;
* encrypted messages: ``u16 LE size`` + 6-byte encrypted header + ``size`` payload bytes +
  8-byte CCM tag (``size`` counts the payload only).

A :class:`FrameAssembler` says how many bytes it wants next (``wants()``) and takes at most that
many (``push``), so a reader with a bounded input buffer, like the device's 1024-byte pool,
drains exactly what the current frame needs and leaves the rest queued. ``feed`` is the
convenience for readers that hold everything (the phone side).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Final

from firmware_sim.kernel.errors import PeerProtocolError, ResultCode, UsageError

from .channel_crypto import MESSAGE_HEADER_SIZE, REQUEST_HEADER_SIZE, TAG_SIZE

__all__ = [
    "HANDSHAKE_HEADER_SIZE",
    "MAX_HANDSHAKE_PAYLOAD_SIZE",
    "ByteQueue",
    "FrameAssembler",
    "FramingError",
    "frame_handshake",
    "handshake_assembler",
    "message_assembler",
    "split_packets",
]

HANDSHAKE_HEADER_SIZE: Final = 2
MAX_HANDSHAKE_PAYLOAD_SIZE: Final = 512
_U16 = struct.Struct("<H")
#: Encrypted header (6) + CCM tag (8) around the payload of a message.
_MESSAGE_OVERHEAD: Final = REQUEST_HEADER_SIZE + TAG_SIZE


class FramingError(PeerProtocolError):
    """A frame header the channel refuses; ``result`` is the Device OS code."""

    def __init__(self, message: str, result: ResultCode) -> None:
        self.result = result
        super().__init__(f"BLE framing: {message} [{result.name}]")


def frame_handshake(payload: bytes) -> bytes:
    """``u16 LE size`` + payload, refusing what the device would refuse."""
    if not 0 < len(payload) <= MAX_HANDSHAKE_PAYLOAD_SIZE:
        raise UsageError(
            f"a handshake payload is 1 to {MAX_HANDSHAKE_PAYLOAD_SIZE} bytes, not {len(payload)}")
    return _U16.pack(len(payload)) + bytes(payload)


def split_packets(data: bytes, max_size: int) -> list[bytes]:
    """Cut a byte stream into packets of at most ``max_size`` bytes."""
    if max_size < 1:
        raise UsageError("packet size must be positive")
    raw = bytes(data)
    return [raw[i:i + max_size] for i in range(0, len(raw), max_size)]


class ByteQueue:
    """A FIFO of bytes."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def __len__(self) -> int:
        return len(self._buffer)

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def read(self, count: int) -> bytes:
        """Up to ``count`` bytes from the front."""
        chunk = bytes(self._buffer[:count])
        del self._buffer[:count]
        return chunk

    def clear(self) -> None:
        self._buffer.clear()


class FrameAssembler:
    """Reassembles ``u16 size``-prefixed frames from a byte stream, one frame at a time.

    ``overhead`` bytes follow the size header besides the ``size`` payload bytes;
    ``include_header`` keeps the size header in the returned frame; sizes outside
    ``min_size..max_size`` raise :class:`FramingError` with ``TOO_LARGE`` (what the device's
    handshake reader answers for both 0 and > 512).
    """

    def __init__(self, *, overhead: int, include_header: bool, min_size: int = 0,
                 max_size: int = 0xFFFF, what: str = "frame") -> None:
        self._overhead = overhead
        self._include_header = include_header
        self._min_size = min_size
        self._max_size = max_size
        self._what = what
        self._header = bytearray()
        self._body = bytearray()
        self._body_size: int | None = None

    @property
    def idle(self) -> bool:
        """No partial frame is held."""
        return not self._header and self._body_size is None

    def wants(self) -> int:
        """How many bytes the current frame still needs."""
        if self._body_size is None:
            return HANDSHAKE_HEADER_SIZE - len(self._header)
        return self._body_size - len(self._body)

    def push(self, data: bytes) -> bytes | None:
        """Take ``data`` (at most ``wants()`` bytes); return a frame when one completes."""
        if len(data) > self.wants():
            raise UsageError(f"pushed {len(data)} bytes but the {self._what} wants {self.wants()}")
        if self._body_size is None:
            self._header += data
            if len(self._header) < HANDSHAKE_HEADER_SIZE:
                return None
            (size,) = _U16.unpack(self._header)
            if not self._min_size <= size <= self._max_size:
                self._header.clear()
                raise FramingError(
                    f"{self._what} size {size} is outside {self._min_size}..{self._max_size}",
                    ResultCode.TOO_LARGE)
            self._body_size = size + self._overhead
            if self._body_size:
                return None
        else:
            self._body += data
            if len(self._body) < self._body_size:
                return None
        frame = (bytes(self._header) if self._include_header else b"") + bytes(self._body)
        self._header.clear()
        self._body.clear()
        self._body_size = None
        return frame

    def feed(self, data: bytes) -> list[bytes]:
        """Push everything; return the frames completed."""
        return list(self._iter_frames(bytes(data)))

    def _iter_frames(self, data: bytes) -> Iterator[bytes]:
        offset = 0
        while offset < len(data):
            take = min(self.wants(), len(data) - offset)
            frame = self.push(data[offset:offset + take])
            offset += take
            if frame is not None:
                yield frame

    def reset(self) -> None:
        self._header.clear()
        self._body.clear()
        self._body_size = None


def handshake_assembler() -> FrameAssembler:
    """Handshake packets: returns payloads without their size header."""
    return FrameAssembler(overhead=0, include_header=False, min_size=1,
                          max_size=MAX_HANDSHAKE_PAYLOAD_SIZE, what="handshake packet")


def message_assembler(max_payload: int = 0xFFFF) -> FrameAssembler:
    """Encrypted request/reply messages: returns whole frames (size header included); a
    size above ``max_payload`` is TOO_LARGE (the phone's cap, ``client_channel``)."""
    assert MESSAGE_HEADER_SIZE == HANDSHAKE_HEADER_SIZE
    return FrameAssembler(overhead=_MESSAGE_OVERHEAD, include_header=True,
                          max_size=max_payload, what="message")
