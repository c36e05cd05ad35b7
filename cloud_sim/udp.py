"""The cloud's device link over UDP: the datagrams of the in-process link, on a real socket.

How this works
--------------
Each UDP datagram carries exactly what the in-process :class:`~firmware_sim.kernel.link.
DatagramLink` carries: a record (the DTLS stand-in) around a CoAP message encoded with aiocoap
(``firmware_sim.communication.wire``). This protocol hands every datagram to the sans-IO
:class:`~cloud_sim.device_endpoint.DeviceEndpoint` with the peer address as the connection key
and a reply function that sends back to that address. Before delivering it brings the World up
to the wall clock (``runtime.sync()``) and afterwards wakes the real-time driver.

Malformed input (truncated, not a record, not CoAP, oversize) is dropped by the endpoint's codec
with a trace record; an exception escaping a handler would close an asyncio datagram transport,
so one is caught, traced and the datagram dropped. Peers are forgotten, oldest first, beyond
``max_peers`` (a UDP "connection" has no close).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, cast

from firmware_sim.communication.wire import MAX_DATAGRAM_SIZE

from .device_endpoint import DeviceEndpoint
from .runtime import NullRuntime, Runtime

Address = tuple[Any, ...]
#: receive buffer asked for (the kernel caps it at net.core.rmem_max): room for the datagrams
#: of thousands of devices connecting at once
RECEIVE_BUFFER = 4 * 1024 * 1024


class CloudUdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, endpoint: DeviceEndpoint, runtime: Runtime | None = None, *,
                 max_peers: int = 4096) -> None:
        self.endpoint = endpoint
        self.runtime: Runtime = runtime or NullRuntime()
        self.max_peers = max_peers
        self.transport: asyncio.DatagramTransport | None = None
        self._peers: OrderedDict[Address, Callable[[bytes], None]] = OrderedDict()
        self.tracer = endpoint.world.trace.bind(endpoint.tracer.node, "udp")
        self.received = 0
        self.dropped = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def _reply_to(self, addr: Address) -> Callable[[bytes], None]:
        reply = self._peers.get(addr)
        if reply is not None:
            self._peers.move_to_end(addr)
            return reply

        def reply_fn(data: bytes) -> None:
            transport = self.transport
            if transport is not None and not transport.is_closing():
                transport.sendto(data, addr)

        self._peers[addr] = reply_fn
        while len(self._peers) > self.max_peers:
            old, _ = self._peers.popitem(last=False)
            self.endpoint.connection_closed(old)
        return reply_fn

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self.received += 1
        if len(data) > MAX_DATAGRAM_SIZE:
            self.dropped += 1
            self.tracer.emit("datagram.oversize", size=len(data))
            return
        try:
            self.runtime.sync()
            self.endpoint.datagram_received(addr, bytes(data), self._reply_to(addr))
        except Exception as exc:  # never let one datagram close the socket
            self.dropped += 1
            self.tracer.emit("datagram.error", error=f"{type(exc).__name__}: {exc}",
                             size=len(data))
        finally:
            self.runtime.wake()

    def error_received(self, exc: Exception) -> None:
        self.tracer.emit("socket.error", error=str(exc))


async def serve_udp(endpoint: DeviceEndpoint, host: str, port: int,
                    runtime: Runtime | None = None, *, max_peers: int = 4096
                    ) -> tuple[asyncio.DatagramTransport, CloudUdpProtocol]:
    """Listen for device datagrams on ``host:port`` (0: any free port)."""
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: CloudUdpProtocol(endpoint, runtime, max_peers=max_peers),
        local_addr=(host, port))
    sock = transport.get_extra_info("socket")
    if sock is not None:  # a burst of many devices must not overflow the default buffer
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
    return transport, protocol
