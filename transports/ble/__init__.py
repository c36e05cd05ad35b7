"""Particle's BLE control-request channel: EC-JPAKE handshake and AES-CCM session crypto.

Only the crypto core lives here for now; see ``docs/ble-crypto.md``.
"""

from .ecjpake import EcJpake, EcJpakeError, EcJpakeRole

__all__ = ["EcJpake", "EcJpakeError", "EcJpakeRole"]
