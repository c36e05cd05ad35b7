"""Transports: thin adapters that carry bytes between host-side clients and simulated devices.

Each sub-package is a sans-IO core plus its edge adapters; the device side hands every control
request to the device's transport-agnostic dispatcher (``device.control``):

* ``transports.usb``: vendor control transfers (INIT/CHECK/SEND/RECV/RESET), particle-usb's host
  pipeline, the TCP bridge and the Node.js module for unmodified particle-usb / particle-cli;
* ``transports.serial``: the listening-mode console (pyserial ``fwsim://`` URLs, a real pty);
* ``transports.ble``: the GATT control channel (EC-JPAKE + AES-CCM), a bleak backend, bumble;
* ``transports.softap``: the Photon's SoftAP setup over HTTP and TCP;
* ``transports.net``: the device-cloud link as CoAP over UDP.

Sub-packages are imported on first use, so ``import transports`` stays cheap.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["ble", "net", "serial", "softap", "usb"]


def __getattr__(name: str) -> ModuleType:
    if name in __all__:
        module = importlib.import_module(f"{__name__}.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'transports' has no attribute {name!r}")
