"""Fuzz campaign: the USB bridge (``fwsim serve --usb-bridge``) over a real TCP socket.

A simulated photon (the profile with the most request types) runs under the real-time driver
behind a :class:`~transports.usb.bridge_server.UsbBridgeServer`. Frames go in over raw TCP
connections: LIST, OPEN (right, wrong and hostile serial numbers), CONTROL frames carrying
Particle's service requests (INIT with fuzzed types and sizes, CHECK, SEND with fuzzed
protobuf payloads, RECV, RESET) and raw 'P' requests with random setup packets, plus malformed
frames (bad lengths, short bodies, unknown kinds, garbage). Every frame that expects a reply
must get one (ERROR frames close the connection; the campaign reconnects); every 100 frames and
at the end the unmodified particle-usb pipeline (``BridgeUsbClient``) must read the device id.
Counted: crashes (the driver or the server gone, a contained callback failure), hangs (a frame
unanswered within 5 s), and the liveness checks.

    python benchmarks/fuzz_usb_bridge.py [--count 10000] [--seed 1]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import struct
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.fuzzing import CampaignResult, control_request
from cloud_sim import Cloud
from firmware_sim.kernel import AsyncioDriver, World
from firmware_sim.system import AccessPoint, Device, WifiCredentials, radio_environment
from transports.usb import BridgeUsbClient, attach_usb
from transports.usb import bridge_protocol as bp
from transports.usb.bridge_server import UsbBridgeServer
from transports.usb.protocol import SetupPacket

DEVICE_ID = "e00fce68aabbccddeeff0011"
REPLY_KINDS = {bp.FrameKind.LIST: bp.FrameKind.LIST_REPLY,
               bp.FrameKind.OPEN: bp.FrameKind.OPEN_REPLY,
               bp.FrameKind.CONTROL: bp.FrameKind.CONTROL_REPLY}


def make_device(profile: str) -> Device:
    world = World(7, trace_memory_limit=5000)
    radio_environment(world).add(AccessPoint("HomeNet", "home-pass-1"))
    cloud = Cloud(world)
    device = Device(world, "fuzzed", profile=profile, device_id=DEVICE_ID,
                    wifi=[WifiCredentials("HomeNet", "home-pass-1")])
    device.attach_cloud(cloud.connector())
    device.power_on()
    world.run_for(1.0)
    return device


def frame(rng: random.Random) -> tuple[bytes, int | None]:
    """One frame and the kind of its reply (None: the bridge answers ERROR and closes)."""
    pick = rng.random()
    if pick < 0.04:
        return bp.encode_frame(bp.FrameKind.LIST), bp.FrameKind.LIST_REPLY
    if pick < 0.1:
        serial = rng.choice([DEVICE_ID, DEVICE_ID.lower(), "", "\u00e9" * 40, "E00F" * 6])
        return bp.encode_open(serial, rng.choice([0, 0, 1, 2**32 - 1])), bp.FrameKind.OPEN_REPLY
    if pick < 0.14:  # malformed
        return rng.choice([
            struct.pack("<I", 0), struct.pack("<I", bp.MAX_FRAME_SIZE + 1) + b"\x03",
            bp.encode_frame(0x42, b"?"), bp.encode_frame(bp.FrameKind.CONTROL, b"\x01\x02"),
            bp.encode_frame(bp.FrameKind.OPEN, b"\x01"),
            bp.encode_frame(bp.FrameKind.CONTROL, struct.pack("<II", 1, 0)
                            + SetupPacket(0xC0, 1, 0, 0, 64).pack() + b"x"),
            bp.encode_frame(bp.FrameKind.CONTROL, struct.pack("<II", 1, 0)
                            + SetupPacket(0x40, 3, 0, 1, 4).pack() + b"ab"),
        ]), None
    tag = rng.randrange(2**32)
    timeout_ms = rng.choice([20, 50, 100])
    service = rng.random()
    if service < 0.25:  # INIT: a fuzzed request type and payload size
        kind, payload = control_request(rng)
        setup = SetupPacket(0xC0, 1, kind, len(payload) if rng.random() < 0.8
                            else rng.randrange(0x10000), 64)
        return bp.encode_control(tag, setup, b"", timeout_ms), bp.FrameKind.CONTROL_REPLY
    if service < 0.45:  # SEND: data for a request id
        _, payload = control_request(rng)
        payload = payload[:rng.choice([len(payload), 64, 4096])]
        setup = SetupPacket(0x40, 3, rng.choice([1, 2, 3, 0xFFFF]), rng.randrange(4),
                            len(payload))
        return bp.encode_control(tag, setup, payload, timeout_ms), bp.FrameKind.CONTROL_REPLY
    if service < 0.75:  # CHECK / RECV / RESET / unknown service requests
        request = rng.choice([2, 4, 5, 6, 15, 0x50])
        setup = SetupPacket(0xC0, request, rng.randrange(0x10000), rng.randrange(0x10000),
                            rng.choice([0, 1, 64, 1024, 4096]))
        return bp.encode_control(tag, setup, b"", timeout_ms), bp.FrameKind.CONTROL_REPLY
    # anything: random setup packets, OUT with matching data
    request_type = rng.randrange(256) & ~0x80 if rng.random() < 0.5 else rng.randrange(256)
    length = rng.choice([0, 1, 8, 64, 300])
    setup = SetupPacket(request_type, rng.randrange(256), rng.randrange(0x10000),
                        rng.randrange(0x10000), length)
    data = b"" if setup.is_in else rng.randbytes(length)
    return bp.encode_control(tag, setup, data, timeout_ms), bp.FrameKind.CONTROL_REPLY


async def campaign(count: int, seed: int = 1, profile: str = "photon") -> CampaignResult:
    result = CampaignResult(f"USB bridge ({profile})", "frames")
    started = time.monotonic()
    device = make_device(profile)
    driver = AsyncioDriver(device.world, speed=20.0)
    runner = asyncio.ensure_future(driver.run())
    server = UsbBridgeServer(lambda: [attach_usb(device)], sync=driver.sync, wake=driver.wake)
    host, port = await server.start()
    rng = random.Random(f"usb-bridge:{seed}")

    async def alive() -> bool:
        try:
            client = await BridgeUsbClient.connect(f"{host}:{port}")
            try:
                return await asyncio.wait_for(client.get_device_id(), 10) == DEVICE_ID
            finally:
                await client.aclose()
        except Exception as exc:  # any failure of the real pipeline is a liveness failure
            result.notes.append(f"liveness: {type(exc).__name__}: {exc}"[:200])
            return False

    try:
        connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        decoder = bp.FrameDecoder()
        for n in range(count):
            if connection is None:
                connection = await asyncio.open_connection(host, port)
                decoder = bp.FrameDecoder()
                opened = bp.encode_open(DEVICE_ID)
                connection[1].write(opened)  # most frames run on an opened device
                await asyncio.wait_for(connection[0].read(65536), 5)
            data, expect = frame(rng)
            reader, writer = connection
            writer.write(data)
            result.inputs += 1
            try:
                got: list[bp.Frame] = []
                while not got:
                    chunk = await asyncio.wait_for(reader.read(65536), 5)
                    if not chunk:
                        break
                    got = decoder.feed(chunk)
            except TimeoutError:
                result.failure("hangs", f"frame {data[:40].hex()} unanswered")
                got = []
            kinds = [f.kind for f in got]
            result.outcomes["error+close" if bp.FrameKind.ERROR in kinds
                            else "reply" if kinds else "no reply"] += 1
            if expect is not None and expect not in kinds and bp.FrameKind.ERROR not in kinds:
                result.outcomes["unexpected"] += 1
            if bp.FrameKind.ERROR in kinds or not got:
                writer.close()
                connection = None
            if n % 100 == 99:
                if not await alive():
                    result.failure("hangs", f"liveness check failed after frame {n + 1}")
                result.outcomes["liveness checks"] += 1
            if runner.done():
                result.failure("crashes", "the real-time driver died")
                break
        if connection is not None:
            connection[1].close()
        result.correct_after = await alive() and not runner.done()
        if driver.failure_count:
            result.failure("crashes", f"{driver.failure_count} contained callback failures: "
                           f"{driver.failures[:3]}")
        result.notes.append(f"bridge: {server.transfers:,} transfers reached the device; "
                            f"{server.refused} refused, {server.evicted} evicted, "
                            f"{server.timed_out} timed out")
    finally:
        await server.stop()
        driver.stop()
        await runner
    result.seconds = time.monotonic() - started
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profile", default="photon")
    args = parser.parse_args()
    result = asyncio.run(campaign(args.count, args.seed, args.profile))
    print(result.report())
    sys.exit(0 if result.ok else 1)


if __name__ == "__main__":
    main()
