"""The listening-mode serial console of a simulated device (USB CDC), and ways to reach it.

* ``console``: the console state machine (texts and prompts of Device OS ``system_setup.cpp``);
* ``device_port``: ``attach_console(device)`` - the console following the device's listening
  mode across boots (the device is a ``transports.device_surface.ConsoleDevice``);
  ``find_console(name)`` - the port ``fwsim://<name>`` opens;
* ``urlhandler``: pyserial's ``fwsim://<device>`` URLs, enabled by :func:`enable_pyserial_urls`;
* ``pty_port`` / ``edge``: a real pseudo-terminal (``fwsim serve --serial-pty``).

See docs/serial.md.
"""

from __future__ import annotations

from .console import (
    CLAIM_CODE_LENGTH,
    ConsoleServices,
    ConsoleTiming,
    ListeningConsole,
    Texts,
    WlanCipher,
    WlanSecurity,
)
from .device_port import (
    ConsolePort,
    DeviceConsoleServices,
    attach_console,
    console_port_of,
    find_console,
)
from .line_reader import LineReader, c_string
from .pty_port import PtyConsole

#: The package pyserial imports ``protocol_fwsim`` from.
URL_HANDLER_PACKAGE = "transports.serial.urlhandler"


def enable_pyserial_urls() -> None:
    """Let ``serial.serial_for_url("fwsim://<device name>")`` open simulated consoles.

    pyserial has no plugin entry point: this appends fwsim's handler package to
    ``serial.protocol_handler_packages`` (idempotent). Requires pyserial (extra ``serial``).
    """
    import serial

    if URL_HANDLER_PACKAGE not in serial.protocol_handler_packages:
        serial.protocol_handler_packages.append(URL_HANDLER_PACKAGE)


__all__ = [
    "CLAIM_CODE_LENGTH",
    "URL_HANDLER_PACKAGE",
    "ConsolePort",
    "ConsoleServices",
    "ConsoleTiming",
    "DeviceConsoleServices",
    "LineReader",
    "ListeningConsole",
    "PtyConsole",
    "Texts",
    "WlanCipher",
    "WlanSecurity",
    "attach_console",
    "c_string",
    "console_port_of",
    "enable_pyserial_urls",
    "find_console",
]
