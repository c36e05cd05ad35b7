"""The system layer: device composition, system events, network, cloud connection, app API."""

from .app import Firmware, Particle
from .cloud import CloudConnection, CloudState, CloudTiming
from .device import Device, DeviceState, FirmwareOptions, SystemMode, validate_device_id
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
