"""What a transport may touch on a simulated device: typed seams, one Protocol per concern.

How this works
--------------
Transports never import the system layer. Each one declares, with the Protocols below, exactly
what it uses of "a device", and the composition side (``firmware_sim.testbed.adapters``) hands
it something that fits:

* ``firmware_sim.system.device.Device`` fits :class:`UsbDevice` and :class:`ConsoleDevice` as
  it is (structurally; mypy checks it where the testbed passes a device);
* :class:`BleDevice` and :class:`SoftApDevice` need a few things a ``Device`` does not offer at
  its surface (raising the ``ble_prov_mode`` system event, the DCT's device name / SSID prefix,
  the device key fields, storing Wi-Fi credentials the way the SoftAP HAL does); the testbed's
  ``surface_for(device)`` adds them. :class:`DeviceSurface` is the union every edge service can
  rely on.

The concerns:

* world: the one :class:`~firmware_sim.kernel.world.World` (scheduler, trace, seeded rng);
* identity and platform facts (:class:`Identity`, :class:`PlatformFacts`);
* lifecycle (:class:`Lifecycle`): running, boot and shutdown hooks (a transport re-creates its
  device-side state at every boot: RAM is lost), reset, cloud disconnect;
* listening mode (:class:`ListeningState`): active, enter/leave, change notifications;
* control requests (:class:`ControlEndpoint`): the dispatcher's ``submit`` (a transport never
  knows what the request does) and the handlers' services a transport acts on itself (USB's
  ``cancelNetworkConnectionIfNeeded``, the serial console's commands, SoftAP's claim code and
  scans);
* the device log (:class:`DeviceLogWriter`) and system events (:class:`SystemEvents`);
* SoftAP storage: SSID prefix / device name (:class:`SetupName`), Wi-Fi credentials
  (:class:`WifiCredentialStore`), the device RSA key fields (:class:`DeviceKeyStore`).

The device object is rebuilt in part at every boot (``listening``, ``control``): a transport
looks those up when it uses them, never keeps them across a boot.
"""

from __future__ import annotations

from collections.abc import Callable, Set
from typing import Protocol

from control_requests.services import FirmwareModuleInfo, NetworkInterface, VisibleNetwork
from control_requests.types import WifiSecurity
from firmware_sim.kernel.world import World

__all__ = [
    "BleDevice",
    "Completion",
    "ConsoleDevice",
    "ControlEndpoint",
    "ControlServices",
    "DeviceHook",
    "DeviceKeyStore",
    "DeviceLogWriter",
    "DeviceSurface",
    "FirmwareFacts",
    "HookList",
    "Identity",
    "Lifecycle",
    "ListeningState",
    "PlatformFacts",
    "SetupName",
    "SoftApDevice",
    "SubmittedRequest",
    "SystemEvents",
    "UsbDevice",
    "WifiCredentialStore",
]

#: ``on_complete(result, reply)`` of a submitted control request.
Completion = Callable[[int, bytes], None]
#: A boot or shutdown hook; it is called with the device (transports ignore the argument and use
#: the surface they were given).
DeviceHook = Callable[[object], None]


# -- facts -------------------------------------------------------------------------------------


class PlatformFacts(Protocol):
    """The platform profile facts a transport needs (USB ids, BLE/SoftAP presence, names)."""

    @property
    def name(self) -> str: ...
    @property
    def platform_id(self) -> int: ...
    #: ``PRODUCT_SERIES``, the BLE name's prefix and the USB product string.
    @property
    def series(self) -> str: ...
    @property
    def system_version(self) -> str: ...
    @property
    def system_module_version(self) -> int: ...
    @property
    def usb_vid(self) -> int: ...
    @property
    def usb_pid(self) -> int: ...
    @property
    def quirks(self) -> Set[str]: ...
    @property
    def has_ble(self) -> bool: ...
    @property
    def has_softap(self) -> bool: ...


class FirmwareFacts(Protocol):
    """Build facts of the simulated application."""

    @property
    def app_version(self) -> int: ...


class Identity(Protocol):
    @property
    def world(self) -> World: ...
    #: The node name in the world (trace, ``fwsim://<name>``).
    @property
    def name(self) -> str: ...
    #: 24 lower-case hex characters.
    @property
    def device_id(self) -> str: ...
    @property
    def serial_number(self) -> str: ...
    #: The mobile secret (DCT ``device_secret``, 15 characters; empty when unset).
    @property
    def mobile_secret(self) -> str: ...
    #: The 6-character setup code (BLE name, SoftAP SSID).
    @property
    def setup_code(self) -> str: ...
    @property
    def profile(self) -> PlatformFacts: ...


# -- lifecycle and listening mode --------------------------------------------------------------


class HookList(Protocol):
    """A device's list of boot (or shutdown) hooks."""

    def append(self, hook: DeviceHook, /) -> None: ...
    def remove(self, hook: DeviceHook, /) -> None: ...


class Lifecycle(Protocol):
    @property
    def running(self) -> bool: ...
    #: Run at every boot, once the boot's system objects exist.
    @property
    def boot_hooks(self) -> HookList: ...
    #: Run when the device shuts down (reset, power off, DFU).
    @property
    def shutdown_hooks(self) -> HookList: ...
    def reset(self, reason: str) -> None:
        """Software reset (``reason`` one of Device OS's reset reasons, e.g. ``user``)."""
    def cloud_disconnect(self) -> None: ...


class ListeningState(Protocol):
    """Listening mode of the current boot."""

    @property
    def active(self) -> bool: ...
    def on_change(self, listener: Callable[[bool], None]) -> Callable[[], None]:
        """``listener(active)`` on every change; returns the unsubscribe function."""
    def enter(self) -> bool: ...
    def exit(self) -> bool: ...


# -- control requests ----------------------------------------------------------------------------


class SubmittedRequest(Protocol):
    """A control request handed to the dispatcher."""

    def cancel(self) -> None:
        """Its completion gets CANCELLED (-140) unless it already completed."""
    def reply_delivered(self) -> None:
        """The reply reached the host (actions like RESET run 1000 ms later)."""


class ControlServices(Protocol):
    """The handlers' device services a transport uses itself (a subset of
    ``control_requests.services.DeviceServices``)."""

    def is_claimed(self) -> bool: ...
    def set_claim_code(self, code: bytes) -> int: ...
    def stop_listening(self) -> None: ...
    def set_startup_listening(self, listening: bool) -> None: ...
    def enter_safe_mode(self) -> None: ...
    def protected_state(self) -> tuple[bool, bool]: ...
    def abort_connection(self) -> None: ...
    def diagnostics(self) -> bytes: ...
    def wifi_scan(self) -> list[VisibleNetwork]: ...
    def wifi_set_credentials(self, ssid: str, password: str | None, security: int,
                             bssid: bytes, hidden: bool) -> int: ...
    def network_interfaces(self) -> list[NetworkInterface]: ...
    def firmware_modules(self) -> list[FirmwareModuleInfo]: ...


class ControlEndpoint(Protocol):
    """The device's control-request dispatcher (rebuilt at every boot)."""

    def submit(self, channel: str, request_type: int, payload: bytes,
               on_complete: Completion) -> SubmittedRequest: ...
    @property
    def services(self) -> ControlServices: ...


# -- log, events, storage ------------------------------------------------------------------------


class DeviceLogWriter(Protocol):
    """Device OS log lines (``<uptime> [<category>] <LEVEL>: <message>``)."""

    def trace(self, category: str, message: str) -> None: ...
    def info(self, category: str, message: str) -> None: ...
    def warn(self, category: str, message: str) -> None: ...
    def error(self, category: str, message: str) -> None: ...


class SystemEvents(Protocol):
    """System events a transport raises."""

    def notify_ble_prov_mode(self, param: int) -> None:
        """``ble_prov_mode`` with ``param`` (0 connected, 1 disconnected, 2 handshake failed,
        3 handshake done)."""


class SetupName(Protocol):
    """DCT ``ssid_prefix``: the SoftAP SSID prefix, which is also the BLE device name."""

    def ssid_prefix(self) -> str | None:
        """The stored prefix, None when unset."""
    def set_ssid_prefix(self, prefix: str) -> None: ...


class WifiCredentialStore(Protocol):
    """The device's known Wi-Fi networks, as the SoftAP HAL writes them (no system event)."""

    def wifi_credential_count(self) -> int: ...
    def store_wifi_credentials(self, ssid: str, password: str | None,
                               security: WifiSecurity) -> int: ...


class DeviceKeyStore(Protocol):
    """The DCT fields of the device RSA key, raw (``device_private_key``: 1216 bytes,
    ``device_public_key``: 384 bytes). A write starts at the field's first byte."""

    def device_private_key(self) -> bytes: ...
    def write_device_private_key(self, data: bytes) -> None: ...
    def device_public_key(self) -> bytes: ...
    def write_device_public_key(self, data: bytes) -> None: ...


# -- per transport -------------------------------------------------------------------------------


class UsbDevice(Identity, Lifecycle, Protocol):
    """What ``transports.usb`` touches."""

    @property
    def control(self) -> ControlEndpoint: ...


class ConsoleDevice(Identity, Lifecycle, Protocol):
    """What the serial console (``transports.serial``) touches."""

    @property
    def listening(self) -> ListeningState: ...
    @property
    def control(self) -> ControlEndpoint: ...
    @property
    def options(self) -> FirmwareFacts: ...
    def line_coding_changed(self, bitrate: int) -> None:
        """The host set the CDC port's bit rate (SET_LINE_CODING): 14400 enters DFU mode."""


class BleDevice(Identity, Lifecycle, SystemEvents, Protocol):
    """What ``transports.ble`` touches."""

    @property
    def listening(self) -> ListeningState: ...
    @property
    def control(self) -> ControlEndpoint: ...
    @property
    def log(self) -> DeviceLogWriter: ...
    def ssid_prefix(self) -> str | None:
        """The DCT device name (``get_device_name``), None when unset."""


class SoftApDevice(Identity, Lifecycle, SetupName, WifiCredentialStore, DeviceKeyStore,
                   Protocol):
    """What ``transports.softap`` touches."""

    @property
    def listening(self) -> ListeningState: ...
    @property
    def control(self) -> ControlEndpoint: ...
    def secrets_from_os(self) -> bool:
        """Whether a key made for this device must come from the OS CSPRNG (a device served
        on a socket) rather than from the world's seed (in process: replayable)."""


class DeviceSurface(UsbDevice, ConsoleDevice, BleDevice, SoftApDevice, Protocol):
    """Everything any transport touches: what edge services get (``EdgeContext.devices``)."""
