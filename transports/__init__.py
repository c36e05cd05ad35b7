"""Transports: thin adapters that carry bytes between host-side clients and simulated devices.

Each sub-package is a sans-IO core plus its edge adapters; the device side hands every control
request to the device's transport-agnostic dispatcher:

* ``transports.usb``: vendor control transfers (INIT/CHECK/SEND/RECV/RESET), particle-usb's host
  pipeline, the TCP bridge and the Node.js module for unmodified particle-usb / particle-cli;
* ``transports.serial``: the listening-mode console (pyserial ``fwsim://`` URLs, a real pty);
* ``transports.ble``: the GATT control channel (EC-JPAKE + AES-CCM), a bleak backend, bumble;
* ``transports.softap``: the Photon's SoftAP setup over HTTP and TCP;
* ``transports.net``: the device-cloud link as CoAP over UDP;
* ``transports.tcp``: TCP connections as kernel stream links (MQTT to and from the World);
* ``transports.claim_uplinks``: a claim button's HTTP and CoAP claim requests to a real server.

Import contract: ``transports`` imports the standard library, third-party libraries,
``firmware_sim.kernel`` and ``control_requests`` - never the system layer, the HAL, the CLI,
the testbed or the cloud. What a transport may touch on a device is declared by the Protocols
of ``transports.device_surface`` (re-exported here); the composition side
(``firmware_sim.testbed.adapters``) supplies objects that fit them. Edge services (the
``edge`` module of each sub-package) see the world through ``transports.edge_api``.

Sub-packages and these names are imported on first use, so ``import transports`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .device_surface import (
        BleDevice,
        ConsoleDevice,
        ControlEndpoint,
        DeviceSurface,
        SoftApDevice,
        UsbDevice,
    )
    from .edge_api import EdgeContext, EdgeHandle, EdgeService, port_arg

_SUBPACKAGES = ("ble", "claim_uplinks", "net", "serial", "softap", "tcp", "usb")
_LAZY = {
    "BleDevice": "device_surface",
    "ConsoleDevice": "device_surface",
    "ControlEndpoint": "device_surface",
    "DeviceSurface": "device_surface",
    "SoftApDevice": "device_surface",
    "UsbDevice": "device_surface",
    "EdgeContext": "edge_api",
    "EdgeHandle": "edge_api",
    "EdgeService": "edge_api",
    "port_arg": "edge_api",
}

__all__ = [
    "BleDevice",
    "ConsoleDevice",
    "ControlEndpoint",
    "DeviceSurface",
    "EdgeContext",
    "EdgeHandle",
    "EdgeService",
    "SoftApDevice",
    "UsbDevice",
    "ble",
    "claim_uplinks",
    "net",
    "port_arg",
    "serial",
    "softap",
    "tcp",
    "usb",
]


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        value: Any = importlib.import_module(f"{__name__}.{name}")
    elif name in _LAZY:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    else:
        raise AttributeError(f"module 'transports' has no attribute {name!r}")
    globals()[name] = value
    return value
