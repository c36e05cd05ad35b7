"""fwsim's own ``tcp-server`` HCI transport for a served bumble virtual controller.

How this works
--------------
An edge adapter (real sockets). bumble's ``tcp-server`` transport accepts without limit, feeds
every connection's bytes into one HCI packet source and answers on the newest, and leaves the
accept loop to asyncio, which at the open-file limit logs a traceback for each retry (tens of
thousands of lines a second). A virtual controller has one host at a time, so
:func:`open_tcp_server_transport` serves ``tcp-server:HOST:PORT`` itself:

* **One host link.** While a host is attached, a further connection is closed at once (counted
  in ``refused``); the attached host keeps its link. When it disconnects, the HCI parser is
  reset and the next connection becomes the host.
* **Own accept loop** (``transports.accept``): ``accept`` failing for lack of resources
  (EMFILE ...) logs one warning line at most every ``log_interval_s`` and retries after
  ``retry_delay_s``; the attached host is served meanwhile.

bumble's packet source and sink are reused (``StreamPacketSource``); the transport is a bumble
``Transport`` whose ``close`` stops the listener and drops the host.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct

from bumble.transport.common import StreamPacketSource, Transport

from firmware_sim.kernel.errors import ConfigurationError

from ..accept import AcceptLimits, accept_forever, listen

__all__ = ["TcpListenerLimits", "TcpServerTransport", "open_tcp_server_transport"]

_log = logging.getLogger(__name__)

#: the accept loop's limits (``transports.accept``)
TcpListenerLimits = AcceptLimits


class _HostSink:
    """HCI packets from the controller to the attached host (dropped while none is)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None

    def on_packet(self, packet: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(packet)


class _HostProtocol(asyncio.Protocol):
    def __init__(self, owner: TcpServerTransport) -> None:
        self.owner = owner

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.owner.sink.transport = transport

    def data_received(self, data: bytes) -> None:
        self.owner.source.data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.owner.host_lost()


class TcpServerTransport(Transport):
    source: StreamPacketSource
    sink: _HostSink

    def __init__(self, listener: socket.socket, limits: TcpListenerLimits) -> None:
        super().__init__(StreamPacketSource(), _HostSink())
        self.listener = listener
        self.limits = limits
        self.refused = 0
        self.accept_failures = 0
        self._host: asyncio.Transport | None = None
        self._accepting = asyncio.get_running_loop().create_task(self._accept_loop())

    @property
    def address(self) -> tuple[str, int]:
        name = self.listener.getsockname()
        return str(name[0]), int(name[1])

    @property
    def host_attached(self) -> bool:
        return self._host is not None

    def host_lost(self) -> None:
        self._host = None
        self.sink.transport = None
        self.source.parser.reset()

    async def _accept_loop(self) -> None:
        host, port = self.address
        await accept_forever(self.listener, self._connected, name=f"BLE controller {host}:{port}",
                             log=_log, limits=self.limits, on_failure=self._failed)

    def _failed(self) -> None:
        self.accept_failures += 1

    async def _connected(self, connection: socket.socket) -> None:
        if self._host is not None:
            self.refused += 1
            with contextlib.suppress(OSError):  # a reset: no lingering close
                connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                      struct.pack("ii", 1, 0))
            connection.close()
            return
        try:
            host, _ = await asyncio.get_running_loop().connect_accepted_socket(
                lambda: _HostProtocol(self), connection)
        except OSError:
            connection.close()
            return
        self._host = host

    async def close(self) -> None:
        self._accepting.cancel()
        with contextlib.suppress(BaseException):
            await self._accepting
        self.listener.close()
        if self._host is not None:
            self._host.abort()
        self.host_lost()
        await super().close()


async def open_tcp_server_transport(address: str,
                                    limits: TcpListenerLimits | None = None
                                    ) -> TcpServerTransport:
    """Listen on ``HOST:PORT`` (``_`` for every interface, port 0 for any free one)."""
    host, sep, port_text = address.rpartition(":")
    try:
        port = int(port_text)
        if not sep or not 0 <= port <= 65535:
            raise ValueError
    except ValueError:
        raise ConfigurationError(f"invalid tcp-server address {address!r}: expected "
                                 "HOST:PORT, e.g. 127.0.0.1:19001") from None
    listener = listen("" if host == "_" else host, port, backlog=16)
    return TcpServerTransport(listener, limits or TcpListenerLimits())
