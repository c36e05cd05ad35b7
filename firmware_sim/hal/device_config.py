"""Other identity fields kept in the DCT: mobile secret, setup code, SSID prefix, setup-done.

Device OS sources: ``hal/src/rtl872x/device_code.cpp`` (setup code and names), ``dct.h``.
"""

from __future__ import annotations

from .dct import ERASED, FIELDS, Dct

SETUP_CODE_SIZE = 6
MOBILE_SECRET_SIZE = 15
SETUP_CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
#: Device OS ``MAX_SSID_PREFIX_LEN``: the DCT field is 26 bytes, the first one the length
MAX_SSID_PREFIX_SIZE = FIELDS["ssid_prefix"].size - 1


def _is_printable(raw: bytes) -> bool:
    return all(0x20 < b < 0x7F for b in raw)


class DeviceConfigHal:
    """Accessors over the identity-related DCT fields."""

    __slots__ = ("dct",)

    def __init__(self, dct: Dct) -> None:
        self.dct = dct

    # mobile secret ----------------------------------------------------------------------------
    def device_secret(self) -> str | None:
        """The 15-character mobile secret, or None when unset/unprintable (NOT_FOUND)."""
        raw = self.dct.read_field("device_secret")
        return raw.decode("ascii") if _is_printable(raw) else None

    def set_device_secret(self, secret: str) -> None:
        raw = secret.encode("ascii")
        if len(raw) != MOBILE_SECRET_SIZE or not _is_printable(raw):
            raise ValueError("the mobile secret is exactly 15 printable ASCII characters")
        self.dct.write_field("device_secret", raw)

    # setup code (device_code) -----------------------------------------------------------------
    def device_code(self) -> str | None:
        raw = self.dct.read_field("device_code")
        return raw.decode("ascii") if _is_printable(raw) else None

    def set_device_code(self, code: str | bytes) -> None:
        """Store a setup code: its bytes (text as UTF-8), cut or padded with ``X`` to 6, as
        Device OS copies them; a code that is not printable reads back as unset (the serial
        number's last 6 characters are used), as on the device."""
        raw = code.encode("utf-8", "replace") if isinstance(code, str) else bytes(code)
        self.dct.write_field("device_code", raw[:SETUP_CODE_SIZE].ljust(SETUP_CODE_SIZE, b"X"))

    def setup_code(self, serial_number: str | None) -> str:
        """DCT ``device_code``, else the last 6 characters of the serial, else ``XXXXXX``."""
        code = self.device_code()
        if code:
            return code
        if serial_number and len(serial_number) >= SETUP_CODE_SIZE:
            return serial_number[-SETUP_CODE_SIZE:]
        return "X" * SETUP_CODE_SIZE

    # SSID / BLE name prefix (first byte is the length) ---------------------------------------
    # Device OS keeps raw bytes (an SSID is bytes): the protobuf string's UTF-8 bytes, cut at a
    # NUL and at MAX_SSID_PREFIX_LEN (25) bytes, as ``strnlen(prefix, 25)`` does on the Photon.
    def ssid_prefix(self) -> str | None:
        raw = self.dct.read_field("ssid_prefix")
        length = raw[0]
        if length in (0, ERASED) or length > MAX_SSID_PREFIX_SIZE:
            return None
        return raw[1:1 + length].decode("utf-8", "replace")

    def set_ssid_prefix(self, prefix: str | bytes) -> None:
        """Store ``prefix`` (text as UTF-8); any text fits - longer ones are cut to 25 bytes."""
        raw = prefix.encode("utf-8", "replace") if isinstance(prefix, str) else bytes(prefix)
        raw = raw.split(b"\0", 1)[0][:MAX_SSID_PREFIX_SIZE]
        self.dct.write_field("ssid_prefix", bytes([len(raw)]) + raw)

    # setup done ------------------------------------------------------------------------------
    def setup_done(self) -> bool:
        return self.dct.read_field("setup_done")[0] == 1

    def set_setup_done(self, done: bool) -> None:
        self.dct.write_field("setup_done", bytes([1 if done else 0]))
