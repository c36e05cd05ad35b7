"""``fwsim://<device name>``: pyserial's view of a simulated device's CDC serial port.

How this works
--------------
``serial.serial_for_url("fwsim://p2", timeout=1)`` (after
``transports.serial.enable_pyserial_urls()``) finds the :class:`ConsolePort` registered under
that device name (``attach_console(device)``, the latest one wins) and returns this ``Serial``.
Writes reach the device at the current virtual instant. Reads run the device's world on virtual
time until enough bytes arrived or ``timeout`` virtual seconds passed (``timeout=None`` blocks
at most ``BLOCK_LIMIT_S`` virtual seconds); nothing real waits. So this handler is for a world
that nobody else is driving (tests, scripts); behind ``fwsim serve`` use the pty.

Options: ``fwsim://p2?block_limit=SECONDS``.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from typing import Any

import serial
from serial.serialutil import PortNotOpenError, SerialBase, SerialException

from ..device_port import ConsolePort, find_console

__all__ = ["BLOCK_LIMIT_S", "Serial"]

#: How long a blocking read (``timeout=None``) may run the world before it gives up.
BLOCK_LIMIT_S = 60.0


class Serial(SerialBase):  # type: ignore[misc]  # pyserial is untyped
    """A pyserial port on a :class:`ConsolePort`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._console: ConsolePort | None = None
        self._rx = bytearray()
        self._unsubscribe: Callable[[], None] | None = None
        self.block_limit_s = BLOCK_LIMIT_S
        super().__init__(*args, **kwargs)

    def open(self) -> None:
        if bool(getattr(self, "is_open", False)):
            raise SerialException("Port is already open.")
        if self._port is None:
            raise SerialException("Port must be configured before it can be used.")
        self._console = self.from_url(self.port)
        self._rx.clear()
        self._unsubscribe = self._console.subscribe(self._rx.extend)
        self.is_open = True
        self._reconfigure_port()

    def close(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self._console = None
        self.is_open = False

    def from_url(self, url: str) -> ConsolePort:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "fwsim":
            raise SerialException(f"expected a URL of the form fwsim://<device>, got {url!r}")
        name = urllib.parse.unquote(parts.netloc + parts.path.rstrip("/"))
        for option, values in urllib.parse.parse_qs(parts.query).items():
            if option == "block_limit":
                try:
                    self.block_limit_s = float(values[0])
                except ValueError:
                    raise SerialException(f"invalid block_limit {values[0]!r}") from None
            else:
                raise SerialException(f"unknown option {option!r} in {url!r}")
        console = find_console(name)
        if console is None:
            raise SerialException(f"no simulated device named {name!r} has a serial port; "
                                  "call transports.serial.attach_console(device) first")
        return console

    def _reconfigure_port(self) -> None:
        """USB CDC: framing does not matter, the bit rate reaches the device as a line coding
        (14400 baud enters DFU mode, as on a real device)."""
        if self._console is not None and self._baudrate:
            self._console.set_line_coding(int(self._baudrate))
            self._settle()

    def _settle(self) -> None:
        """Run what is due at the current virtual instant (e.g. the device reading input)."""
        assert self._console is not None
        world = self._console.world
        world.scheduler.run_until_time(world.clock.now_us)

    @property
    def in_waiting(self) -> int:
        if not self.is_open:
            raise PortNotOpenError()
        self._settle()
        return len(self._rx)

    def read(self, size: int = 1) -> bytes:
        if not self.is_open or self._console is None:
            raise PortNotOpenError()
        self._settle()
        if len(self._rx) < size and self._timeout != 0:
            limit = self.block_limit_s if self._timeout is None else float(self._timeout)
            self._console.world.run_until(lambda: len(self._rx) >= size, timeout=limit)
        data = bytes(self._rx[:size])
        del self._rx[:size]
        return data

    def write(self, data: bytes) -> int:
        if not self.is_open or self._console is None:
            raise PortNotOpenError()
        raw = bytes(serial.serialutil.to_bytes(data))
        self._console.write(raw)
        return len(raw)

    def flush(self) -> None:
        if not self.is_open:
            raise PortNotOpenError()
        self._settle()

    def reset_input_buffer(self) -> None:
        if not self.is_open:
            raise PortNotOpenError()
        self._rx.clear()

    def reset_output_buffer(self) -> None:
        if not self.is_open:
            raise PortNotOpenError()

    def _update_break_state(self) -> None:
        pass

    def _update_rts_state(self) -> None:
        pass

    def _update_dtr_state(self) -> None:
        pass

    @property
    def cts(self) -> bool:
        return True

    @property
    def dsr(self) -> bool:
        return True

    @property
    def ri(self) -> bool:
        return False

    @property
    def cd(self) -> bool:
        return True
