"""Real sockets for the sans-IO MQTT objects: an asyncio listener and a client connector.

:class:`SocketStream` is a :class:`~.stream.ByteStream` over an asyncio transport. Input is
handed to the World at the right virtual instant: ``runtime.sync()`` before the callback,
``runtime.wake()`` after (the callback may have scheduled timers). The listener caps open
connections (``MqttLimits.max_connections``: the next connection is aborted at once); idle and
keep-alive timeouts live in the session itself, on virtual time that the driver keeps at wall
time.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable

from firmware_sim.kernel.errors import ConfigurationError

from ...runtime import Runtime
from ..service import ThingsBoardService
from .server import MqttServerSession


class SocketStream(asyncio.Protocol):
    """One TCP connection as a :class:`~.stream.ByteStream`."""

    def __init__(self, runtime: Runtime,
                 on_open: Callable[[SocketStream], None] | None = None) -> None:
        self.runtime = runtime
        self.on_data: Callable[[bytes], None] | None = None
        self.on_eof: Callable[[], None] | None = None
        self.on_reset: Callable[[], None] | None = None
        self._on_open = on_open
        self.transport: asyncio.Transport | None = None
        self._closed = False
        self.peer = ""
        self.connected = asyncio.get_running_loop().create_future()

    @property
    def closed(self) -> bool:
        return self._closed

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else ""
        if not self.connected.done():
            self.connected.set_result(None)
        if self._on_open is not None:
            self.runtime.sync()
            self._on_open(self)
            self.runtime.wake()

    def data_received(self, data: bytes) -> None:
        if self._closed or self.on_data is None:
            return
        self.runtime.sync()
        self.on_data(data)
        self.runtime.wake()

    def eof_received(self) -> bool:
        if not self._closed:
            self._closed = True
            if self.on_eof is not None:
                self.runtime.sync()
                self.on_eof()
                self.runtime.wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.connected.done():
            self.connected.set_exception(exc or ConnectionError("connection lost"))
        if not self._closed:
            self._closed = True
            callback = self.on_reset if exc is not None else self.on_eof
            if callback is not None:
                self.runtime.sync()
                callback()
                self.runtime.wake()

    # ByteStream

    def write(self, data: bytes) -> None:
        if not self._closed and self.transport is not None:
            self.transport.write(data)

    def close(self) -> None:
        self._closed = True
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        self._closed = True
        if self.transport is not None:
            self.transport.abort()


def bind_tcp(host: str, port: int, what: str) -> socket.socket:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise ConfigurationError(f"cannot listen for {what} on {host}:{port}: {exc}") from None
    family, kind, proto = infos[0][:3]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(infos[0][4])
    except OSError as exc:
        sock.close()
        raise ConfigurationError(f"cannot listen for {what} on {host}:{port}: "
                                 f"{exc.strerror or exc}") from None
    return sock


class MqttListener:
    """The MQTT endpoint of a :class:`ThingsBoardService` on a TCP socket."""

    def __init__(self, service: ThingsBoardService, runtime: Runtime) -> None:
        self.service = service
        self.runtime = runtime
        self.sessions: set[MqttServerSession] = set()
        self.refused = 0
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self, host: str, port: int) -> None:
        sock = bind_tcp(host, port, "MQTT")
        sock.listen(1024)
        self.port = int(sock.getsockname()[1])
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: SocketStream(self.runtime, self._opened), sock=sock)

    def _opened(self, stream: SocketStream) -> None:
        if len(self.sessions) >= self.service.settings.mqtt.max_connections:
            self.refused += 1
            self.service.tracer.emit("tb.mqtt.refused", peer=stream.peer,
                                     reason="too_many_connections")
            stream.abort()
            return
        session = MqttServerSession(self.service, stream, peer=stream.peer)
        self.sessions.add(session)
        session.on_closed.append(self.sessions.discard)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        self.runtime.sync()
        for session in list(self.sessions):
            session.close()
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
        self._server = None


async def open_stream(host: str, port: int, runtime: Runtime,
                      timeout_s: float = 10.0) -> SocketStream:
    """A client TCP connection as a :class:`SocketStream` (e.g. a device to a real broker)."""
    loop = asyncio.get_running_loop()
    _, stream = await asyncio.wait_for(
        loop.create_connection(lambda: SocketStream(runtime), host, port), timeout_s)
    return stream
