"""Reading a Device OS serial log: the lines worth comparing, whatever else the port printed.

How this works
--------------
Device OS's ``SerialLogHandler`` writes ``%010u [category] LEVEL: message`` per line: a
10-digit millisecond uptime, the category in brackets, the level (``TRACE``, ``INFO``,
``WARN``, ``ERROR``, ``PANIC``), a colon and the message. A USB serial capture holds more than
that: the application's own ``Serial.print`` output (possibly glued to the front of a log line
when it printed no newline), terminal escape codes, a serial monitor's time-stamp prefix, CR
characters, NULs and mojibake of a wrong baud rate, a log line cut by a reset. :func:`parse_log`
finds the pattern anywhere in a line, keeps what matches and counts the rest as noise; it never
raises on content (only on an unreadable file, as :class:`~firmware_sim.kernel.errors.UsageError`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..kernel.errors import UsageError

LEVELS = ("TRACE", "INFO", "WARN", "ERROR", "PANIC")

_LINE = re.compile(r"(?P<ms>\d{10}) \[(?P<category>[A-Za-z0-9_.\-]+)\] "
                   r"(?P<level>TRACE|INFO|WARN|ERROR|PANIC): (?P<message>.*)")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@dataclass(frozen=True)
class LogLine:
    """One Device OS log line. ``number`` is its 1-based line number in the source."""

    uptime_ms: int
    category: str
    level: str
    message: str
    number: int = 0

    def render(self) -> str:
        return f"{self.uptime_ms:010d} [{self.category}] {self.level}: {self.message}"


@dataclass
class ParsedLog:
    lines: list[LogLine] = field(default_factory=list)
    #: (line number, text) of what was not a log line (empty lines are not counted)
    noise: list[tuple[int, str]] = field(default_factory=list)


def parse_lines(text_lines: list[str]) -> ParsedLog:
    parsed = ParsedLog()
    for number, raw in enumerate(text_lines, start=1):
        text = _ANSI.sub("", raw).replace("\x00", "").rstrip("\r\n").rstrip()
        if not text.strip():
            continue
        match = _LINE.search(text)
        if match is None:
            parsed.noise.append((number, text))
            continue
        parsed.lines.append(LogLine(int(match["ms"]), match["category"], match["level"],
                                    match["message"].rstrip(), number))
    return parsed


def parse_text(text: str) -> ParsedLog:
    # universal newlines: a bare CR (some terminals) also ends a line
    return parse_lines(text.splitlines())


def parse_log(path: str | Path) -> ParsedLog:
    """Parse a log file (bytes that are not UTF-8 are replaced, never fatal)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    return parse_text(data.decode("utf-8", errors="replace"))


__all__ = ["LEVELS", "LogLine", "ParsedLog", "parse_lines", "parse_log", "parse_text"]
