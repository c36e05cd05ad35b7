"""The system layer: device composition, system events, network, cloud connection, claim-code
rules, app API, timing profiles, feature flags, server settings, DFU mode."""

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
from .features import Feature, FeatureFlags
from .listening import ListeningMode
from .network import CredentialStore, NetworkManager, NetworkTiming, WifiCredentials
from .radio import AccessPoint, RadioEnvironment, WifiSecurity, radio_environment
from .timing import FAST, THREAD, TIMING_PROFILES, TimingProfile, timing_profile

__all__ = [
    "ALL_EVENTS",
    "FAST",
    "THREAD",
    "TIMING_PROFILES",
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
    "Feature",
    "FeatureFlags",
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
    "TimingProfile",
    "WifiCredentials",
    "WifiSecurity",
    "radio_environment",
    "timing_profile",
    "validate_device_id",
]
