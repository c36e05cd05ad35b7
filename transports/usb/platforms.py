"""Particle USB ids per platform, as particle-usb's device filter knows them.

VID 0x2B04 for all; the (CDC, DFU) PIDs are device-os.md §4 (``build/platform-id.mk``); the
quirk ``controlOutTransfersRequireDataStage`` belongs to the P2 (Photon 2), the M-SoM and the
Tracker M: on those the host sends a zero-length OUT transfer as 1 byte. The quirk
``controlRequestsNotSupported`` (npm ``@particle/device-constants``: the Tachyon, platform 42,
USB 0x2B04:0xC02A, no DFU) makes particle-usb skip the firmware-version read and the RESET of
stale requests on open and refuse every control request. A DFU PID of 0 means "no DFU mode".
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "PARTICLE_VID",
    "PLATFORMS",
    "QUIRK_NO_CONTROL_REQUESTS",
    "QUIRK_OUT_DATA_STAGE",
    "UsbPlatform",
    "platform_for_usb_ids",
]

PARTICLE_VID = 0x2B04
QUIRK_OUT_DATA_STAGE = "controlOutTransfersRequireDataStage"
QUIRK_NO_CONTROL_REQUESTS = "controlRequestsNotSupported"


@dataclass(frozen=True)
class UsbPlatform:
    name: str
    platform_id: int
    usb_pid: int
    dfu_pid: int
    quirks: frozenset[str] = frozenset()


_ROWS = [
    ("photon", 6, 0xC006, 0xD006), ("p1", 8, 0xC008, 0xD008),
    ("electron", 10, 0xC00A, 0xD00A), ("argon", 12, 0xC00C, 0xD00C),
    ("boron", 13, 0xC00D, 0xD00D), ("esomx", 15, 0xC00F, 0xD00F),
    ("asom", 22, 0xC016, 0xD016), ("bsom", 23, 0xC017, 0xD017),
    ("b5som", 25, 0xC019, 0xD019), ("tracker", 26, 0xC01A, 0xD01A),
    ("trackerm", 28, 0xC01C, 0xD01C), ("p2", 32, 0xC020, 0xD020),
    ("msom", 35, 0xC023, 0xD023), ("tachyon", 42, 0xC02A, 0),
]
_WITH_QUIRK = {"p2", "msom", "trackerm"}

_QUIRKS = {**{name: frozenset({QUIRK_OUT_DATA_STAGE}) for name in _WITH_QUIRK},
           "tachyon": frozenset({QUIRK_NO_CONTROL_REQUESTS})}

PLATFORMS: tuple[UsbPlatform, ...] = tuple(
    UsbPlatform(name, pid_, cdc, dfu, _QUIRKS.get(name, frozenset()))
    for name, pid_, cdc, dfu in _ROWS)


def platform_for_usb_ids(vendor_id: int, product_id: int) -> tuple[UsbPlatform, bool] | None:
    """``(platform, in_dfu_mode)`` for a VID/PID pair, or None for a foreign device."""
    if vendor_id != PARTICLE_VID:
        return None
    for platform in PLATFORMS:
        if product_id == platform.usb_pid:
            return platform, False
        if platform.dfu_pid and product_id == platform.dfu_pid:
            return platform, True
    return None
