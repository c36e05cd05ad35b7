"""Console ports by device name, for URL handlers (``fwsim://<name>``)."""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .device_port import ConsolePort

__all__ = ["find_console", "register_console"]

_BY_NAME: dict[str, weakref.ref[ConsolePort]] = {}


def register_console(port: ConsolePort) -> None:
    """Make ``port`` the one ``fwsim://<its device name>`` opens (the latest wins)."""
    _BY_NAME[port.name] = weakref.ref(port)


def find_console(name: str) -> ConsolePort | None:
    ref = _BY_NAME.get(name)
    return None if ref is None else ref()
