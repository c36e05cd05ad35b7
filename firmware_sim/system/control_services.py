"""The device side of control requests: ``DeviceServices`` over a simulated :class:`Device`.

``control_requests`` knows nothing about devices; this adapter is the one place where handlers
meet the system layer (the split Device OS makes between ``system/src/control/*.cpp`` and the
HAL/system services they call).
"""

from __future__ import annotations

import json
from typing import Protocol

from control_requests.dispatcher import ControlDispatcher
from control_requests.handlers import HANDLERS, ON_BAD_DATA, supported_types
from control_requests.services import (
    Done,
    FirmwareAsset,
    FirmwareModuleInfo,
    KnownNetwork,
    NetworkInterface,
    VisibleNetwork,
)

from ..hal.claim import ClaimCodeHal
from ..hal.dct import STARTUP_MODE_FLAG_OFFSET, Dct
from ..hal.device_config import DeviceConfigHal
from ..hal.ifapi import network_interfaces
from ..hal.modules import InstalledModules
from ..kernel.errors import ResultCode
from ..kernel.trace import Tracer
from ..kernel.world import World
from ..profiles import PlatformProfile
from .cloud import CloudConnection, CloudState
from .features import Feature, FeatureFlags
from .firmware_update import FirmwareUpdater
from .listening import ListeningMode
from .network import CredentialStore, NetState, NetworkManager, WifiCredentials
from .radio import AccessPoint, WifiSecurity

#: particle.ctrl.cloud.ConnectionStatus
_CLOUD_STATUS = {
    CloudState.DISCONNECTED: 0,
    CloudState.SOCKET_CONNECTING: 1,
    CloudState.HANDSHAKING: 1,
    CloudState.HANDSHAKE_PENDING: 1,
    CloudState.CONNECTED: 2,
}
ETHERNET_DETECTION = 1

#: ``NetworkDiagnostics::Status`` (``system/src/system_network_diagnostics.h``): ``net:stat``
#: (TURNING_ON 1 and TURNING_OFF 7 are not states of fwsim's interface)
_NET_DIAG_STATUS = {
    NetState.OFF: 0,  # TURNED_OFF
    NetState.ON: 2,  # DISCONNECTED: powered, not connected
    NetState.CONNECTING: 3,
    NetState.CONNECTED: 4,
    NetState.DISCONNECTING: 5,
}
#: ``CloudDiagnostics::Status`` (``system/src/system_cloud_internal.h``): ``cloud:stat``
_CLOUD_DIAG_STATUS = {
    CloudState.DISCONNECTED: 0,
    CloudState.SOCKET_CONNECTING: 1,  # CONNECTING
    CloudState.HANDSHAKING: 1,
    CloudState.HANDSHAKE_PENDING: 1,
    CloudState.CONNECTED: 2,
}
#: ``module_info_security_mode`` (``dynalib/inc/module_info.h``): ``sys:protected``
_SECURITY_MODE_NONE, _SECURITY_MODE_PROTECTED = 0, 1
#: Device OS 6.0.0 (module version 6000) brought device protection and its ``sys:protected``
#: diagnostic source; the Photon's 2.3.1 has neither
_SECURITY_MODE_SINCE_MODULE_VERSION = 6000


class ControlledOptions(Protocol):
    """The firmware options the control-request services read."""

    @property
    def device_protected(self) -> bool: ...

    @property
    def app_version(self) -> int: ...


class ControlledDevice(Protocol):
    """What the control-request services use of a device (``system.device.Device`` provides
    it)."""

    @property
    def world(self) -> World: ...

    @property
    def tracer(self) -> Tracer: ...

    @property
    def device_id(self) -> str: ...

    @property
    def serial_number(self) -> str: ...

    @property
    def profile(self) -> PlatformProfile: ...

    @property
    def options(self) -> ControlledOptions: ...

    @property
    def dct(self) -> Dct: ...

    @property
    def claim(self) -> ClaimCodeHal: ...

    @property
    def config(self) -> DeviceConfigHal: ...

    @property
    def listening(self) -> ListeningMode: ...

    @property
    def network(self) -> NetworkManager: ...

    @property
    def credentials(self) -> CredentialStore: ...

    @property
    def cloud(self) -> CloudConnection: ...

    def reset(self, reason: str = "user", delay_s: float = 0.0, *,
              safe_mode: bool = False) -> None: ...

    def factory_reset(self) -> None: ...

    def enter_dfu(self) -> None: ...

    @property
    def features(self) -> FeatureFlags: ...

    def set_feature(self, feature: Feature, enabled: bool) -> int: ...

    def cloud_connect(self) -> None: ...

    def cloud_disconnect(self, *, clear_session: bool = False) -> None: ...

    def uptime_ms(self) -> int: ...

    @property
    def installed_modules(self) -> InstalledModules: ...

    @property
    def firmware_update(self) -> FirmwareUpdater: ...


def _visible(ap: AccessPoint) -> VisibleNetwork:
    return VisibleNetwork(ap.ssid, ap.mac, int(ap.security), ap.channel, ap.rssi)


class DeviceControlServices:
    """Implements ``control_requests.services.DeviceServices`` for one device."""

    def __init__(self, device: ControlledDevice) -> None:
        self.device = device
        self._server: dict[int, tuple[str, int]] = {1: ("$id.tcp.particle.io", 5683),
                                                    2: ("$id.udp.particle.io", 5684)}

    # identity ---------------------------------------------------------------------------------
    def device_id(self) -> str:
        return self.device.device_id

    def serial_number(self) -> str:
        return self.device.serial_number

    def system_version(self) -> str:
        return self.device.profile.system_version

    def platform_id(self) -> int:
        return self.device.profile.platform_id

    def ncp_firmware_version(self) -> tuple[str, int] | None:
        return ("0.0.7", 7) if self.device.profile.name == "argon" else None

    # claim ------------------------------------------------------------------------------------
    def set_claim_code(self, code: bytes) -> int:
        return self.device.claim.set_claim_code(code)

    def is_claimed(self) -> bool:
        return self.device.claim.is_device_claimed()

    # modes and flags --------------------------------------------------------------------------
    def is_listening(self) -> bool:
        return self.device.listening.active

    def start_listening(self) -> int:
        listening = self.device.listening
        if not listening.allowed:
            return int(ResultCode.NOT_ALLOWED)
        listening.enter()
        return 0

    def stop_listening(self) -> None:
        self.device.listening.exit()

    def set_startup_listening(self, listening: bool) -> None:
        self.device.dct.write(STARTUP_MODE_FLAG_OFFSET, bytes([1 if listening else 0]))

    def protected_state(self) -> tuple[bool, bool]:
        return self.device.options.device_protected, False

    def set_feature(self, feature: int, enabled: bool) -> int:
        """SET_FEATURE takes ``Feature`` ETHERNET_DETECTION (1) only (the handler answers
        NOT_SUPPORTED to others); the DCT keeps it with inverted logic (``system/features.py``)."""
        if feature != ETHERNET_DETECTION:
            return int(ResultCode.NOT_SUPPORTED)
        return self.device.set_feature(Feature.ETHERNET_DETECTION, enabled)

    def get_feature(self, feature: int) -> bool:
        if feature != ETHERNET_DETECTION:
            return False
        return self.device.features.get(Feature.ETHERNET_DETECTION)

    def set_softap_ssid(self, prefix: bytes, suffix: str) -> int:
        if not prefix:
            return int(ResultCode.INVALID_ARGUMENT)
        self.device.config.set_ssid_prefix(prefix)
        if suffix:
            self.device.config.set_device_code(suffix[:6].ljust(6, "X"))
        return 0

    def nyan(self, on: bool) -> None:
        self.device.tracer.emit("led.nyan", on=on)

    def server_address(self, protocol: int) -> tuple[str, int]:
        return self._server.get(protocol, ("", 0))

    def set_server_address(self, protocol: int, address: str, port: int) -> int:
        if protocol not in self._server:
            return int(ResultCode.INVALID_ARGUMENT)
        self._server[protocol] = (address, port)
        return 0

    def server_protocol(self) -> int:
        return 1 if self.device.profile.cloud_transport == "tcp" else 2

    def set_server_protocol(self, protocol: int) -> int:
        return 0 if protocol == self.server_protocol() else int(ResultCode.NOT_SUPPORTED)

    # resets -----------------------------------------------------------------------------------
    def system_reset(self, reason: str) -> None:
        self.device.reset(reason)

    def factory_reset(self) -> None:
        self.device.factory_reset()

    def enter_dfu(self) -> None:
        self.device.enter_dfu()

    def enter_safe_mode(self) -> None:
        self.device.reset("safe_mode", safe_mode=True)

    def abort_connection(self) -> None:
        self.device.tracer.emit("control.abort_connection",
                                cloud_state=self.device.cloud.state.value)

    # cloud ------------------------------------------------------------------------------------
    def cloud_status(self) -> int:
        return _CLOUD_STATUS[self.device.cloud.state]

    def cloud_connect(self) -> None:
        self.device.cloud_connect()

    def cloud_disconnect(self) -> None:
        self.device.cloud_disconnect()

    # Wi-Fi ------------------------------------------------------------------------------------
    def wifi_join_new(self, ssid: str, password: str | None, bssid: bytes, hidden: bool,
                      done: Done) -> None:
        creds = WifiCredentials(ssid, password, WifiSecurity.WPA2_PSK, bytes(bssid), hidden)
        self.device.network.join_new_network(creds, done)

    def wifi_join_known(self, ssid: str, done: Done) -> None:
        self.device.network.join_known_network(ssid, done)

    def wifi_known_networks(self) -> list[KnownNetwork]:
        return [KnownNetwork(c.ssid, int(c.security), c.has_password)
                for c in self.device.credentials.all()]

    def wifi_remove_known(self, ssid: str) -> None:
        self.device.credentials.remove(ssid)

    def wifi_clear_known(self) -> None:
        self.device.network.clear_credentials()

    def wifi_current(self) -> VisibleNetwork | None:
        current = self.device.network.current
        return _visible(current) if current is not None and self.device.network.ready else None

    def wifi_scan(self) -> list[VisibleNetwork]:
        return [_visible(ap) for ap in self.device.network.scan()]

    def wifi_set_credentials(self, ssid: str, password: str | None, security: int,
                             bssid: bytes, hidden: bool) -> int:
        try:
            sec = WifiSecurity(security)
        except ValueError:
            return int(ResultCode.INVALID_ARGUMENT)
        if not ssid or len(ssid.encode()) > 32:
            return int(ResultCode.INVALID_ARGUMENT)
        return self.device.network.set_credentials(
            WifiCredentials(ssid, password, sec, bytes(bssid), hidden))

    # network interfaces -----------------------------------------------------------------------
    def network_interfaces(self) -> list[NetworkInterface]:
        network = self.device.network
        current = network.current
        return network_interfaces(
            self.device.device_id, radio_on=network.state is not NetState.OFF,
            ssid=current.ssid if current is not None and network.ready else None)

    # firmware modules -------------------------------------------------------------------------
    def firmware_modules(self) -> list[FirmwareModuleInfo]:
        return self.device.installed_modules.modules()

    def asset_info(self) -> tuple[list[FirmwareAsset], list[FirmwareAsset]]:
        modules = self.device.installed_modules
        return modules.assets.available(), list(modules.required_assets())

    # firmware update --------------------------------------------------------------------------
    def firmware_update_start(self, size: int, file_format: int) -> tuple[int, int]:
        return self.device.firmware_update.start(size, file_format)

    def firmware_update_data(self, data: bytes) -> int:
        return self.device.firmware_update.data(data)

    def firmware_update_finish(self, validate_only: bool) -> int:
        return self.device.firmware_update.finish(validate_only)

    def firmware_update_apply(self) -> None:
        self.device.firmware_update.apply()

    def firmware_update_cancel(self) -> None:
        self.device.firmware_update.cancel()

    # diagnostics ------------------------------------------------------------------------------
    def diagnostics(self) -> bytes:
        """The diagnostic sources fwsim can fill honestly, in Device OS's source-id order
        (``services/inc/diagnostics.h``): ``sys:uptime`` (6, seconds), ``net:stat`` (8),
        ``cloud:stat`` (10), ``sys:protected`` (60, Device OS 6 only). Device OS registers
        more (memory, loop counts, connection attempts and errors, signal, CoAP counters) that
        a simulated device has no true value for; they are left out rather than invented."""
        device = self.device
        data = {"sys:uptime": device.uptime_ms() // 1000,
                "net:stat": _NET_DIAG_STATUS[device.network.state],
                "cloud:stat": _CLOUD_DIAG_STATUS[device.cloud.state]}
        if device.profile.system_module_version >= _SECURITY_MODE_SINCE_MODULE_VERSION:
            protected = device.options.device_protected
            data["sys:protected"] = (_SECURITY_MODE_PROTECTED if protected
                                     else _SECURITY_MODE_NONE)
        return json.dumps(data, separators=(",", ":")).encode()


def build_dispatcher(device: ControlledDevice) -> ControlDispatcher:
    return ControlDispatcher(DeviceControlServices(device), device.world.scheduler,
                             device.tracer.child("control"), HANDLERS,
                             supported=supported_types(device.profile.name),
                             protected=lambda: device.options.device_protected,
                             on_bad_data=ON_BAD_DATA)
