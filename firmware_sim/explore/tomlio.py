"""Writing the TOML of replay files (reading is the standard library's ``tomllib``).

Replay files are meant to be read and edited by people, so they carry comments (what was found,
how much it shrank, what each fault means); TOML writers that exist do not write comments, and
the format uses only a small part of TOML, so this module writes it: tables, arrays of tables,
and values that are strings, booleans, integers, floats, arrays of those and inline tables of
those. Everything written here reads back with ``tomllib`` to the same values (tested with
hypothesis in ``tests/explore/test_toml.py``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from ..kernel.errors import UsageError

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def key(name: str) -> str:
    """A key, bare when it can be, quoted otherwise."""
    return name if _BARE_KEY.fullmatch(name) else string(name)


def string(text: str) -> str:
    # A JSON string is a TOML basic string except for characters TOML forbids unescaped (DEL
    # and the C1 controls are fine in JSON); json.dumps escapes every control below 0x20.
    encoded = json.dumps(text, ensure_ascii=False)
    return encoded.replace("\x7f", "\\u007f")


def value(item: Any) -> str:
    """One TOML value."""
    if isinstance(item, bool):
        return "true" if item else "false"
    if isinstance(item, int):
        return str(item)
    if isinstance(item, float):
        if math.isnan(item):
            return "nan"
        if math.isinf(item):
            return "inf" if item > 0 else "-inf"
        text = repr(item)
        return text if any(c in text for c in ".en") else text + ".0"
    if isinstance(item, str):
        return string(item)
    if isinstance(item, Mapping):
        inner = ", ".join(f"{key(str(k))} = {value(v)}" for k, v in item.items())
        return "{ " + inner + " }" if inner else "{}"
    if isinstance(item, Sequence):
        return "[" + ", ".join(value(v) for v in item) + "]"
    raise UsageError(f"cannot write {type(item).__name__} {item!r} as TOML")


class TomlWriter:
    """Builds a TOML document line by line."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def comment(self, text: str = "") -> None:
        for line in text.splitlines() or [""]:
            self.lines.append(f"# {line}".rstrip())

    def blank(self) -> None:
        if self.lines and self.lines[-1] != "":
            self.lines.append("")

    def table(self, name: str, *, array: bool = False) -> None:
        self.blank()
        dotted = ".".join(key(part) for part in name.split("."))
        self.lines.append(f"[[{dotted}]]" if array else f"[{dotted}]")

    def pair(self, name: str, item: Any, comment: str = "") -> None:
        line = f"{key(name)} = {value(item)}"
        self.lines.append(f"{line}  # {comment}" if comment else line)

    def pairs(self, mapping: Mapping[str, Any]) -> None:
        for name, item in mapping.items():
            if item is not None:
                self.pair(name, item)

    def text(self) -> str:
        return "\n".join(self.lines).rstrip("\n") + "\n"


__all__ = ["TomlWriter", "key", "string", "value"]
