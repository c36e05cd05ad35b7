"""The claim-button device: a ThingsBoard device (an ESP32-class board) with a claim button.

A firmware on the World clock like the Particle apps, on the device side of the house: it imports
the kernel and the shared wire modules (``communication.mqtt``, ``communication.tb_device_api``),
never a cloud or a transport. The testbed links it to the emulated ThingsBoard in process
(``firmware_sim.testbed.clouds.thingsboard``); ``transports.tcp`` and
``transports.claim_uplinks`` put it on real sockets (a real ThingsBoard too).
"""

from .device import (
    DEFAULT_DURATION_MS,
    DEVICE_PROFILE,
    ButtonConfig,
    ClaimButtonDevice,
    Done,
    SecretMode,
    Uplink,
    node_name,
    qr_payload,
    render_qr,
)
from .mqtt_client import ClientState, MqttDeviceClient
from .uplink import Connector, MqttUplink

__all__ = [
    "DEFAULT_DURATION_MS",
    "DEVICE_PROFILE",
    "ButtonConfig",
    "ClaimButtonDevice",
    "ClientState",
    "Connector",
    "Done",
    "MqttDeviceClient",
    "MqttUplink",
    "SecretMode",
    "Uplink",
    "node_name",
    "qr_payload",
    "render_qr",
]
