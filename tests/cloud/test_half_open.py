"""Finding 6 of issue 14, the device link's part: spoofed handshakes hold nothing for long.

The issue's reproduction: 20,000 spoofed UDP handshakes left 18,600 sessions held for three
days. Now, over the socket, the stand-in handshake in the clear is not DTLS and is dropped
before the endpoint, and a DTLS ClientHello without a cookie gets a HelloVerifyRequest and
leaves no state. Behind that, the endpoint caps and expires half-open sessions (created, never
confirmed by a HELLO), and the DTLS server caps and expires handshakes in progress.
"""

from __future__ import annotations

import asyncio
import os
import socket
from dataclasses import replace

from cryptography.hazmat.primitives.asymmetric import ec

from cloud_sim import Cloud, EndpointOptions
from cloud_sim.dtls import DtlsLimits, DtlsServer
from cloud_sim.server import CloudServer, ServerConfig
from cloud_sim.sqlite_store import SqliteStore
from firmware_sim.communication import wire
from firmware_sim.communication.wire import CoapMessage, CoapType, HandshakeType
from firmware_sim.hal.device_keys import public_key_der, sec1_private_der
from firmware_sim.kernel import World
from tests.waiting import until
from transports.dtls import DtlsClient, DtlsCredentials

DEVICE = "e00f11223344556677889900"
HANDSHAKES = 20_000  # the figure, on the socket
FLOOD = 5_000  # in process: well past every cap, and quick


def _key() -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    return sec1_private_der(key), public_key_der(key.public_key())


def _stand_in_handshake(device_id: str) -> list[bytes]:
    return [wire.encode_handshake(HandshakeType.CLIENT_HELLO, bytes.fromhex(device_id)),
            wire.encode_handshake(HandshakeType.CLIENT_FINISHED)]


def _endpoint_cloud(**options: object) -> Cloud:
    cloud = Cloud(World(1, trace_memory_limit=1000),
                  options=replace(EndpointOptions(registered_only=True), **options))  # type: ignore[arg-type]
    cloud.register_device_key(DEVICE, _key()[1])
    return cloud


def test_the_endpoint_caps_and_expires_half_open_sessions() -> None:
    cloud = _endpoint_cloud()
    endpoint = cloud.endpoint
    replies: list[bytes] = []
    # a device that completes its handshake: its session is confirmed by the HELLO
    for datagram in _stand_in_handshake(DEVICE):
        endpoint.datagram_received("device", datagram, replies.append)
    session_id = replies[-1][2:]
    hello = wire.Hello(0xFFFF, 0xFFFF, int(wire.DEFAULT_HELLO_FLAGS), 32,
                       bytes.fromhex(DEVICE), 6200)
    endpoint.datagram_received("device", wire.encode_app_data(session_id, CoapMessage(
        CoapType.CON, wire.POST, 1, b"", (wire.URI_HELLO,), hello.encode()).encode()),
        replies.append)
    assert endpoint.half_open_count == 0
    # 5,000 handshakes naming that (known) device from as many spoofed addresses
    for n in range(FLOOD):
        for datagram in _stand_in_handshake(DEVICE):
            endpoint.datagram_received(("spoofed", n), datagram, lambda _data: None)
    cap = endpoint.options.max_half_open
    assert endpoint.half_open_count == cap
    assert len(endpoint.sessions) == cap + 1  # the confirmed session survives the flood
    assert session_id in endpoint.sessions
    # after the expiry the next datagram clears them all; the device's session stays
    cloud.world.run_for(endpoint.options.half_open_expiry_s + 1)
    endpoint.datagram_received("device", wire.encode_app_data(session_id, CoapMessage(
        CoapType.CON, wire.EMPTY, 2).encode()), replies.append)
    assert endpoint.half_open_count == 0
    assert list(endpoint.sessions) == [session_id]


def test_unknown_device_ids_are_refused_and_never_marked_online() -> None:
    cloud = _endpoint_cloud()
    replies: list[bytes] = []
    unknown = "e00f" + "ee" * 10
    for datagram in _stand_in_handshake(unknown):
        cloud.endpoint.datagram_received("attacker", datagram, replies.append)
    assert replies[0] == wire.encode_alert(wire.AlertCode.UNKNOWN_DEVICE)
    assert len(replies) == 1  # CLIENT_FINISHED of an unknown connection: nothing
    assert not cloud.endpoint.sessions
    assert cloud.store.get_device(unknown) is None
    assert cloud.world.trace.count("dtls.unknown_device") == 1


def test_the_dtls_server_caps_and_expires_handshakes() -> None:
    now = [0.0]
    private, public = _key()
    cloud = _endpoint_cloud()
    cloud.register_device_key(DEVICE, public)
    server_key = cloud.device_keys.server_key()
    server = DtlsServer(server_key, cloud.device_keys.public_key,
                        limits=DtlsLimits(max_handshakes=8, handshake_timeout_s=10.0),
                        clock=lambda: now[0])
    credentials = DtlsCredentials(DEVICE, private, server_key.public_der)
    # 20 peers that do receive the cookie (real addresses) and start a handshake each
    for n in range(20):
        to_client: list[bytes] = []
        to_server: list[bytes] = []
        client = DtlsClient(credentials, to_server.append)
        client.start()
        server.datagram_received(("peer", n), to_server.pop(), to_client.append)  # -> cookie
        client.datagram_received(to_client.pop())
        server.datagram_received(("peer", n), to_server.pop(), to_client.append)
    assert server.stats.cookies_sent == 20
    assert server.handshakes_in_progress == 8 and server.stats.busy == 12
    now[0] = 11.0
    server.datagram_received(("stray", 0), b"\x17" + os.urandom(20), lambda _d: None)
    assert server.handshakes_in_progress == 0 and server.stats.expired == 8
    # 5,000 ClientHellos that cannot see the cookie: each answered, none kept
    hello: list[bytes] = []
    DtlsClient(credentials, hello.append).start()
    for n in range(FLOOD):
        server.datagram_received(("spoofed", n), hello[0], lambda _d: None)
    assert server.handshakes_in_progress == 0 and server.peer_count == 0
    assert server.stats.cookies_sent == 20 + FLOOD


def test_20000_spoofed_handshakes_over_udp_hold_no_session() -> None:
    """The issue's reproduction, on the served cloud's UDP port."""
    async def main() -> None:
        world = World(2, trace_memory_limit=1000)
        cloud = Cloud(world, store=SqliteStore(":memory:"), unpredictable=True)
        cloud.register_device_key(DEVICE, _key()[1])
        server = CloudServer(cloud, ServerConfig(http_port=0, coap_port=0))
        await server.start()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        target = ("127.0.0.1", server.coap_port)
        hello: list[bytes] = []
        DtlsClient(DtlsCredentials(DEVICE, _key()[0], b""), hello.append).start()
        protocol = server.udp_protocol
        assert protocol is not None and protocol.dtls is not None
        try:
            sent = 0
            for n in range(HANDSHAKES):
                # the stand-in handshake in the clear (the old exploit), and a DTLS ClientHello
                # that never sees its cookie, alternately
                datagrams = (_stand_in_handshake(DEVICE) if n % 2 else
                             _stand_in_handshake(os.urandom(12).hex())) if n % 4 else hello
                for datagram in datagrams:
                    sock.sendto(datagram, target)
                    sent += 1
                if n % 100 == 99:  # let the server keep up (loopback buffers are finite)
                    await until(lambda s=sent: protocol.received >= s - 200, 5.0, poll_s=0)  # type: ignore[misc]
            assert await until(lambda: protocol.received >= sent * 0.99, 5.0, poll_s=0)
            assert not cloud.endpoint.sessions
            assert protocol.dtls.handshakes_in_progress == 0
            assert protocol.dtls.peer_count == 0
            assert protocol.dtls.stats.cookies_sent > 0
            assert not cloud.store.list_devices()
        finally:
            sock.close()
            await server.stop()
            cloud.store.close()

    asyncio.run(main())
