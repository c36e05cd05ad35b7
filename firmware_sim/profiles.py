"""Platform profiles: what differs between a P2, a Photon 2, an Argon and a Photon.

Platform ids and USB product ids (CDC and DFU, vendor 0x2B04) are Device OS
``build/platform-id.mk``; the BLE name series is ``PRODUCT_SERIES`` (``<series>-<setup code>``,
``hal/src/rtl872x/device_code.cpp``); the Photon's SoftAP is ``hal/src/photon/softap.cpp`` of
Device OS 2.3.1 (removed in 4.0.0). The set of control requests each profile supports is
declared by ``control_requests`` (it knows the numbers); a profile only carries the facts the
device core needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from .kernel.errors import ConfigurationError


@dataclass(frozen=True)
class PlatformProfile:
    name: str
    platform_id: int
    usb_pid: int
    dfu_pid: int
    #: ``PRODUCT_SERIES`` used in the BLE name (``<series>-<setup code>``).
    series: str
    system_version: str
    #: Module version in the HELLO (``system_version`` u16). UNVERIFIED mapping: 6.2.0 -> 6200.
    system_module_version: int
    has_ble: bool
    has_softap: bool
    #: "udp" (DTLS, session persistence) or "tcp" (Gen2 Photon: every connection is full).
    cloud_transport: str
    #: Gen2 SoftAP SSID prefix default.
    softap_ssid_prefix: str = "Photon"
    usb_vid: int = 0x2B04
    quirks: frozenset[str] = field(default_factory=frozenset)

    @property
    def persists_session(self) -> bool:
        return self.cloud_transport == "udp"

    def with_overrides(self, **overrides: Any) -> PlatformProfile:
        try:
            return replace(self, **overrides)
        except TypeError as exc:
            raise ConfigurationError(f"bad profile override: {exc}") from None


P2 = PlatformProfile(
    name="p2", platform_id=32, usb_pid=0xC020, dfu_pid=0xD020, series="P2",
    system_version="6.2.0", system_module_version=6200, has_ble=True, has_softap=False,
    cloud_transport="udp", quirks=frozenset({"controlOutTransfersRequireDataStage"}),
)
PHOTON_2 = P2.with_overrides(name="photon2", series="Photon 2")
ARGON = PlatformProfile(
    name="argon", platform_id=12, usb_pid=0xC00C, dfu_pid=0xD00C, series="Argon",
    system_version="6.2.0", system_module_version=6200, has_ble=True, has_softap=False,
    cloud_transport="udp",
)
PHOTON = PlatformProfile(
    name="photon", platform_id=6, usb_pid=0xC006, dfu_pid=0xD006, series="Photon",
    system_version="2.3.1", system_module_version=2302, has_ble=False, has_softap=True,
    cloud_transport="tcp",
)

PROFILES: dict[str, PlatformProfile] = {p.name: p for p in (P2, PHOTON_2, ARGON, PHOTON)}


def get_profile(name: str) -> PlatformProfile:
    try:
        return PROFILES[name.lower()]
    except KeyError:
        known = ", ".join(sorted(PROFILES))
        raise ConfigurationError(f"unknown profile {name!r} (known: {known})") from None
