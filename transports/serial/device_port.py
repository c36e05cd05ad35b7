"""A simulated device's USB CDC serial port, carrying the listening-mode console.

How this works
--------------
:func:`attach_console` gives a device one :class:`ConsolePort` for its lifetime. The port
follows the device's listening mode (re-subscribing at every boot, since the system objects are
rebuilt): entering listening mode creates a :class:`ListeningConsole`, leaving it or shutting
down drops the console. Bytes the host writes (:meth:`ConsolePort.write`) reach the device in a
scheduler entry at the current virtual instant; outside listening mode nobody reads them and
they are discarded (UNVERIFIED choice, docs/serial.md). Whatever the device prints goes to every
subscriber (the pyserial URL handler, the pty edge service).

The port reaches the device through :class:`~transports.device_surface.ConsoleDevice` (a
``firmware_sim`` ``Device`` fits it as it is); :class:`DeviceConsoleServices` implements the
console's ``ConsoleServices`` over it and its control-request services. ``fwsim://<name>`` URLs
find ports by device name (:func:`find_console`; the latest attached wins).
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Callable

from control_requests.types import FirmwareModuleType, InterfaceType

from ..device_surface import ConsoleDevice, ControlServices, ListeningState
from .console import ConsoleTiming, ListeningConsole, WlanCipher, WlanSecurity

#: a module's type -> the console's module function letter
_FUNCTION: dict[int, str] = {FirmwareModuleType.BOOTLOADER_MODULE: "b",
                             FirmwareModuleType.SYSTEM_PART_MODULE: "s",
                             FirmwareModuleType.USER_PART_MODULE: "u"}

__all__ = [
    "ConsolePort",
    "DeviceConsoleServices",
    "attach_console",
    "console_port_of",
    "find_console",
    "register_console",
]

Subscriber = Callable[[bytes], None]

#: ``world.shared`` key of the console ports of a world's devices, by device name.
_REGISTRY = "serial-consoles"
#: Console ports by device name, for URL handlers (``fwsim://<name>``), across worlds.
_BY_NAME: dict[str, weakref.ref[ConsolePort]] = {}

#: ``particle.ctrl.wifi.Security`` (the device model's values) -> ``WLanSecurityType``, as
#: ``fromWifiSecurity`` maps a scan result.
_FROM_SCAN = {0: WlanSecurity.UNSEC, 1: WlanSecurity.WEP, 2: WlanSecurity.WPA,
              3: WlanSecurity.WPA2, 4: WlanSecurity.WPA2, 5: WlanSecurity.WPA3,
              6: WlanSecurity.WPA3}
#: ``WLanSecurityType`` -> ``particle.ctrl.wifi.Security`` for the stored credentials.
_TO_STORED = {WlanSecurity.UNSEC: 0, WlanSecurity.WEP: 1, WlanSecurity.WPA: 2,
              WlanSecurity.WPA2: 3, WlanSecurity.WPA3: 5}


def _ports(device: ConsoleDevice) -> dict[str, ConsolePort]:
    ports: dict[str, ConsolePort] = device.world.shared.setdefault(_REGISTRY, {})
    return ports


def attach_console(device: ConsoleDevice, *, timing: ConsoleTiming | None = None
                   ) -> ConsolePort:
    """The device's serial console port, created on first use (idempotent)."""
    ports = _ports(device)
    port = ports.get(device.name)
    if port is None:
        port = ports[device.name] = ConsolePort(device, timing=timing)
    register_console(port)  # fwsim://<name> opens the most recently attached device
    return port


def console_port_of(device: ConsoleDevice) -> ConsolePort | None:
    return _ports(device).get(device.name)


def register_console(port: ConsolePort) -> None:
    """Make ``port`` the one ``fwsim://<its device name>`` opens (the latest wins)."""
    _BY_NAME[port.name] = weakref.ref(port)


def find_console(name: str) -> ConsolePort | None:
    ref = _BY_NAME.get(name)
    return None if ref is None else ref()


class DeviceConsoleServices:
    def __init__(self, device: ConsoleDevice) -> None:
        self.device = device

    def _control(self) -> ControlServices:
        return self.device.control.services

    @property
    def has_wifi(self) -> bool:
        return True  # every fwsim profile (P2, Photon 2, Argon, Photon) is a Wi-Fi platform

    def device_id(self) -> str:
        return self.device.device_id

    def system_info(self) -> list[tuple[str, str]]:
        """``HAL_OTA_Add_System_Info``: the device secret ("ms") then the serial ("sn"),
        each only when set."""
        info = []
        if self.device.mobile_secret:
            info.append(("ms", self.device.mobile_secret))
        if self.device.serial_number:
            info.append(("sn", self.device.serial_number))
        return info

    def mac_address(self) -> bytes:
        """The Wi-Fi station's MAC, the hardware address ``NETWORK_GET_INTERFACE`` reports."""
        for iface in self._control().network_interfaces():
            if iface.type == InterfaceType.WIFI:
                return iface.hw_address
        return b""

    def system_version(self) -> str:
        return self.device.profile.system_version

    def module_info_json(self) -> str:
        """``system_module_info`` without the braces ``s`` wraps it in: the modules
        ``GET_MODULE_INFO`` reports, as the console prints them (``s`` maximum size, ``l``
        location, ``vc``/``vv`` checks made/passed, ``u`` the user part's hash, ``f`` function,
        ``n`` index, ``v`` version, ``d`` dependencies)."""
        modules = []
        for module in self._control().firmware_modules():
            entry: dict[str, object] = {"s": module.max_size, "l": "m",
                                        "vc": module.checked_flags, "vv": module.passed_flags}
            if module.type == FirmwareModuleType.USER_PART_MODULE:
                entry["u"] = module.hash.hex()
            entry.update(f=_FUNCTION.get(module.type, "?"), n=str(module.index),
                         v=module.version, d=[{"f": _FUNCTION.get(kind, "?"), "n": str(index),
                                               "v": version}
                                              for kind, index, version in module.dependencies])
            modules.append(entry)
        body = json.dumps({"p": self.device.profile.platform_id, "m": modules},
                          separators=(",", ":"))
        return body[1:-1]

    def diagnostics_json(self) -> str:
        return self._control().diagnostics().decode("utf-8", "replace")

    def is_claimed(self) -> bool:
        return self._control().is_claimed()

    def set_claim_code(self, code: bytes) -> int:
        return self._control().set_claim_code(bytes(code))

    def exit_listening(self) -> None:
        # Leaving listening mode, the device reconnects by itself (firmware_sim Device).
        self._control().stop_listening()

    def enter_safe_mode_listening(self) -> None:
        services = self._control()
        services.set_startup_listening(True)
        services.enter_safe_mode()

    def scan(self) -> list[tuple[bytes, WlanSecurity]]:
        return [(network.ssid.encode("utf-8"),
                 _FROM_SCAN.get(int(network.security), WlanSecurity.UNSEC))
                for network in self._control().wifi_scan()]

    def save_wifi_credentials(self, ssid: bytes, password: bytes, security: WlanSecurity,
                              cipher: WlanCipher) -> int:
        """``network_set_credentials``; on success Device OS then leaves listening mode."""
        stored = _TO_STORED.get(security, 0)
        text = ssid.decode("utf-8", "replace")
        secret = password.decode("utf-8", "replace") if stored != 0 else None
        result = self._control().wifi_set_credentials(text, secret, stored, b"", False)
        if result == 0:
            world = self.device.world
            world.call_soon(self.exit_listening, label="console-exit-listening")
        return result


class ConsolePort:
    def __init__(self, device: ConsoleDevice, *, timing: ConsoleTiming | None = None) -> None:
        self.device = device
        self.world = device.world
        self.name = device.name
        self.tracer = device.world.trace.bind(device.name, "serial")
        self.timing = timing or ConsoleTiming()
        self.services = DeviceConsoleServices(device)
        self.console: ListeningConsole | None = None
        self._subscribers: list[Subscriber] = []
        self._listening: ListeningState | None = None
        self.bytes_in = 0
        self.bytes_out = 0
        #: the host's last line coding (None until a host set one)
        self.bitrate: int | None = None
        device.boot_hooks.append(self._booted)
        device.shutdown_hooks.append(self._shut_down)
        self._follow(device.listening)

    # -- host side --------------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """The host writes to the CDC port; the device reads it in a scheduler entry."""
        if data:
            self.world.call_soon(self.receive, bytes(data), label="serial-rx")

    def receive(self, data: bytes) -> None:
        """Deliver ``data`` to the device now (inside a scheduler entry or an edge sync)."""
        self.bytes_in += len(data)
        if self.console is None:
            self.tracer.emit("serial.discarded", size=len(data), reason="not listening")
            return
        self.console.feed(data)

    def set_line_coding(self, bitrate: int) -> None:
        """The host opened or reconfigured the port at ``bitrate`` baud (a CDC SET_LINE_CODING);
        the device sees it at the current virtual instant. Device OS ignores the rate except
        14400, which enters DFU mode (``system_lineCodingBitRateHandler``)."""
        if self.bitrate == bitrate:
            return
        self.bitrate = bitrate
        self.tracer.emit("serial.line_coding", bitrate=bitrate)
        self.world.call_soon(lambda: self.device.line_coding_changed(bitrate),
                             label="serial-line-coding")

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        self._subscribers.append(subscriber)

        def unsubscribe() -> None:
            if subscriber in self._subscribers:
                self._subscribers.remove(subscriber)

        return unsubscribe

    @property
    def listening(self) -> bool:
        return self.console is not None

    # -- device side ------------------------------------------------------------------------------

    def _emit(self, data: bytes) -> None:
        self.bytes_out += len(data)
        for subscriber in list(self._subscribers):
            subscriber(data)

    def _follow(self, listening: ListeningState) -> None:
        if listening is self._listening:
            return
        self._listening = listening
        listening.on_change(lambda active: self._changed(listening, active))
        if listening.active and self.device.running:
            self._changed(listening, True)

    def _changed(self, listening: ListeningState, active: bool) -> None:
        if listening is not self._listening:
            return  # a previous boot's listening mode
        if active and self.console is None:
            self.console = ListeningConsole(self.services, self._emit, self.world.scheduler,
                                            self.tracer, timing=self.timing)
            self.tracer.emit("serial.console", active=True)
        elif not active and self.console is not None:
            self.console.close()
            self.console = None
            self.tracer.emit("serial.console", active=False)

    def _booted(self, _device: object) -> None:
        self._follow(self.device.listening)

    def _shut_down(self, _device: object) -> None:
        if self.console is not None:
            self.console.close()
            self.console = None
            self.tracer.emit("serial.console", active=False)
