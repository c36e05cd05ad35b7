"""The cloud's device link over UDP: the datagrams of the in-process link, on a real socket.

How this works
--------------
Each UDP datagram carries exactly what the in-process :class:`~firmware_sim.kernel.link.
DatagramLink` carries: a record (the DTLS stand-in) around a CoAP message encoded with aiocoap
(``firmware_sim.communication.wire``). This protocol hands every datagram to the sans-IO
:class:`~cloud_sim.device_endpoint.DeviceEndpoint` with the peer address as the connection key
and a reply function that sends back to that address. Before delivering it brings the World up
to the wall clock (``runtime.sync()``) and afterwards wakes the real-time driver.

With a :class:`~cloud_sim.dtls.DtlsServer` (what :class:`~cloud_sim.server.CloudServer`
always gives it) every datagram is DTLS 1.2: only the plaintext records of a device that proved
its registered key in the handshake reach the endpoint, and each is first checked against that
identity (:func:`bound_to_device`): a stand-in CLIENT_HELLO must name the authenticated device,
and application data must not name another device's session. Anything else is dropped and
counted (``refused``). Replies are encrypted to the peer they answer. While handshakes are in
progress a timer asks the DTLS server every ``RETRANSMIT_TICK_S`` to resend the flights whose
retransmission timers ran out (a lost ServerHello flight is resent, as DTLS requires).

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

from firmware_sim.communication import wire
from firmware_sim.communication.wire import MAX_DATAGRAM_SIZE
from firmware_sim.kernel.errors import PeerProtocolError

from .device_endpoint import DeviceEndpoint
from .dtls import DtlsServer
from .runtime import NullRuntime, Runtime

Address = tuple[Any, ...]
#: receive buffer asked for (the kernel caps it at net.core.rmem_max): room for the datagrams
#: of thousands of devices connecting at once
RECEIVE_BUFFER = 4 * 1024 * 1024
#: seconds between checks for handshake flights due for retransmission (OpenSSL's first
#: retransmission comes after 1 s)
RETRANSMIT_TICK_S = 0.25


def bound_to_device(endpoint: DeviceEndpoint, device_id: str, plaintext: bytes) -> bool:
    """May the authenticated ``device_id`` send this stand-in record? A CLIENT_HELLO must name
    that device; application data must not name a session of another device. (Malformed
    records pass: the endpoint drops them with a trace record.)"""
    try:
        record = wire.decode_record(plaintext)
    except PeerProtocolError:
        return True
    if (record.type is wire.RecordType.HANDSHAKE
            and record.subtype == wire.HandshakeType.CLIENT_HELLO):
        return record.body.hex() == device_id
    if record.type is wire.RecordType.APPLICATION_DATA:
        session = endpoint.sessions.get(record.session_id)
        return session is None or session.device_id == device_id
    return True


class CloudUdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, endpoint: DeviceEndpoint, runtime: Runtime | None = None, *,
                 max_peers: int = 4096, dtls: DtlsServer | None = None) -> None:
        self.endpoint = endpoint
        self.runtime: Runtime = runtime or NullRuntime()
        self.max_peers = max_peers
        self.dtls = dtls
        #: authenticated records refused because they claimed another device
        self.refused = 0
        self.transport: asyncio.DatagramTransport | None = None
        self._peers: OrderedDict[Address, Callable[[bytes], None]] = OrderedDict()
        self.tracer = endpoint.world.trace.bind(endpoint.tracer.node, "udp")
        self.received = 0
        self.dropped = 0
        self._retransmit_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._retransmit_timer is not None:
            self._retransmit_timer.cancel()
            self._retransmit_timer = None

    def _send_raw(self, addr: Address) -> Callable[[bytes], None]:
        def send(data: bytes) -> None:
            transport = self.transport
            if transport is not None and not transport.is_closing():
                transport.sendto(data, addr)
        return send

    def _reply_to(self, addr: Address) -> Callable[[bytes], None]:
        reply = self._peers.get(addr)
        if reply is not None:
            self._peers.move_to_end(addr)
            return reply
        raw = self._send_raw(addr)
        dtls = self.dtls
        if dtls is None:
            reply_fn = raw
        else:
            def reply_fn(data: bytes) -> None:
                dtls.encrypt(addr, data, raw)

        self._peers[addr] = reply_fn
        while len(self._peers) > self.max_peers:
            old, _ = self._peers.popitem(last=False)
            self.endpoint.connection_closed(old)
            if dtls is not None:
                dtls.forget(old)
        return reply_fn

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self.received += 1
        if len(data) > MAX_DATAGRAM_SIZE:
            self.dropped += 1
            self.tracer.emit("datagram.oversize", size=len(data))
            return
        try:
            self.runtime.sync()
            if self.dtls is None:
                self.endpoint.datagram_received(addr, bytes(data), self._reply_to(addr))
            else:
                self._dtls_datagram(addr, bytes(data))
        except Exception as exc:  # never let one datagram close the socket
            self.dropped += 1
            self.tracer.emit("datagram.error", error=f"{type(exc).__name__}: {exc}",
                             size=len(data))
        finally:
            self.runtime.wake()

    def _dtls_datagram(self, addr: Address, data: bytes) -> None:
        assert self.dtls is not None
        records = self.dtls.datagram_received(addr, data, self._send_raw(addr))
        for device_id, plaintext in records:
            if not bound_to_device(self.endpoint, device_id, plaintext):
                self.refused += 1
                self.tracer.emit("dtls.identity_mismatch", device_id=device_id)
                continue
            self.endpoint.datagram_received(addr, plaintext, self._reply_to(addr))
        if self.dtls.handshakes_in_progress and self._retransmit_timer is None:
            self._arm_retransmit()

    def _arm_retransmit(self) -> None:
        loop = asyncio.get_running_loop()
        self._retransmit_timer = loop.call_later(RETRANSMIT_TICK_S, self._retransmit_due)

    def _retransmit_due(self) -> None:
        self._retransmit_timer = None
        if self.dtls is None or self.transport is None or self.transport.is_closing():
            return
        try:
            in_progress = self.dtls.retransmit(self._send_raw)
        except Exception as exc:  # never let the timer die with an exception
            in_progress = self.dtls.handshakes_in_progress
            self.tracer.emit("dtls.retransmit_error", error=f"{type(exc).__name__}: {exc}")
        if in_progress:
            self._arm_retransmit()

    def error_received(self, exc: Exception) -> None:
        self.tracer.emit("socket.error", error=str(exc))


async def serve_udp(endpoint: DeviceEndpoint, host: str, port: int,
                    runtime: Runtime | None = None, *, max_peers: int = 4096,
                    dtls: DtlsServer | None = None
                    ) -> tuple[asyncio.DatagramTransport, CloudUdpProtocol]:
    """Listen for device datagrams on ``host:port`` (0: any free port); with ``dtls`` every
    datagram is DTLS (the serving commands), without it the stand-in records travel in the
    clear (tests of the endpoint's codec only)."""
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: CloudUdpProtocol(endpoint, runtime, max_peers=max_peers, dtls=dtls),
        local_addr=(host, port))
    sock = transport.get_extra_info("socket")
    if sock is not None:  # a burst of many devices must not overflow the default buffer
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
    return transport, protocol
