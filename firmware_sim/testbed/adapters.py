"""Adapters: a simulated :class:`~firmware_sim.system.device.Device` as the transports see it.

How this works
--------------
``transports`` declares what it may touch on a device as Protocols
(``transports.device_surface``) and never imports the system layer; this module, on the
composition side, fits devices to them.

* A ``Device`` fits :class:`~transports.device_surface.UsbDevice` and
  :class:`~transports.device_surface.ConsoleDevice` as it is: pass it to ``attach_usb``,
  ``UsbProvisioning``, ``VirtualUsbHost`` and ``attach_console`` directly (:func:`usb_device`
  and :func:`console_device` only say so to the type checker).
* BLE and SoftAP need a few things a ``Device`` has only deep inside: raising ``ble_prov_mode``
  on its system event bus, the DCT's SSID prefix (which is also the BLE device name), the DCT's
  device key fields, and storing Wi-Fi credentials as the SoftAP HAL does (straight into the
  credential store, no ``network_credentials`` event). :func:`surface_for` wraps the device in a
  :class:`DeviceSurfaceAdapter`, the full :class:`~transports.device_surface.DeviceSurface`;
  it is what edge services get (``EdgeContext.devices``) and what ``attach_ble``,
  ``ble_provisioning`` and ``softap_for`` take.

``surface_for`` returns the same adapter for the same device every time, and the transports'
per-device registries are keyed by device name, so mixing a device and its adapter never
attaches a transport twice. Everything that is the device's own (identity, lifecycle hooks,
listening mode, the control dispatcher) is looked up on the device at each use: the device
rebuilds some of it at every boot.
"""

from __future__ import annotations

import weakref

from control_requests.types import WifiSecurity
from transports.device_surface import (
    ConsoleDevice,
    ControlEndpoint,
    DeviceKeyStore,
    DeviceLogWriter,
    DeviceSurface,
    FirmwareFacts,
    HookList,
    ListeningState,
    PlatformFacts,
    UsbDevice,
)
from transports.dtls import DtlsCredentials

from ..hal.dct import FIELDS, Dct
from ..kernel.errors import UsageError
from ..kernel.world import World
from ..system.device import Device
from ..system.events import SystemEvent
from ..system.network import WifiCredentials

__all__ = [
    "DctKeyStore",
    "DeviceSurfaceAdapter",
    "console_device",
    "dtls_credentials",
    "surface_for",
    "usb_device",
]

_PRIVATE_KEY = FIELDS["device_private_key"]
_PUBLIC_KEY = FIELDS["device_public_key"]


def dtls_credentials(device: Device) -> DtlsCredentials | None:
    """What the device's UDP link authenticates with, read from its DCT at each new socket
    (its id, ``alt_device_private_key`` and ``alt_server_public_key``); None when either key is
    missing or does not parse."""
    private = device.keys.private_key_der() if device.keys.private_key() is not None else None
    server = device.server_config.public_key()
    if private is None or server is None:
        return None
    return DtlsCredentials(device.device_id, private, server)


def usb_device(device: Device) -> UsbDevice:
    """The device itself: a ``Device`` is a ``UsbDevice`` (checked here by mypy)."""
    return device


def console_device(device: Device) -> ConsoleDevice:
    """The device itself: a ``Device`` is a ``ConsoleDevice`` (checked here by mypy)."""
    return device


class DctKeyStore:
    """:class:`~transports.device_surface.DeviceKeyStore` over a DCT: the ``device_private_key``
    and ``device_public_key`` fields. A write must fit its field."""

    def __init__(self, dct: Dct) -> None:
        self.dct = dct

    def device_private_key(self) -> bytes:
        return self.dct.read_field(_PRIVATE_KEY.name)

    def write_device_private_key(self, data: bytes) -> None:
        self._write(_PRIVATE_KEY.name, _PRIVATE_KEY.offset, _PRIVATE_KEY.size, data)

    def device_public_key(self) -> bytes:
        return self.dct.read_field(_PUBLIC_KEY.name)

    def write_device_public_key(self, data: bytes) -> None:
        self._write(_PUBLIC_KEY.name, _PUBLIC_KEY.offset, _PUBLIC_KEY.size, data)

    def _write(self, name: str, offset: int, size: int, data: bytes) -> None:
        if len(data) > size:
            raise UsageError(f"{len(data)} bytes do not fit DCT field {name} ({size})")
        # A plain write at the field's offset (not write_field): the key block is shorter than
        # the field, and what follows it in the field stays as it was, as on the device.
        self.dct.write(offset, bytes(data))


class DeviceSurfaceAdapter:
    """A ``Device`` as a :class:`~transports.device_surface.DeviceSurface`."""

    def __init__(self, device: Device) -> None:
        self.device = device
        self._keys: DeviceKeyStore = DctKeyStore(device.dct)

    # -- what the device has ------------------------------------------------------------------

    @property
    def world(self) -> World:
        return self.device.world

    @property
    def name(self) -> str:
        return self.device.name

    @property
    def device_id(self) -> str:
        return self.device.device_id

    @property
    def serial_number(self) -> str:
        return self.device.serial_number

    @property
    def mobile_secret(self) -> str:
        return self.device.mobile_secret

    @property
    def setup_code(self) -> str:
        return self.device.setup_code

    @property
    def profile(self) -> PlatformFacts:
        return self.device.profile

    @property
    def options(self) -> FirmwareFacts:
        return self.device.options

    @property
    def running(self) -> bool:
        return self.device.running

    @property
    def boot_hooks(self) -> HookList:
        return self.device.boot_hooks

    @property
    def shutdown_hooks(self) -> HookList:
        return self.device.shutdown_hooks

    def reset(self, reason: str) -> None:
        self.device.reset(reason)

    def cloud_disconnect(self) -> None:
        self.device.cloud_disconnect()

    def line_coding_changed(self, bitrate: int) -> None:
        self.device.line_coding_changed(bitrate)

    @property
    def listening(self) -> ListeningState:
        return self.device.listening

    @property
    def control(self) -> ControlEndpoint:
        return self.device.control

    @property
    def log(self) -> DeviceLogWriter:
        return self.device.log

    # -- what the device lacks at its surface ----------------------------------------------------

    def notify_ble_prov_mode(self, param: int) -> None:
        self.device.events.notify(SystemEvent.BLE_PROV_MODE, param)

    def ssid_prefix(self) -> str | None:
        return self.device.config.ssid_prefix()

    def set_ssid_prefix(self, prefix: str) -> None:
        self.device.config.set_ssid_prefix(prefix)

    def wifi_credential_count(self) -> int:
        return len(self.device.credentials)

    def store_wifi_credentials(self, ssid: str, password: str | None,
                               security: WifiSecurity) -> int:
        return self.device.credentials.set(WifiCredentials(ssid, password, security))

    def device_private_key(self) -> bytes:
        return self._keys.device_private_key()

    def write_device_private_key(self, data: bytes) -> None:
        self._keys.write_device_private_key(data)

    def device_public_key(self) -> bytes:
        return self._keys.device_public_key()

    def write_device_public_key(self, data: bytes) -> None:
        self._keys.write_device_public_key(data)

    def secrets_from_os(self) -> bool:
        return self.device.secrets_from_os

    def __repr__(self) -> str:
        return f"<DeviceSurfaceAdapter {self.device!r}>"


_SURFACES: weakref.WeakKeyDictionary[Device, DeviceSurfaceAdapter] = weakref.WeakKeyDictionary()


def surface_for(device: Device) -> DeviceSurface:
    """Everything a transport may touch on ``device`` (one adapter per device)."""
    surface = _SURFACES.get(device)
    if surface is None:
        surface = _SURFACES[device] = DeviceSurfaceAdapter(device)
    return surface

