"""Particle's BLE control-request channel (device-os.md §5); see docs/ble.md.

Layers, bottom up:

* crypto: EC-JPAKE (``ecjpake``), key confirmation and the AES-CCM session
  (``channel_crypto``); docs/ble-crypto.md;
* sans-IO protocol: GATT profile (``gatt``), advertising data (``advertising``), byte-stream
  framing (``framing``), the handshake machines (``handshake``), the device's channel
  (``device_channel``) and the phone's (``client_channel``);
* simulation: a device as a peripheral (``peripheral``) on the world's virtual radio (``air``),
  a world-clock phone (``provisioning``);
* asyncio hosts: bridges to the world clock (``bridge``), bleak backend classes
  (``bleak_backend``, needs the ``[ble]`` extra), the ``ProvisioningClient`` (``client``);
* a real host stack (``bumble_peripheral``, ``bumble_central``, extra ``[bumble]``) and the
  ``fwsim serve --ble`` edge service (``edge``).

Names from the bleak- and bumble-based modules are imported on first use, so the package
works without those extras.
"""

from __future__ import annotations

import importlib
from typing import Any

from .advertising import (
    PARTICLE_COMPANY_ID,
    AdvertisingPayload,
    ParsedAdvertisement,
    build_advertising,
    device_name,
    parse_advertisement,
)
from .air import AdvertisementReport, AirTiming, BleAir, CentralConnection
from .channel_crypto import (
    ChannelCryptoError,
    ChannelSession,
    HandshakeTranscript,
    OpenedReply,
    OpenedRequest,
    client_confirmation,
    confirmation_key,
    device_confirmation,
    verify_client_confirmation,
    verify_device_confirmation,
)
from .client_channel import ClientChannelState, ClientControlChannel
from .device_channel import BUFFER_POOL_SIZE, ChannelTiming, DeviceControlChannel
from .ecjpake import EcJpake, EcJpakeError, EcJpakeRole, MbedtlsEcpError
from .framing import MAX_HANDSHAKE_PAYLOAD_SIZE, FrameAssembler, FramingError
from .gatt import (
    PROTOCOL_VERSION,
    RX_UUID,
    SERVICE_UUID,
    TX_UUID,
    VERSION_UUID,
    AttError,
    AttErrorCode,
)
from .handshake import ClientHandshake, DeviceHandshake, HandshakeFailed
from .peripheral import AdvertisingPolicy, BlePeripheral
from .provisioning import BlePhone, PhoneTiming, attach_ble, ble_provisioning

_LAZY = {
    "WorldBridge": "bridge",
    "SteppingBridge": "bridge",
    "RealtimeBridge": "bridge",
    "SimulatedBle": "bleak_backend",
    "SimBleakClient": "bleak_backend",
    "SimBleakScanner": "bleak_backend",
    "ProvisioningClient": "client",
    "ProvisioningError": "client",
    "FoundDevice": "client",
    "scan_for_devices": "client",
    "BumblePeripheral": "bumble_peripheral",
    "BumbleCentral": "bumble_central",
}

__all__ = [
    "BUFFER_POOL_SIZE",
    "MAX_HANDSHAKE_PAYLOAD_SIZE",
    "PARTICLE_COMPANY_ID",
    "PROTOCOL_VERSION",
    "RX_UUID",
    "SERVICE_UUID",
    "TX_UUID",
    "VERSION_UUID",
    "AdvertisementReport",
    "AdvertisingPayload",
    "AdvertisingPolicy",
    "AirTiming",
    "AttError",
    "AttErrorCode",
    "BleAir",
    "BlePeripheral",
    "BlePhone",
    "BumbleCentral",
    "BumblePeripheral",
    "CentralConnection",
    "ChannelCryptoError",
    "ChannelSession",
    "ChannelTiming",
    "ClientChannelState",
    "ClientControlChannel",
    "ClientHandshake",
    "DeviceControlChannel",
    "DeviceHandshake",
    "EcJpake",
    "EcJpakeError",
    "EcJpakeRole",
    "FoundDevice",
    "FrameAssembler",
    "FramingError",
    "HandshakeFailed",
    "HandshakeTranscript",
    "MbedtlsEcpError",
    "OpenedReply",
    "OpenedRequest",
    "ParsedAdvertisement",
    "PhoneTiming",
    "ProvisioningClient",
    "ProvisioningError",
    "RealtimeBridge",
    "SimBleakClient",
    "SimBleakScanner",
    "SimulatedBle",
    "SteppingBridge",
    "WorldBridge",
    "attach_ble",
    "ble_provisioning",
    "build_advertising",
    "client_confirmation",
    "confirmation_key",
    "device_confirmation",
    "device_name",
    "parse_advertisement",
    "scan_for_devices",
    "verify_client_confirmation",
    "verify_device_confirmation",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
