"""A real pseudo-terminal carrying a simulated device's serial console (edge adapter).

How this works
--------------
``os.openpty()`` gives a master/slave pair; clients (screen, minicom, pyserial, particle-cli)
open the slave path like a ``/dev/ttyACM0``. The slave is put in raw mode (no echo, no CR/LF
translation, no signals for Ctrl-C) and fwsim keeps its own slave descriptor open, so the master
never reads EIO between clients. Bytes read from the master go to the device (``sync`` first, so
they land at the right virtual instant; ``wake`` after); what the device prints is written to
the master without blocking - if no client drains the slave and the kernel buffer is full, the
rest is dropped, as a USB CDC port drops output nobody reads. An optional symlink (``link``)
gives the slave a stable name, e.g. ``<scratch>/ttyACM0`` for particle-cli.

A pty has no SET_LINE_CODING, but the bit rate a client sets (pyserial ``baudrate``, ``stty``)
lands in the pair's shared termios: it is polled every ``LINE_CODING_POLL_S`` and a change is
passed on as the device's line coding, so opening the port at 14400 baud enters DFU mode as on
a real device.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import struct
import sys
import termios
import tty
from collections.abc import Callable
from pathlib import Path

from firmware_sim.kernel.errors import ConfigurationError

from .device_port import ConsolePort

__all__ = ["LINE_CODING_POLL_S", "PtyConsole", "bit_rate"]

#: how often the pty's bit rate is read (real seconds)
LINE_CODING_POLL_S = 0.1
#: Linux ``TCGETS2`` (asm-generic): termios with the actual input and output speeds, which
#: also covers rates without a ``Bnnn`` constant such as 14400 (pyserial sets them with BOTHER)
_TCGETS2 = 0x802C542A
_TERMIOS2_SIZE = 44
_TERMIOS2_OSPEED_OFFSET = 40


def bit_rate(fd: int) -> int | None:
    """The output bit rate of the terminal ``fd`` (None when it cannot be read)."""
    try:
        if sys.platform.startswith("linux"):
            raw = fcntl.ioctl(fd, _TCGETS2, bytes(_TERMIOS2_SIZE))
            return int(struct.unpack_from("I", raw, _TERMIOS2_OSPEED_OFFSET)[0])
        return int(termios.tcgetattr(fd)[5])  # BSD and macOS keep the rate itself
    except (OSError, termios.error, struct.error):
        return None


class PtyConsole:
    def __init__(self, port: ConsolePort, *, sync: Callable[[], None] = lambda: None,
                 wake: Callable[[], None] = lambda: None, link: str | Path | None = None
                 ) -> None:
        self.port = port
        self._sync = sync
        self._wake = wake
        self.link = Path(link) if link is not None else None
        self.master = -1
        self.slave = -1
        self.path = ""
        self.dropped = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._poll: asyncio.TimerHandle | None = None
        self._bit_rate: int | None = None

    def open(self, loop: asyncio.AbstractEventLoop) -> str:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self.slave)
        if self.link is not None:
            try:
                self.link.parent.mkdir(parents=True, exist_ok=True)  # mkdir -p: ours to make
                if self.link.is_symlink():
                    self.link.unlink()
                self.link.symlink_to(self.path)
            except OSError as exc:
                self.close()
                raise ConfigurationError(f"cannot create the serial link {self.link}: "
                                         f"{exc.strerror or exc}") from None
        self._loop = loop
        loop.add_reader(self.master, self._readable)
        self._bit_rate = bit_rate(self.slave)
        self._poll = loop.call_later(LINE_CODING_POLL_S, self._poll_line_coding)
        self._unsubscribe = self.port.subscribe(self._output)
        self.port.tracer.emit("serial.pty", path=self.path,
                              link=str(self.link) if self.link else "")
        return self.path

    def close(self) -> None:
        if self._poll is not None:
            self._poll.cancel()
            self._poll = None
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._loop is not None and self.master >= 0:
            self._loop.remove_reader(self.master)
            self._loop = None
        if self.link is not None and self.link.is_symlink():
            with contextlib.suppress(OSError):
                if os.readlink(self.link) == self.path:
                    self.link.unlink()
        for fd in (self.master, self.slave):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.master = self.slave = -1

    def _poll_line_coding(self) -> None:
        if self._loop is None or self.slave < 0:
            return
        rate = bit_rate(self.slave)
        if rate and rate != self._bit_rate:
            self._bit_rate = rate
            self._sync()
            self.port.set_line_coding(rate)
            self._wake()
        self._poll = self._loop.call_later(LINE_CODING_POLL_S, self._poll_line_coding)

    def _readable(self) -> None:
        try:
            data = os.read(self.master, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return
        if data:
            self._sync()
            self.port.write(data)
            self._wake()

    def _output(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                written = os.write(self.master, view)
            except (BlockingIOError, InterruptedError):
                self.dropped += len(view)
                self.port.tracer.emit("serial.pty_dropped", size=len(view))
                return
            except OSError:
                return
            view = view[written:]
