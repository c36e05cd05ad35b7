"""What control-request handlers may ask of a device: a narrow services interface.

Handlers never see the device object; ``firmware_sim.system.control_services`` implements this
Protocol over a simulated device. Keeping the interface here keeps the dependency direction
(``control_requests`` imports only ``firmware_sim.kernel``) and makes handlers testable against a
fake.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

#: The callback an asynchronous device operation or provisioning step completes with: it gets
#: the operation's ``system_error_t`` (0 on success). The one definition in the package.
Done = Callable[[int], None]


@dataclass(frozen=True)
class KnownNetwork:
    ssid: str
    security: int  # particle.ctrl.wifi.Security
    has_password: bool


@dataclass(frozen=True)
class VisibleNetwork:
    ssid: str
    bssid: bytes
    security: int
    channel: int
    rssi: int


@dataclass(frozen=True)
class NetworkInterface:
    """One network interface as ``NETWORK_GET_INTERFACE`` describes it (``particle.ctrl.Interface``
    fields; ``flags``/``ext_flags`` are Device OS's ``IFF_*``/``IFXF_*`` bits)."""

    index: int
    name: str
    type: int  # particle.ctrl.InterfaceType
    flags: int
    ext_flags: int
    mtu: int
    hw_address: bytes
    #: (address bytes, prefix length): 4-byte IPv4 and 16-byte IPv6 addresses
    ipv4: tuple[tuple[bytes, int], ...] = ()
    ipv6: tuple[tuple[bytes, int], ...] = ()


@dataclass(frozen=True)
class FirmwareAsset:
    """One asset (``particle.cloud.FirmwareModuleAsset``): its name and SHA-256 (Device OS's
    ``Asset`` compares only these two), the asset's original size and the size it takes in
    storage (0 for an asset a module requires)."""

    name: str
    hash: bytes
    size: int = 0
    storage_size: int = 0

    @property
    def key(self) -> tuple[str, bytes]:
        """What ``Asset::operator==`` compares."""
        return self.name, self.hash


@dataclass(frozen=True)
class FirmwareModuleInfo:
    """One firmware module (``particle.cloud.FirmwareModule``; ``type`` is its
    ``FirmwareModuleType``, the flags ``FirmwareModuleValidityFlag`` bits, ``store`` 0 the main
    store)."""

    type: int
    index: int
    version: int
    size: int
    max_size: int
    checked_flags: int
    passed_flags: int
    hash: bytes
    #: (type, index, version) of each module it depends on
    dependencies: tuple[tuple[int, int, int], ...] = ()
    store: int = 0
    #: the assets a user part requires (its asset dependency extensions)
    assets: tuple[FirmwareAsset, ...] = ()


class DeviceServices(Protocol):
    # identity ---------------------------------------------------------------------------------
    def device_id(self) -> str: ...
    def serial_number(self) -> str: ...
    def system_version(self) -> str: ...
    def platform_id(self) -> int: ...
    def ncp_firmware_version(self) -> tuple[str, int] | None: ...

    # claim ------------------------------------------------------------------------------------
    def set_claim_code(self, code: bytes) -> int: ...
    def is_claimed(self) -> bool: ...

    # modes and flags --------------------------------------------------------------------------
    def is_listening(self) -> bool: ...
    def start_listening(self) -> int:
        """0, or NOT_ALLOWED (-130) when listening mode is disabled."""
    def stop_listening(self) -> None: ...
    def set_startup_listening(self, listening: bool) -> None: ...
    def protected_state(self) -> tuple[bool, bool]: ...
    def set_feature(self, feature: int, enabled: bool) -> int: ...
    def get_feature(self, feature: int) -> bool: ...
    def set_softap_ssid(self, prefix: bytes, suffix: str) -> int: ...
    def nyan(self, on: bool) -> None: ...
    def server_address(self, protocol: int) -> tuple[str, int]: ...
    def set_server_address(self, protocol: int, address: str, port: int) -> int: ...
    def server_protocol(self) -> int: ...
    def set_server_protocol(self, protocol: int) -> int: ...

    # resets (called 1000 ms after the reply was delivered) -------------------------------------
    def system_reset(self, reason: str) -> None: ...
    def factory_reset(self) -> None: ...
    def enter_dfu(self) -> None: ...
    def enter_safe_mode(self) -> None: ...
    def abort_connection(self) -> None: ...

    # cloud ------------------------------------------------------------------------------------
    def cloud_status(self) -> int: ...
    def cloud_connect(self) -> None: ...
    def cloud_disconnect(self) -> None: ...

    # Wi-Fi ------------------------------------------------------------------------------------
    def wifi_join_new(
        self, ssid: str, password: str | None, bssid: bytes, hidden: bool, done: Done
    ) -> None: ...
    def wifi_join_known(self, ssid: str, done: Done) -> None: ...
    def wifi_known_networks(self) -> list[KnownNetwork]: ...
    def wifi_remove_known(self, ssid: str) -> None: ...
    def wifi_clear_known(self) -> None: ...
    def wifi_current(self) -> VisibleNetwork | None: ...
    def wifi_scan(self) -> list[VisibleNetwork]: ...
    def wifi_set_credentials(
        self, ssid: str, password: str | None, security: int, bssid: bytes, hidden: bool
    ) -> int: ...

    # network interfaces -----------------------------------------------------------------------
    def network_interfaces(self) -> list[NetworkInterface]: ...

    # firmware modules -------------------------------------------------------------------------
    def firmware_modules(self) -> list[FirmwareModuleInfo]: ...
    def asset_info(self) -> tuple[list[FirmwareAsset], list[FirmwareAsset]]:
        """(available, required): the assets in storage and those the application needs."""

    # firmware update (system/src/control/storage.cpp) -----------------------------------------
    def firmware_update_start(self, size: int, file_format: int) -> tuple[int, int]:
        """(result, chunk size); cancels a transfer in progress first."""
    def firmware_update_data(self, data: bytes) -> int:
        """Any failure cancels the transfer."""
    def firmware_update_finish(self, validate_only: bool) -> int:
        """0 with ``validate_only`` false: :meth:`firmware_update_apply` is to run once the
        reply is delivered; any other outcome has ended the transfer."""
    def firmware_update_apply(self) -> None: ...
    def firmware_update_cancel(self) -> None: ...

    # diagnostics ------------------------------------------------------------------------------
    def diagnostics(self) -> bytes:
        """``system_format_diag_data``'s JSON: one flat object of diagnostic sources (name ->
        integer), in source-id order; what DIAGNOSTIC_INFO and the console's ``d`` send."""
