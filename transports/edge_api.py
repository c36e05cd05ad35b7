"""What an edge service gets and returns: the contract between ``transports/*/edge.py`` and the
registry that runs them (``fwsim serve``, ``fwsim up``).

How this works
--------------
An edge service is a module that exposes (:class:`EdgeService`)::

    NAME: str
    def add_arguments(parser: argparse.ArgumentParser) -> None
    def enabled(args: argparse.Namespace) -> bool
    async def start(ctx: EdgeContext, args: argparse.Namespace) -> EdgeHandle

The registry drives the world in real time inside an asyncio loop and calls ``start`` for every
enabled service. ``start`` opens its sockets and returns an :class:`EdgeHandle`: the lines to
print (one per endpoint) and an async ``stop``. Code that feeds input into the world calls
``ctx.sync()`` first (so the input lands at the right virtual instant) and ``ctx.wake()`` after
(so the driver re-reads the schedule); replies produced by the world are written to sockets from
scheduler callbacks, which run in the loop's thread.

An edge service imports only this module, its own transport and the kernel: the registry, the
CLI and the cloud are the composition side's business (a SoftAP claim code for a user, say, is
issued there).
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from firmware_sim.kernel.world import World

from .device_surface import DeviceSurface

__all__ = ["EdgeContext", "EdgeHandle", "EdgeService", "port_arg"]


class EdgeContext(Protocol):
    """The running world as an edge service sees it."""

    @property
    def world(self) -> World: ...
    @property
    def devices(self) -> Sequence[DeviceSurface]: ...
    def sync(self) -> None:
        """Bring the world up to the current wall-clock instant (before injecting input)."""
    def wake(self) -> None:
        """Let the driver re-read the schedule (after injecting input)."""


@dataclass
class EdgeHandle:
    """A started edge service: the lines to announce and how to stop it."""

    lines: list[str] = field(default_factory=list)
    stop: Callable[[], Awaitable[None]] | None = None


class EdgeService(Protocol):
    """The module interface of an edge service (``transports.usb.edge`` & co)."""

    NAME: str

    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...
    def enabled(self, args: argparse.Namespace) -> bool: ...
    async def start(self, ctx: EdgeContext, args: argparse.Namespace) -> EdgeHandle: ...


def port_arg(text: str) -> int:
    """argparse type of a TCP/UDP port option: 0..65535 (0 picks a free port)."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid port {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port {port} out of range 0..65535")
    return port
