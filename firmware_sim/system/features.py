"""HAL feature flags (``HAL_Feature_Get`` / ``HAL_Feature_Set``) kept in the DCT.

How this works
--------------
On the P2 (``hal/src/rtl872x/core_hal.c``) the flags are the 32-bit little-endian DCT field
``feature_flags`` with **inverted logic**: a feature is enabled when its bit is *clear*, so an
erased DCT (0xFFFFFFFF) has every feature disabled. Bits (``platform/MCU/rtl872x/inc/dct.h``):
RESET_INFO 0x01, ETHERNET_DETECTION 0x02, LED_OVERRIDDEN 0x04, DISABLE_LISTENING_MODE 0x08.
``get(RESET_INFO)`` is always true on this platform; a write happens only when the value
changes.

``DISABLE_LISTENING_MODE`` (``System.enableFeature(FEATURE_DISABLE_LISTENING_MODE)``): outside
safe mode the device refuses to enter listening mode (NOT_ALLOWED) and leaves it if it is in
it, and the BLE control-request channel is not initialised at start-up
(``SystemControl::init``: only in safe mode or without the flag); BLE provisioning mode and
its custom service UUID need the flag (``system_ble_prov_set_custom_svc_uuid``).
"""

from __future__ import annotations

import struct
from enum import IntEnum

from ..hal.dct import FIELDS, Dct

_FIELD = FIELDS["feature_flags"]


class Feature(IntEnum):
    """The DCT bit of each feature."""

    RESET_INFO = 0x01
    ETHERNET_DETECTION = 0x02
    LED_OVERRIDDEN = 0x04
    DISABLE_LISTENING_MODE = 0x08


class FeatureFlags:
    __slots__ = ("_dct",)

    def __init__(self, dct: Dct) -> None:
        self._dct = dct

    def _raw(self) -> int:
        (value,) = struct.unpack("<I", self._dct.read(_FIELD.offset, _FIELD.size))
        return int(value)

    def get(self, feature: Feature) -> bool:
        if feature is Feature.RESET_INFO:
            return True
        return not self._raw() & feature

    def set(self, feature: Feature, enabled: bool) -> int:
        """``Write_Feature_Flag``: returns 0 (the DCT write result)."""
        flags = self._raw()
        if (not flags & feature) == enabled:
            return 0
        flags = flags & ~feature if enabled else flags | feature
        return self._dct.write(_FIELD.offset, struct.pack("<I", flags & 0xFFFFFFFF))


__all__ = ["Feature", "FeatureFlags"]
