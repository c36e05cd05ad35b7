"""The live log of the serving commands (``up``, ``serve``, ``device run``, ``cloud serve``).

How this works
--------------
:class:`LiveLog` subscribes to a world's trace and prints, as each record happens:

* every Device OS log line of a device, prefixed by the device's name, in Device OS's own format
  (the 10-digit number is that device's **uptime in milliseconds**, restarting at each boot)::

      dev1  0000033624 [comm.protocol.handshake] INFO: Skipping HELLO message

* one line per cloud-side fact worth seeing (a claim code received and its outcome, the owner
  changing, a session forgotten or resumed, a full handshake, a device event), prefixed by the
  cloud's name and stamped with **world time in seconds** since the command started::

      cloud world 35.512s claim code from dev1 (e00f...): claimed, owner customer:a -> customer:b

* what the person at the bench or ``fwsim ctl`` did (``operator`` records), and input a device
  discarded (serial bytes written outside listening mode).

A legend line saying which clock is which is printed first. On a terminal (and without
``NO_COLOR``) device names, levels and cloud lines are coloured. ``--quiet`` prints nothing;
``--log-level`` drops device lines below a level.

Under an event loop (the serving commands) a line is written at once but flushed at the end of
the loop's current round of callbacks: every line of one round goes out in one ``write(2)``, in
the order it was printed. Without a running loop each line is flushed as it is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Iterable
from typing import Any, TextIO

from ..kernel.trace import TraceRecord
from ..kernel.world import World
from ..services.log import LogLevel, format_log_line

LEVELS = ("trace", "info", "warn", "error")

_RESET = "\x1b[0m"
_DEVICE_COLOURS = ("\x1b[32m", "\x1b[35m", "\x1b[34m", "\x1b[33m", "\x1b[36m")
_LEVEL_COLOURS = {"WARN": "\x1b[33m", "ERROR": "\x1b[31m", "TRACE": "\x1b[2m"}
_CLOUD_COLOUR = "\x1b[36m"
_OPERATOR_COLOUR = "\x1b[1m"


def add_live_log_arguments(parser: argparse.ArgumentParser, *, devices: bool = True) -> None:
    """``--quiet`` and ``--log-level`` (device commands) for a serving command."""
    parser.add_argument("--quiet", action="store_true",
                        help="do not print the live log" + (
                            " (Device OS log lines and cloud events)" if devices
                            else " of cloud events"))
    if devices:
        parser.add_argument("--log-level", choices=LEVELS, default="trace",
                            help="lowest Device OS log level to print (default trace: "
                            "everything, as SerialLogHandler(LOG_LEVEL_ALL))")


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 16 else text[:12] + "..."


class LiveLog:
    """Prints a world's device log and cloud events as they happen (module header)."""

    def __init__(self, world: World, *, devices: Iterable[str] = (),
                 cloud: str | None = None, level: str = "trace",
                 stream: TextIO | None = None, color: bool | None = None) -> None:
        self.world = world
        self.stream = stream or sys.stdout
        self.devices = list(devices)
        self.cloud = cloud
        self.min_level = LogLevel[level.upper()]
        if color is None:
            color = (hasattr(self.stream, "isatty") and self.stream.isatty()
                     and not os.environ.get("NO_COLOR"))
        self.color = bool(color)
        names = [*self.devices, *([cloud] if cloud else []), "operator"]
        self.width = max(len(name) for name in names)
        self._ids: dict[str, str] = {}  # device id -> name, for cloud lines
        self._unsubscribe: Callable[[], None] | None = None
        self._flush_due = False

    def name_ids(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Tell the log which device id is which device (cloud lines name devices by id)."""
        self._ids.update({device_id: name for name, device_id in pairs})

    def start(self) -> LiveLog:
        parts = []
        if self.devices:
            parts.append(f"{'/'.join(self.devices[:3])}{'/...' if len(self.devices) > 3 else ''}"
                         " lines: the Device OS log, stamped with that device's uptime in ms")
        if self.cloud:
            parts.append(f"{self.cloud} lines: cloud events, stamped with world time in s since "
                         "start")
        self._print(f"log: {'; '.join(parts)}" if parts else "log: on")
        self._unsubscribe = self.world.trace.subscribe(self)
        return self

    def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def __call__(self, record: TraceRecord) -> None:
        line = self.format(record)
        if line is not None:
            self._print(line)

    def _print(self, line: str) -> None:
        try:
            self.stream.write(line + "\n")
            if self._flush_due:
                return
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.stream.flush()
                return
            self._flush_due = True
            loop.call_soon(self._flush)
        except (BrokenPipeError, ValueError):  # reader gone, or stream closed at exit
            self.stop()

    def _flush(self) -> None:
        self._flush_due = False
        try:
            self.stream.flush()
        except (BrokenPipeError, ValueError):
            self.stop()

    def _paint(self, text: str, colour: str) -> str:
        return f"{colour}{text}{_RESET}" if self.color else text

    def _device_tag(self, name: str) -> str:
        tag = f"{name:<{self.width}}"
        if not self.color:
            return tag
        index = self.devices.index(name) if name in self.devices else 0
        return self._paint(tag, _DEVICE_COLOURS[index % len(_DEVICE_COLOURS)])

    def _who(self, device_id: Any) -> str:
        text = str(device_id)
        name = self._ids.get(text)
        return f"{name} ({text})" if name else text

    # -- formatting ----------------------------------------------------------------------------

    def format(self, record: TraceRecord) -> str | None:
        """The live line of ``record``, or None when it is not shown."""
        if record.kind == "log" and record.node in self.devices:
            level = str(record.fields.get("level", "INFO"))
            if level in LogLevel.__members__ and LogLevel[level] < self.min_level:
                return None
            line = format_log_line(record)
            if self.color and level in _LEVEL_COLOURS:
                line = self._paint(line, _LEVEL_COLOURS[level])
            return f"{self._device_tag(record.node)} {line}"
        if record.node in self.devices and record.kind == "serial.discarded":
            return (f"{self._device_tag(record.node)} (serial: {record.fields.get('size')} "
                    f"bytes discarded: {record.fields.get('reason', 'not listening')})")
        if record.layer == "operator":
            return self._operator(record)
        if self.cloud is not None and record.node == self.cloud:
            text = self._cloud_text(record)
            if text is None:
                return None
            stamp = f"world {record.t_us / 1e6:.3f}s"
            line = f"{self.cloud:<{self.width}} {stamp} {text}"
            return self._paint(line, _CLOUD_COLOUR) if self.color else line
        return None

    def _operator(self, record: TraceRecord) -> str:
        action = record.kind.removeprefix("operator.").replace("_", " ")
        details = " ".join(f"{k}={_short(v)}" for k, v in record.fields.items()
                           if v is not None)
        line = f"{'operator':<{self.width}} world {record.t_us / 1e6:.3f}s {action}" + (
            f" {details}" if details else "")
        return self._paint(line, _OPERATOR_COLOUR) if self.color else line

    def _cloud_text(self, record: TraceRecord) -> str | None:
        f = record.fields
        kind = record.kind
        if kind == "claim.redeem":
            outcome = f.get("outcome")
            text = f"claim code received from {self._who(f.get('device_id'))}: {outcome}"
            if f.get("new_owner") and f.get("new_owner") != f.get("previous_owner"):
                text += (f"; owner changed {f.get('previous_owner') or '(none)'} -> "
                         f"{f.get('new_owner')}")
            return text
        if kind == "session.dropped":
            return (f"session of {self._who(f.get('device_id'))} dropped "
                    f"({f.get('reason')})")
        if kind == "session.resumed":
            return f"session of {self._who(f.get('device_id'))} resumed"
        if kind == "handshake.full":
            return f"full handshake with {self._who(f.get('device_id'))}"
        if kind == "session.unknown":
            return f"unknown session: answered {f.get('reply')}"
        if kind == "event":
            return (f"event {f.get('name')} from {self._who(f.get('device_id'))}"
                    f"{' (private)' if f.get('private') else ''}")
        if kind == "event.to_device":
            return f"event {f.get('name')} to {self._who(f.get('device_id'))}"
        if kind == "claim.api":
            return (f"claim by id of {self._who(f.get('device_id'))}: "
                    + " ".join(f"{k}={_short(v)}" for k, v in f.items() if k != "device_id"))
        if kind == "device.offline":
            return f"{self._who(f.get('device_id'))} went offline"
        if kind == "endpoint.restart":
            return f"cloud restarted ({f.get('sessions')} sessions forgotten)"
        if kind == "signal.to_device":
            return (f"signal {'on' if f.get('on') else 'off'} (rainbow LED) sent to "
                    f"{self._who(f.get('device_id'))}")
        if kind == "function.to_device":
            return f"function {f.get('name')} called on {self._who(f.get('device_id'))}"
        if kind == "variable.to_device":
            return f"variable {f.get('name')} asked of {self._who(f.get('device_id'))}"
        if kind == "call.answer":
            return (f"{self._who(f.get('device_id'))} answered {f.get('name')}: "
                    f"{f.get('code')} ({f.get('outcome')})")
        if kind == "call.timeout":
            return f"{self._who(f.get('device_id'))} did not answer {f.get('name')} (timed out)"
        if kind in ("function.undeliverable", "variable.undeliverable"):
            return (f"{kind.split('.')[0]} {f.get('name')} not sent: "
                    f"{self._who(f.get('device_id'))} is offline")
        return None


def start_live_log(args: argparse.Namespace, world: World, *, devices: Iterable[str] = (),
                   cloud: str | None = None,
                   ids: Iterable[tuple[str, str]] = ()) -> LiveLog | None:
    """The live log a serving command asked for (None with ``--quiet``)."""
    if getattr(args, "quiet", False):
        return None
    log = LiveLog(world, devices=devices, cloud=cloud,
                  level=getattr(args, "log_level", "trace"))
    log.name_ids(ids)
    return log.start()


__all__ = ["LEVELS", "LiveLog", "add_live_log_arguments", "start_live_log"]
