"""An emulated ThingsBoard ("IoT Hub") for device claiming.

The service core (:class:`ThingsBoardService`) is sans-IO on a World; MQTT, HTTP and CoAP are
thin adapters: :class:`MqttServerSession` on a kernel stream link end (``mqtt_session``), the
FastAPI app (``http_api``) and the aiocoap resource (``coap``); :class:`ThingsBoardServer` serves
the HTTP and CoAP faces on sockets. The service, its store, the MQTT session and the demo data
need only the base install (the MQTT codec ``mqtt5`` and PyJWT are base dependencies); the HTTP
face needs the ``thingsboard`` extra (FastAPI/uvicorn). Names resolve lazily, so
``import cloud_sim`` never imports any of it.

Worlds with this cloud are built by the testbed (cloud kind ``thingsboard``:
``firmware_sim.testbed.clouds.thingsboard``), which also holds the claim-button devices
(``firmware_sim.claim_button``); ``fwsim up --cloud thingsboard`` serves it, the scenarios are
``firmware_sim.scenarios.thingsboard``. See docs/thingsboard.md.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ThingsBoardService": "service",
    "DeviceAck": "service",
    "ClaimEvent": "service",
    "ThingsBoardSettings": "settings",
    "MqttLimits": "settings",
    "ReclaimBody": "settings",
    "BodylessClaim": "settings",
    "TbStore": "store",
    "Reason": "claiming",
    "ClaimOutcome": "claiming",
    "ClaimResponse": "model",
    "Authority": "model",
    "PayloadType": "model",
    "seed_demo": "demo",
    "DemoWorld": "demo",
    "set_demo_passwords": "demo",
    "MqttServerSession": "mqtt_session",
    "ThingsBoardServer": "server",
    "TbServerConfig": "server",
    "create_app": "http_api",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'cloud_sim.thingsboard' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
