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

:class:`DeviceConsoleServices` implements the console's ``ConsoleServices`` over the device's
duck-typed attributes and its control-request services (``device.control.services``).
"""

from __future__ import annotations

import hashlib
import json
import weakref
from collections.abc import Callable
from typing import Any

from firmware_sim.kernel.errors import UsageError

from .console import ConsoleTiming, ListeningConsole, WlanCipher, WlanSecurity
from .registry import register_console

__all__ = ["ConsolePort", "DeviceConsoleServices", "attach_console", "console_port_of"]

Subscriber = Callable[[bytes], None]

_PORTS: weakref.WeakKeyDictionary[Any, ConsolePort] = weakref.WeakKeyDictionary()

#: ``particle.ctrl.wifi.Security`` (the device model's values) -> ``WLanSecurityType``, as
#: ``fromWifiSecurity`` maps a scan result.
_FROM_SCAN = {0: WlanSecurity.UNSEC, 1: WlanSecurity.WEP, 2: WlanSecurity.WPA,
              3: WlanSecurity.WPA2, 4: WlanSecurity.WPA2, 5: WlanSecurity.WPA3,
              6: WlanSecurity.WPA3}
#: ``WLanSecurityType`` -> ``particle.ctrl.wifi.Security`` for the stored credentials.
_TO_STORED = {WlanSecurity.UNSEC: 0, WlanSecurity.WEP: 1, WlanSecurity.WPA: 2,
              WlanSecurity.WPA2: 3, WlanSecurity.WPA3: 5}


def attach_console(device: Any, *, timing: ConsoleTiming | None = None) -> ConsolePort:
    """The device's serial console port, created on first use (idempotent)."""
    port = _PORTS.get(device)
    if port is None:
        port = ConsolePort(device, timing=timing)
        _PORTS[device] = port
    register_console(port)  # fwsim://<name> opens the most recently attached device
    return port


def console_port_of(device: Any) -> ConsolePort | None:
    return _PORTS.get(device)


class DeviceConsoleServices:
    def __init__(self, device: Any) -> None:
        self.device = device

    def _control(self) -> Any:
        return self.device.control.services

    @property
    def has_wifi(self) -> bool:
        return True  # every fwsim profile (P2, Photon 2, Argon, Photon) is a Wi-Fi platform

    def device_id(self) -> str:
        return str(self.device.device_id)

    def system_info(self) -> list[tuple[str, str]]:
        """``HAL_OTA_Add_System_Info``: the device secret ("ms") then the serial ("sn"),
        each only when set."""
        info = []
        secret = getattr(self.device, "mobile_secret", "")
        if secret:
            info.append(("ms", str(secret)))
        serial = getattr(self.device, "serial_number", "")
        if serial:
            info.append(("sn", str(serial)))
        return info

    def mac_address(self) -> bytes:
        explicit = getattr(self.device, "wifi_mac", None)
        if isinstance(explicit, bytes | bytearray) and len(explicit) == 6:
            return bytes(explicit)
        digest = hashlib.sha256(f"fwsim-wifi-sta:{self.device.device_id}".encode()).digest()
        return bytes([(digest[0] | 0x02) & 0xFE]) + digest[1:6]

    def system_version(self) -> str:
        return str(self.device.profile.system_version)

    def module_info_json(self) -> str:
        """``system_module_info`` without the braces ``s`` wraps it in. Module sizes and the
        bootloader version are UNVERIFIED placeholders."""
        profile = self.device.profile
        system_version = int(profile.system_module_version)
        app_version = int(getattr(getattr(self.device, "options", None), "app_version", 1))
        app_hash = hashlib.sha256(f"fwsim-app:{self.device.device_id}".encode()).hexdigest()
        modules = [
            {"s": 49152, "l": "m", "vc": 30, "vv": 30, "f": "b", "n": "0", "v": 2300,
             "d": []},
            {"s": 1572864, "l": "m", "vc": 30, "vv": 30, "f": "s", "n": "1",
             "v": system_version, "d": [{"f": "b", "n": "0", "v": 2300}]},
            {"s": 1572864, "l": "m", "vc": 30, "vv": 30, "u": app_hash, "f": "u", "n": "1",
             "v": app_version, "d": [{"f": "s", "n": "1", "v": system_version}]},
        ]
        body = json.dumps({"p": int(profile.platform_id), "m": modules},
                          separators=(",", ":"))
        return body[1:-1]

    def diagnostics_json(self) -> str:
        return bytes(self._control().diagnostics()).decode("utf-8", "replace")

    def is_claimed(self) -> bool:
        return bool(self._control().is_claimed())

    def set_claim_code(self, code: bytes) -> int:
        return int(self._control().set_claim_code(bytes(code)))

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
        result = int(self._control().wifi_set_credentials(text, secret, stored, b"", False))
        if result == 0:
            world = self.device.world
            world.call_soon(self.exit_listening, label="console-exit-listening")
        return result


class ConsolePort:
    def __init__(self, device: Any, *, timing: ConsoleTiming | None = None) -> None:
        for attr in ("world", "listening", "boot_hooks", "shutdown_hooks", "control"):
            if not hasattr(device, attr):
                raise UsageError(f"{device!r} is not a simulated device (no {attr!r})")
        self.device = device
        self.world = device.world
        self.name = str(device.name)
        self.tracer = device.world.trace.bind(device.name, "serial")
        self.timing = timing or ConsoleTiming()
        self.services = DeviceConsoleServices(device)
        self.console: ListeningConsole | None = None
        self._subscribers: list[Subscriber] = []
        self._listening: Any = None
        self.bytes_in = 0
        self.bytes_out = 0
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

    def _follow(self, listening: Any) -> None:
        if listening is self._listening:
            return
        self._listening = listening
        listening.on_change(lambda active, obj=listening: self._changed(obj, active))
        if getattr(listening, "active", False) and getattr(self.device, "running", False):
            self._changed(listening, True)

    def _changed(self, listening: Any, active: bool) -> None:
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

    def _booted(self, device: Any) -> None:
        self._follow(device.listening)

    def _shut_down(self, device: Any) -> None:
        if self.console is not None:
            self.console.close()
            self.console = None
            self.tracer.emit("serial.console", active=False)
