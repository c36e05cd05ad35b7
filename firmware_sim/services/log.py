"""Device OS style logging into the world trace.

A device log line is a trace record of kind ``log`` with the fields ``uptime_ms``, ``level``,
``category`` and ``message``. :func:`format_log_line` renders it the way Device OS's serial log
handler does: a 10-digit millisecond uptime, the category in brackets, the level, the message::

    0000015435 [system] INFO: Send spark/device/claim/code event for code ...
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from enum import IntEnum

from ..kernel.trace import Tracer, TraceRecord


class LogLevel(IntEnum):
    TRACE = 1
    INFO = 30
    WARN = 40
    ERROR = 50


class DeviceLog:
    """Writes Device OS log lines for one device."""

    def __init__(self, tracer: Tracer, uptime_ms: Callable[[], int],
                 min_level: LogLevel = LogLevel.TRACE) -> None:
        self._tracer = tracer
        self._uptime_ms = uptime_ms
        self.min_level = min_level

    def log(self, level: LogLevel, category: str, message: str) -> None:
        if level < self.min_level:
            return
        self._tracer.emit("log", uptime_ms=self._uptime_ms(), level=level.name,
                          category=category, message=message)

    def trace(self, category: str, message: str) -> None:
        self.log(LogLevel.TRACE, category, message)

    def info(self, category: str, message: str) -> None:
        self.log(LogLevel.INFO, category, message)

    def warn(self, category: str, message: str) -> None:
        self.log(LogLevel.WARN, category, message)

    def error(self, category: str, message: str) -> None:
        self.log(LogLevel.ERROR, category, message)


def format_log_line(record: TraceRecord) -> str:
    fields = record.fields
    return (f"{int(fields['uptime_ms']):010d} [{fields['category']}] "
            f"{fields['level']}: {fields['message']}")


def log_lines(records: Iterable[TraceRecord], node: str | None = None) -> list[str]:
    """The Device OS log timeline of ``node`` (or of every device) from trace records."""
    return [format_log_line(r) for r in records
            if r.kind == "log" and (node is None or r.node == node)]
