"""Serving a testbed to real clients: the edge, where wall time and sockets live.

How this works
--------------
A served testbed runs its World with the kernel's
:class:`~firmware_sim.kernel.realtime.AsyncioDriver` inside an asyncio loop and starts the
*edge services* the command line asked for (USB bridge, serial pty, SoftAP servers, BLE...).

:data:`EDGE_SERVICES` is the registry of edge services: module names, imported when a command
builds its parser. Each module (``transports/<name>/edge.py``) exposes::

    NAME: str
    def add_arguments(parser: argparse.ArgumentParser) -> None
    def enabled(args: argparse.Namespace) -> bool
    async def start(ctx: EdgeContext, args: argparse.Namespace) -> EdgeHandle

and imports only ``transports.edge_api`` (the Protocol of the context it is given, the
``EdgeHandle`` it returns). Adding a transport to ``fwsim serve``, ``fwsim up`` and
``fwsim device run`` = its edge module + one line in :data:`EDGE_SERVICES`.

``start`` opens its sockets and returns an ``EdgeHandle`` with the lines to print (one per
endpoint) and an async ``stop``. Code that feeds input into the world calls ``ctx.sync()`` first
(so the input lands at the right virtual instant) and ``ctx.wake()`` after (so the driver
re-reads the schedule). Replies produced by the world are written to sockets from scheduler
callbacks, which run in the same thread as the loop.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING

from transports.device_surface import DeviceSurface
from transports.edge_api import EdgeHandle

from ..kernel.realtime import AsyncioDriver
from ..kernel.world import World

if TYPE_CHECKING:
    from .clouds import CloudPlug

#: Edge service modules, in the order their endpoints are printed.
EDGE_SERVICES: list[str] = [
    "transports.softap.edge",
    "transports.usb.edge",
    "transports.serial.edge",
    "transports.ble.edge",
]


@dataclass
class EdgeContext:
    """What an edge service is given: the world, its driver, the devices' transport surfaces
    (``firmware_sim.testbed.adapters.surface_for``) and the cloud."""

    world: World
    driver: AsyncioDriver
    devices: list[DeviceSurface]
    cloud: CloudPlug | None = None

    @property
    def device(self) -> DeviceSurface:
        return self.devices[0]

    def sync(self) -> None:
        self.driver.sync()

    def wake(self) -> None:
        self.driver.wake()


def edge_modules() -> list[ModuleType]:
    return [importlib.import_module(name) for name in EDGE_SERVICES]


def add_edge_arguments(parser: argparse.ArgumentParser) -> None:
    """Every edge service's command-line options."""
    for module in edge_modules():
        module.add_arguments(parser)


async def run_edge(ctx: EdgeContext, args: argparse.Namespace, *,
                   duration_s: float | None, announce: Callable[[str], None],
                   stop_event: asyncio.Event | None = None) -> None:
    """Start the enabled edge services, run the world in real time until stopped (or
    ``duration_s`` wall seconds), then stop them in reverse order."""
    handles: list[EdgeHandle] = []
    runner = asyncio.ensure_future(ctx.driver.run())
    try:
        for module in edge_modules():
            if module.enabled(args):
                handle: EdgeHandle = await module.start(ctx, args)
                handles.append(handle)
                for line in handle.lines:
                    announce(line)
        announce("ready; press Ctrl-C to stop" if duration_s is None
                 else f"ready; running for {duration_s:g} s")
        waiter = stop_event or asyncio.Event()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(waiter.wait(), timeout=duration_s)
    finally:
        for handle in reversed(handles):
            if handle.stop is not None:
                await handle.stop()
        ctx.driver.stop()
        await runner


__all__ = ["EDGE_SERVICES", "EdgeContext", "EdgeHandle", "add_edge_arguments", "edge_modules",
           "run_edge"]
