"""An emulated ThingsBoard ("IoT Hub") for device claiming, and a claim-button device.

The service core (:class:`ThingsBoardService`) is sans-IO on a World; MQTT, HTTP and CoAP are
thin adapters (``mqtt``, ``http_api``, ``coap``) and :class:`ThingsBoardServer` opens them all on
real sockets. Needs the ``thingsboard`` extra (mqtt5, PyJWT, segno, FastAPI/uvicorn, httpx);
names are resolved lazily, so ``import cloud_sim`` never needs it.

Entry points: ``python -m cloud_sim.thingsboard serve|why|press``; scenarios in
``TB_SCENARIOS``; docs/thingsboard.md.
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
    "ClaimResponse": "model",
    "Authority": "model",
    "PayloadType": "model",
    "seed_demo": "demo",
    "DemoWorld": "demo",
    "ClaimButtonDevice": "device",
    "ButtonConfig": "device",
    "SecretMode": "device",
    "MqttUplink": "device",
    "ServiceUplink": "device",
    "render_qr": "device",
    "service_connector": "uplinks",
    "socket_connector": "uplinks",
    "HttpUplink": "uplinks",
    "CoapUplink": "uplinks",
    "ThingsBoardServer": "server",
    "TbServerConfig": "server",
    "create_app": "http_api",
    "TB_SCENARIOS": "scenarios",
    "TbScenario": "scenarios",
    "TbScenarioResult": "scenarios",
    "get_tb_scenario": "scenarios",
    "MqttServerSession": "mqtt",
    "MqttDeviceClient": "mqtt",
    "ByteStream": "mqtt",
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
