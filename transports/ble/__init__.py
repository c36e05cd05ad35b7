"""Particle's BLE control-request channel.

So far the crypto core: the EC-JPAKE handshake (``ecjpake``) and the key confirmation and
AES-CCM session (``channel_crypto``); see ``docs/ble-crypto.md``.
"""

from .channel_crypto import (
    ChannelCryptoError,
    ChannelSession,
    HandshakeTranscript,
    OpenedReply,
    OpenedRequest,
    client_confirmation,
    confirmation_key,
    device_confirmation,
    verify_client_confirmation,
    verify_device_confirmation,
)
from .ecjpake import EcJpake, EcJpakeError, EcJpakeRole, MbedtlsEcpError

__all__ = [
    "ChannelCryptoError",
    "ChannelSession",
    "EcJpake",
    "EcJpakeError",
    "EcJpakeRole",
    "HandshakeTranscript",
    "MbedtlsEcpError",
    "OpenedReply",
    "OpenedRequest",
    "client_confirmation",
    "confirmation_key",
    "device_confirmation",
    "verify_client_confirmation",
    "verify_device_confirmation",
]
