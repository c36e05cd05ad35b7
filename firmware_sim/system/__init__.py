"""The system layer: device composition, system events, network, cloud connection, claim-code
rules, app API."""

from ..kernel.ids import validate_device_id
from .app import Firmware, Particle
from .claiming import ClaimCodeRules
from .cloud import CloudConnection, CloudState, CloudTiming
from .device import Device, DeviceState, FirmwareOptions, SystemMode
from .events import (
    ALL_EVENTS,
    BleProvMode,
    CloudStatus,
    NetworkCredentials,
    NetworkStatus,
    SystemEvent,
    SystemEventBus,
    TimeChanged,
)
from .listening import ListeningMode
from .network import CredentialStore, NetworkManager, NetworkTiming, WifiCredentials
from .radio import AccessPoint, RadioEnvironment, WifiSecurity, radio_environment

__all__ = [
    "ALL_EVENTS",
    "AccessPoint",
    "BleProvMode",
    "ClaimCodeRules",
    "CloudConnection",
    "CloudState",
    "CloudStatus",
    "CloudTiming",
    "CredentialStore",
    "Device",
    "DeviceState",
    "Firmware",
    "FirmwareOptions",
    "ListeningMode",
    "NetworkCredentials",
    "NetworkManager",
    "NetworkStatus",
    "NetworkTiming",
    "Particle",
    "RadioEnvironment",
    "SystemEvent",
    "SystemEventBus",
    "SystemMode",
    "TimeChanged",
    "WifiCredentials",
    "WifiSecurity",
    "radio_environment",
    "validate_device_id",
]
