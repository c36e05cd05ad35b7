"""Fuzz campaign: the cloud's device link, CoAP inside DTLS 1.2 over UDP.

A served cloud (:class:`~cloud_sim.server.CloudServer`: DTLS on its UDP port, the endpoint under
the real-time driver) gets datagrams from a few UDP sockets of two kinds:

* *authenticated* sockets: DTLS clients of registered fuzz devices (which also replay their
  own earlier datagrams now and then), whose records carry what the endpoint parses -
  stand-in handshakes naming their own id, another id or garbage, application
  data on the sessions those handshakes opened and on made-up ones (CoAP messages of every
  type, random codes, URI paths of events, hello, describe, time, subscriptions and unknown
  ones, claim-code events with random codes, HELLO payloads of every length), mutated and
  truncated records;
* *raw* sockets: the DTLS layer itself - ClientHellos (valid, mutated, truncated), captured
  DTLS records (handshake flights and application records of a real session) with bytes
  changed, replayed as they were, or sent from another address, records of epoch 1 from
  nowhere, random and oversize datagrams, and the stand-in records in the clear.

Every 500 datagrams a fresh DTLS client of a registered device must complete its handshake and
get an answer to its stand-in handshake within 2 s. Afterwards a simulated device links over
DTLS and gets its claim code confirmed. Counted: server errors (an exception the UDP protocol
had to catch, ``datagram.error``), crashes (the socket closed, contained callback failures),
hangs (a liveness handshake unanswered).

    python benchmarks/fuzz_coap.py [--count 100000] [--seed 1]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from pathlib import Path
from typing import cast

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.hazmat.primitives.asymmetric import ec

from benchmarks.fuzzing import NASTY_TEXT, CampaignResult
from cloud_sim import Cloud, Principal
from cloud_sim.server import CloudServer, ServerConfig
from firmware_sim.communication import wire
from firmware_sim.communication.wire import CoapMessage, CoapType, HandshakeType
from firmware_sim.hal.device_keys import public_key_der, sec1_private_der
from firmware_sim.kernel.trace import TraceRecord
from firmware_sim.system import AccessPoint, Device, WifiCredentials, radio_environment
from firmware_sim.testbed.clouds.particle import link_over_dtls
from firmware_sim.testbed.served import open_served_cloud
from transports.dtls import DtlsClient, DtlsCredentials

KNOWN_IDS = [bytes.fromhex(f"e00f{i:020x}") for i in range(1, 4)]
LIVENESS_ID = bytes.fromhex("e00f" + "99" * 10)
PATHS = [("h",), ("d",), ("t",), ("e", "spark"), ("E", "spark", "device", "claim", "code"),
         ("E", "spark", "device", "session", "end"), ("E", "x" * 70), ("e",), ("zz",), ("E",),
         ("E", "a", "b", "c", "d", "e", "f"), ("\u00e9",)]
CODES = [0, wire.GET, wire.POST, wire.PUT, 4, 65, 69, 132, 160, 255]


class Peer(asyncio.DatagramProtocol):
    """One UDP socket of the campaign; with ``client`` its datagrams are that DTLS client's."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.client: DtlsClient | None = None
        self.sessions: list[bytes] = []
        self.received = 0
        self.records = 0
        self.sent = 0
        #: raw datagrams this socket sent (captured for mutation and replay)
        self.captured: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def send(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(data)
            self.sent += 1
            if len(self.captured) < 64 or self.sent % 97 == 0:
                self.captured = [*self.captured[-63:], data]

    def datagram_received(self, data: bytes, addr: object) -> None:
        self.received += 1
        if self.client is None:
            return
        for record in self.client.datagram_received(data):
            self.records += 1
            try:
                decoded = wire.decode_record(record)
            except Exception:  # the cloud's answers are not under test here
                continue
            if decoded.type is wire.RecordType.HANDSHAKE and decoded.subtype == int(
                    HandshakeType.SERVER_FINISHED) and len(decoded.body) == 8:
                self.sessions = [*self.sessions[-15:], decoded.body]


def coap(rng: random.Random) -> bytes:
    path = rng.choice(PATHS)
    payload = rng.choice([b"", rng.choice(NASTY_TEXT).encode(), rng.randbytes(63),
                          rng.randbytes(rng.randrange(1100)),
                          wire.Hello(0, 0, 0, 32, rng.choice(KNOWN_IDS), 6200).encode(),
                          bytes(32)])
    message = CoapMessage(CoapType(rng.randrange(4)), rng.choice(CODES), rng.randrange(0x10000),
                          rng.randbytes(rng.choice([0, 1, 4, 8])), path, payload,
                          rng.choice([None, 0, 60, 2**32 - 1]))
    try:
        return message.encode()
    except Exception:  # the codec refuses to encode some combinations: send bytes instead
        return rng.randbytes(rng.randrange(4, 40))


def record(rng: random.Random, own_id: bytes, sessions: list[bytes]) -> bytes:
    """A plaintext record an authenticated device sends (what the endpoint parses)."""
    pick = rng.random()
    if pick < 0.1:
        body = own_id if rng.random() < 0.6 else rng.choice(
            [*KNOWN_IDS, rng.randbytes(rng.choice([0, 11, 12, 13, 64]))])
        return wire.encode_handshake(HandshakeType.CLIENT_HELLO, body)
    if pick < 0.2:  # the other handshake messages, unknown ones, alerts
        return bytes([rng.choice([0x15, 0x16]), rng.choice([1, 2, 3, 20, 21, 40, 46, 255])]) \
            + rng.randbytes(rng.choice([0, 8, 12]))
    if pick < 0.7:
        session = rng.choice(sessions) if sessions and rng.random() < 0.8 else rng.randbytes(8)
        return wire.encode_app_data(session, coap(rng))
    if pick < 0.9:  # a valid record with one byte changed, or cut short
        valid = wire.encode_app_data(rng.choice(sessions) if sessions else bytes(8), coap(rng))
        if rng.random() < 0.5:
            at = rng.randrange(len(valid))
            return valid[:at] + bytes([rng.randrange(256)]) + valid[at + 1:]
        return valid[:rng.randrange(1, len(valid))]
    return rng.randbytes(rng.randrange(1, 200))


def raw_datagram(rng: random.Random, hello: bytes, captured: list[bytes]) -> bytes:
    """A datagram aimed at the DTLS layer."""
    pick = rng.random()
    sample = rng.choice(captured) if captured else hello
    if pick < 0.15:
        return hello
    if pick < 0.45:  # a captured or hello datagram with bytes changed
        data = bytearray(sample)
        for _ in range(rng.choice([1, 1, 2, 8])):
            data[rng.randrange(len(data))] = rng.randrange(256)
        return bytes(data)
    if pick < 0.6:
        return sample[:rng.randrange(1, len(sample))]
    if pick < 0.7:  # replayed as it was (from another address: no state there)
        return sample
    if pick < 0.8:  # an application record of epoch 1 from nowhere
        return (b"\x17\xfe\xfd\x00\x01" + rng.randbytes(6)
                + rng.randrange(200).to_bytes(2, "big") + rng.randbytes(rng.randrange(200)))
    if pick < 0.9:  # the stand-in records in the clear
        return rng.choice([wire.encode_handshake(HandshakeType.CLIENT_HELLO,
                                                 rng.choice(KNOWN_IDS)),
                           wire.encode_handshake(HandshakeType.CLIENT_FINISHED),
                           wire.encode_app_data(rng.randbytes(8), coap(rng))])
    if pick < 0.98:
        return rng.randbytes(rng.randrange(0, 200))
    return rng.randbytes(rng.choice([1501, 4000, 9000]))


def _key() -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    return sec1_private_der(key), public_key_der(key.public_key())


def _register(cloud: Cloud, device_id: bytes) -> DtlsCredentials:
    private, public = _key()
    cloud.register_device_key(device_id.hex(), public)
    return DtlsCredentials(device_id.hex(), private, cloud.device_keys.server_key().public_der)


async def campaign(count: int, seed: int = 1) -> CampaignResult:
    result = CampaignResult("CoAP/DTLS device link", "datagrams received")
    started = time.monotonic()
    cloud = open_served_cloud(":memory:", seed=seed, epoch=int(time.time()),
                              trace_memory_limit=2000)
    errors: list[TraceRecord] = []
    cloud.world.trace.subscribe(lambda r: errors.append(r) if r.kind == "datagram.error"
                                else None)
    server = CloudServer(cloud, ServerConfig(http_port=0, coap_port=0, speed=20.0))
    await server.start()
    loop = asyncio.get_running_loop()
    rng = random.Random(f"coap:{seed}")
    target = ("127.0.0.1", server.coap_port)
    udp = server.udp_protocol
    assert udp is not None and udp.dtls is not None
    dtls = udp.dtls
    credentials = {device_id: _register(cloud, device_id) for device_id in KNOWN_IDS}
    liveness_credentials = _register(cloud, LIVENESS_ID)

    async def open_peer(creds: DtlsCredentials | None) -> Peer:
        _transport, peer = await loop.create_datagram_endpoint(Peer, remote_addr=target)
        if creds is not None:
            peer.client = DtlsClient(creds, peer.send, max_queued=4096)
            peer.client.start()
        return peer

    authenticated = [await open_peer(credentials[KNOWN_IDS[i % len(KNOWN_IDS)]])
                     for i in range(4)]
    raw = [await open_peer(None) for _ in range(4)]
    hello_sink: list[bytes] = []
    DtlsClient(liveness_credentials, hello_sink.append).start()
    hello = hello_sink[0]
    peers = [*authenticated, *raw]

    def sent_total() -> int:
        return sum(p.sent for p in peers) + extra

    async def alive() -> bool:
        """A registered device completes DTLS and its stand-in CLIENT_HELLO is answered."""
        nonlocal extra
        peer = await open_peer(liveness_credentials)
        try:
            assert peer.client is not None
            peer.client.write(wire.encode_handshake(HandshakeType.CLIENT_HELLO, LIVENESS_ID))
            deadline = loop.time() + 2.0
            while peer.records == 0 and loop.time() < deadline:
                peer.client.poll()
                await asyncio.sleep(0.002)
            return peer.records > 0
        finally:
            extra += peer.sent
            if peer.transport is not None:
                peer.transport.close()

    extra = 0  # datagrams of the liveness checks
    lost = 0  # datagrams the socket buffers dropped

    async def caught_up() -> None:
        """Wait until the server has received everything sent (a UDP socket buffer that
        overflows drops datagrams, and a campaign must count what the server saw)."""
        nonlocal lost
        seen, idle_since = udp.received, loop.time()
        while udp.received < sent_total() - lost:
            await asyncio.sleep(0)
            if udp.received != seen:
                seen, idle_since = udp.received, loop.time()
            elif loop.time() - idle_since > 0.05:
                lost = sent_total() - udp.received
                return

    try:
        deadline = loop.time() + 10
        while not all(p.client is not None and p.client.established for p in authenticated):
            if loop.time() > deadline:
                result.failure("hangs", "the fuzz devices' DTLS handshakes did not complete")
                break
            for p in authenticated:
                if p.client is not None:
                    p.client.poll()
            await asyncio.sleep(0.005)
        n = -1
        while True:
            n += 1
            if n % 20 == 0:  # count what reached the server, not what was sent
                await caught_up()
                if udp.received - extra >= count:
                    break
            if n % 2 == 0:
                peer = authenticated[(n // 2) % len(authenticated)]
                assert peer.client is not None
                own = bytes.fromhex(peer.client.credentials.device_id)
                if peer.captured and rng.random() < 0.1:  # a replay from the same address
                    peer.send(rng.choice(peer.captured))
                else:
                    peer.client.write(record(rng, own, peer.sessions))
            else:
                peer = raw[(n // 2) % len(raw)]
                captured = [d for p in authenticated for d in p.captured[-8:]]
                peer.send(raw_datagram(rng, hello, captured))
            if n % 500 == 499:
                await caught_up()
                if not await alive():
                    result.failure("hangs", f"no liveness answer after datagram {n + 1}")
                result.outcomes["liveness handshakes"] += 1
            if udp.transport is None or udp.transport.is_closing():
                result.failure("crashes", "the UDP socket closed")
                break
        await caught_up()
        result.inputs = udp.received - extra
        if lost:
            result.notes.append(f"{lost:,} datagrams were lost in the socket buffers (not "
                                "counted)")
        for error in errors:
            result.failure("server_errors", str(error.fields))
        if server.driver.failure_count:
            result.failure("crashes", f"{server.driver.failure_count} contained callback "
                           f"failures: {server.driver.failures[:3]}")
        result.outcomes["records answered to the fuzz devices"] = sum(
            p.records for p in authenticated)
        for p in authenticated:
            if p.client is not None and p.client.failed:
                result.notes.append(f"a fuzz device's DTLS client failed: {p.client.failure}")
        # afterwards: a device connects over DTLS with a full handshake; its code is confirmed
        world = cloud.world
        radio_environment(world).add(AccessPoint("HomeNet", "home-pass-1"))
        code = cloud.create_claim_code(Principal.user("after")).code
        server.driver.sync()
        device = Device(world, "after", wifi=[WifiCredentials("HomeNet", "home-pass-1")])
        link_over_dtls(device, cloud, "127.0.0.1", server.coap_port, server.driver)
        device.claim.set_claim_code(code.encode())
        device.power_on()
        server.driver.wake()
        deadline = loop.time() + 15
        while device.claim.pending_code() is not None and loop.time() < deadline:
            await asyncio.sleep(0.02)
        result.correct_after = cloud.owner_of(device.device_id) == Principal.user("after")
        device.power_off()
        stats = dtls.stats
        result.notes.append(
            f"DTLS: {stats.cookies_sent:,} cookies, {stats.handshakes_started:,} handshakes "
            f"started, {stats.handshakes_done:,} done, {stats.stray:,} stray datagrams, "
            f"{stats.discarded:,} discarded (replays, bad records), {stats.failed:,} failed "
            f"handshakes or peers, {stats.records:,} records to the endpoint, "
            f"{udp.refused:,} refused as another device's")
        result.notes.append(
            f"endpoint: {len(cloud.endpoint.sessions):,} sessions held "
            f"({cloud.endpoint.half_open_count:,} half-open, cap "
            f"{cloud.endpoint.options.max_half_open:,}); {udp.dropped:,} oversize datagrams "
            f"dropped; DTLS state: {dtls.handshakes_in_progress} handshakes in progress, "
            f"{dtls.peer_count} peers")
    finally:
        for peer in peers:
            if peer.transport is not None:
                peer.transport.close()
        await server.stop()
        cloud.store.close()
    result.seconds = time.monotonic() - started
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    result = asyncio.run(campaign(args.count, args.seed))
    print(result.report())
    sys.exit(0 if result.ok else 1)


if __name__ == "__main__":
    main()
