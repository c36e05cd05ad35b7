"""Claim-code HAL: ``HAL_Set_Claim_Code``, ``HAL_Get_Claim_Code``, ``HAL_IsDeviceClaimed``.

Semantics exactly as Device OS ``hal/src/rtl872x/ota_flash_hal.cpp`` (the nRF52840 file is the
same; the API is documented in ``hal/inc/ota_flash_hal.h``), on the DCT layout of
``platform/MCU/rtl872x/inc/dct.h``:

* set(code): writes exactly 63 bytes at DCT offset 1762 - no validation; a shorter code arrives
  NUL-padded (the control-request path hands over a zeroed 65-byte buffer), a longer one is cut at
  63; ``claimed`` is not touched; returns the DCT write result (0).
* set(None) ("clear"): writes one NUL at 1762 (the other 62 bytes stay), then sets ``claimed`` to
  ASCII '1' (0x31), writing only if it differs; returns 0.
* get(buffer_size): needs ``buffer_size > 63``; copies 63 bytes and a terminating NUL; returns 0,
  or ``0xFFFF`` (``(uint16_t)-1``) when the buffer is too small.
* is_claimed(): true only when the claimed byte is ASCII '1'; 0x00, 0xFF and 0x01 are "not".

When the system layer publishes or clears the code is ``firmware_sim/system/claiming.py``.
"""

from __future__ import annotations

from .dct import FIELDS, Dct

CLAIM_CODE_SIZE = 63
CLAIMED_MARK = 0x31  # ASCII '1'
HAL_GET_ERROR = 0xFFFF  # (uint16_t)-1

_CODE = FIELDS["claim_code"]
_CLAIMED = FIELDS["claimed"]


def _as_bytes(code: bytes | bytearray | str) -> bytes:
    return code.encode("utf-8") if isinstance(code, str) else bytes(code)


class ClaimCodeHal:
    """The three claim-code HAL calls over one DCT."""

    __slots__ = ("dct",)

    def __init__(self, dct: Dct) -> None:
        self.dct = dct

    def set_claim_code(self, code: bytes | bytearray | str | None) -> int:
        if code is None:
            self.dct.write(_CODE.offset, b"\x00")
            if self.dct.read(_CLAIMED.offset, 1)[0] != CLAIMED_MARK:
                self.dct.write(_CLAIMED.offset, bytes([CLAIMED_MARK]))
            return 0
        raw = _as_bytes(code)[:CLAIM_CODE_SIZE].ljust(CLAIM_CODE_SIZE, b"\x00")
        return self.dct.write(_CODE.offset, raw)

    def get_claim_code(self, buffer_size: int = CLAIM_CODE_SIZE + 1) -> tuple[int, bytes]:
        """Return ``(result, buffer)``; ``buffer`` is 63 code bytes plus a NUL on success."""
        if buffer_size <= CLAIM_CODE_SIZE:
            return HAL_GET_ERROR, b""
        return 0, self.dct.read(_CODE.offset, CLAIM_CODE_SIZE) + b"\x00"

    def is_device_claimed(self) -> bool:
        return self.dct.read(_CLAIMED.offset, 1)[0] == CLAIMED_MARK

    # -- conveniences used by the system layer and by tests ------------------------------------

    def stored_code(self) -> bytes:
        """The 63 raw bytes of the claim-code field."""
        return self.dct.read(_CODE.offset, CLAIM_CODE_SIZE)

    def pending_code_bytes(self) -> bytes | None:
        """The stored code's bytes up to the first NUL (what the C ``%s`` and ``publishEvent``
        see), or None when there is none: ``get`` failed, or the first byte is 0x00 (empty or
        cleared) or 0xFF (erased DCT, never set - Device OS CHANGELOG "Claim code shouldn't be
        published if it's not initialized in DCT"). Whether it is published is the system
        layer's rule (``system/claiming.py``)."""
        result, buf = self.get_claim_code()
        if result != 0 or buf[0] in (0x00, 0xFF):
            return None
        return buf.split(b"\x00", 1)[0]

    def pending_code(self) -> str | None:
        """:meth:`pending_code_bytes` as text for display: bytes that are not UTF-8 appear as
        ``\\xNN`` escapes (a code from the cloud is ASCII and reads as itself)."""
        raw = self.pending_code_bytes()
        return None if raw is None else raw.decode("utf-8", "backslashreplace")
