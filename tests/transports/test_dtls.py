"""The device's DTLS client, sans-IO against the cloud's DTLS server: lost flights are
retransmitted (by the client, and by the cloud on its timer), records wait for the handshake (a
bounded queue), an oversize record is dropped, a close_notify ends the association, a handshake
that never completes fails, and any input from the network is survived."""

from __future__ import annotations

import time
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st
from mbedtls.tls import DTLSConfiguration

from cloud_sim.device_keys import DeviceKeyRegistry
from cloud_sim.dtls import DtlsServer, datagrams
from firmware_sim.hal.device_keys import public_key_der, sec1_private_der
from transports.dtls import MAX_PLAINTEXT, DtlsClient, DtlsCredentials, client_configuration

DEVICE = "e00f" + "5a" * 10


def _pair() -> tuple[DtlsCredentials, DtlsServer]:
    registry = DeviceKeyRegistry()
    key = ec.generate_private_key(ec.SECP256R1())
    registry.register(DEVICE, public_key_der(key.public_key()))
    server_key = registry.server_key()
    credentials = DtlsCredentials(DEVICE, sec1_private_der(key), server_key.public_der)
    return credentials, DtlsServer(server_key, registry.public_key)


CREDENTIALS, SERVER = _pair()


def _quick_retries(credentials: DtlsCredentials) -> DTLSConfiguration:
    """A client configuration retransmitting after 50 ms (Device OS: 3 s)."""
    return client_configuration(credentials, handshake_timeout_min=0.05,
                                handshake_timeout_max=0.4)


CONFIGURATION = _quick_retries(CREDENTIALS)


def _exchange(client: DtlsClient, server: DtlsServer, to_server: list[bytes],
              to_client: list[bytes], address: object, *, drop_first: bool = False
              ) -> list[tuple[str, bytes]]:
    records: list[tuple[str, bytes]] = []
    deadline = time.monotonic() + 5
    while not client.established and time.monotonic() < deadline:
        if drop_first and to_server:
            to_server.pop(0)
            drop_first = False
        while to_server:
            records += server.datagram_received(address, to_server.pop(0), to_client.append)
        while to_client:
            client.datagram_received(to_client.pop(0))
        if not client.established:
            time.sleep(0.02)
            client.poll()
    while to_server:
        records += server.datagram_received(address, to_server.pop(0), to_client.append)
    return records


def test_a_lost_client_hello_is_retransmitted_and_queued_records_follow() -> None:
    to_server: list[bytes] = []
    to_client: list[bytes] = []
    client = DtlsClient(CREDENTIALS, to_server.append, max_queued=2,
                        configuration=CONFIGURATION)
    assert client.write(b"first") and client.write(b"second")
    assert not client.write(b"third")  # the queue holds two
    assert not client.write(bytes(MAX_PLAINTEXT + 1))
    client.start()
    records = _exchange(client, SERVER, to_server, to_client, ("lossy", 1), drop_first=True)
    assert client.established and client.cipher_suite == "TLS-ECDHE-ECDSA-WITH-AES-128-CCM-8"
    assert records == [(DEVICE, b"first"), (DEVICE, b"second")]
    assert not client.write(bytes(MAX_PLAINTEXT + 1))  # dropped like an oversize datagram
    assert client.write(bytes(MAX_PLAINTEXT))
    assert SERVER.datagram_received(("lossy", 1), to_server.pop(), to_client.append) == [
        (DEVICE, bytes(MAX_PLAINTEXT))]


class _Link:
    """One device's connection to a cloud of its own (no other test's handshakes in progress),
    with the datagrams in flight each way; the client is started, not yet connected."""

    def __init__(self, name: str, configure: Callable[[DtlsCredentials], DTLSConfiguration]
                 = _quick_retries) -> None:
        self.address = (name, 1)
        self.configure = configure
        self.credentials, self.server = _pair()
        self.to_server: list[bytes] = []
        self.to_client: list[bytes] = []
        self.client = self.new_client()

    def new_client(self) -> DtlsClient:
        """A new connection of the device (from the same address), started."""
        self.client = DtlsClient(self.credentials, self.to_server.append,
                                 configuration=self.configure(self.credentials))
        self.client.start()
        return self.client

    def to_cloud(self, datagram: bytes) -> list[tuple[str, bytes]]:
        return self.server.datagram_received(self.address, datagram, self.to_client.append)

    def exchange(self) -> list[tuple[str, bytes]]:
        """Run the handshake to the end; the records the cloud read on the way."""
        return _exchange(self.client, self.server, self.to_server, self.to_client,
                         self.address)


def _record_numbers(datagram: bytes) -> list[tuple[int, int]]:
    """``(epoch, sequence number)`` of each DTLS record in ``datagram``."""
    numbers, at = [], 0
    while at < len(datagram):
        numbers.append((int.from_bytes(datagram[at + 3:at + 5], "big"),
                        int.from_bytes(datagram[at + 5:at + 11], "big")))
        at += 13 + int.from_bytes(datagram[at + 11:at + 13], "big")
    return numbers


def test_after_retransmitted_client_hellos_the_server_hello_is_numbered_past_them() -> None:
    """Three ClientHellos lost: the one that gets through carries record number 3, the cookie
    ClientHello 4, so the ServerHello must not reuse a number the HelloVerifyRequest had
    (mbedTLS's replay window would drop it and the handshake would never complete)."""
    to_server: list[bytes] = []
    to_client: list[bytes] = []
    client = DtlsClient(CREDENTIALS, to_server.append, configuration=CONFIGURATION)
    client.start()
    deadline = time.monotonic() + 5
    while len(to_server) < 4 and time.monotonic() < deadline:  # the first three are lost
        time.sleep(0.02)
        client.poll()
    del to_server[:3]
    records = _exchange(client, SERVER, to_server, to_client, ("renumbered", 1))
    assert client.established and records == []
    # by hand: a ClientHello numbered 7 gets a HelloVerifyRequest numbered 7; the cookie
    # ClientHello numbered 8 gets a ServerHello flight numbered 8, 9, ... (on a server of its
    # own: this handshake is left unfinished)
    link = _Link("renumbered")
    hello = link.to_server.pop()
    link.to_cloud(_numbered(hello, 7))
    assert _record_numbers(link.to_client[-1]) == [(0, 7)]
    link.client.datagram_received(link.to_client[-1])
    link.to_cloud(_numbered(link.to_server.pop(), 8))
    numbers = _record_numbers(link.to_client[-1])
    assert len(numbers) == 5 and numbers == [(0, 8 + n) for n in range(5)]


def _numbered(datagram: bytes, number: int) -> bytes:
    return datagram[:5] + number.to_bytes(6, "big") + datagram[11:]


def _quiet(credentials: DtlsCredentials) -> DTLSConfiguration:
    """A client configuration that retransmits only after 5 s: in a test it stays quiet."""
    return client_configuration(credentials, handshake_timeout_min=5.0,
                                handshake_timeout_max=10.0)


def test_a_lost_server_flight_is_retransmitted_by_the_server_timer() -> None:
    link = _Link("server-loss", _quiet)
    client, server, to_server, to_client = link.client, link.server, link.to_server, link.to_client
    addressed: list[object] = []

    def send_to(peer: object) -> Callable[[bytes], None]:
        addressed.append(peer)
        return to_client.append

    link.to_cloud(to_server.pop(0))
    client.datagram_received(to_client.pop(0))  # the HelloVerifyRequest
    link.to_cloud(to_server.pop(0))
    assert to_client and server.retransmit(send_to) == 1
    lost = list(to_client)
    to_client.clear()  # the ServerHello flight is lost
    assert server.retransmit(send_to) == 1 and not to_client  # not due yet
    time.sleep(1.1)  # OpenSSL's first retransmission timeout is 1 s
    server.retransmit(send_to)
    assert addressed == [link.address] and len(to_client) == len(lost)
    while to_client:
        client.datagram_received(to_client.pop(0))
    while to_server:
        link.to_cloud(to_server.pop(0))
    while to_client:
        client.datagram_received(to_client.pop(0))
    assert client.established and server.device_of(link.address) == DEVICE


def test_a_lost_final_server_flight_is_resent_when_the_client_retransmits() -> None:
    """The cloud's ChangeCipherSpec + Finished are lost after it completed its side: the
    device retransmits its last flight and the cloud, already authenticated, answers it
    again (and the record the device queued meanwhile arrives)."""
    link = _Link("final-loss")
    client, to_server, to_client = link.client, link.to_server, link.to_client
    link.to_cloud(to_server.pop(0))
    client.datagram_received(to_client.pop(0))  # the HelloVerifyRequest
    link.to_cloud(to_server.pop(0))
    while to_client:
        client.datagram_received(to_client.pop(0))
    while to_server:  # the device's last flight: the cloud's side is done
        link.to_cloud(to_server.pop(0))
    assert link.server.device_of(link.address) == DEVICE and len(to_client) == 1
    to_client.clear()  # the cloud's ChangeCipherSpec + Finished are lost
    assert client.write(b"hello")
    assert link.exchange() == [(DEVICE, b"hello")]


def test_a_close_notify_ends_the_association_and_a_new_handshake_starts_over() -> None:
    link = _Link("closing")
    link.exchange()
    assert link.client.established and link.server.device_of(link.address) == DEVICE
    link.client._buffer.shutdown()  # the device's close_notify (Device OS never sends one)
    link.client._flush()
    assert link.to_cloud(link.to_server.pop()) == []
    assert link.server.device_of(link.address) is None and link.server.peer_count == 0
    assert link.new_client().write(b"again")
    assert link.exchange() == [(DEVICE, b"again")]


def test_several_records_in_one_datagram_are_all_read_and_a_bad_one_is_skipped() -> None:
    link = _Link("packed")
    link.exchange()
    for text in (b"one", b"two", b"three"):
        link.client.write(text)
    one, two, three = link.to_server[-3:]
    link.to_server.clear()
    assert link.to_cloud(one + two) == [(DEVICE, b"one"), (DEVICE, b"two")]
    forged = three[:-1] + bytes([three[-1] ^ 1])  # its tag no longer matches
    assert link.to_cloud(forged) == []
    # a torn record after it: read what is whole
    assert link.to_cloud(three + b"\x17\xfe") == [(DEVICE, b"three")]
    assert link.to_cloud(one) == []  # a replay
    link.client.write(b"four")
    assert link.to_cloud(link.to_server.pop()) == [(DEVICE, b"four")]


def test_records_are_packed_into_datagrams_of_at_most_the_mtu() -> None:
    def record(size: int) -> bytes:
        return b"\x16\xfe\xfd" + bytes(8) + size.to_bytes(2, "big") + bytes(size)

    flight = record(600) + record(600) + record(600) + record(10)
    packed = list(datagrams(flight, mtu=1500))
    assert b"".join(packed) == flight and [len(d) for d in packed] == [1226, 636]
    assert list(datagrams(record(1600), mtu=1500)) == [record(1600)]  # never split a record
    assert list(datagrams(b"")) == []


def test_a_handshake_nobody_answers_fails() -> None:
    now = [0.0]
    sent: list[bytes] = []
    client = DtlsClient(CREDENTIALS, sent.append, handshake_timeout_s=30,
                        clock=lambda: now[0], configuration=CONFIGURATION)
    client.start()
    client.poll()
    assert not client.failed
    now[0] = 31.0
    client.poll()
    assert client.failure == "handshake timed out" and not client.write(b"late")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=8))
def test_any_datagrams_are_survived_by_both_ends(datagrams: list[bytes]) -> None:
    sink: list[bytes] = []
    peers = SERVER.peer_count
    client = DtlsClient(CREDENTIALS, sink.append, configuration=CONFIGURATION)
    client.start()
    for data in datagrams:
        assert client.datagram_received(data) == []
        assert SERVER.datagram_received(("fuzz", len(data)), data, sink.append) == []
        # a ClientHello-shaped prefix with random rest
        SERVER.datagram_received(("fuzz", 0), b"\x16\xfe\xfd\x00\x00" + data, sink.append)
    assert SERVER.peer_count == peers and SERVER.handshakes_in_progress == 0
