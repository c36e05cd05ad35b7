"""The phone's side of the BLE control channel, sans-IO.

How it works: :meth:`ClientControlChannel.start` returns the framed client round one to write
to RX. Every TX notification goes to :meth:`data_received`, which reassembles the byte stream
into handshake packets and, after the handshake, into reply frames; it returns what to write
next (client round two and confirmation) and the replies decrypted. :meth:`request` seals a
control request (``u16 size`` + encrypted ``id, type, reserved`` + payload + tag) and returns
its id and bytes; the caller writes them in packets of at most ATT_MTU - 3 bytes, without
interleaving two requests. Any error (bad frame, failed handshake, bad tag) leaves the channel
FAILED; the caller should disconnect.

Like Particle's Android client (``Framing.kt``), the phone caps a frame at
:data:`CLIENT_MAX_FRAME_SIZE` (10,240 bytes, size header, encrypted header and tag included)
although the device's limit is the u16 size: a larger request is refused before anything is
sent (``UsageError``), a reply announcing a larger frame fails the channel (TOO_LARGE).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from firmware_sim.kernel.errors import UsageError

from .channel_crypto import ChannelSession, OpenedReply
from .ecjpake import EcJpakeRole
from .framing import FrameAssembler, frame_handshake, handshake_assembler, message_assembler
from .handshake import ClientHandshake, ClientHandshakeState

__all__ = ["CLIENT_MAX_FRAME_SIZE", "ClientChannelState", "ClientControlChannel", "Received"]

#: The Android client's frame cap (bytes of a whole frame).
CLIENT_MAX_FRAME_SIZE = 10240
#: size header (2) + encrypted header (6) + CCM tag (8) around a payload
_FRAME_OVERHEAD = 2 + 6 + 8


class ClientChannelState(Enum):
    NEW = "new"
    HANDSHAKING = "handshaking"
    READY = "ready"
    FAILED = "failed"


@dataclass
class Received:
    """What one chunk of TX data produced."""

    #: Bytes to write to RX now (handshake messages).
    outgoing: bytes = b""
    #: True when this chunk completed the handshake.
    handshake_done: bool = False
    replies: list[OpenedReply] = field(default_factory=list)


def _password(secret: str | bytes) -> bytes:
    raw = secret.encode("ascii") if isinstance(secret, str) else bytes(secret)
    if not raw:
        raise UsageError("the mobile secret is empty")
    return raw


class ClientControlChannel:
    """Handshake and request/reply framing for the phone (EC-JPAKE client)."""

    def __init__(self, mobile_secret: str | bytes,
                 randbytes: Callable[[int], bytes] = os.urandom, *,
                 max_frame_size: int = CLIENT_MAX_FRAME_SIZE) -> None:
        if not _FRAME_OVERHEAD < max_frame_size <= _FRAME_OVERHEAD + 0xFFFF:
            raise UsageError(f"max_frame_size must lie in {_FRAME_OVERHEAD + 1}.."
                             f"{_FRAME_OVERHEAD + 0xFFFF}")
        self.max_frame_size = max_frame_size
        self._handshake = ClientHandshake(_password(mobile_secret), randbytes)
        self._handshake_reader: FrameAssembler = handshake_assembler()
        self._message_reader: FrameAssembler = message_assembler(
            max_payload=max_frame_size - _FRAME_OVERHEAD)
        self.session: ChannelSession | None = None
        self.state = ClientChannelState.NEW
        self._next_id = 1
        self.outstanding: set[int] = set()

    def start(self) -> bytes:
        """The framed client round one."""
        if self.state is not ClientChannelState.NEW:
            raise UsageError("the channel has already started")
        self.state = ClientChannelState.HANDSHAKING
        return frame_handshake(self._handshake.start())

    def data_received(self, data: bytes) -> Received:
        if self.state is ClientChannelState.FAILED:
            raise UsageError("the channel failed; open a new connection")
        if self.state is ClientChannelState.NEW:
            raise UsageError("start the handshake first")
        received = Received()
        try:
            self._process(bytes(data), received)
        except Exception:
            self.state = ClientChannelState.FAILED
            raise
        return received

    def _process(self, data: bytes, received: Received) -> None:
        offset = 0
        out = bytearray()
        while offset < len(data):
            if self.state is ClientChannelState.HANDSHAKING:
                reader = self._handshake_reader
                take = min(reader.wants(), len(data) - offset)
                payload = reader.push(data[offset:offset + take])
                offset += take
                if payload is None:
                    continue
                for message in self._handshake.receive(payload):
                    out += frame_handshake(message)
                if self._handshake.state is ClientHandshakeState.DONE:
                    self.session = ChannelSession(self._handshake.secret, EcJpakeRole.CLIENT)
                    self.state = ClientChannelState.READY
                    received.handshake_done = True
            else:
                reader = self._message_reader
                take = min(reader.wants(), len(data) - offset)
                frame = reader.push(data[offset:offset + take])
                offset += take
                if frame is None:
                    continue
                assert self.session is not None
                reply = self.session.open_reply(frame)
                self.outstanding.discard(reply.request_id)
                received.replies.append(reply)
        received.outgoing = bytes(out)

    def request(self, request_type: int, payload: bytes = b"") -> tuple[int, bytes]:
        """Seal one request; returns ``(request id, frame)``."""
        if self.state is not ClientChannelState.READY or self.session is None:
            raise UsageError(f"the channel is {self.state.value}; requests need a handshake")
        if len(payload) + _FRAME_OVERHEAD > self.max_frame_size:
            raise UsageError(f"a request frame of {len(payload) + _FRAME_OVERHEAD} bytes exceeds "
                             f"the client's {self.max_frame_size}-byte cap")
        request_id = self._allocate_id()
        frame = self.session.seal_request(request_id, int(request_type), bytes(payload))
        self.outstanding.add(request_id)
        return request_id, frame

    def _allocate_id(self) -> int:
        for _ in range(0x10000):
            candidate = self._next_id
            self._next_id = 1 if self._next_id >= 0xFFFF else self._next_id + 1
            if candidate not in self.outstanding:
                return candidate
        raise UsageError("65535 requests are outstanding")
