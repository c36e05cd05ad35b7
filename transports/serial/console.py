"""The listening-mode serial console (``SystemSetupConsole`` / ``WiFiSetupConsole``).

How this works
--------------
A sans-IO state machine: :meth:`ListeningConsole.feed` takes the bytes the host wrote to the
USB CDC port, the ``output`` callback receives what the device prints. It exists only while the
device is in listening mode (``transports.serial.device_port`` creates and drops it). Texts,
prompts and rules are Device OS 6.2's ``system/src/system_setup.cpp`` (device-os.md §7):

* single-character, case-sensitive commands ``i m f x s v L c C d w``; any other byte is read
  and ignored;
* the commands that prompt (``C``, ``w``) read lines with ``serialReadLine``
  (:mod:`~transports.serial.line_reader`): echo, backspace, the line ends at CR/LF or when the
  buffer is full, Ctrl-C is an ordinary character. After every line the console prints
  ``\\r\\n`` and discards whatever input is already waiting ("available");
* ``C``: ``Enter 63-digit claim code: ``, a line of at most 63 characters; exactly 63 (as a C
  string) sets the claim code (``HAL_Set_Claim_Code``) and prints ``Claim code set to: <code>``,
  anything else ``Sorry, claim code is not 63 characters long. Claim code unchanged.``; then
  ``\\r\\n``;
* ``w`` (Wi-Fi platforms, the non-Enterprise build of Gen 3 / P2): ``SSID: `` until non-empty
  (32 max); a scan (``scan_s``) - a network found there fixes the security and the cipher
  (WPA/WPA2: AES+TKIP, WPA3: AES, else none); otherwise
  ``Security 0=unsecured, 1=WEP, 2=WPA, 3=WPA2: `` until 0-3 or 6; the cipher prompt
  ``Security Cipher 1=AES, 2=TKIP, 3=AES+TKIP: `` whenever the cipher is still unknown (Device
  OS's dry run always succeeds on Gen 3, so it is asked even for an open network);
  ``Password: `` (64 max) for WEP, WPA, WPA2 and WPA3; ``Thanks! Wait while I save those
  credentials...``; then the "Awesome" text ending in ``    Particle <3 you!`` or
  ``Derp. Sorry, we couldn't save the credentials.``. After saving, Device OS leaves listening
  mode.
* ``f``: the first line, a 100 ms pause (input waits), four YModem CAN bytes, the second line.

Timing runs on the world clock: the pauses (``f``'s 100 ms, the Wi-Fi scan) are scheduler
entries and input that arrives meanwhile waits in the input buffer, as in the device's USB
buffer. Which bytes count as "available" when a line ends is a timing question on the device;
here it is what was fed and not yet processed (docs/serial.md).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from enum import IntEnum
from typing import Protocol

from firmware_sim.kernel.scheduler import Scheduler, TimerHandle
from firmware_sim.kernel.trace import Tracer

from .line_reader import LineReader, c_string

__all__ = [
    "CLAIM_CODE_LENGTH",
    "ConsoleServices",
    "ConsoleTiming",
    "ListeningConsole",
    "Texts",
    "WlanCipher",
    "WlanSecurity",
]

CLAIM_CODE_LENGTH = 63


class WlanSecurity(IntEnum):
    """``WLanSecurityType`` (``hal/inc/wlan_hal.h``)."""

    UNSEC = 0
    WEP = 1
    WPA = 2
    WPA2 = 3
    WPA_ENTERPRISE = 4
    WPA2_ENTERPRISE = 5
    WPA3 = 6
    NOT_SET = 0xFF


class WlanCipher(IntEnum):
    NOT_SET = 0
    AES = 1
    TKIP = 2
    AES_TKIP = 3


class Texts:
    """The exact texts of ``system_setup.cpp``."""

    DEVICE_ID = b"Device ID: "
    YOUR_DEVICE_ID = b"Your device id is "
    MAC = b"Your device MAC address is\r\n"
    YMODEM_WAIT = b"Waiting for the binary file to be sent ... (press 'a' to abort)\r\n"
    YMODEM_CAN = b"\x18\x18\x18\x18"
    YMODEM_GONE = b"Serial/YModem flashing is no longer supported\r\n"
    VERSION = b"system firmware version: "
    CLAIMED = b"Device claimed: "
    CLAIM_PROMPT = b"Enter 63-digit claim code: "
    CLAIM_SET = b"Claim code set to: "
    CLAIM_WRONG = b"Sorry, claim code is not 63 characters long. Claim code unchanged."
    SSID = b"SSID: "
    SECURITY = b"Security 0=unsecured, 1=WEP, 2=WPA, 3=WPA2: "
    CIPHER = b"Security Cipher 1=AES, 2=TKIP, 3=AES+TKIP: "
    PASSWORD = b"Password: "
    SAVING = b"Thanks! Wait while I save those credentials...\r\n\r\n"
    SAVED = (b"Awesome. Now we'll connect!\r\n\r\n"
             b"If you see a pulsing cyan light, your device \r\n"
             b"has connected to the Cloud and is ready to go!\r\n\r\n"
             b"If your LED flashes red or you encounter any other problems,\r\n"
             b"visit https://www.particle.io/support to debug.\r\n\r\n"
             b"    Particle <3 you!\r\n\r\n")
    NOT_SAVED = b"Derp. Sorry, we couldn't save the credentials.\r\n\r\n"


#: ``filter_key``: the names ``i`` prints for the system-info keys.
KEY_NAMES = {"imei": "IMEI", "iccid": "ICCID", "sn": "Serial Number", "ms": "Device Secret",
             "cellfw": "Cell Radio Version"}


class ConsoleServices(Protocol):
    """What the console asks of the device (``transports.serial.device_port`` implements it)."""

    @property
    def has_wifi(self) -> bool: ...

    def device_id(self) -> str: ...
    def system_info(self) -> list[tuple[str, str]]: ...
    def mac_address(self) -> bytes: ...
    def system_version(self) -> str: ...
    def module_info_json(self) -> str: ...
    def diagnostics_json(self) -> str: ...
    def is_claimed(self) -> bool: ...
    def set_claim_code(self, code: bytes) -> int: ...
    def exit_listening(self) -> None: ...
    def enter_safe_mode_listening(self) -> None: ...
    def scan(self) -> list[tuple[bytes, WlanSecurity]]: ...
    def save_wifi_credentials(self, ssid: bytes, password: bytes, security: WlanSecurity,
                              cipher: WlanCipher) -> int: ...


@dataclass
class ConsoleTiming:
    #: ``f``: ``HAL_Delay_Milliseconds(100)`` between the two lines.
    ymodem_pause_s: float = 0.1
    #: ``w``: how long ``wlan_scan`` takes (UNVERIFIED; the real scan takes seconds).
    scan_s: float = 0.5


@dataclass(frozen=True)
class _ReadLine:
    max_len: int


@dataclass(frozen=True)
class _Pause:
    seconds: float


_Step = _ReadLine | _Pause
Dialog = Generator[_Step, bytes, None]


def _security_from_scan(security: WlanSecurity) -> tuple[WlanSecurity, WlanCipher]:
    if security in (WlanSecurity.WPA, WlanSecurity.WPA2):
        return security, WlanCipher.AES_TKIP
    if security is WlanSecurity.WPA3:
        return security, WlanCipher.AES
    return security, WlanCipher.NOT_SET


class ListeningConsole:
    """One listening-mode session of the console."""

    def __init__(self, services: ConsoleServices, output: Callable[[bytes], None],
                 scheduler: Scheduler, tracer: Tracer, *,
                 timing: ConsoleTiming | None = None) -> None:
        self.services = services
        self._output = output
        self._scheduler = scheduler
        self._tracer = tracer
        self.timing = timing or ConsoleTiming()
        self._input = bytearray()
        self._dialog: Dialog | None = None
        self._reader: LineReader | None = None
        self._pause: TimerHandle | None = None
        self._running = False
        self.closed = False

    # -- I/O --------------------------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Bytes from the host (USB CDC OUT)."""
        if self.closed:
            return
        self._input += data
        self._run()

    def close(self) -> None:
        """Listening mode ended: the console object is destroyed mid-whatever."""
        self.closed = True
        self._dialog = None
        self._reader = None
        self._input.clear()
        if self._pause is not None:
            self._pause.cancel()
            self._pause = None

    @property
    def busy(self) -> bool:
        """Inside a prompt or a pause."""
        return self._dialog is not None

    def _print(self, data: bytes) -> None:
        if not self.closed and data:
            self._output(data)

    # -- the loop ---------------------------------------------------------------------------------

    def _run(self) -> None:
        if self._running:
            return  # re-entered from a service call; the outer loop continues
        self._running = True
        try:
            while not self.closed and self._pause is None and self._input:
                byte = self._input.pop(0)
                if self._reader is not None:
                    echo, line = self._reader.feed(byte)
                    self._print(echo)
                    if line is not None:
                        self._reader = None
                        self._print(b"\r\n")
                        self._input.clear()  # while (serial.available()) serial.read();
                        self._advance(line)
                else:
                    self._command(byte)
        finally:
            self._running = False

    def _advance(self, value: bytes) -> None:
        dialog = self._dialog
        if dialog is not None:
            self._resume(lambda: dialog.send(value))

    def _resume(self, take_step: Callable[[], _Step]) -> None:
        """Run the dialog to its next step (``take_step``), then wait for what that step asks:
        a line, or a pause."""
        try:
            step = take_step()
        except StopIteration:
            self._dialog = None
            return
        if self.closed:
            return
        if isinstance(step, _ReadLine):
            self._reader = LineReader(step.max_len)
        else:
            self._pause = self._scheduler.call_later(step.seconds, self._pause_over,
                                                     label="console-pause")

    def _pause_over(self) -> None:
        self._pause = None
        self._advance(b"")
        self._run()

    # -- commands ---------------------------------------------------------------------------------

    def _command(self, byte: int) -> None:
        key = chr(byte) if byte < 0x80 else ""
        if not key or key not in "imfxsvLcCdw":
            return
        self._tracer.emit("console.command", key=key)
        services = self.services
        if key == "i":
            self._identify()
        elif key == "m":
            mac = services.mac_address()
            self._print(Texts.MAC + b":".join(f"{b:02x}".encode() for b in mac) + b"\r\n")
        elif key == "f":
            self._begin(self._ymodem())
        elif key == "x":
            services.exit_listening()
        elif key == "s":
            self._print(b"{" + services.module_info_json().encode() + b"}\r\n")
        elif key == "v":
            self._print(Texts.VERSION + services.system_version().encode() + b"\n\r\n")
        elif key == "L":
            services.enter_safe_mode_listening()
        elif key == "c":
            self._print(Texts.CLAIMED + (b"yes" if services.is_claimed() else b"no") + b"\r\n")
        elif key == "C":
            self._begin(self._claim_code())
        elif key == "d":
            self._print(services.diagnostics_json().encode() + b"\r\n")
        elif key == "w" and services.has_wifi:
            self._begin(self._wifi())

    def _begin(self, dialog: Dialog) -> None:
        self._dialog = dialog
        self._resume(lambda: next(dialog))

    def _identify(self) -> None:
        device_id = self.services.device_id().encode()
        info = self.services.system_info()
        if not info:
            self._print(Texts.YOUR_DEVICE_ID + device_id + b"\r\n")
            return
        out = Texts.DEVICE_ID + device_id + b"\r\n"
        for key, value in info:
            out += KEY_NAMES.get(key, key).encode() + b": " + value.encode() + b"\r\n"
        self._print(out)

    def _ymodem(self) -> Dialog:
        self._print(Texts.YMODEM_WAIT)
        yield _Pause(self.timing.ymodem_pause_s)
        self._print(Texts.YMODEM_CAN + Texts.YMODEM_GONE)

    def _claim_code(self) -> Dialog:
        self._print(Texts.CLAIM_PROMPT)
        code = c_string((yield _ReadLine(CLAIM_CODE_LENGTH)))
        if len(code) == CLAIM_CODE_LENGTH:
            result = self.services.set_claim_code(code)
            self._tracer.emit("console.claim_code", accepted=True, result=result)
            self._print(Texts.CLAIM_SET + code)
        else:
            self._tracer.emit("console.claim_code", accepted=False, length=len(code))
            self._print(Texts.CLAIM_WRONG)
        self._print(b"\r\n")

    def _wifi(self) -> Dialog:
        ssid = b""
        while not ssid:
            self._print(Texts.SSID)
            ssid = c_string((yield _ReadLine(32)))
        yield _Pause(self.timing.scan_s)
        security, cipher = WlanSecurity.NOT_SET, WlanCipher.NOT_SET
        for found_ssid, found_security in self.services.scan():
            if found_ssid and found_ssid == ssid:  # the last match wins
                security, cipher = _security_from_scan(found_security)
        if security is WlanSecurity.NOT_SET:
            while True:
                self._print(Texts.SECURITY)
                answer = c_string((yield _ReadLine(1)))
                digit = answer[0] if answer else 0
                if ord("0") <= digit <= ord("3") or digit == ord("6"):
                    break
            security = WlanSecurity(digit - ord("0"))
        password = b"" if security is WlanSecurity.UNSEC else b"1"
        if cipher is WlanCipher.NOT_SET:  # the Gen 3 dry run never asks for the cipher itself
            while True:
                self._print(Texts.CIPHER)
                answer = c_string((yield _ReadLine(1)))
                digit = answer[0] if answer else 0
                if ord("1") <= digit <= ord("3"):
                    break
            cipher = WlanCipher(digit - ord("0"))
        if WlanSecurity.UNSEC < security <= WlanSecurity.WPA2 or security is WlanSecurity.WPA3:
            self._print(Texts.PASSWORD)
            password = c_string((yield _ReadLine(64)))
        self._print(Texts.SAVING)
        result = self.services.save_wifi_credentials(ssid, password, security, cipher)
        self._tracer.emit("console.wifi", ssid=ssid.decode("utf-8", "replace"),
                          security=security.name, cipher=cipher.name, result=result)
        self._print(Texts.SAVED if result == 0 else Texts.NOT_SAVED)
