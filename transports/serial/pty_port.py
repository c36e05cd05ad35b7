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
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tty
from collections.abc import Callable
from pathlib import Path

from firmware_sim.kernel.errors import ConfigurationError

from .device_port import ConsolePort

__all__ = ["PtyConsole"]


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
        self._unsubscribe = self.port.subscribe(self._output)
        self.port.tracer.emit("serial.pty", path=self.path,
                              link=str(self.link) if self.link else "")
        return self.path

    def close(self) -> None:
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
