"""Control-request handlers, one module per Device OS domain, and per-platform support.

``HANDLERS`` maps every simulated request type to its handler. ``supported_types(platform)``
says which of them a platform answers itself; a simulated type outside that set answers
NOT_SUPPORTED (e.g. SET_SECURITY_KEY, SET_SOFTAP_SSID and the server settings on Device OS 6
platforms).
``ON_BAD_DATA`` is what a type does when its payload does not decode (the dispatcher's
``on_bad_data``). The firmware update requests are answered on every platform (Device OS builds
``storage.cpp`` for Gen2 as for Gen3 and the P2).
"""

from __future__ import annotations

from ..dispatcher import BadDataAction, Handler
from ..types import RequestType
from . import cloud, config, firmware_update, modules, network, wifi

HANDLERS: dict[RequestType, Handler] = {**config.HANDLERS, **cloud.HANDLERS, **modules.HANDLERS,
                                        **firmware_update.HANDLERS, **network.HANDLERS,
                                        **wifi.HANDLERS}
ON_BAD_DATA: dict[RequestType, BadDataAction] = dict(firmware_update.ON_BAD_DATA)

#: The cloud server settings: Device OS 6 answers NOT_SUPPORTED to all four
#: (``system/src/control/config.cpp``); Device OS 2.3.1 implements them outside the nRF52840.
_SERVER_SETTINGS = frozenset({
    RequestType.SET_SERVER_ADDRESS, RequestType.GET_SERVER_ADDRESS,
    RequestType.SET_SERVER_PROTOCOL, RequestType.GET_SERVER_PROTOCOL,
})
#: The setup-done flag: Device OS 2.3.1 builds it only with ``HAL_PLATFORM_DCT_SETUP_DONE``
#: (the nRF52840), so the Photon answers NOT_SUPPORTED; Device OS 6 has it on every platform.
_SETUP_DONE = frozenset({RequestType.SET_DEVICE_SETUP_DONE, RequestType.IS_DEVICE_SETUP_DONE})
_COMMON = frozenset(HANDLERS) - _SERVER_SETTINGS - {
    RequestType.SET_SECURITY_KEY, RequestType.GET_SECURITY_KEY, RequestType.SET_SOFTAP_SSID,
    RequestType.NCP_FIRMWARE_VERSION,
}
_WIFI_NEW = frozenset(wifi.HANDLERS)
#: Device OS's interface API (``HAL_PLATFORM_IFAPI``): the Gen3 and P2-class platforms
_IFAPI = frozenset(network.HANDLERS)

#: platform profile name -> request types it answers itself (others: NOT_SUPPORTED / the app).
SUPPORTED: dict[str, frozenset[RequestType]] = {
    "p2": _COMMON,
    "photon2": _COMMON,
    # The Argon's Wi-Fi is an ESP32 NCP whose firmware version is reported.
    "argon": _COMMON | {RequestType.NCP_FIRMWARE_VERSION},
    # Gen2 (Device OS 2.3.1): SoftAP SSID and the server settings settable, no setup-done
    # flag; Wi-Fi is configured through SoftAP and the listening-mode console, not the
    # wifi_new requests; no interface API (UNVERIFIED: the
    # Photon's WICED HAL is taken to build network.cpp without HAL_PLATFORM_IFAPI) and no
    # assets (Device OS 5.5 brought them, to the Gen3 and P2-class platforms).
    "photon": (_COMMON - _WIFI_NEW - _IFAPI - _SETUP_DONE - {RequestType.GET_ASSET_INFO})
    | _SERVER_SETTINGS | {RequestType.SET_SOFTAP_SSID},
}


def supported_types(profile_name: str) -> frozenset[RequestType]:
    return SUPPORTED.get(profile_name, _COMMON)


__all__ = ["HANDLERS", "ON_BAD_DATA", "SUPPORTED", "supported_types"]
