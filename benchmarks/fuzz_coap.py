"""Fuzz campaign: the cloud's device endpoint, CoAP over UDP, as it is today.

A served cloud (:class:`~cloud_sim.server.CloudServer`: the UDP endpoint under the real-time
driver) gets datagrams from a few UDP sockets: handshakes with random and known device ids,
application data on the sessions those handshakes opened and on made-up ones - CoAP messages
with every type, random codes, URI paths (events, hello, describe, time, subscriptions, unknown),
claim-code events with random codes, HELLO payloads of every length - and mutated, truncated,
random and oversize datagrams. Every 500 datagrams a fresh socket must complete a handshake and
get its ping acknowledged. Afterwards a simulated device does a full handshake over UDP and
gets its claim code confirmed. Counted: server errors (an exception the UDP protocol had to
catch, ``datagram.error``), crashes (the socket closed, the driver gone, contained callback
failures), hangs (a liveness handshake unanswered within 2 s).

The device link is a DTLS stand-in today (docs/security.md): spoofed handshakes do open
sessions, and the campaign prints how many it left behind (that cap is pending work).

    python benchmarks/fuzz_coap.py [--count 100000] [--seed 1]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.fuzzing import NASTY_TEXT, CampaignResult
from cloud_sim import Principal
from cloud_sim.server import CloudServer, ServerConfig
from firmware_sim.communication import wire
from firmware_sim.communication.wire import CoapMessage, CoapType, HandshakeType
from firmware_sim.kernel.trace import TraceRecord
from firmware_sim.system import AccessPoint, Device, WifiCredentials, radio_environment
from firmware_sim.testbed.served import open_served_cloud
from transports.net import UdpCloudConnector

KNOWN_IDS = [bytes.fromhex(f"e00f{i:020x}") for i in range(1, 4)]
PATHS = [("h",), ("d",), ("t",), ("e", "spark"), ("E", "spark", "device", "claim", "code"),
         ("E", "spark", "device", "session", "end"), ("E", "x" * 70), ("e",), ("zz",), ("E",),
         ("E", "a", "b", "c", "d", "e", "f"), ("\u00e9",)]
CODES = [0, wire.GET, wire.POST, wire.PUT, 4, 65, 69, 132, 160, 255]


class Client(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.sessions: list[bytes] = []
        self.received: list[bytes] = []

    def datagram_received(self, data: bytes, addr: object) -> None:
        self.received.append(data)
        try:
            record = wire.decode_record(data)
        except Exception:  # the cloud's answers are not under test here
            return
        if record.type is wire.RecordType.HANDSHAKE and record.subtype == int(
                HandshakeType.SERVER_FINISHED) and len(record.body) == wire.SESSION_ID_SIZE:
            self.sessions = [*self.sessions[-15:], record.body]


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
    except Exception:  # aiocoap refuses to encode some combinations: send bytes instead
        return rng.randbytes(rng.randrange(4, 40))


def datagram(rng: random.Random, sessions: list[bytes]) -> bytes:
    pick = rng.random()
    if pick < 0.1:
        body = rng.choice(KNOWN_IDS) if rng.random() < 0.5 else rng.randbytes(
            rng.choice([0, 11, 12, 13, 64]))
        return wire.encode_handshake(HandshakeType.CLIENT_HELLO, body)
    if pick < 0.2:  # the other handshake messages, unknown ones, alerts
        return bytes([rng.choice([0x15, 0x16]), rng.choice([1, 2, 3, 20, 21, 40, 46, 255])]) \
            + rng.randbytes(rng.choice([0, 8, 12]))
    if pick < 0.65:
        session = rng.choice(sessions) if sessions and rng.random() < 0.8 else rng.randbytes(8)
        return wire.encode_app_data(session, coap(rng))
    if pick < 0.85:  # a valid datagram with one byte changed, or cut short
        valid = wire.encode_app_data(rng.choice(sessions) if sessions else bytes(8), coap(rng))
        if rng.random() < 0.5:
            at = rng.randrange(len(valid))
            return valid[:at] + bytes([rng.randrange(256)]) + valid[at + 1:]
        return valid[:rng.randrange(len(valid))]
    if pick < 0.98:
        return rng.randbytes(rng.randrange(0, 200))
    return rng.randbytes(rng.choice([1501, 4000, 9000]))


async def campaign(count: int, seed: int = 1) -> CampaignResult:
    result = CampaignResult("CoAP/UDP device endpoint", "datagrams sent")
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
    sockets = [await loop.create_datagram_endpoint(Client, remote_addr=target)
               for _ in range(8)]

    async def handshake_alive() -> bool:
        transport, client = await loop.create_datagram_endpoint(Client, remote_addr=target)
        try:
            transport.sendto(wire.encode_handshake(HandshakeType.CLIENT_HELLO, KNOWN_IDS[0]))
            transport.sendto(wire.encode_handshake(HandshakeType.CLIENT_FINISHED))
            deadline = loop.time() + 2.0
            while not client.sessions and loop.time() < deadline:
                await asyncio.sleep(0.005)
            if not client.sessions:
                return False
            before = len(client.received)
            transport.sendto(wire.encode_app_data(
                client.sessions[-1], CoapMessage(CoapType.CON, wire.EMPTY, 7).encode()))
            while len(client.received) == before and loop.time() < deadline:
                await asyncio.sleep(0.005)
            return len(client.received) > before
        finally:
            transport.close()

    extra = 0  # datagrams of the liveness handshakes
    lost = 0  # datagrams the socket buffers dropped

    async def caught_up() -> None:
        """Wait until the endpoint has received everything sent (a UDP socket buffer that
        overflows drops datagrams, and a campaign must count what the server saw)."""
        nonlocal lost
        udp = server.udp_protocol
        if udp is None:
            return
        seen, idle_since = udp.received, loop.time()
        while udp.received < result.inputs + extra - lost:
            await asyncio.sleep(0)
            if udp.received != seen:
                seen, idle_since = udp.received, loop.time()
            elif loop.time() - idle_since > 0.05:
                lost = result.inputs + extra - udp.received
                return

    try:
        n = -1
        while True:
            n += 1
            if n % 20 == 0:  # count what reached the endpoint, not what was sent
                await caught_up()
                if server.udp_protocol is not None and \
                        server.udp_protocol.received - extra >= count:
                    break
            transport, client = sockets[n % len(sockets)]
            transport.sendto(datagram(rng, client.sessions))
            result.inputs += 1
            if n % 500 == 499:
                await caught_up()
                extra += 3
                if not await handshake_alive():
                    result.failure("hangs", f"no handshake answer after datagram {n + 1}")
                result.outcomes["liveness handshakes"] += 1
            udp = server.udp_protocol
            if udp is None or udp.transport is None or udp.transport.is_closing():
                result.failure("crashes", "the UDP socket closed")
                break
        await caught_up()
        udp = server.udp_protocol
        received, dropped = (udp.received - extra, udp.dropped) if udp else (0, 0)
        if lost:
            result.notes.append(f"{lost:,} datagrams were lost in the socket buffers (not "
                                "counted as received)")
        for error in errors:
            result.failure("server_errors", str(error.fields))
        if server.driver.failure_count:
            result.failure("crashes", f"{server.driver.failure_count} contained callback "
                           f"failures: {server.driver.failures[:3]}")
        result.outcomes["answers received"] = sum(len(c.received) for _, c in sockets)
        # afterwards: a device connects with a full handshake and its claim code is confirmed
        world = cloud.world
        radio_environment(world).add(AccessPoint("HomeNet", "home-pass-1"))
        code = cloud.create_claim_code(Principal.user("after")).code
        server.driver.sync()
        device = Device(world, "after", wifi=[WifiCredentials("HomeNet", "home-pass-1")])
        device.attach_cloud(UdpCloudConnector("127.0.0.1", server.coap_port, server.driver))
        device.claim.set_claim_code(code.encode())
        device.power_on()
        server.driver.wake()
        deadline = loop.time() + 15
        while device.claim.pending_code() is not None and loop.time() < deadline:
            await asyncio.sleep(0.02)
        result.correct_after = cloud.owner_of(device.device_id) == Principal.user("after")
        device.power_off()
        result.notes.append(
            f"endpoint: {received:,} fuzz datagrams received (and {extra} of liveness "
            f"handshakes), {dropped:,} dropped as oversize or failing; "
            f"{len(cloud.endpoint.sessions):,} sessions held (spoofed handshakes open "
            "sessions: the DTLS follow-up caps them)")
    finally:
        for transport, _ in sockets:
            transport.close()
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
