"""A simulated device as a BLE peripheral: advertising plus the GATT server of the channel.

How it works
------------
:class:`BlePeripheral` attaches to a device - a :class:`~transports.device_surface.BleDevice`,
such as the composition side's ``surface_for(device)`` - through its boot and shutdown hooks.
At every boot it builds a fresh :class:`DeviceControlChannel` (RAM is lost on reboot) and
starts advertising when its policy allows: by default only in listening mode, as Device OS
does (``AdvertisingPolicy.LISTENING``); ``ALWAYS`` models an application
that keeps the control service advertised (``BLE.advertise()``), which the claim-code scenarios
need because their phone provisions a device that is online. A connected peripheral stops
advertising (one central at a time) and starts again after the disconnection. A shutdown
(reset, power off, DFU) drops the connection.

The peripheral is radio-agnostic: a *radio* (the in-process :class:`~.air.BleAir` or the bumble
adapter) calls :meth:`connect`, :meth:`exchange_mtu`, :meth:`read`, :meth:`write` and
:meth:`disconnect` with a link object, and subscribes to :meth:`add_observer` to learn when the
advertisement changes. GATT rules enforced here: version is read-only (``0x02``), TX only
notifies and RX only takes writes (ATT ``READ_NOT_PERMITTED`` / ``WRITE_NOT_PERMITTED``), a
CCCD value is 2 bytes, an RX value is at most 244 bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from enum import Enum
from typing import Protocol

from firmware_sim.kernel.errors import ConfigurationError
from firmware_sim.kernel.scheduler import Scheduler
from firmware_sim.kernel.trace import Tracer

from ..device_surface import BleDevice, Completion, SubmittedRequest
from .advertising import AdvertisingPayload, build_advertising, device_name
from .device_channel import ChannelTiming, DeviceControlChannel, PeripheralLink
from .gatt import (
    DEVICE_MAX_MTU,
    MAX_ATTRIBUTE_VALUE_SIZE,
    PROTOCOL_VERSION,
    RX_UUID,
    SERVICE_UUID,
    TX_UUID,
    VERSION_UUID,
    AttError,
    AttErrorCode,
    CharRole,
    characteristic_by_uuid,
    negotiate_mtu,
)

__all__ = ["NOT_ALLOWED", "AdvertisingPolicy", "BlePeripheral", "BleSystemRules",
           "PeripheralObserver", "static_address"]

#: ``world.shared`` key of the devices' BLE start-up rules (by device name)
BLE_RULES = "ble-system-rules"
#: ``SYSTEM_ERROR_NOT_ALLOWED``
NOT_ALLOWED = -130


class BleSystemRules(Protocol):
    """What the system says about the BLE control channel (a ``Device`` fits it)."""

    def ble_channel_at_boot(self) -> bool:
        """``SystemControl::init``: initialise the channel at start-up (safe mode, or
        listening mode not disabled)."""

    def ble_provisioning_allowed(self) -> bool:
        """Provisioning mode and custom UUIDs need FEATURE_DISABLE_LISTENING_MODE."""


class AdvertisingPolicy(Enum):
    #: Device OS: advertise the control service while in listening mode.
    LISTENING = "listening"
    #: An application that keeps the control service advertised whenever it is not connected.
    ALWAYS = "always"
    #: Connectable only through an existing connection (nothing advertised).
    NEVER = "never"


class PeripheralObserver(Protocol):
    def advertising_changed(self, peripheral: BlePeripheral) -> None: ...


def static_address(seed: str) -> str:
    """A BLE static random address (two top bits set) derived from ``seed``."""
    raw = bytearray(hashlib.sha256(f"fwsim-ble:{seed}".encode()).digest()[:6])
    raw[0] |= 0xC0
    return ":".join(f"{b:02X}" for b in raw)


class _DeviceHost:
    """``ChannelHost`` over a simulated device (looked up at use time: it reboots)."""

    def __init__(self, device: BleDevice) -> None:
        self._device = device
        self._random = device.world.rng_for(f"ble-ecjpake:{device.name}")
        self._tracer = device.world.trace.bind(device.name, "ble")

    @property
    def scheduler(self) -> Scheduler:
        return self._device.world.scheduler

    @property
    def tracer(self) -> Tracer:
        return self._tracer

    def log(self, level: str, category: str, message: str) -> None:
        log = self._device.log
        writer = {"TRACE": log.trace, "INFO": log.info, "WARN": log.warn,
                  "ERROR": log.error}.get(level, log.info)
        writer(category, message)

    def prov_mode_event(self, param: int) -> None:
        if self._device.running:
            self._device.notify_ble_prov_mode(param)

    def mobile_secret(self) -> bytes | None:
        secret = self._device.mobile_secret
        return secret.encode("ascii") if secret else None

    def randbytes(self, count: int) -> bytes:
        return self._random.randbytes(count)

    def submit(self, request_type: int, payload: bytes, on_complete: Completion
               ) -> SubmittedRequest:
        return self._device.control.submit("ble", request_type, payload, on_complete)


class BlePeripheral:
    """The BLE side of one simulated device."""

    def __init__(self, device: BleDevice, *,
                 advertising: AdvertisingPolicy | str = AdvertisingPolicy.LISTENING,
                 address: str | None = None, timing: ChannelTiming | None = None,
                 max_mtu: int = DEVICE_MAX_MTU) -> None:
        if not device.profile.has_ble:
            raise ConfigurationError(f"the {device.profile.name} profile has no BLE")
        try:
            self.policy = AdvertisingPolicy(advertising)
        except ValueError:
            known = ", ".join(p.value for p in AdvertisingPolicy)
            raise ConfigurationError(
                f"unknown advertising policy {advertising!r} (known: {known})") from None
        self.device = device
        self.address = address or static_address(device.device_id)
        self.max_mtu = max_mtu
        self.timing = timing or ChannelTiming()
        self.channel: DeviceControlChannel | None = None
        self._host = _DeviceHost(device)
        self._link: PeripheralLink | None = None
        self._observers: list[PeripheralObserver] = []
        self._unsubscribe_listening: Callable[[], None] | None = None
        self._attached = False
        #: the advertised control service (``setProvSvcUuid`` may replace it)
        self.service_uuid = SERVICE_UUID
        #: BLE provisioning mode (``system_ble_prov_mode``): channel initialised, advertising
        self.provisioning = False
        rules = device.world.shared.get(BLE_RULES, {})
        self._rules: BleSystemRules | None = rules.get(device.name)
        self.attach()

    # -- attachment to the device ------------------------------------------------------------

    def attach(self) -> None:
        if self._attached:
            return
        self._attached = True
        self.device.boot_hooks.append(self._on_boot)
        self.device.shutdown_hooks.append(self._on_shutdown)
        if self.device.running:
            self._on_boot(self.device)

    def detach(self) -> None:
        """Stop being a peripheral (drops any connection)."""
        if not self._attached:
            return
        self._on_shutdown(self.device)
        self.device.boot_hooks.remove(self._on_boot)
        self.device.shutdown_hooks.remove(self._on_shutdown)
        self._attached = False

    def _on_boot(self, _device: object) -> None:
        self.provisioning = False  # RAM: provisioning mode and custom UUIDs are per boot
        self.service_uuid = SERVICE_UUID
        if self._rules is None or self._rules.ble_channel_at_boot():
            self.channel = DeviceControlChannel(self._host, timing=self.timing)
        else:
            self.channel = None
            self._host.tracer.emit("ble.channel_not_initialised",
                                   reason="FEATURE_DISABLE_LISTENING_MODE")
        self._unsubscribe_listening = self.device.listening.on_change(
            lambda _active: self._advertising_changed())
        self._advertising_changed()

    # -- BLE provisioning mode ---------------------------------------------------------------

    def _provisioning_allowed(self) -> bool:
        return self._rules is not None and self._rules.ble_provisioning_allowed()

    def set_custom_service_uuid(self, uuid: str) -> int:
        """``system_ble_prov_set_custom_svc_uuid``: NOT_ALLOWED unless listening mode is
        disabled; the new UUID is advertised (in provisioning mode)."""
        if not self._provisioning_allowed():
            return NOT_ALLOWED
        self.service_uuid = uuid.lower()
        self._advertising_changed()
        return 0

    def set_provisioning_mode(self, enabled: bool) -> int:
        """``system_ble_prov_mode``: NOT_ALLOWED unless listening mode is disabled; entering
        initialises the control channel and advertises it."""
        if not self._provisioning_allowed():
            return NOT_ALLOWED
        if enabled and self.device.running and self.channel is None:
            self.channel = DeviceControlChannel(self._host, timing=self.timing)
        self.provisioning = enabled
        self._advertising_changed()
        return 0

    def _on_shutdown(self, _device: object) -> None:
        link = self._link
        if link is not None:
            link.disconnect()
            self._link_down(link)
        if self._unsubscribe_listening is not None:
            self._unsubscribe_listening()
            self._unsubscribe_listening = None
        self.channel = None
        self._advertising_changed()

    # -- advertising -------------------------------------------------------------------------

    def add_observer(self, observer: PeripheralObserver) -> None:
        if observer not in self._observers:
            self._observers.append(observer)

    def remove_observer(self, observer: PeripheralObserver) -> None:
        if observer in self._observers:
            self._observers.remove(observer)

    def _advertising_changed(self) -> None:
        for observer in list(self._observers):
            observer.advertising_changed(self)

    @property
    def name(self) -> str:
        device = self.device
        return device_name(device.profile.series, device.setup_code, device.ssid_prefix())

    @property
    def advertising(self) -> bool:
        if self.channel is None or self._link is not None or not self.device.running:
            return False
        if self.policy is AdvertisingPolicy.ALWAYS or self.provisioning:
            return True
        if self.policy is AdvertisingPolicy.LISTENING:
            return self.device.listening.active
        return False

    def advertisement(self) -> AdvertisingPayload | None:
        """The current advertising packet and scan response, or None when not advertising."""
        if not self.advertising:
            return None
        return build_advertising(self.name, self.device.profile.platform_id,
                                 self.device.setup_code, self.service_uuid)

    # -- GATT server (called by a radio) -----------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._link is not None

    def connect(self, link: PeripheralLink) -> bool:
        """A central asks to connect; False when not connectable."""
        if self.channel is None or self._link is not None or not self.device.running:
            return False
        self._link = link
        self.channel.connected_event(link)
        self._advertising_changed()
        return True

    def disconnect(self, link: PeripheralLink) -> None:
        """The connection ``link`` is gone."""
        if link is self._link:
            self._link_down(link)
            self._advertising_changed()

    def _link_down(self, link: PeripheralLink) -> None:
        self._link = None
        if self.channel is not None:
            self.channel.disconnected_event()

    def exchange_mtu(self, link: PeripheralLink, client_mtu: int) -> int:
        mtu = negotiate_mtu(client_mtu, self.max_mtu)
        if link is self._link and self.channel is not None:
            self.channel.mtu_changed(mtu)
        return mtu

    def read(self, link: PeripheralLink, role: CharRole) -> bytes:
        if role is CharRole.VERSION:
            return bytes([PROTOCOL_VERSION])
        if role is CharRole.TX_CCCD:
            channel = self.channel
            return b"\x01\x00" if channel is not None and channel.subscribed else b"\x00\x00"
        raise AttError(AttErrorCode.READ_NOT_PERMITTED, _handle(role))

    def write(self, link: PeripheralLink, role: CharRole, data: bytes, *,
              with_response: bool) -> None:
        channel = self.channel
        if role is CharRole.TX_CCCD:
            if len(data) != 2:
                raise AttError(AttErrorCode.INVALID_ATTRIBUTE_VALUE_LENGTH, _handle(role),
                               "a CCCD value is 2 bytes")
            if link is self._link and channel is not None:
                channel.cccd_changed(bool(data[0] & 0x01))
            return
        if role is not CharRole.RX:
            raise AttError(AttErrorCode.WRITE_NOT_PERMITTED, _handle(role))
        if len(data) > MAX_ATTRIBUTE_VALUE_SIZE:
            raise AttError(AttErrorCode.INVALID_ATTRIBUTE_VALUE_LENGTH, _handle(role),
                           f"RX takes at most {MAX_ATTRIBUTE_VALUE_SIZE} bytes")
        if link is self._link and channel is not None:
            channel.data_written(bytes(data))

    def __repr__(self) -> str:
        return f"<BlePeripheral {self.name} {self.address} policy={self.policy.value}>"


def _handle(role: CharRole) -> int:
    uuid = {CharRole.VERSION: VERSION_UUID, CharRole.TX: TX_UUID, CharRole.RX: RX_UUID,
            CharRole.TX_CCCD: TX_UUID}[role]
    info = characteristic_by_uuid(uuid)
    assert info is not None
    if role is CharRole.TX_CCCD:
        return info.cccd_handle or 0
    return info.value_handle
