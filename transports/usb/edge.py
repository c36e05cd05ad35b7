"""Edge service ``--usb-bridge PORT``: the devices' USB ports on a loopback TCP socket.

An edge service (``transports.edge_api``); ``fwsim serve --usb-bridge 0`` picks a free
port. The printed line names the port and how to put real Node.js tools on it (docs/usb.md)::

    usb bridge: 127.0.0.1:40123 (node --require .../transports/usb/js/preload.js with
    FWSIM_USB_BRIDGE=127.0.0.1:40123)
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from firmware_sim.kernel.errors import ConfigurationError

from ..edge_api import EdgeContext, EdgeHandle, port_arg
from .bridge_server import UsbBridgeServer
from .device_port import attach_usb

__all__ = ["NAME", "PRELOAD_JS", "add_arguments", "enabled", "start"]

NAME = "usb-bridge"
#: The ``node --require`` module that patches node-usb's device list.
PRELOAD_JS = Path(__file__).resolve().parent / "js" / "preload.js"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--usb-bridge", type=port_arg, metavar="PORT",
                        help="serve the device's USB control transfers on 127.0.0.1:PORT "
                        "(0: any free port) for particle-usb / particle-cli through "
                        "transports/usb/js and for 'fwsim usb'")


def enabled(args: argparse.Namespace) -> bool:
    return getattr(args, "usb_bridge", None) is not None


#: How long ``start`` waits for powered-on devices to boot (enumerate) before announcing.
ENUMERATION_WAIT_S = 2.0


async def start(ctx: EdgeContext, args: argparse.Namespace) -> EdgeHandle:
    ports = [attach_usb(device) for device in ctx.devices]
    server = UsbBridgeServer(lambda: ports, sync=ctx.sync, wake=ctx.wake)
    try:
        host, port = await server.start("127.0.0.1", args.usb_bridge)
    except OSError as exc:
        raise ConfigurationError(f"cannot serve the USB bridge on 127.0.0.1:{args.usb_bridge}: "
                                 f"{exc.strerror or exc}") from None
    # A device appears on the bus once it has booted: wait (briefly) so that a client started
    # right after the "ready" line finds it.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ENUMERATION_WAIT_S
    while not all(p.attached for p in ports) and loop.time() < deadline:
        ctx.sync()
        await asyncio.sleep(0.01)
    address = f"{host}:{port}"
    line = (f"usb bridge: {address} (node --require {PRELOAD_JS} with "
            f"FWSIM_USB_BRIDGE={address})")
    return EdgeHandle(lines=[line], stop=server.stop)
