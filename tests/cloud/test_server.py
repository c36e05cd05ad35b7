"""The cloud on real sockets: uvicorn + UDP + the real-time driver, on loopback."""

from __future__ import annotations

import asyncio
import json
import random
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud_sim import Cloud, Principal
from cloud_sim.server import CloudServer, ServerConfig
from cloud_sim.sqlite_store import SqliteStore
from firmware_sim.communication import wire
from firmware_sim.communication.wire import CoapMessage, CoapType, HandshakeType
from firmware_sim.kernel import World
from firmware_sim.system import AccessPoint, Device, WifiCredentials, radio_environment
from firmware_sim.testbed.clouds.particle import link_over_dtls
from tests.waiting import until
from transports.net import parse_cloud_url

from .conftest import SEED, SLUG

SPEED = 20.0


def run(body: Callable[[CloudServer, httpx.AsyncClient], Awaitable[None]], *,
        speed: float = SPEED) -> None:
    async def main() -> None:
        world = World(5, trace_memory_limit=50_000)
        cloud = Cloud(world, store=SqliteStore(":memory:"))
        server = CloudServer(cloud, ServerConfig(http_port=0, coap_port=0, speed=speed,
                                                 admin=True))
        await server.start()
        try:
            assert server.admin_token is not None
            async with httpx.AsyncClient(base_url=server.http_url, timeout=10, headers={
                    "X-Fwsim-Admin-Token": server.admin_token}) as http:
                await body(server, http)
        finally:
            for node in list(world.nodes.values()):
                if isinstance(node, Device):
                    node.power_off()  # closes its UDP socket
            await server.stop()
            cloud.store.close()

    asyncio.run(main())


def udp_device(server: CloudServer, name: str = "dev", code: str | None = None) -> Device:
    world = server.cloud.world
    radio = radio_environment(world)
    if not radio.scan():
        radio.add(AccessPoint("HomeNet", "home-pass-1"))
    device = Device(world, name, wifi=[WifiCredentials("HomeNet", "home-pass-1")])
    link_over_dtls(device, server.cloud, "127.0.0.1", server.coap_port, server.driver)
    if code is not None:
        device.claim.set_claim_code(code.encode())
    return device


async def seed(http: httpx.AsyncClient) -> dict[str, Any]:
    response = await http.post("/fwsim/seed", json=SEED)
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def test_concurrent_claims_of_one_device_have_exactly_one_winner() -> None:
    async def body(server: CloudServer, http: httpx.AsyncClient) -> None:
        users = [{"username": f"u{i}@x.io", "password": "pw"} for i in range(20)]
        seeded = (await http.post("/fwsim/seed", json={
            "users": users, "devices": [{"id": "e00f" + "ab" * 10, "online": True}]})).json()
        tokens = [seeded["users"][u["username"]]["access_token"] for u in users]

        async def claim(token: str) -> int:
            response = await http.post("/v1/devices", json={"id": "e00f" + "ab" * 10},
                                       headers={"Authorization": f"Bearer {token}"})
            return response.status_code

        statuses = await asyncio.gather(*(claim(t) for t in tokens))
        assert sorted(statuses) == [200] + [403] * 19

    run(body)


def test_device_link_over_udp_handshake_resume_rst_events_and_confirm() -> None:
    async def body(server: CloudServer, http: httpx.AsyncClient) -> None:
        cloud = server.cloud
        code = cloud.create_claim_code(Principal.user("u1")).code
        device = udp_device(server, code=code)
        device.power_on()
        assert await until(lambda: device.cloud_connected)
        assert device.cloud.handshakes == {"full": 1, "resumed": 0}
        # the code is redeemed 2.25 s later and confirmed: the device clears it
        assert await until(lambda: device.claim.pending_code() is None)
        assert cloud.owner_of(device.device_id) == Principal.user("u1")
        assert cloud.bus.find("spark/device/claim/confirm", device.device_id)
        # an application event reaches the cloud
        assert device.app_publish("hello/world", "42", private=True, ttl=60)
        assert await until(lambda: bool(cloud.bus.find("hello/world", device.device_id)))
        # a software reset resumes the session over a new UDP "connection"
        device.reset("user")
        assert await until(lambda: device.cloud_connected
                           and device.cloud.handshakes["resumed"] == 1)
        # the cloud forgets the session: the next message gets a RST, then a full handshake
        cloud.endpoint.forget_session(device.device_id)
        server.driver.sync()
        device.cloud.protocol.ping()
        server.driver.wake()
        assert await until(lambda: device.cloud.handshakes["full"] == 1
                           and device.cloud_connected
                           and any("Received RST" in line for line in device.log_lines()))
        sessions = (await http.get("/fwsim/sessions")).json()["sessions"]
        assert [s["device_id"] for s in sessions] == [device.device_id]
        # the REST API sees the device online
        state = (await http.get("/fwsim/state")).json()
        [record] = [d for d in state["devices"] if d["id"] == device.device_id]
        assert record["online"] and record["last_handshake_at"]

    run(body)


def test_bad_datagrams_are_dropped_and_the_link_keeps_working() -> None:
    async def body(server: CloudServer, http: httpx.AsyncClient) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        target = ("127.0.0.1", server.coap_port)
        valid = wire.encode_app_data(b"\x01" * 8, CoapMessage(
            CoapType.CON, wire.POST, 7, b"", ("E", "x"), b"data").encode())
        bad = [b"", b"\x17", b"\x17" + b"\x00" * 8, valid[:12], valid[:-3] + b"\xff\xff\xff",
               b"\x16\x01" + b"\x00" * 5, b"\x16\x99", b"GET / HTTP/1.1\r\n\r\n",
               b"\x40\x01\x00\x01", bytes(range(256)) * 8, b"\x17" + b"\x00" * 2000]
        for datagram in bad:
            sock.sendto(datagram, target)
        sock.close()
        protocol = server.udp_protocol
        assert protocol is not None
        assert await until(lambda: protocol.received >= len(bad) - 1)
        trace = server.cloud.world.trace
        # nothing of it is DTLS: dropped before the endpoint (oversize ones by the socket)
        assert protocol.dtls is not None
        assert protocol.dtls.stats.stray + protocol.dropped >= len(bad) - 1
        assert protocol.dropped == 2 and protocol.dtls.stats.records == 0
        assert trace.count("datagram.error") == 0
        device = udp_device(server)
        device.power_on()
        assert await until(lambda: device.cloud_connected)

    run(body)


def test_event_streams_carry_device_and_cloud_events() -> None:
    async def body(server: CloudServer, http: httpx.AsyncClient) -> None:
        seeded = await seed(http)
        dev_token = seeded["users"]["dev@acme.io"]["access_token"]
        bob = Principal.customer(seeded["customers"]["b@cust.io"]["id"])
        code = server.cloud.create_claim_code(bob, 4242).code
        device = udp_device(server, code=code)
        (await http.post(f"/v1/products/{SLUG}/devices", json={"id": device.device_id},
                         headers={"Authorization": f"Bearer {dev_token}"})).raise_for_status()
        seen: list[tuple[str, dict[str, Any]]] = []
        name = ""
        async with http.stream("GET", f"/v1/products/{SLUG}/events",
                               headers={"Authorization": f"Bearer {dev_token}"}) as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            device.power_on()

            async def read() -> None:
                nonlocal name
                async for line in stream.aiter_lines():
                    if line.startswith("event: "):
                        name = line[len("event: "):]
                    elif line.startswith("data: "):
                        seen.append((name, json.loads(line[len("data: "):])))
                    if any(n == "spark/device/claim/confirm" for n, _ in seen):
                        return

            await asyncio.wait_for(read(), timeout=10)
        names = [n for n, _ in seen]
        assert "spark/status" in names and "spark/device/claim/code" in names
        claim = dict(seen)["spark/device/claim/code"]
        assert claim["data"] == code and claim["coreid"] == device.device_id
        assert set(claim) == {"data", "ttl", "published_at", "coreid"}
        assert claim["published_at"].endswith("Z")
        # B owns the device now; a stream of a device one may not see is refused like an
        # unknown id
        a_token = seeded["customers"]["a@cust.io"]["access_token"]
        for device_id in (device.device_id, "e00fce68aabbccddeeff9999"):
            refused = await http.get(f"/v1/devices/{device_id}/events",
                                     headers={"Authorization": f"Bearer {a_token}"})
            assert refused.status_code == 403
            assert refused.json()["error"] == "Permission Denied"

    run(body)


def test_parse_cloud_url() -> None:
    assert parse_cloud_url("coap://127.0.0.1:5999") == ("127.0.0.1", 5999)
    assert parse_cloud_url("coap://localhost") == ("localhost", 5683)
    for bad in ("http://x:1", "coap://", "coap://h:99999", "coap://h:1/path", "nonsense"):
        try:
            parse_cloud_url(bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad} accepted")


VALID = [
    wire.encode_handshake(HandshakeType.CLIENT_HELLO, bytes(12)),
    wire.encode_handshake(HandshakeType.CLIENT_FINISHED),
    wire.encode_app_data(b"\x00" * 8, CoapMessage(CoapType.CON, wire.EMPTY, 1).encode()),
    wire.encode_app_data(b"\x00" * 8, CoapMessage(
        CoapType.CON, wire.POST, 2, b"\x01", ("E", "spark", "device", "claim", "code"),
        b"x" * 63).encode()),
    wire.encode_app_data(b"\x00" * 8, CoapMessage(
        CoapType.CON, wire.POST, 3, b"", ("h",), bytes(32)).encode()),
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.binary(max_size=80),
                          st.tuples(st.sampled_from(VALID), st.integers(0, 79),
                                    st.integers(0, 255)).map(
                              lambda t: t[0][:t[1]] + bytes([t[2]]) + t[0][t[1] + 1:]),
                          st.sampled_from(VALID).map(lambda v: v[:random.Random(len(v))
                                                                 .randrange(len(v) + 1)])),
                max_size=12))
def test_the_device_endpoint_survives_any_datagrams(datagrams: list[bytes]) -> None:
    world = World(1)
    cloud = Cloud(world)
    replies: list[bytes] = []
    for data in [VALID[0], VALID[1], *datagrams]:
        cloud.endpoint.datagram_received(("peer", 1), data, replies.append)
        world.run_for(0.5)
    world.run_for(30)


def test_the_http_socket_is_tcp_so_asyncio_disables_nagle() -> None:
    from cloud_sim.server import _bind_tcp

    sock = _bind_tcp("127.0.0.1", 0)
    try:
        # asyncio sets TCP_NODELAY only on IPPROTO_TCP sockets (and what they accept); with
        # Nagle on, every small JSON response waited for a delayed ACK (40 ms)
        assert sock.proto == socket.IPPROTO_TCP
    finally:
        sock.close()


def test_malformed_claim_codes_from_a_device_change_nothing() -> None:
    """A device sending a code of the wrong length or alphabet: refused, no confirm."""
    world = World(2)
    cloud = Cloud(world)
    replies: list[bytes] = []
    device_id = bytes.fromhex("e00fce68aabbccddeeff0011")
    for message in (wire.encode_handshake(HandshakeType.CLIENT_HELLO, device_id),
                    wire.encode_handshake(HandshakeType.CLIENT_FINISHED)):
        cloud.endpoint.datagram_received("peer", message, replies.append)
    session_id = wire.decode_record(replies[-1]).body
    for mid, code in enumerate((b"A" * 62, b"A" * 64, b"A" * 62 + b"*", "é".encode() * 32),
                               start=1):
        event = CoapMessage(CoapType.CON, wire.POST, mid, b"",
                            ("E", "spark", "device", "claim", "code"), code)
        cloud.endpoint.datagram_received("peer", wire.encode_app_data(session_id,
                                                                       event.encode()),
                                         replies.append)
    world.run_for(10)
    outcomes = [r.outcome.value for r in cloud.endpoint.claim_results]
    assert outcomes == ["malformed_code"] * 4
    assert cloud.bus.find("spark/device/claim/confirm") == []
    assert cloud.owner_of("e00fce68aabbccddeeff0011") is None


def test_a_silent_device_goes_offline_when_configured() -> None:
    from cloud_sim import EndpointOptions

    world = World(6)
    cloud = Cloud(world, options=EndpointOptions(offline_after_s=75.0))
    radio_environment(world).add(AccessPoint("HomeNet", "home-pass-1"))
    device = Device(world, "dev", wifi=[WifiCredentials("HomeNet", "home-pass-1")])
    device.attach_cloud(cloud.connector())
    device.power_on()
    world.run_for(200)  # keepalives keep it online
    record = cloud.device(device.device_id)
    assert record is not None and record.online
    device.power_off()
    world.run_for(80)
    record = cloud.device(device.device_id)
    assert record is not None and not record.online
    assert [e.data for e in cloud.bus.find("spark/status", device.device_id)][-1] == "offline"
    # in-process scenarios keep the default: never offline
    assert EndpointOptions().offline_after_s is None
