"""Key confirmation and the AES-CCM session of the BLE control channel (device-os.md §5).

How it works:

* After EC-JPAKE both sides hold the same 32-byte ``secret`` (if the password matched).
  ``KC = SHA-256(secret || "JPAKE_KC")``. With ``H1`` = SHA-256 over the four handshake payloads
  in wire order (client round 1, server round 1, server round 2, client round 2), the client
  sends ``HMAC-SHA256(KC, "KC_1_U" || "client" || "server" || H1)``; the device checks it
  (mismatch or a size other than 32 is BAD_DATA) and answers with
  ``HMAC-SHA256(KC, "KC_1_U" || "server" || "client" || H2)``, where ``H2`` also covers the
  client confirmation.
* The session then uses AES-128-CCM with an 8-byte tag: key ``secret[0:16]``, request nonce
  suffix ``secret[16:24]``, reply nonce suffix ``secret[24:32]``. A nonce is the 32-bit
  little-endian message counter followed by the 8-byte suffix; requests count ``1, 2, ...`` and
  replies ``0x80000001, 0x80000002, ...``. Each side keeps both counters and bumps one per frame
  it seals or opens. As on the device, a frame that reaches decryption consumes a counter even
  when it fails authentication (the device then drops the connection), so a replayed, dropped
  or reordered frame fails. A frame whose length disagrees with its size field is rejected
  before that and consumes nothing.
* Frames (all little-endian): ``u16 size`` (the AAD, in clear) + encrypted header + payload +
  8-byte tag. The request header is ``u16 id, u16 type, u16 reserved``; the reply header is
  ``u16 id, i32 result``. ``size`` counts the payload only.

``cryptography`` does the hashing, HMAC and AES-CCM; this module only frames and counts.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import constant_time, hashes, hmac
from cryptography.hazmat.primitives.ciphers.aead import AESCCM

from firmware_sim.kernel.errors import PeerProtocolError, ResultCode, UsageError

from .ecjpake import SECRET_SIZE, EcJpakeRole

__all__ = [
    "CONFIRMATION_SIZE",
    "MAX_PAYLOAD_SIZE",
    "MESSAGE_HEADER_SIZE",
    "REPLY_HEADER_SIZE",
    "REQUEST_HEADER_SIZE",
    "TAG_SIZE",
    "ChannelCryptoError",
    "ChannelSession",
    "HandshakeTranscript",
    "OpenedReply",
    "OpenedRequest",
    "client_confirmation",
    "confirmation_key",
    "device_confirmation",
    "frame_size",
    "payload_size",
    "verify_client_confirmation",
    "verify_device_confirmation",
]

#: Size of a key-confirmation message (an HMAC-SHA256).
CONFIRMATION_SIZE: Final = 32
#: ``u16 size``: in clear, authenticated as the CCM additional data.
MESSAGE_HEADER_SIZE: Final = 2
#: ``u16 id, u16 type, u16 reserved`` (encrypted).
REQUEST_HEADER_SIZE: Final = 6
#: ``u16 id, i32 result`` (encrypted).
REPLY_HEADER_SIZE: Final = 6
#: ``AES_CCM_TAG_SIZE``.
TAG_SIZE: Final = 8
#: The size field is a u16.
MAX_PAYLOAD_SIZE: Final = 0xFFFF

_KC_LABEL: Final = b"JPAKE_KC"
_KC_PREFIX: Final = b"KC_1_U"
_KEY_SIZE: Final = 16
_FIXED_NONCE_SIZE: Final = 8
_REPLY_COUNTER_FLAG: Final = 0x80000000
_COUNTER_MASK: Final = 0xFFFFFFFF
_REQUEST_HEADER = struct.Struct("<HHH")
_REPLY_HEADER = struct.Struct("<Hi")
_SIZE_HEADER = struct.Struct("<H")
_CLIENT_ID: Final = EcJpakeRole.CLIENT.value.encode()
_SERVER_ID: Final = EcJpakeRole.SERVER.value.encode()


class ChannelCryptoError(PeerProtocolError):
    """Key confirmation failed, or a frame is malformed or fails authentication.

    ``result`` is the Device OS result code where the device uses one (``BAD_DATA`` for a bad
    confirmation); it is ``None`` for a CCM failure, after which the device just disconnects.
    """

    def __init__(self, message: str, result: ResultCode | None = None) -> None:
        self.result = result
        suffix = f" [{result.name}]" if result is not None else ""
        super().__init__(f"BLE channel: {message}{suffix}")


# ---------------------------------------------------------------------------------------------
# Key confirmation.


def _sha256(*parts: bytes) -> bytes:
    digest = hashes.Hash(hashes.SHA256())
    for part in parts:
        digest.update(part)
    return digest.finalize()


def _hmac_sha256(key: bytes, *parts: bytes) -> bytes:
    mac = hmac.HMAC(key, hashes.SHA256())
    for part in parts:
        mac.update(part)
    return mac.finalize()


def _check_secret(secret: bytes) -> bytes:
    if len(secret) != SECRET_SIZE:
        raise UsageError(f"the EC-JPAKE secret is {SECRET_SIZE} bytes, not {len(secret)}")
    return bytes(secret)


@dataclass(frozen=True, slots=True)
class HandshakeTranscript:
    """The four EC-JPAKE payloads (without their u16 size headers) in wire order."""

    client_round_one: bytes
    server_round_one: bytes
    server_round_two: bytes
    client_round_two: bytes

    def _payloads(self) -> tuple[bytes, ...]:
        return (
            self.client_round_one,
            self.server_round_one,
            self.server_round_two,
            self.client_round_two,
        )

    def h1(self) -> bytes:
        """SHA-256 over the four payloads."""
        return _sha256(*self._payloads())

    def h2(self, client_confirmation: bytes) -> bytes:
        """SHA-256 over the four payloads and the client confirmation."""
        return _sha256(*self._payloads(), client_confirmation)


def confirmation_key(secret: bytes) -> bytes:
    """``KC = SHA-256(secret || "JPAKE_KC")``."""
    return _sha256(_check_secret(secret), _KC_LABEL)


def client_confirmation(secret: bytes, transcript: HandshakeTranscript) -> bytes:
    """``HMAC-SHA256(KC, "KC_1_U" || "client" || "server" || H1)``."""
    return _hmac_sha256(
        confirmation_key(secret), _KC_PREFIX, _CLIENT_ID, _SERVER_ID, transcript.h1()
    )


def device_confirmation(
    secret: bytes, transcript: HandshakeTranscript, client_confirmation: bytes
) -> bytes:
    """``HMAC-SHA256(KC, "KC_1_U" || "server" || "client" || H2)``."""
    return _hmac_sha256(
        confirmation_key(secret),
        _KC_PREFIX,
        _SERVER_ID,
        _CLIENT_ID,
        transcript.h2(client_confirmation),
    )


def _verify(expected: bytes, received: bytes, what: str) -> None:
    if len(received) != CONFIRMATION_SIZE:
        raise ChannelCryptoError(
            f"{what} confirmation is {len(received)} bytes, not {CONFIRMATION_SIZE}",
            ResultCode.BAD_DATA,
        )
    if not constant_time.bytes_eq(expected, bytes(received)):
        raise ChannelCryptoError(f"{what} confirmation does not match", ResultCode.BAD_DATA)


def verify_client_confirmation(
    secret: bytes, transcript: HandshakeTranscript, received: bytes
) -> None:
    """Device side: check the client's confirmation (BAD_DATA on mismatch or wrong size)."""
    _verify(client_confirmation(secret, transcript), received, "client")


def verify_device_confirmation(
    secret: bytes, transcript: HandshakeTranscript, sent_client_confirmation: bytes, received: bytes
) -> None:
    """Client side: check the device's confirmation."""
    _verify(device_confirmation(secret, transcript, sent_client_confirmation), received, "device")


# ---------------------------------------------------------------------------------------------
# Framing.


def payload_size(frame_start: bytes) -> int:
    """The payload size announced by the first two bytes of a frame."""
    if len(frame_start) < MESSAGE_HEADER_SIZE:
        raise ChannelCryptoError("frame shorter than its 2-byte size header")
    (size,) = _SIZE_HEADER.unpack_from(frame_start)
    return int(size)


def frame_size(payload_bytes: int) -> int:
    """Total frame size for a payload of ``payload_bytes`` (both directions: headers are 6)."""
    return MESSAGE_HEADER_SIZE + REQUEST_HEADER_SIZE + payload_bytes + TAG_SIZE


@dataclass(frozen=True, slots=True)
class OpenedRequest:
    """A decrypted request frame."""

    request_id: int
    request_type: int
    payload: bytes
    reserved: int = 0


@dataclass(frozen=True, slots=True)
class OpenedReply:
    """A decrypted reply frame."""

    request_id: int
    result: int
    payload: bytes


class ChannelSession:
    """AES-CCM state of one connection, for either end.

    The client (``EcJpakeRole.CLIENT``) seals requests and opens replies; the device
    (``EcJpakeRole.SERVER``) opens requests and seals replies. Create one per handshake.
    """

    def __init__(self, secret: bytes, role: EcJpakeRole) -> None:
        secret = _check_secret(secret)
        if not isinstance(role, EcJpakeRole):
            raise UsageError(f"role must be an EcJpakeRole, not {role!r}")
        self.role = role
        self._cipher = AESCCM(secret[:_KEY_SIZE], tag_length=TAG_SIZE)
        self._request_fixed = secret[_KEY_SIZE : _KEY_SIZE + _FIXED_NONCE_SIZE]
        self._reply_fixed = secret[_KEY_SIZE + _FIXED_NONCE_SIZE :]
        self._request_count = 0
        self._reply_count = 0

    @property
    def request_count(self) -> int:
        """Requests sealed or opened so far (the last request counter used)."""
        return self._request_count

    @property
    def reply_count(self) -> int:
        """Replies sealed or opened so far (without the 0x80000000 flag)."""
        return self._reply_count

    # -- client side ----------------------------------------------------------------------

    def seal_request(self, request_id: int, request_type: int, payload: bytes = b"") -> bytes:
        self._require_role(EcJpakeRole.CLIENT, "seal a request")
        _check_u16(request_id, "request id")
        _check_u16(request_type, "request type")
        header = _REQUEST_HEADER.pack(request_id, request_type, 0)
        return self._seal(self._next_request_nonce(), header, payload)

    def open_reply(self, frame: bytes) -> OpenedReply:
        self._require_role(EcJpakeRole.CLIENT, "open a reply")
        size = self._check_frame(frame, REPLY_HEADER_SIZE, "reply")
        plaintext = self._open(self._next_reply_nonce(), frame, "reply")
        request_id, result = _REPLY_HEADER.unpack_from(plaintext)
        return OpenedReply(
            request_id, result, plaintext[REPLY_HEADER_SIZE : REPLY_HEADER_SIZE + size]
        )

    # -- device side ----------------------------------------------------------------------

    def open_request(self, frame: bytes) -> OpenedRequest:
        self._require_role(EcJpakeRole.SERVER, "open a request")
        size = self._check_frame(frame, REQUEST_HEADER_SIZE, "request")
        plaintext = self._open(self._next_request_nonce(), frame, "request")
        request_id, request_type, reserved = _REQUEST_HEADER.unpack_from(plaintext)
        payload = plaintext[REQUEST_HEADER_SIZE : REQUEST_HEADER_SIZE + size]
        return OpenedRequest(request_id, request_type, payload, reserved)

    def seal_reply(self, request_id: int, result: int, payload: bytes = b"") -> bytes:
        self._require_role(EcJpakeRole.SERVER, "seal a reply")
        _check_u16(request_id, "request id")
        if not -(2**31) <= result < 2**31:
            raise UsageError(f"reply result {result} does not fit an i32")
        header = _REPLY_HEADER.pack(request_id, result)
        return self._seal(self._next_reply_nonce(), header, payload)

    # -- internals ------------------------------------------------------------------------

    def _require_role(self, role: EcJpakeRole, action: str) -> None:
        if self.role is not role:
            raise UsageError(f"the {self.role.value} side cannot {action}")

    def _next_request_nonce(self) -> bytes:
        self._request_count = (self._request_count + 1) & _COUNTER_MASK
        return struct.pack("<I", self._request_count) + self._request_fixed

    def _next_reply_nonce(self) -> bytes:
        self._reply_count = (self._reply_count + 1) & _COUNTER_MASK
        counter = (self._reply_count | _REPLY_COUNTER_FLAG) & _COUNTER_MASK
        return struct.pack("<I", counter) + self._reply_fixed

    def _seal(self, nonce: bytes, header: bytes, payload: bytes) -> bytes:
        if len(payload) > MAX_PAYLOAD_SIZE:
            raise UsageError(f"payload of {len(payload)} bytes exceeds the u16 size field")
        aad = _SIZE_HEADER.pack(len(payload))
        return aad + self._cipher.encrypt(nonce, header + bytes(payload), aad)

    @staticmethod
    def _check_frame(frame: bytes, header_size: int, what: str) -> int:
        size = payload_size(frame)
        expected = MESSAGE_HEADER_SIZE + header_size + size + TAG_SIZE
        if len(frame) != expected:
            raise ChannelCryptoError(
                f"{what} frame is {len(frame)} bytes but its size field {size} needs {expected}"
            )
        return size

    def _open(self, nonce: bytes, frame: bytes, what: str) -> bytes:
        aad = bytes(frame[:MESSAGE_HEADER_SIZE])
        try:
            return self._cipher.decrypt(nonce, bytes(frame[MESSAGE_HEADER_SIZE:]), aad)
        except InvalidTag:
            raise ChannelCryptoError(
                f"{what} frame failed authentication (tampered, replayed or out of order)"
            ) from None


def _check_u16(value: int, what: str) -> None:
    if not 0 <= value <= 0xFFFF:
        raise UsageError(f"{what} {value} does not fit a u16")
