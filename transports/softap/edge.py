"""Edge service: the Photon's SoftAP HTTP and TCP servers on real loopback sockets.

How this works
--------------
An edge service (``transports.edge_api``); enabled by ``--softap-http PORT`` and/or
``--softap-tcp PORT`` (0 picks a free port; the device's own ports are 80 and 5609). Each
accepted socket becomes a sans-IO session of the device's :class:`~.service.SoftAp`; bytes are
fed in after ``ctx.sync()`` (so they land at the right virtual instant) and ``ctx.wake()``
follows. Sessions write and close through the asyncio transport, also from scheduler callbacks
(timeouts, the delayed ``scan-ap`` reply), which run in the loop's thread.

While the device is not in listening mode the SoftAP is down: the listeners stay bound (the
ports do not change), but a new connection is reset at once (``SO_LINGER`` 0, an RST, never a
clean close), and so are the connections still open when the SoftAP stops. A client thus gets
an error, as it does on hardware when the access point has gone: a clean close with no data
makes ``@particle/softap-setup`` call back with neither an error nor a reply, and it crashes.
A connection refused at the cap is reset too. (Why not stop listening instead: docs/softap.md.)

Limits (:class:`SoftApLimits`, docs/security.md), on top of the sessions' own request timeout
(``SoftApOptions.request_timeout_s``, virtual time: a request not complete that long after the
connection opened or the last reply - a slow sender - closes the connection): each server holds
at most ``max_connections`` connections - one arriving at the cap evicts the least recently
active connection with no request executing, or is reset at once when every one is busy - and
a connection that sent nothing for ``idle_timeout_s`` wall seconds is closed whatever the
world's clock does. Refusals and evictions are counted on the :class:`SoftApServer`.

:func:`serve_softap` opens the servers of any one device, for commands that run several. A
claim code for the setup client to send is the composition side's business (``fwsim serve``
issues one in its cloud): this module knows no cloud.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import struct
import sys
from collections import OrderedDict
from dataclasses import dataclass

from firmware_sim.kernel.errors import ConfigurationError

from ..device_surface import SoftApDevice
from ..edge_api import EdgeContext, EdgeHandle, port_arg
from .service import SoftAp, softap_for
from .session import Session

__all__ = ["NAME", "SoftApLimits", "SoftApServer", "add_arguments", "enabled", "serve_softap",
           "start"]

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


@dataclass(frozen=True)
class SoftApLimits:
    #: connections one server (TCP or HTTP) holds at once
    max_connections: int = 32
    #: wall seconds without a byte from the client before its connection is closed
    idle_timeout_s: float = 60.0


class SoftApServer:
    """The accepted connections of one listener, least recently active first."""

    def __init__(self, protocol: str, limits: SoftApLimits) -> None:
        self.protocol = protocol
        self.limits = limits
        self.connections: OrderedDict[_SoftApSocket, None] = OrderedDict()
        self.refused = 0
        self.evicted = 0
        self.idle_closed = 0

    def admit(self, connection: _SoftApSocket) -> bool:
        if len(self.connections) >= self.limits.max_connections:
            victim = next((c for c in self.connections if not c.busy), None)
            if victim is None:
                self.refused += 1
                return False
            self.evicted += 1
            victim.drop("evicted: too many connections")
        self.connections[connection] = None
        return True

    def touch(self, connection: _SoftApSocket) -> None:
        if connection in self.connections:
            self.connections.move_to_end(connection)

    def remove(self, connection: _SoftApSocket) -> None:
        self.connections.pop(connection, None)


#: ``struct linger`` {on, 0 seconds}: close() then sends an RST and discards unsent data.
_LINGER_RESET = struct.pack("HH" if sys.platform == "win32" else "ii", 1, 0)


def _reset(transport: asyncio.Transport) -> None:
    """Abort the connection with an RST, so that the client sees an error (ECONNRESET) rather
    than an orderly end of a reply that never came."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):  # the peer may have gone already
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    transport.abort()


class _SoftApSocket(asyncio.Protocol):
    """One accepted client socket, bridged to a SoftAP session."""

    def __init__(self, ctx: EdgeContext, softap: SoftAp, server: SoftApServer) -> None:
        self.ctx = ctx
        self.softap = softap
        self.server = server
        self.protocol = server.protocol
        self.transport: asyncio.Transport | None = None
        self.session: Session | None = None
        self._idle: asyncio.TimerHandle | None = None
        self._last_heard = 0.0

    @property
    def busy(self) -> bool:
        return self.session is not None and not self.session.closed and self.session.busy

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        if not self.server.admit(self):
            _reset(transport)
            return
        loop = asyncio.get_running_loop()
        self._last_heard = loop.time()
        self._idle = loop.call_later(self.server.limits.idle_timeout_s, self._idle_check)
        self.ctx.sync()
        opener = self.softap.open_tcp if self.protocol == "tcp" else self.softap.open_http
        self.session = opener(self._write, self._close)
        if self.session is None:  # SoftAP down: the access point is not there
            _reset(transport)
        self.ctx.wake()

    def drop(self, reason: str) -> None:
        """Close the connection for the edge's own reasons (cap, idle)."""
        self.server.remove(self)
        if self.session is not None and not self.session.closed:
            self.ctx.sync()
            self.session.close(reason)
            self.ctx.wake()
        self._close()

    def _idle_check(self) -> None:
        self._idle = None
        if self.transport is None or self.transport.is_closing():
            return
        loop = asyncio.get_running_loop()
        quiet = loop.time() - self._last_heard
        limit = self.server.limits.idle_timeout_s
        if quiet >= limit and not self.busy:
            self.server.idle_closed += 1
            self.drop("idle")
        else:
            self._idle = loop.call_later(max(limit - quiet, 0.05), self._idle_check)

    def data_received(self, data: bytes) -> None:
        self._last_heard = asyncio.get_running_loop().time()
        self.server.touch(self)
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
        self.server.remove(self)
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        if self.session is not None and not self.session.closed:
            self.ctx.sync()
            self.session.connection_lost()
            self.ctx.wake()

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def _close(self) -> None:
        if self.transport is None:
            return
        if self.softap.active:
            self.transport.close()
        else:  # the SoftAP stopped under this connection
            _reset(self.transport)


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
                       tcp_port: int | None = None, http_port: int | None = None,
                       limits: SoftApLimits | None = None,
                       listeners: dict[str, SoftApServer] | None = None) -> EdgeHandle:
    """Open the SoftAP servers of one device (reusable by commands that run several devices);
    ``listeners`` (if given) receives each server's :class:`SoftApServer` by protocol."""
    ctx.sync()
    softap = softap_for(device)
    loop = asyncio.get_running_loop()
    limits = limits or SoftApLimits()
    servers: list[asyncio.Server] = []
    lines = [f"softap: SSID {softap.setup_ssid()} (up while the device is in listening mode)"]
    try:
        for protocol, port in (("tcp", tcp_port), ("http", http_port)):
            if port is None:
                continue
            listener = SoftApServer(protocol, limits)
            if listeners is not None:
                listeners[protocol] = listener
            server = await loop.create_server(
                lambda listener=listener: _SoftApSocket(ctx, softap, listener),  # type: ignore[misc]
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
