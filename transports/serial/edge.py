"""Edge service ``--serial-pty``: each device's listening-mode console on a real pty.

An edge service (``transports.edge_api``). Prints ``serial pty: /dev/pts/N`` per
device (``--serial-link PATH`` also makes PATH a symlink to it, e.g. for particle-cli's
``ttyACM`` name filter - docs/serial.md).
"""

from __future__ import annotations

import argparse
import asyncio

from ..edge_api import EdgeContext, EdgeHandle
from .device_port import attach_console
from .pty_port import PtyConsole

__all__ = ["BOOT_WAIT_S", "NAME", "add_arguments", "enabled", "start"]

NAME = "serial-pty"
#: How long ``start`` waits for powered-on devices to boot before announcing.
BOOT_WAIT_S = 2.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--serial-pty", action="store_true",
                        help="expose the listening-mode serial console on a pseudo-terminal "
                        "(its path is printed)")
    parser.add_argument("--serial-link", metavar="PATH",
                        help="also make PATH a symlink to the pty (implies --serial-pty; with "
                        "several devices, PATH gets the suffix -1, -2, ...)")


def enabled(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "serial_pty", False) or getattr(args, "serial_link", None))


async def start(ctx: EdgeContext, args: argparse.Namespace) -> EdgeHandle:
    loop = asyncio.get_running_loop()
    # Let powered-on devices boot (briefly) so that the console of a device that boots into
    # listening mode answers right after the "ready" line.
    deadline = loop.time() + BOOT_WAIT_S
    while (not all(d.running for d in ctx.devices)
           and loop.time() < deadline):
        ctx.sync()
        await asyncio.sleep(0.01)
    ptys: list[PtyConsole] = []
    lines = []
    for index, device in enumerate(ctx.devices):
        link = args.serial_link
        if link and len(ctx.devices) > 1:
            link = f"{link}-{index + 1}"
        pty = PtyConsole(attach_console(device), sync=ctx.sync, wake=ctx.wake, link=link)
        try:
            path = pty.open(loop)
        except BaseException:
            for opened in ptys:
                opened.close()
            raise
        ptys.append(pty)
        suffix = f" (link {pty.link})" if pty.link is not None else ""
        lines.append(f"serial pty: {path}{suffix}" + (
            f" [{device.name}]" if len(ctx.devices) > 1 else ""))

    async def stop() -> None:
        for pty in ptys:
            pty.close()

    return EdgeHandle(lines=lines, stop=stop)
