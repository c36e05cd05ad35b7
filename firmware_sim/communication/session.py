"""Persisted cloud session (``SessionPersist`` of ``communication/src/dtls_message_channel.cpp``).

How this works
--------------
The session needed for a resume is a packed, versioned blob kept in retained RAM (it survives a
software reset, not a power loss). ``restore`` refuses (NO_SESSION) when there is no valid blob,
when the keys checksum differs, or when ``use_counter >= MAXIMUM_SESSION_USES`` (3, log
``session has expired after 3 uses``). Every successful restore increments ``use_counter`` and
saves it immediately; only a message received on the resumed session resets it to 0
(``cancel_move_session``). So three resume attempts in a row that get no answer force a full
handshake. ``clear`` saves a zeroed blob (``Clearing session data``); ``discard`` forgets the
session after a CoAP RST.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, replace
from enum import IntEnum

from ..hal.retained import RetainedMemory

MAXIMUM_SESSION_USES = 3

_MAGIC = b"FWSS"
# magic, version, session id, keys crc, use counter, next coap id, app-state crc, and the CRCs of
# the application describe and subscriptions the cloud received in this session (0 = none)
_LAYOUT = struct.Struct(">4sB8sIBHIII")
_VERSION = 2
#: where ``next_coap_id`` sits in the blob
_COAP_ID_OFFSET = struct.calcsize(">4sB8sIB")
_COAP_ID = struct.Struct(">H")


class RestoreStatus(IntEnum):
    COMPLETE = 0
    RENEGOTIATE = 1
    NO_SESSION = 2
    ERROR = 3


@dataclass(frozen=True, slots=True)
class SessionData:
    session_id: bytes
    keys_checksum: int
    use_counter: int
    next_coap_id: int
    app_state_crc: int
    describe_crc: int = 0
    subscriptions_crc: int = 0

    def pack(self) -> bytes:
        return _LAYOUT.pack(_MAGIC, _VERSION, self.session_id, self.keys_checksum,
                            self.use_counter, self.next_coap_id & 0xFFFF, self.app_state_crc,
                            self.describe_crc, self.subscriptions_crc)

    @classmethod
    def unpack(cls, blob: bytes | None) -> SessionData | None:
        if not blob or len(blob) != _LAYOUT.size:
            return None
        (magic, version, session_id, keys, uses, coap_id, app_crc, describe_crc,
         subscriptions_crc) = _LAYOUT.unpack(blob)
        if magic != _MAGIC or version != _VERSION or session_id == bytes(8):
            return None
        return cls(session_id, keys, uses, coap_id, app_crc, describe_crc, subscriptions_crc)


class SessionPersist:
    """Reads and writes the session blob in retained memory."""

    __slots__ = ("_retained",)

    def __init__(self, retained: RetainedMemory) -> None:
        self._retained = retained

    def load(self) -> SessionData | None:
        return SessionData.unpack(self._retained.session)

    def save(self, data: SessionData) -> None:
        self._retained.session = data.pack()

    def restore(self, keys_checksum: int) -> tuple[RestoreStatus, SessionData | None]:
        data = self.load()
        if data is None or data.keys_checksum != keys_checksum:
            return RestoreStatus.NO_SESSION, None
        if data.use_counter >= MAXIMUM_SESSION_USES:
            return RestoreStatus.NO_SESSION, data
        data = replace(data, use_counter=data.use_counter + 1)
        self.save(data)
        return RestoreStatus.COMPLETE, data

    def cancel_move(self) -> None:
        data = self.load()
        if data is not None and data.use_counter:
            self.save(replace(data, use_counter=0))

    def update_describe_crc(self, crc: int) -> None:
        """Remember the application describe this session's cloud acknowledged."""
        data = self.load()
        if data is not None:
            self.save(replace(data, describe_crc=crc))

    def update_subscriptions_crc(self, crc: int) -> None:
        """Remember the subscriptions this session's cloud acknowledged."""
        data = self.load()
        if data is not None:
            self.save(replace(data, subscriptions_crc=crc))

    def update_coap_id(self, next_coap_id: int) -> None:
        """After every message sent: patch the id into the blob (if it holds a session)."""
        blob = self._retained.session
        if SessionData.unpack(blob) is not None:
            assert blob is not None
            self._retained.session = (blob[:_COAP_ID_OFFSET]
                                      + _COAP_ID.pack(next_coap_id & 0xFFFF)
                                      + blob[_COAP_ID_OFFSET + _COAP_ID.size:])

    def clear(self) -> None:
        """Save a zeroed blob (``clearSessionData``)."""
        self._retained.session = bytes(_LAYOUT.size)

    def discard(self) -> None:
        self._retained.session = None
