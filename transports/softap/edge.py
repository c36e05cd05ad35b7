"""Edge service: the Photon's SoftAP HTTP and TCP servers on real loopback sockets.

How this works
--------------
An edge service (``transports.edge_api``); enabled by ``--softap-http PORT`` and/or
``--softap-tcp PORT`` (0 picks a free port; the device's own ports are 80 and 5609). Each
accepted socket becomes a sans-IO session of the device's :class:`~.service.SoftAp`; bytes are
fed in after ``ctx.sync()`` (so they land at the right virtual instant) and ``ctx.wake()``
follows. Sessions write and close through the asyncio transport, also from scheduler callbacks
(timeouts, the delayed ``scan-ap`` reply), which run in the loop's thread. While the device is
not in listening mode the SoftAP is down and a new connection is closed at once.

:func:`serve_softap` opens the servers of any one device, for commands that run several. A
claim code for the setup client to send is the composition side's business (``fwsim serve``
issues one in its cloud): this module knows no cloud.
"""

from __future__ import annotations

import argparse
import asyncio

from firmware_sim.kernel.errors import ConfigurationError

from ..device_surface import SoftApDevice
from ..edge_api import EdgeContext, EdgeHandle, port_arg
from .service import SoftAp, softap_for
from .session import Session

__all__ = ["NAME", "add_arguments", "enabled", "serve_softap", "start"]

NAME = "softap"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("SoftAP (Photon profile)")
    group.add_argument("--softap-http", type=port_arg, metavar="PORT",
                       help="serve the SoftAP HTTP setup server on PORT (the device's is 80; "
                       "0 picks a free port)")
    group.add_argument("--softap-tcp", type=port_arg, metavar="PORT",
                       help="serve the SoftAP TCP setup protocol on PORT (the device's is "
                       "5609; 0 picks a free port)")
    group.add_argument("--softap-host", default="127.0.0.1", metavar="ADDRESS",
                       help="address the SoftAP servers listen on (default 127.0.0.1)")


def enabled(args: argparse.Namespace) -> bool:
    return args.softap_http is not None or args.softap_tcp is not None


class _SoftApSocket(asyncio.Protocol):
    """One accepted client socket, bridged to a SoftAP session."""

    def __init__(self, ctx: EdgeContext, softap: SoftAp, protocol: str) -> None:
        self.ctx = ctx
        self.softap = softap
        self.protocol = protocol
        self.transport: asyncio.Transport | None = None
        self.session: Session | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.ctx.sync()
        opener = self.softap.open_tcp if self.protocol == "tcp" else self.softap.open_http
        self.session = opener(self._write, self._close)
        if self.session is None:
            transport.close()
        self.ctx.wake()

    def data_received(self, data: bytes) -> None:
        if self.session is not None:
            self.ctx.sync()
            self.session.data_received(data)
            self.ctx.wake()

    def eof_received(self) -> bool:
        if self.session is not None:
            self.ctx.sync()
            self.session.eof_received()
            self.ctx.wake()
        return True  # keep our half open: a reply may still be on its way

    def connection_lost(self, exc: Exception | None) -> None:
        if self.session is not None and not self.session.closed:
            self.ctx.sync()
            self.session.connection_lost()
            self.ctx.wake()

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def _close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def _address(server: asyncio.Server) -> tuple[str, int]:
    host, port = server.sockets[0].getsockname()[:2]
    return str(host), int(port)


async def start(ctx: EdgeContext, args: argparse.Namespace) -> EdgeHandle:
    device = ctx.devices[0]
    if not device.profile.has_softap:
        raise ConfigurationError(f"--softap-http/--softap-tcp need a profile with SoftAP "
                                 f"(photon); this device is {device.profile.name}")
    return await serve_softap(ctx, device, host=args.softap_host, tcp_port=args.softap_tcp,
                              http_port=args.softap_http)


async def serve_softap(ctx: EdgeContext, device: SoftApDevice, *, host: str = "127.0.0.1",
                       tcp_port: int | None = None, http_port: int | None = None
                       ) -> EdgeHandle:
    """Open the SoftAP servers of one device (reusable by commands that run several devices)."""
    ctx.sync()
    softap = softap_for(device)
    loop = asyncio.get_running_loop()
    servers: list[asyncio.Server] = []
    lines = [f"softap: SSID {softap.setup_ssid()} (up while the device is in listening mode)"]
    try:
        for protocol, port in (("tcp", tcp_port), ("http", http_port)):
            if port is None:
                continue
            server = await loop.create_server(
                lambda protocol=protocol: _SoftApSocket(ctx, softap, protocol),  # type: ignore[misc]
                host, port)
            servers.append(server)
            bound_host, bound = _address(server)
            lines.append(f"softap tcp: {bound_host}:{bound}" if protocol == "tcp"
                         else f"softap http: http://{bound_host}:{bound}/")
    except OSError as exc:
        for server in servers:
            server.close()
        raise ConfigurationError(f"cannot listen for SoftAP clients: {exc.strerror or exc}"
                                 ) from exc
    ctx.wake()

    async def stop() -> None:
        ctx.sync()
        softap.close_sessions()
        for server in servers:
            server.close()
        for server in servers:
            await server.wait_closed()

    return EdgeHandle(lines, stop)
