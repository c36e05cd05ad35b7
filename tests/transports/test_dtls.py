"""The device's DTLS client, sans-IO against the cloud's DTLS server: lost flights are
retransmitted, records wait for the handshake (a bounded queue), an oversize record is dropped,
a handshake that never completes fails, and any input from the network is survived."""

from __future__ import annotations

import time

from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud_sim.device_keys import DeviceKeyRegistry
from cloud_sim.dtls import DtlsServer
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
CONFIGURATION = client_configuration(CREDENTIALS, handshake_timeout_min=0.05,
                                     handshake_timeout_max=0.4)


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
