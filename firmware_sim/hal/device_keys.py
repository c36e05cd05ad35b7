"""The device's P-256 key pair for the UDP cloud link, kept in the DCT as Device OS keeps it.

How this works
--------------
Gen3 and P2 devices (``FEATURE_CLOUD_UDP``) keep their DTLS key pair in the DCT fields
``alt_device_private_key`` (offset 3106, 192 bytes) and ``alt_device_public_key`` (offset 2978,
128 bytes); the server's public key is ``alt_server_public_key`` (offset 3298, 192 bytes,
:mod:`firmware_sim.system.server_config`). Offsets are the static asserts of
``platform/MCU/rtl872x/inc/dct.h`` (the same on nRF52840).

* Private key: ``gen_ec_key`` (``communication/src/eckeygen.cpp``) writes the SEC1
  ``ECPrivateKey`` DER of a fresh secp256r1 key (``mbedtls_pk_write_key_der``, 121 bytes with
  the curve and the public point) and moves it to the start of the field. fwsim fills the rest
  with 0xFF (Device OS leaves whatever the buffer held there; only the DER is ever read, its
  length taken from its own header, ``determine_der_length``).
* Public key: ``fetch_device_public_key_ex`` (``hal/src/rtl872x/ota_flash_hal.cpp``) derives it
  from the private key at every start and rewrites the field when it differs: a zeroed buffer
  into which ``mbedtls_pk_write_pubkey_der`` wrote the 91-byte SubjectPublicKeyInfo *at the
  end* (it is not moved to the start), so the field is 37 zero bytes then the DER. (Read from
  the source; not confirmed on a device.)
* ``HAL_FLASH_Read_CorePrivateKey`` generates the key when the field is erased (first byte
  0xFF) and rewrites the public key. :meth:`DeviceKeys.ensure` does the same, with the random
  source it is given: a seeded stream in process (a scenario stays replayable), the OS CSPRNG
  for a device that talks to a cloud over a socket (``firmware_sim.testbed``).
"""

from __future__ import annotations

from collections.abc import Callable

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from .dct import FIELDS, Dct

PRIVATE_KEY_FIELD = FIELDS["alt_device_private_key"]
PUBLIC_KEY_FIELD = FIELDS["alt_device_public_key"]
#: order of the secp256r1 group
_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551

RandomBytes = Callable[[int], bytes]


def der_length(raw: bytes) -> int | None:
    """Total size of the DER SEQUENCE at the start of ``raw`` (``determine_der_length``)."""
    if len(raw) < 2 or raw[0] != 0x30:
        return None
    first = raw[1]
    if first < 0x80:
        return 2 + first
    count = first & 0x7F
    if count == 0 or count > 2 or len(raw) < 2 + count:
        return None
    return 2 + count + int.from_bytes(raw[2:2 + count], "big")


def public_key_der(key: ec.EllipticCurvePublicKey) -> bytes:
    """The SubjectPublicKeyInfo DER of ``key`` (91 bytes for P-256)."""
    return key.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def sec1_private_der(key: ec.EllipticCurvePrivateKey) -> bytes:
    """The SEC1 (``ECPrivateKey``) DER of ``key``, as the DCT stores it."""
    return key.private_bytes(serialization.Encoding.DER,
                             serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption())


def generate_private_key(random_bytes: RandomBytes) -> ec.EllipticCurvePrivateKey:
    """A secp256r1 key whose scalar comes from ``random_bytes`` (rejection sampling)."""
    while True:
        scalar = int.from_bytes(random_bytes(32), "big")
        if 0 < scalar < _ORDER:
            return ec.derive_private_key(scalar, ec.SECP256R1())


class DeviceKeys:
    """The UDP key pair fields of one device's DCT."""

    __slots__ = ("_dct",)

    def __init__(self, dct: Dct) -> None:
        self._dct = dct

    def erased(self) -> bool:
        return self._dct.read_field(PRIVATE_KEY_FIELD.name)[0] == 0xFF

    def private_key_der(self) -> bytes | None:
        """The stored SEC1 DER, or None when the field is erased or does not parse."""
        raw = self._dct.read_field(PRIVATE_KEY_FIELD.name)
        size = der_length(raw)
        if size is None or size > len(raw):
            return None
        return raw[:size]

    def private_key(self) -> ec.EllipticCurvePrivateKey | None:
        der = self.private_key_der()
        if der is None:
            return None
        try:
            key = serialization.load_der_private_key(der, password=None)
        except (ValueError, TypeError):
            return None
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
            return None
        return key

    def public_key_der(self) -> bytes | None:
        """The SubjectPublicKeyInfo stored at the end of ``alt_device_public_key``."""
        raw = self._dct.read_field(PUBLIC_KEY_FIELD.name)
        start = len(raw) - len(raw.lstrip(b"\x00"))
        size = der_length(raw[start:])
        if size is None or start + size != len(raw):
            return None
        return raw[start:]

    def store(self, key: ec.EllipticCurvePrivateKey) -> None:
        """Write the key pair in Device OS's layout."""
        der = sec1_private_der(key)
        self._dct.write_field(PRIVATE_KEY_FIELD.name,
                              der.ljust(PRIVATE_KEY_FIELD.size, b"\xff"))
        self._write_public(key)

    def _write_public(self, key: ec.EllipticCurvePrivateKey) -> None:
        public = public_key_der(key.public_key()).rjust(PUBLIC_KEY_FIELD.size, b"\x00")
        if self._dct.read_field(PUBLIC_KEY_FIELD.name) != public:
            self._dct.write_field(PUBLIC_KEY_FIELD.name, public)

    def ensure(self, random_bytes: RandomBytes) -> bool:
        """Generate the key pair when the private key field is erased, and keep the public key
        field in step with the private key; returns whether it generated. A stored key that
        does not parse is left alone (as on a device, the handshake then fails)."""
        if self.erased():
            self.store(generate_private_key(random_bytes))
            return True
        key = self.private_key()
        if key is not None:
            self._write_public(key)
        return False


__all__ = ["PRIVATE_KEY_FIELD", "PUBLIC_KEY_FIELD", "DeviceKeys", "RandomBytes", "der_length",
           "generate_private_key", "public_key_der"]
