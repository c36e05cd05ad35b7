"""Serving simulated devices to real clients: the edge where wall time and sockets live.

How this works
--------------
``serve_devices`` builds (or receives) a World with devices and a cloud, drives it with the
kernel's :class:`~firmware_sim.kernel.realtime.AsyncioDriver` inside an asyncio loop, and starts
the *edge services* the command line asked for (USB bridge, serial pty, SoftAP servers, BLE...).

An edge service is a module registered in ``SERVICE_MODULES`` that exposes::

    NAME: str
    def add_arguments(parser: argparse.ArgumentParser) -> None
    def enabled(args: argparse.Namespace) -> bool
    async def start(ctx: EdgeContext, args: argparse.Namespace) -> EdgeHandle

``start`` opens its sockets and returns an :class:`EdgeHandle` with the lines to print (one per
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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from .kernel.realtime import AsyncioDriver
from .kernel.world import World

#: Edge service modules, in the order their endpoints are printed.
SERVICE_MODULES: list[str] = [
    "transports.softap.edge",
    "transports.usb.edge",
    "transports.serial.edge",
    "transports.ble.edge",
]


@dataclass
class EdgeContext:
    world: World
    driver: AsyncioDriver
    devices: list[Any]
    cloud: Any | None = None

    @property
    def device(self) -> Any:
        return self.devices[0]

    def sync(self) -> None:
        self.driver.sync()

    def wake(self) -> None:
        self.driver.wake()


@dataclass
class EdgeHandle:
    lines: list[str] = field(default_factory=list)
    stop: Callable[[], Awaitable[None]] | None = None


def service_modules() -> list[ModuleType]:
    return [importlib.import_module(name) for name in SERVICE_MODULES]


def add_service_arguments(parser: argparse.ArgumentParser) -> None:
    for module in service_modules():
        module.add_arguments(parser)


async def run_edge(ctx: EdgeContext, args: argparse.Namespace, *,
                   duration_s: float | None, announce: Callable[[str], None],
                   stop_event: asyncio.Event | None = None) -> None:
    """Start the enabled services, run the world in real time until stopped, stop them."""
    handles: list[EdgeHandle] = []
    runner = asyncio.ensure_future(ctx.driver.run())
    try:
        for module in service_modules():
            if module.enabled(args):
                handle = await module.start(ctx, args)
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
