"""The device's cloud link over UDP (``coap://host:port``): a real socket per connection.

How this works
--------------
A :class:`UdpCloudConnector` is a ``CloudConnector`` (``Device.attach_cloud``): each time the
device's cloud connection opens a socket, it opens a non-blocking UDP socket connected to the
cloud (a new source port, so the cloud sees a new connection - which is how it tells a resumed
session from an ongoing one) and returns it as a ``DatagramPort``. Received datagrams are
delivered from the asyncio loop's reader callback: the World is brought up to the wall clock
first (``runtime.sync()``), then the device's receiver runs, then the real-time driver is woken.

UDP semantics are kept: a datagram the kernel refuses to send (buffer full, ICMP port
unreachable reported on a connected socket) is dropped and traced, and the device's own
retransmission and timeouts deal with it, exactly as with a lossy in-process link.

Every port runs **DTLS 1.2** (:mod:`transports.dtls`, mbedTLS): the connector reads the device's
credentials (its id, its private key and the server key it trusts, from its DCT) through the
``credentials`` callable for each new socket, the port handshakes first (what the device's
protocol sends meanwhile waits in the DTLS client's queue) and every datagram of the device's
protocol then travels as one DTLS record. A handshake that fails (the cloud does not know the
device's key, the server's key is not the one in the DCT, no answer) is traced
(``dtls.failed``) and the port goes quiet: to the device's protocol it is a cloud that does not
answer. The configuration (with the device's self-signed certificate) is built once per set of
credentials.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from urllib.parse import urlsplit

from mbedtls import tls as mbed_tls

from firmware_sim.kernel.errors import ConfigurationError
from firmware_sim.kernel.link import DatagramPort, Receiver
from firmware_sim.kernel.runtime import Runtime
from firmware_sim.kernel.trace import Tracer

from .dtls import RETRANSMIT_POLL_S, DtlsClient, DtlsCredentials, client_configuration

DEFAULT_COAP_PORT = 5683
_RECV_SIZE = 65535


def parse_cloud_url(url: str) -> tuple[str, int]:
    """``coap://127.0.0.1:5683`` -> ``("127.0.0.1", 5683)``."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ConfigurationError(f"invalid cloud URL {url!r}: {exc}") from None
    if parts.scheme != "coap" or not parts.hostname:
        raise ConfigurationError(f"invalid cloud URL {url!r}: expected coap://HOST[:PORT]")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigurationError(f"invalid cloud URL {url!r}: no path or query expected")
    return parts.hostname, port if port is not None else DEFAULT_COAP_PORT


class UdpPort:
    """One device-side UDP "connection" (a :class:`DatagramPort`)."""

    def __init__(self, sock: socket.socket, receiver: Receiver, runtime: Runtime,
                 loop: asyncio.AbstractEventLoop, tracer: Tracer | None) -> None:
        self._sock = sock
        self._receiver = receiver
        self._runtime = runtime
        self._loop = loop
        self._tracer = tracer
        self._closed = False
        self.sent = 0
        self.dropped = 0
        loop.add_reader(sock.fileno(), self._readable)

    @property
    def closed(self) -> bool:
        return self._closed

    def send(self, data: bytes) -> None:
        if self._closed:
            return
        try:
            self._sock.send(data)
            self.sent += 1
        except OSError as exc:  # BlockingIOError, ConnectionRefusedError, ...
            self.dropped += 1
            if self._tracer is not None:
                self._tracer.emit("udp.send_failed", error=exc.__class__.__name__,
                                  size=len(data))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._loop.remove_reader(self._sock.fileno())
        finally:
            self._sock.close()

    def _readable(self) -> None:
        while not self._closed:
            try:
                data = self._sock.recv(_RECV_SIZE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # ICMP errors surface here on a connected socket
                continue
            self._runtime.sync()
            try:
                if not self._closed:
                    self._receiver(data)
            finally:
                self._runtime.wake()


class DtlsPort:
    """A device-side :class:`DatagramPort` whose datagrams are DTLS records on a UDP port."""

    def __init__(self, sock: socket.socket, receiver: Receiver, runtime: Runtime,
                 loop: asyncio.AbstractEventLoop, tracer: Tracer | None,
                 credentials: DtlsCredentials | None,
                 configuration: mbed_tls.DTLSConfiguration | None) -> None:
        self._receiver = receiver
        self._tracer = tracer
        self._loop = loop
        self._udp = UdpPort(sock, self._from_network, runtime, loop, tracer)
        self._timer: asyncio.TimerHandle | None = None
        self._reported = False
        self.client: DtlsClient | None = None
        if credentials is None:
            self._trace("dtls.failed", reason="no valid key pair or server key in the DCT")
            self._reported = True
            return
        self.client = DtlsClient(credentials, self._udp.send, configuration=configuration)
        self.client.start()
        self._timer = loop.call_later(RETRANSMIT_POLL_S, self._poll)

    @property
    def closed(self) -> bool:
        return self._udp.closed

    @property
    def established(self) -> bool:
        return self.client is not None and self.client.established

    def send(self, data: bytes) -> None:
        if self.client is not None and not self.closed:
            self.client.write(data)
            self._report()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._udp.close()

    def _trace(self, kind: str, **fields: object) -> None:
        if self._tracer is not None:
            self._tracer.emit(kind, **fields)

    def _report(self) -> None:
        client = self.client
        if self._reported or client is None:
            return
        if client.failed:
            self._reported = True
            self._trace("dtls.failed", reason=client.failure)
        elif client.established:
            self._reported = True
            self._trace("dtls.established", cipher=client.cipher_suite,
                        handshake_ms=round((client.handshake_s or 0.0) * 1000, 1))

    def _poll(self) -> None:
        self._timer = None
        client = self.client
        if client is None or self.closed:
            return
        client.poll()
        self._report()
        if not (client.established or client.failed):
            self._timer = self._loop.call_later(RETRANSMIT_POLL_S, self._poll)

    def _from_network(self, data: bytes) -> None:
        if self.client is None:
            return
        records = self.client.datagram_received(data)
        self._report()
        for record in records:
            if self.closed:
                return
            self._receiver(record)


class UdpCloudConnector:
    """Opens DTLS-over-UDP ports to a cloud at ``host:port`` for a device (a
    ``CloudConnector``); ``credentials()`` gives the device's DTLS credentials for each new
    socket (None: the device has no usable keys, the port stays silent)."""

    def __init__(self, host: str, port: int, runtime: Runtime, *,
                 credentials: Callable[[], DtlsCredentials | None],
                 loop: asyncio.AbstractEventLoop | None = None,
                 tracer: Tracer | None = None) -> None:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise ConfigurationError(f"cannot resolve cloud host {host!r}: {exc}") from None
        self.family: socket.AddressFamily = infos[0][0]
        self.address: tuple[str, int] = (str(infos[0][4][0]), int(infos[0][4][1]))
        self.runtime = runtime
        self.credentials = credentials
        self._loop = loop
        self.tracer = tracer
        self.ports: list[DtlsPort] = []
        self._configurations: dict[DtlsCredentials, mbed_tls.DTLSConfiguration] = {}

    @classmethod
    def from_url(cls, url: str, runtime: Runtime, **kwargs: object) -> UdpCloudConnector:
        host, port = parse_cloud_url(url)
        return cls(host, port, runtime, **kwargs)  # type: ignore[arg-type]

    def __call__(self, receiver: Receiver) -> DatagramPort:
        loop = self._loop or asyncio.get_running_loop()
        sock = socket.socket(self.family, socket.SOCK_DGRAM)
        sock.setblocking(False)
        try:
            sock.connect(self.address)
        except OSError as exc:  # unreachable: every send fails and is dropped, like UDP
            if self.tracer is not None:
                self.tracer.emit("udp.connect_failed", error=str(exc))
        credentials = self.credentials()
        configuration = None
        if credentials is not None:
            configuration = self._configurations.get(credentials)
            if configuration is None:
                self._configurations = {credentials: client_configuration(credentials)}
                configuration = self._configurations[credentials]
        port = DtlsPort(sock, receiver, self.runtime, loop, self.tracer, credentials,
                        configuration)
        self.ports = [p for p in self.ports if not p.closed] + [port]
        return port
