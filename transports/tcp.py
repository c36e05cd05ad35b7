"""TCP connections as kernel stream links: real sockets at the edge, byte streams in the World.

How this works
--------------
Everything in a World that speaks a stream protocol (the emulated ThingsBoard's MQTT session,
the claim button's MQTT client) talks to one end of a kernel
:class:`~firmware_sim.kernel.stream.StreamLink`. A :class:`TcpBridge` joins the *other* end of
such a link (latency 0, the real network is the latency) to one TCP connection, and only moves
bytes - it knows no protocol:

* bytes from the socket are written into the link (``runtime.sync()`` first, so they land at
  the right virtual instant; ``runtime.wake()`` after, so the driver runs what they caused);
* bytes the World writes arrive at the bridge's end and go to the socket;
* the peer's end of stream is an orderly close of the link (FIN), a lost connection a reset;
  when the World closes its end the socket is closed after the bytes written before, when it
  aborts (or the link resets) the socket is aborted.

:class:`TcpStreamListener` accepts connections and hands each World-side end to
``on_accept(end, peer)`` before any byte of it is delivered. At most ``max_connections`` are
open: a connection arriving at the cap evicts (resets) the oldest open connection that its
protocol does not count as ``established`` (e.g. an MQTT client that has not completed its
CONNECT: half-open connections from someone who never logs in must not lock real clients out);
when every open connection is established the newcomer is aborted at once and reported to
``on_refused``. :func:`tcp_connector` opens client
connections (a device to a real broker): it hands the World-side end, or None when the
connection failed, to the callback it is given. Idle and keep-alive timeouts belong to the
protocol sessions, on virtual time that the real-time driver keeps at wall time.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable, Coroutine
from typing import Any

from firmware_sim.kernel.errors import ConfigurationError
from firmware_sim.kernel.runtime import Runtime
from firmware_sim.kernel.stream import StreamEnd, StreamLink
from firmware_sim.kernel.world import World

#: ``on_open(world_end, peer)``: a connection is up; its World-side end is yours
OnOpen = Callable[[StreamEnd, str], None]
#: ``ready(world_end or None)``: what a connector hands over
Ready = Callable[[StreamEnd | None], None]


class TcpBridge(asyncio.Protocol):
    """One TCP connection joined to a stream link of the World (see the module header)."""

    def __init__(self, world: World, runtime: Runtime, name: str, on_open: OnOpen) -> None:
        self.world = world
        self.runtime = runtime
        self.name = name
        self._on_open = on_open
        self.transport: asyncio.Transport | None = None
        self.peer = ""
        self._end: StreamEnd | None = None
        #: the World-side end handed to ``on_open`` (the protocol session's)
        self.world_end: StreamEnd | None = None

    @property
    def end(self) -> StreamEnd | None:
        """The bridge's own end of the link (None before the connection is made)."""
        return self._end

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        address = transport.get_extra_info("peername")
        self.peer = f"{address[0]}:{address[1]}" if isinstance(address, tuple) else ""
        self.runtime.sync()
        try:
            link = StreamLink(self.world, f"{self.name}/{self.peer}" if self.peer else self.name)
            end = self._end = link.b
            end.on_data = transport.write
            end.on_eof = transport.close
            end.on_reset = transport.abort
            self.world_end = link.a
            self._on_open(link.a, self.peer)
        finally:
            self.runtime.wake()

    def data_received(self, data: bytes) -> None:
        self._into_world(lambda end: end.write(data))

    def eof_received(self) -> bool:
        self._into_world(StreamEnd.close)
        return False  # asyncio closes the socket; the World's answer to a FIN is not awaited

    def connection_lost(self, exc: Exception | None) -> None:
        self._into_world(StreamEnd.abort if exc is not None else StreamEnd.close)

    def _into_world(self, action: Callable[[StreamEnd], None]) -> None:
        end = self._end
        if end is None or end.closed:
            return
        self.runtime.sync()
        try:
            action(end)
        finally:
            self.runtime.wake()

    def close(self) -> None:
        """Close the socket after what was already written (server shutdown)."""
        if self.transport is not None:
            self.transport.close()


def listen_tcp(host: str, port: int, what: str = "TCP") -> socket.socket:
    """A listening TCP socket on ``host:port`` (0: any free port); a one-line error if not."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=1024)
    except (OSError, UnicodeError) as exc:
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise ConfigurationError(f"cannot listen for {what} on {host}:{port}: "
                                 f"{detail}") from None


class TcpStreamListener:
    """Accepts TCP connections; each one's World-side end goes to ``on_accept(end, peer)``."""

    def __init__(self, world: World, runtime: Runtime, name: str, on_accept: OnOpen, *,
                 max_connections: int = 1000,
                 on_refused: Callable[[str], None] | None = None,
                 established: Callable[[StreamEnd], bool] | None = None) -> None:
        if max_connections < 1:
            raise ConfigurationError("a TCP listener needs max_connections >= 1")
        self.world = world
        self.runtime = runtime
        self.name = name
        self.on_accept = on_accept
        self.on_refused = on_refused
        self.max_connections = max_connections
        #: whether a connection's World-side end has got past its protocol's login (None: all
        #: count as established, a newcomer at the cap is refused)
        self.established = established
        #: the open connections, oldest first
        self.bridges: dict[TcpBridge, None] = {}
        self.refused = 0
        self.evicted = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int, *, what: str = "TCP") -> None:
        sock = listen_tcp(host, port, what)
        self.port = int(sock.getsockname()[1])
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._bridge, sock=sock)

    def _bridge(self) -> asyncio.Protocol:
        if len(self.bridges) >= self.max_connections and not self._evict_one():
            return _Refuse(self)
        bridge = _ListenerBridge(self)
        self.bridges[bridge] = None
        return bridge

    def _evict_one(self) -> bool:
        """Reset the oldest connection not yet established; False if there is none."""
        established = self.established
        if established is None:
            return False
        for bridge in self.bridges:
            end = bridge.world_end
            if end is not None and established(end):
                continue
            del self.bridges[bridge]
            self.evicted += 1
            if bridge.transport is not None:
                bridge.transport.abort()
            return True
        return False

    def _refused(self, peer: str) -> None:
        self.refused += 1
        if self.on_refused is not None:
            self.runtime.sync()
            try:
                self.on_refused(peer)
            finally:
                self.runtime.wake()

    async def stop(self) -> None:
        """Stop accepting and close every open connection."""
        if self._server is not None:
            self._server.close()
        for bridge in list(self.bridges):
            bridge.close()
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
        self._server = None


class _ListenerBridge(TcpBridge):
    def __init__(self, listener: TcpStreamListener) -> None:
        super().__init__(listener.world, listener.runtime, listener.name, listener.on_accept)
        self.listener = listener

    def connection_lost(self, exc: Exception | None) -> None:
        self.listener.bridges.pop(self, None)
        super().connection_lost(exc)


class _Refuse(asyncio.Protocol):
    """A connection above the limit: aborted at once, reported to the listener."""

    def __init__(self, listener: TcpStreamListener) -> None:
        self.listener = listener

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        address = transport.get_extra_info("peername")
        if isinstance(transport, asyncio.Transport):
            transport.abort()
        else:
            transport.close()
        self.listener._refused(f"{address[0]}:{address[1]}" if isinstance(address, tuple)
                               else "")


_TASKS: set[asyncio.Task[Any]] = set()


def _background(coroutine: Coroutine[Any, Any, None]) -> None:
    task = asyncio.ensure_future(coroutine)
    _TASKS.add(task)
    task.add_done_callback(_TASKS.discard)


def tcp_connector(host: str, port: int, world: World, runtime: Runtime, *,
                  timeout_s: float = 10.0, name: str = "tcp") -> Callable[[Ready], None]:
    """Opens a TCP connection to ``host:port`` per call (e.g. a device to a real MQTT broker)
    and hands its World-side end to the callback (None when it cannot connect)."""

    def connect(ready: Ready) -> None:
        async def opening() -> None:
            loop = asyncio.get_running_loop()
            opened: list[StreamEnd] = []

            def on_open(end: StreamEnd, peer: str) -> None:
                opened.append(end)
                ready(end)  # inside connection_made: the owner is set before any byte

            try:
                await asyncio.wait_for(loop.create_connection(
                    lambda: TcpBridge(world, runtime, name, on_open), host, port), timeout_s)
            except (OSError, TimeoutError):
                if not opened:
                    runtime.sync()
                    try:
                        ready(None)
                    finally:
                        runtime.wake()

        _background(opening())

    return connect


__all__ = ["OnOpen", "Ready", "TcpBridge", "TcpStreamListener", "listen_tcp", "tcp_connector"]
