"""The BLE channel handshake as two sans-IO state machines (device-os.md §5).

How it works: both sides exchange handshake *payloads* (the framing is ``framing.py``'s)::

    phone (EC-JPAKE client)                      device (EC-JPAKE server)
    round 1  ---------------------------------->  READ_ROUND_ONE
             <----------------------------------  round 1, then round 2 (two packets)
    round 2, confirmation (32 bytes)  ---------->  READ_ROUND_TWO, READ_CONFIRMATION
             <----------------------------------  confirmation (32 bytes)   -> DONE

The device checks the client's confirmation only after deriving the secret; a wrong mobile
secret therefore shows as a confirmation mismatch (``BAD_DATA``). A confirmation that is not 32
bytes is ``BAD_DATA`` too. Any EC-JPAKE error is reported as ``UNKNOWN``: Device OS maps every
non-zero mbedTLS return to ``SYSTEM_ERROR_UNKNOWN`` (``mbedtlsError``). After a failure the
machine stays FAILED; the channel then disconnects.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum

from firmware_sim.kernel.errors import PeerProtocolError, ResultCode, UsageError

from .channel_crypto import (
    CONFIRMATION_SIZE,
    ChannelCryptoError,
    HandshakeTranscript,
    client_confirmation,
    device_confirmation,
    verify_client_confirmation,
    verify_device_confirmation,
)
from .ecjpake import EcJpake, EcJpakeError, EcJpakeRole

__all__ = [
    "ClientHandshake",
    "ClientHandshakeState",
    "DeviceHandshake",
    "DeviceHandshakeState",
    "HandshakeFailed",
]

RandBytes = Callable[[int], bytes]


class HandshakeFailed(PeerProtocolError):
    """The handshake cannot complete; ``result`` is the Device OS code the device logs."""

    def __init__(self, message: str, result: ResultCode) -> None:
        self.result = result
        super().__init__(f"BLE handshake failed: {message} [{result.name}]")


class DeviceHandshakeState(Enum):
    READ_ROUND_ONE = "read_round_one"
    READ_ROUND_TWO = "read_round_two"
    READ_CONFIRMATION = "read_confirmation"
    DONE = "done"
    FAILED = "failed"


class DeviceHandshake:
    """The device (EC-JPAKE server) side: payloads in, payloads to send out."""

    def __init__(self, password: bytes, randbytes: RandBytes) -> None:
        self._jpake = EcJpake(EcJpakeRole.SERVER, password, randbytes)
        self.state = DeviceHandshakeState.READ_ROUND_ONE
        self._client_one = b""
        self._server_one = b""
        self._server_two = b""
        self._transcript: HandshakeTranscript | None = None
        self._secret: bytes | None = None

    @property
    def secret(self) -> bytes:
        if self.state is not DeviceHandshakeState.DONE or self._secret is None:
            raise UsageError("the handshake is not done")
        return self._secret

    def receive(self, payload: bytes) -> list[bytes]:
        """Process one payload from the phone; return the payloads to send back."""
        try:
            return self._receive(bytes(payload))
        except HandshakeFailed:
            self.state = DeviceHandshakeState.FAILED
            raise

    def _receive(self, payload: bytes) -> list[bytes]:
        state = self.state
        if state is DeviceHandshakeState.READ_ROUND_ONE:
            self._jpake_step(lambda: self._jpake.read_round_one(payload), "client round one")
            self._client_one = payload
            self._server_one = self._jpake.write_round_one()
            self._server_two = self._jpake_write_round_two()
            self.state = DeviceHandshakeState.READ_ROUND_TWO
            return [self._server_one, self._server_two]
        if state is DeviceHandshakeState.READ_ROUND_TWO:
            self._jpake_step(lambda: self._jpake.read_round_two(payload), "client round two")
            self._transcript = HandshakeTranscript(
                self._client_one, self._server_one, self._server_two, payload)
            self.state = DeviceHandshakeState.READ_CONFIRMATION
            return []
        if state is DeviceHandshakeState.READ_CONFIRMATION:
            assert self._transcript is not None
            if len(payload) != CONFIRMATION_SIZE:
                raise HandshakeFailed(
                    f"confirmation is {len(payload)} bytes, not {CONFIRMATION_SIZE}",
                    ResultCode.BAD_DATA)
            secret = self._derive()
            try:
                verify_client_confirmation(secret, self._transcript, payload)
            except ChannelCryptoError as exc:
                raise HandshakeFailed(str(exc), ResultCode.BAD_DATA) from None
            self._secret = secret
            self.state = DeviceHandshakeState.DONE
            return [device_confirmation(secret, self._transcript, payload)]
        raise UsageError(f"the device handshake is {state.value}; it takes no more input")

    def _jpake_write_round_two(self) -> bytes:
        try:
            return self._jpake.write_round_two()
        except EcJpakeError as exc:
            raise HandshakeFailed(str(exc), ResultCode.UNKNOWN) from None

    def _derive(self) -> bytes:
        try:
            return self._jpake.derive_secret()
        except EcJpakeError as exc:
            raise HandshakeFailed(str(exc), ResultCode.UNKNOWN) from None

    @staticmethod
    def _jpake_step(step: Callable[[], None], what: str) -> None:
        try:
            step()
        except EcJpakeError as exc:
            raise HandshakeFailed(f"{what}: {exc}", ResultCode.UNKNOWN) from None


class ClientHandshakeState(Enum):
    NEW = "new"
    AWAIT_SERVER_ROUND_ONE = "await_server_round_one"
    AWAIT_SERVER_ROUND_TWO = "await_server_round_two"
    AWAIT_CONFIRMATION = "await_confirmation"
    DONE = "done"
    FAILED = "failed"


class ClientHandshake:
    """The phone (EC-JPAKE client) side."""

    def __init__(self, password: bytes, randbytes: RandBytes) -> None:
        self._jpake = EcJpake(EcJpakeRole.CLIENT, password, randbytes)
        self.state = ClientHandshakeState.NEW
        self._client_one = b""
        self._server_one = b""
        self._transcript: HandshakeTranscript | None = None
        self._confirmation = b""
        self._candidate: bytes | None = None
        self._secret: bytes | None = None

    @property
    def secret(self) -> bytes:
        if self.state is not ClientHandshakeState.DONE or self._secret is None:
            raise UsageError("the handshake is not done")
        return self._secret

    def start(self) -> bytes:
        """The first payload: the client's round one."""
        if self.state is not ClientHandshakeState.NEW:
            raise UsageError("the client handshake has already started")
        self._client_one = self._jpake.write_round_one()
        self.state = ClientHandshakeState.AWAIT_SERVER_ROUND_ONE
        return self._client_one

    def receive(self, payload: bytes) -> list[bytes]:
        try:
            return self._receive(bytes(payload))
        except HandshakeFailed:
            self.state = ClientHandshakeState.FAILED
            raise

    def _receive(self, payload: bytes) -> list[bytes]:
        state = self.state
        try:
            if state is ClientHandshakeState.AWAIT_SERVER_ROUND_ONE:
                self._jpake.read_round_one(payload)
                self._server_one = payload
                self.state = ClientHandshakeState.AWAIT_SERVER_ROUND_TWO
                return []
            if state is ClientHandshakeState.AWAIT_SERVER_ROUND_TWO:
                self._jpake.read_round_two(payload)
                client_two = self._jpake.write_round_two()
                secret = self._jpake.derive_secret()
        except EcJpakeError as exc:
            raise HandshakeFailed(str(exc), ResultCode.UNKNOWN) from None
        if state is ClientHandshakeState.AWAIT_SERVER_ROUND_TWO:
            self._transcript = HandshakeTranscript(
                self._client_one, self._server_one, payload, client_two)
            self._confirmation = client_confirmation(secret, self._transcript)
            self._candidate = secret
            self.state = ClientHandshakeState.AWAIT_CONFIRMATION
            return [client_two, self._confirmation]
        if state is ClientHandshakeState.AWAIT_CONFIRMATION:
            assert self._transcript is not None and self._candidate is not None
            try:
                verify_device_confirmation(
                    self._candidate, self._transcript, self._confirmation, payload)
            except ChannelCryptoError as exc:
                raise HandshakeFailed(str(exc), ResultCode.BAD_DATA) from None
            self._secret = self._candidate
            self.state = ClientHandshakeState.DONE
            return []
        raise UsageError(f"the client handshake is {state.value}; it takes no input now")
