"""WICED security values as the Photon's SoftAP speaks them, and their mapping to fwsim's radio.

``scan-ap`` reports, and ``configure-ap`` takes, ``wiced_security_t`` values: a bit set of
WEP/TKIP/AES/WPA/WPA2/enterprise flags (device-os.md §6, softap-setup's ``securityTable``).
The simulated radio speaks :class:`control_requests.types.WifiSecurity` (Device OS 6's security
kinds, ``particle.ctrl.wifi.Security``); the mapping below is fwsim's choice for the pairs that
have no exact counterpart on a 2015-era Photon radio (UNVERIFIED, docs/softap.md): WPA3-only
access points are reported as ``WICED_SECURITY_UNKNOWN`` (-1) and WPA2/WPA3 transition networks
as WPA2-AES.
"""

from __future__ import annotations

from enum import IntEnum

from control_requests.types import WifiSecurity

WEP_ENABLED = 0x0001
TKIP_ENABLED = 0x0002
AES_ENABLED = 0x0004
SHARED_ENABLED = 0x00008000
WPA_SECURITY = 0x00200000
WPA2_SECURITY = 0x00400000
ENTERPRISE_ENABLED = 0x02000000


class WicedSecurity(IntEnum):
    """The named ``wiced_security_t`` values used by softap-setup."""

    OPEN = 0
    WEP_PSK = WEP_ENABLED
    WEP_SHARED = WEP_ENABLED | SHARED_ENABLED
    WPA_TKIP = WPA_SECURITY | TKIP_ENABLED
    WPA_AES = WPA_SECURITY | AES_ENABLED
    WPA2_AES = WPA2_SECURITY | AES_ENABLED
    WPA2_TKIP = WPA2_SECURITY | TKIP_ENABLED
    WPA2_MIXED = WPA2_SECURITY | AES_ENABLED | TKIP_ENABLED
    WPA_ENTERPRISE_AES = ENTERPRISE_ENABLED | WPA_SECURITY | AES_ENABLED
    WPA_ENTERPRISE_TKIP = ENTERPRISE_ENABLED | WPA_SECURITY | TKIP_ENABLED
    WPA2_ENTERPRISE_AES = ENTERPRISE_ENABLED | WPA2_SECURITY | AES_ENABLED
    WPA2_ENTERPRISE_TKIP = ENTERPRISE_ENABLED | WPA2_SECURITY | TKIP_ENABLED
    WPA2_ENTERPRISE_MIXED = ENTERPRISE_ENABLED | WPA2_SECURITY | AES_ENABLED | TKIP_ENABLED
    UNKNOWN = -1


#: softap-setup's names (``SoftAP.securityValue``), including its aliases.
SECURITY_NAMES: dict[str, int] = {
    "open": 0, "none": 0, "wep_psk": 0x1, "wep_shared": 0x8001,
    "wpa_tkip": 0x00200002, "wpa_aes": 0x00200004, "wpa2_aes": 0x00400004,
    "wpa2_tkip": 0x00400002, "wpa2_mixed": 0x00400006, "wpa2": 0x00400006,
    "wpa_enterprise_aes": 0x02200004, "wpa_enterprise_tkip": 0x02200002,
    "wpa2_enterprise_aes": 0x02400004, "wpa2_enterprise_tkip": 0x02400002,
    "wpa2_enterprise_mixed": 0x02400006, "wpa2_enterprise": 0x02400006,
    "enterprise": 0x02000000,
}

#: EAP methods of ``configure-ap``'s ``eap`` (``WLanEapType``).
EAP_PEAP = 25
EAP_TLS = 13

_FROM_RADIO: dict[WifiSecurity, int] = {
    WifiSecurity.NO_SECURITY: WicedSecurity.OPEN,
    WifiSecurity.WEP: WicedSecurity.WEP_PSK,
    WifiSecurity.WPA_PSK: WicedSecurity.WPA_AES,
    WifiSecurity.WPA2_PSK: WicedSecurity.WPA2_AES,
    WifiSecurity.WPA_WPA2_PSK: WicedSecurity.WPA2_MIXED,
    WifiSecurity.WPA3_PSK: WicedSecurity.UNKNOWN,
    WifiSecurity.WPA2_WPA3_PSK: WicedSecurity.WPA2_AES,
}


def wiced_from_radio(security: WifiSecurity) -> int:
    """What a Photon scan reports for an access point of this security."""
    return int(_FROM_RADIO[security])


def radio_from_wiced(value: int) -> WifiSecurity:
    """The credential security stored for a ``wiced_security_t`` (enterprise bit ignored)."""
    if value == WicedSecurity.OPEN:
        return WifiSecurity.NO_SECURITY
    if value & WEP_ENABLED:
        return WifiSecurity.WEP
    if value & WPA2_SECURITY:
        return WifiSecurity.WPA2_PSK
    if value & WPA_SECURITY:
        return WifiSecurity.WPA_PSK
    return WifiSecurity.WPA2_PSK


def security_kind(value: int | None) -> str:
    """``toSecurityType``: ``unsec``, ``wep``, ``wpa``, ``wpa2`` (each maybe ``_enterprise``),
    or ``not_set`` for a missing or unrecognised value."""
    if value is None:
        return "not_set"
    if value == WicedSecurity.OPEN:
        return "unsec"
    if value & WEP_ENABLED:
        return "wep"
    suffix = "_enterprise" if value & ENTERPRISE_ENABLED else ""
    if value & WPA_SECURITY:
        return "wpa" + suffix
    if value & WPA2_SECURITY:
        return "wpa2" + suffix
    return "not_set"


def security_value(name_or_value: str | int) -> int:
    """A ``wiced_security_t`` from a softap-setup name (``"wpa2_aes"``) or a number."""
    if isinstance(name_or_value, int):
        return name_or_value
    try:
        return SECURITY_NAMES[name_or_value.lower()]
    except KeyError:
        raise ValueError(f"unknown security {name_or_value!r} "
                         f"(known: {', '.join(SECURITY_NAMES)})") from None


def security_name(value: int) -> str | None:
    """softap-setup's ``securityLookup``: the last table name with that value, or None."""
    match = None
    for name, number in SECURITY_NAMES.items():
        if number == value:
            match = name
    return match
