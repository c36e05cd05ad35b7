"""What DTLS costs on the device link: handshake time and per-record time, sans-IO.

A device's :class:`transports.dtls.DtlsClient` and the cloud's :class:`cloud_sim.dtls.DtlsServer`
handshake through in-memory buffers (no sockets, no loss), ``--count`` times: the figures are
CPU time of both ends in this one process (loopback UDP adds a few hundred microseconds of
round trips). Printed: the full handshake (cookie exchange, ECDHE, two ECDSA signatures and
their checks) for both ends and for each end alone (the device: mbedTLS, as Device OS; the
cloud: OpenSSL), what a ClientHello without a cookie costs the cloud (answered, no state kept),
the memory an authenticated peer holds in the cloud (``--peers`` of them: the process's resident
size with them and after they are dropped, returned to the OS with ``malloc_trim``; Linux), the
client's configuration (its self-signed certificate, built once per set of
credentials and then cached by the connector), and one 100-byte record each way.

    python benchmarks/bench_dtls.py [--count 50] [--peers 200]
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import os
import statistics
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.hazmat.primitives.asymmetric import ec
from mbedtls.tls import DTLSConfiguration

from cloud_sim.device_keys import DeviceKeyRegistry
from cloud_sim.dtls import DtlsServer
from firmware_sim.hal.device_keys import public_key_der, sec1_private_der
from transports.dtls import DtlsClient, DtlsCredentials, client_configuration

DEVICE = "e00f" + "42" * 10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=50)
    parser.add_argument("--peers", type=int, default=200)
    args = parser.parse_args()
    registry = DeviceKeyRegistry()
    key = ec.generate_private_key(ec.SECP256R1())
    registry.register(DEVICE, public_key_der(key.public_key()))
    server_key = registry.server_key()
    credentials = DtlsCredentials(DEVICE, sec1_private_der(key), server_key.public_der)
    server = DtlsServer(server_key, registry.public_key)
    started = time.perf_counter()
    configuration = client_configuration(credentials)
    config_ms = (time.perf_counter() - started) * 1000
    handshakes: list[float] = []
    server_ms: list[float] = []
    records: list[float] = []
    for n in range(args.count):
        address = ("bench", n)
        started = time.perf_counter()
        link = Link(server, address, credentials, configuration)
        handshakes.append((time.perf_counter() - started) * 1000)
        server_ms.append(link.in_server_s * 1000)
        client, to_server, to_client = link.client, link.to_server, link.to_client
        payload = bytes(100)
        started = time.perf_counter()
        for _ in range(100):
            client.write(payload)
            [(_device, plaintext)] = server.datagram_received(address, to_server.pop(),
                                                              to_client.append)
            server.encrypt(address, plaintext, to_client.append)
            client.datagram_received(to_client.pop())
        records.append((time.perf_counter() - started) / 200 * 1e6)
    print(f"DTLS 1.2 {client.cipher_suite}, {args.count} handshakes (both ends, one process)")
    both, cloud = statistics.median(handshakes), statistics.median(server_ms)
    print(f"  full handshake: median {both:.1f} ms, max {max(handshakes):.1f} ms; of which "
          f"the device {both - cloud:.1f} ms, the cloud {cloud:.1f} ms")
    print(f"  client configuration (self-signed certificate, once per key): {config_ms:.1f} ms")
    cookie_us = cookie_cost(server, credentials, configuration)
    print(f"  a ClientHello without a cookie, the cloud's CPU: {cookie_us:.0f} us "
          "(answered, no state kept)")
    per_peer = peer_memory_kib(server, credentials, configuration, args.peers)
    if per_peer is not None:
        print(f"  memory of one authenticated peer in the cloud: {per_peer:.0f} KiB "
              f"(resident size over {args.peers} peers)")
    print(f"  one 100-byte record, encrypt + decrypt: median {statistics.median(records):.0f} us")


class Link:
    """A device's DTLS client handshaken with ``server`` at ``address`` through in-memory
    buffers; ``in_server_s``: the time spent in the server's side of the handshake."""

    def __init__(self, server: DtlsServer, address: tuple[str, int],
                 credentials: DtlsCredentials, configuration: DTLSConfiguration) -> None:
        self.to_server: list[bytes] = []
        self.to_client: list[bytes] = []
        self.client = DtlsClient(credentials, self.to_server.append,
                                 configuration=configuration)
        self.client.start()
        self.in_server_s = 0.0
        while not self.client.established:
            assert not self.client.failed, self.client.failure
            while self.to_server:
                entered = time.perf_counter()
                server.datagram_received(address, self.to_server.pop(0), self.to_client.append)
                self.in_server_s += time.perf_counter() - entered
            while self.to_client:
                self.client.datagram_received(self.to_client.pop(0))


def cookie_cost(server: DtlsServer, credentials: DtlsCredentials,
                configuration: DTLSConfiguration, count: int = 2000) -> float:
    """Microseconds of CPU the cloud spends answering a ClientHello that carries no cookie."""
    sent: list[bytes] = []
    client = DtlsClient(credentials, sent.append, configuration=configuration)
    client.start()
    hello = sent.pop()
    started = time.process_time()
    for n in range(count):
        server.datagram_received(("cookie", n), hello, lambda _: None)
    assert server.handshakes_in_progress == 0
    return (time.process_time() - started) / count * 1e6


def peer_memory_kib(server: DtlsServer, credentials: DtlsCredentials,
                    configuration: DTLSConfiguration, count: int) -> float | None:
    """KiB of resident memory per authenticated peer of ``server`` (Linux only): ``count``
    handshakes completed, the clients dropped, then the peers dropped."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        statm = Path("/proc/self/statm")
        statm.read_text()
    except OSError:
        return None

    def resident_kib() -> int:
        gc.collect()
        libc.malloc_trim(0)
        return int(statm.read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024

    for n in range(count):
        Link(server, ("peer", n), credentials, configuration)  # the client is dropped
    with_peers = resident_kib()
    for n in range(count):
        server.forget(("peer", n))
    return (with_peers - resident_kib()) / count


if __name__ == "__main__":
    main()
