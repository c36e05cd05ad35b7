"""Finding 1 of issue 14 (device takeover over UDP): the device link authenticates devices.

Over real sockets on loopback: a cloud served by ``CloudServer`` (DTLS 1.2 on its UDP port), a
victim device owned by a developer and linked over DTLS, and an attacker who knows the victim's
id, has an account and a claim code of its own, and talks to the UDP port with raw sockets - in
the clear (the exploit of the issue, which moved the device before), with DTLS and a key of its
own, with the victim's certificate but not its private key, with a registered device of its own
naming the victim, and by replaying captured datagrams. None of it reaches the victim's session,
its owner or its online state.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
from collections.abc import Awaitable, Callable
from typing import ClassVar

from cryptography.hazmat.primitives.asymmetric import ec
from mbedtls import hashlib as mbed_hashlib
from mbedtls import pk as mbed_pk
from mbedtls import tls as mbed_tls
from mbedtls import x509 as mbed_x509

from cloud_sim import Cloud, Principal
from cloud_sim.server import CloudServer, ServerConfig
from cloud_sim.sqlite_store import SqliteStore
from firmware_sim.communication import wire
from firmware_sim.communication.event_names import CLAIM_CODE_EVENT
from firmware_sim.communication.wire import CoapMessage, CoapType, HandshakeType
from firmware_sim.hal.device_keys import public_key_der, sec1_private_der
from firmware_sim.kernel import World
from firmware_sim.system import AccessPoint, Device, WifiCredentials, radio_environment
from firmware_sim.testbed.clouds.particle import link_over_dtls
from tests.waiting import until
from transports.dtls import DtlsClient, DtlsCredentials

VICTIM = "e00f11223344556677889900"
ATTACKER_DEVICE = "e00faaaaaaaaaaaaaaaaaaaa"
SPEED = 50.0


def _public_der(key: ec.EllipticCurvePrivateKey) -> bytes:
    return public_key_der(key.public_key())


class RawPeer:
    """An attacker's UDP socket to the cloud, optionally with a DTLS client on it."""

    opened: ClassVar[list[RawPeer]] = []

    def __init__(self, port: int) -> None:
        RawPeer.opened.append(self)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        self.sock.connect(("127.0.0.1", port))
        self.sent: list[bytes] = []
        self.received: list[bytes] = []
        self.records: list[bytes] = []
        self.client: DtlsClient | None = None

    def send(self, data: bytes) -> None:
        self.sent.append(data)
        self.sock.send(data)

    def dtls(self, credentials: DtlsCredentials, **kwargs: object) -> DtlsClient:
        self.client = DtlsClient(credentials, self.send, **kwargs)  # type: ignore[arg-type]
        self.client.start()
        return self.client

    async def pump(self, until: Callable[[], bool], timeout: float = 5.0) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not until():
            if loop.time() > deadline:
                return False
            try:
                data = self.sock.recv(65535)
            except (BlockingIOError, ConnectionRefusedError):
                if self.client is not None:
                    self.client.poll()
                await asyncio.sleep(0.005)
                continue
            self.received.append(data)
            if self.client is not None:
                self.records += self.client.datagram_received(data)
        return True

    def close(self) -> None:
        self.sock.close()


Body = Callable[[CloudServer, Device], Awaitable[None]]


def run(body: Body) -> None:
    async def main() -> None:
        world = World(3, trace_memory_limit=50_000)
        cloud = Cloud(world, store=SqliteStore(":memory:"), unpredictable=True)
        cloud.create_user("victim@dev.io", "victim-pw")
        cloud.create_user("attacker@evil.io", "attacker-pw")
        server = CloudServer(cloud, ServerConfig(http_port=0, coap_port=0, speed=SPEED))
        await server.start()
        radio_environment(world).add(AccessPoint("HomeNet", "home-pass-1"))
        victim_owner = cloud.store.find_user("victim@dev.io")
        assert victim_owner is not None
        code = cloud.create_claim_code(Principal.user(victim_owner.id)).code
        device = Device(world, "victim", device_id=VICTIM,
                        wifi=[WifiCredentials("HomeNet", "home-pass-1")])
        link_over_dtls(device, cloud, "127.0.0.1", server.coap_port, server.driver)
        device.claim.set_claim_code(code.encode())
        device.power_on()
        try:
            assert await until(lambda: cloud.owner_of(VICTIM) == Principal.user(
                victim_owner.id) and device.claim.pending_code() is None)
            await body(server, device)
        finally:
            for peer in RawPeer.opened:
                peer.close()
            RawPeer.opened.clear()
            device.power_off()
            await server.stop()
            cloud.store.close()

    asyncio.run(main())


def _attacker(cloud: Cloud) -> Principal:
    user = cloud.store.find_user("attacker@evil.io")
    assert user is not None
    return Principal.user(user.id)


def _takeover_datagrams(device_id: str, session_id: bytes, code: str) -> list[bytes]:
    """The exploit of the issue in the clear: the stand-in handshake as ``device_id``, a HELLO,
    and a claim-code event carrying the attacker's code."""
    hello = wire.Hello(0xFFFF, 0xFFFF, int(wire.DEFAULT_HELLO_FLAGS), 32,
                       bytes.fromhex(device_id), 6200)
    return [
        wire.encode_handshake(HandshakeType.CLIENT_HELLO, bytes.fromhex(device_id)),
        wire.encode_handshake(HandshakeType.CLIENT_FINISHED),
        wire.encode_app_data(session_id, CoapMessage(
            CoapType.CON, wire.POST, 1, b"", (wire.URI_HELLO,), hello.encode()).encode()),
        wire.encode_app_data(session_id, CoapMessage(
            CoapType.CON, wire.POST, 2, b"", wire.event_uri(CLAIM_CODE_EVENT, True),
            code.encode()).encode()),
    ]


def test_a_spoofed_handshake_in_the_clear_moves_nothing() -> None:
    """The issue's reproduction: it used to move the device to the attacker (200 -> 403)."""
    async def body(server: CloudServer, device: Device) -> None:
        cloud = server.cloud
        owner = cloud.owner_of(VICTIM)
        code = cloud.create_claim_code(_attacker(cloud)).code
        sessions = set(cloud.endpoint.sessions)
        peer = RawPeer(server.coap_port)
        for datagram in _takeover_datagrams(VICTIM, b"\x01" * 8, code):
            peer.send(datagram)
        # a never-seen id, in the clear too
        for datagram in _takeover_datagrams("e00f" + "ee" * 10, b"\x02" * 8, code):
            peer.send(datagram)
        dtls = server.udp_protocol.dtls if server.udp_protocol else None
        assert dtls is not None
        assert await until(lambda: dtls.stats.stray >= 8)
        await asyncio.sleep(3.0 / SPEED * 2)  # past the claim redemption delay
        assert set(cloud.endpoint.sessions) == sessions
        assert cloud.owner_of(VICTIM) == owner
        assert not cloud.store.get_claim_code(code).consumed  # type: ignore[union-attr]
        assert cloud.store.get_device("e00f" + "ee" * 10) is None
        peer.close()

    run(body)


def test_a_handshake_with_another_key_is_refused() -> None:
    async def body(server: CloudServer, device: Device) -> None:
        cloud = server.cloud
        dtls = server.udp_protocol.dtls if server.udp_protocol else None
        assert dtls is not None
        server_key = cloud.device_keys.server_key().public_der
        own_key = sec1_private_der(ec.generate_private_key(ec.SECP256R1()))
        # the victim's id with the attacker's key, then an id the cloud never saw
        for device_id, reason in ((VICTIM, "wrong key"), ("e00f" + "ee" * 10, "unknown device")):
            peer = RawPeer(server.coap_port)
            client = peer.dtls(DtlsCredentials(device_id, own_key, server_key))
            client.write(wire.encode_handshake(HandshakeType.CLIENT_HELLO,
                                               bytes.fromhex(device_id)))
            assert await peer.pump(lambda c=client: c.failed)  # type: ignore[misc]
            assert "closed the connection" in (client.failure or "")
            assert dtls.stats.refusals.get(reason) == 1
            peer.close()
        assert dtls.stats.records == 0 or all(
            s.device_id == VICTIM for s in cloud.endpoint.sessions.values())
        assert cloud.store.get_device("e00f" + "ee" * 10) is None
        trace = cloud.world.trace
        assert not [r for r in trace.records if r.kind == "dtls.client_hello"
                    and r.fields.get("device_id") == "e00f" + "ee" * 10]

    run(body)


def test_the_victims_certificate_without_its_private_key_fails_the_handshake() -> None:
    """The cloud's OpenSSL checks the CertificateVerify signature: a copied certificate is not
    enough."""
    async def body(server: CloudServer, device: Device) -> None:
        cloud = server.cloud
        dtls = server.udp_protocol.dtls if server.udp_protocol else None
        assert dtls is not None
        victim_key = mbed_pk.ECC.from_DER(device.keys.private_key_der() or b"")
        csr = mbed_x509.CSR.new(victim_key, f"CN={VICTIM}", mbed_hashlib.sha256())
        victim_certificate = mbed_x509.CRT.selfsign(
            csr, victim_key, dt.datetime(2000, 1, 1), dt.datetime(2099, 1, 1), 7)
        attacker_key = mbed_pk.ECC.from_DER(sec1_private_der(ec.generate_private_key(
            ec.SECP256R1())))
        config = mbed_tls.DTLSConfiguration(
            ciphers=("TLS-ECDHE-ECDSA-WITH-AES-128-CCM-8",),
            lowest_supported_version=mbed_tls.DTLSVersion.DTLSv1_2,
            highest_supported_version=mbed_tls.DTLSVersion.DTLSv1_2,
            certificate_chain=((victim_certificate,), attacker_key),
            validate_certificates=False)
        peer = RawPeer(server.coap_port)
        credentials = DtlsCredentials(VICTIM, device.keys.private_key_der() or b"",
                                      cloud.device_keys.server_key().public_der)
        peer.dtls(credentials, configuration=config)
        failed_before = dtls.stats.failed
        assert await peer.pump(lambda: dtls.stats.failed > failed_before)
        assert dtls.stats.handshakes_done == 1  # only the victim's own
        assert dtls.peer_count == 1 and dtls.handshakes_in_progress == 0
        peer.close()

    run(body)


def test_a_registered_device_cannot_speak_for_another() -> None:
    """Authenticated as its own device, the attacker names the victim in the stand-in
    handshake, then uses the victim's session id: both refused before the endpoint."""
    async def body(server: CloudServer, device: Device) -> None:
        cloud = server.cloud
        protocol = server.udp_protocol
        assert protocol is not None
        key = ec.generate_private_key(ec.SECP256R1())
        cloud.register_device_key(ATTACKER_DEVICE, _public_der(key))
        peer = RawPeer(server.coap_port)
        client = peer.dtls(DtlsCredentials(ATTACKER_DEVICE, sec1_private_der(key),
                                           cloud.device_keys.server_key().public_der))
        victim_session = cloud.endpoint.session_for_device(VICTIM)
        assert victim_session is not None
        code = cloud.create_claim_code(_attacker(cloud)).code
        for datagram in _takeover_datagrams(VICTIM, victim_session.session_id, code):
            client.write(datagram)
        assert await peer.pump(lambda: protocol.refused >= 3)
        await asyncio.sleep(3.0 / SPEED * 2)
        assert cloud.owner_of(VICTIM) != _attacker(cloud)
        assert not cloud.store.get_claim_code(code).consumed  # type: ignore[union-attr]
        assert [s.device_id for s in cloud.endpoint.sessions.values()] == [VICTIM]
        # its own identity works: the stand-in handshake answers
        client.write(wire.encode_handshake(HandshakeType.CLIENT_HELLO,
                                           bytes.fromhex(ATTACKER_DEVICE)))
        assert await peer.pump(lambda: any(r[:2] == bytes([wire.RecordType.HANDSHAKE,
                                                           HandshakeType.SERVER_HELLO])
                                           for r in peer.records))
        peer.close()

    run(body)


def test_a_replayed_datagram_is_discarded() -> None:
    async def body(server: CloudServer, device: Device) -> None:
        cloud = server.cloud
        dtls = server.udp_protocol.dtls if server.udp_protocol else None
        assert dtls is not None
        key = ec.generate_private_key(ec.SECP256R1())
        cloud.register_device_key(ATTACKER_DEVICE, _public_der(key))
        peer = RawPeer(server.coap_port)
        client = peer.dtls(DtlsCredentials(ATTACKER_DEVICE, sec1_private_der(key),
                                           cloud.device_keys.server_key().public_der))
        assert await peer.pump(lambda: client.established)
        hellos = cloud.world.trace.count("dtls.client_hello")
        client.write(wire.encode_handshake(HandshakeType.CLIENT_HELLO,
                                           bytes.fromhex(ATTACKER_DEVICE)))
        captured = peer.sent[-1]
        assert await peer.pump(lambda: cloud.world.trace.count("dtls.client_hello") > hellos)
        delivered, discarded, stray = dtls.stats.records, dtls.stats.discarded, dtls.stats.stray
        for _ in range(3):  # from the same address: the replay window drops it
            peer.send(captured)
        other = RawPeer(server.coap_port)  # from another address: no DTLS state there
        other.send(captured)
        assert await peer.pump(lambda: dtls.stats.discarded >= discarded + 3
                               and dtls.stats.stray >= stray + 1)
        assert dtls.stats.records == delivered
        assert cloud.world.trace.count("dtls.client_hello") == hellos + 1
        # its first ClientHello replayed from its address does not cut the association off
        peer.send(peer.sent[0])
        peer.send(peer.sent[0])
        client.write(wire.encode_handshake(HandshakeType.CLIENT_HELLO,
                                           bytes.fromhex(ATTACKER_DEVICE)))
        assert await peer.pump(lambda: cloud.world.trace.count("dtls.client_hello")
                               == hellos + 2)
        assert dtls.device_of(("127.0.0.1", peer.sock.getsockname()[1])) == ATTACKER_DEVICE
        peer.close()
        other.close()

    run(body)


def test_a_device_refuses_a_server_without_the_key_in_its_dct() -> None:
    """The device pins the server key of its DCT: a cloud with another key is refused."""
    async def body(server: CloudServer, device: Device) -> None:
        cloud = server.cloud
        other = Device(cloud.world, "pinned", wifi=[WifiCredentials("HomeNet", "home-pass-1")])
        link_over_dtls(other, cloud, "127.0.0.1", server.coap_port, server.driver)
        imposter = ec.generate_private_key(ec.SECP256R1())
        other.server_config.set_public_key(_public_der(imposter))
        other.power_on()
        try:
            assert await until(lambda: cloud.world.trace.count("dtls.failed") >= 1)
            failures = [r for r in cloud.world.trace.records
                        if r.kind == "dtls.failed" and r.node == "pinned"]
            assert failures and "not the one in the DCT" in str(failures[0].fields["reason"])
            assert not other.cloud_connected
            assert cloud.endpoint.session_for_device(other.device_id) is None
        finally:
            other.power_off()

    run(body)
