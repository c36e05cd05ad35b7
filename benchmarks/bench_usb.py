"""Control requests per second over the USB model and over the TCP bridge.

1. In-process, virtual time (``VirtualUsbHost``, particle-usb's pipeline on the world clock):
   wall-clock requests per second, one at a time and four at a time, and the 65535-byte echo
   throughput. Each request also costs 50 ms of *virtual* time (particle-usb's first CHECK).
2. Over the loopback TCP bridge, real time (``BridgeUsbClient`` -> ``UsbBridgeServer`` ->
   the device driven by the real-time driver): requests per second one at a time and four at a
   time - bounded by particle-usb's 50 ms CHECK backoff, not by the bridge - and raw control
   transfers per second (the bridge's own cost).

    python benchmarks/bench_usb.py [--requests N] [--bridge-requests N] [--transfers N]
"""

from __future__ import annotations

import argparse
import asyncio
import time

from control_requests.requests import ControlReply
from firmware_sim.kernel import AsyncioDriver, World
from firmware_sim.system import Device
from firmware_sim.testbed import CloudSpec, DeviceSpec, Testbed, TestbedSpec
from transports.usb import (
    BridgeUsbClient,
    UsbBridgeConnection,
    UsbBridgeServer,
    UsbError,
    VirtualUsbHost,
    attach_usb,
)
from transports.usb.protocol import SetupPacket


def make_device() -> tuple[World, Device]:
    testbed = Testbed(TestbedSpec(seed=1, cloud=CloudSpec("particle"), trace_memory_limit=1000,
                                  devices=(DeviceSpec("bench", profile="p2"),)))
    world, device = testbed.world, testbed.device
    device.power_on()
    world.run_for(1)
    return world, device


def in_process(count: int) -> None:
    world, device = make_device()
    host = VirtualUsbHost(world, device).open()
    payload = b"ping"
    start_wall, start_virtual = time.perf_counter(), world.now
    for _ in range(count):
        assert host.request(1, payload) == ControlReply(0, payload)
    wall = time.perf_counter() - start_wall
    virtual = world.now - start_virtual
    print(f"USB model, in-process, 1 at a time: {count / wall:,.0f} requests/s wall "
          f"({count} ECHO requests in {wall:.2f} s; {virtual / count * 1000:.0f} ms of virtual "
          f"time each)")

    outcomes: list[ControlReply | UsbError] = []
    start_wall = time.perf_counter()
    for _ in range(count):
        host.submit(1, payload, outcomes.append)
    assert world.run_until(lambda: len(outcomes) == count, timeout=count * 10.0)
    wall = time.perf_counter() - start_wall
    assert all(isinstance(o, ControlReply) and o.result == 0 for o in outcomes)
    print(f"USB model, in-process, {count} queued (4 active): {count / wall:,.0f} requests/s "
          f"wall")

    big = bytes(65535)
    rounds = max(5, count // 100)
    start_wall = time.perf_counter()
    for _ in range(rounds):
        assert host.request(1, big).data == big
    wall = time.perf_counter() - start_wall
    print(f"USB model, in-process, 65535-byte ECHO: {rounds / wall:,.1f} requests/s, "
          f"{rounds * 2 * len(big) / wall / 1e6:,.1f} MB/s through 4096-byte transfers")


async def over_bridge(count: int, transfers: int) -> None:
    world, device = make_device()
    driver = AsyncioDriver(world)
    runner = asyncio.ensure_future(driver.run())
    server = UsbBridgeServer(lambda: [attach_usb(device)], sync=driver.sync, wake=driver.wake)
    host, port = await server.start()
    address = f"{host}:{port}"
    try:
        client = await BridgeUsbClient.connect(address)
        start = time.perf_counter()
        for _ in range(count):
            assert await client.send_raw(1, b"ping") == ControlReply(0, b"ping")
        wall = time.perf_counter() - start
        print(f"TCP bridge, real time, 1 at a time: {count / wall:,.1f} requests/s "
              f"({wall / count * 1000:.1f} ms each: particle-usb's first CHECK comes after "
              f"50 ms)")
        start = time.perf_counter()
        replies = await asyncio.gather(*(client.send_raw(1, b"ping") for _ in range(count)))
        wall = time.perf_counter() - start
        assert all(reply.result == 0 for reply in replies)
        print(f"TCP bridge, real time, {count} concurrent (4 active on the device): "
              f"{count / wall:,.1f} requests/s")
        await client.aclose()

        connection = await UsbBridgeConnection.connect(address)
        await connection.open(device.device_id)
        setup = SetupPacket(0xC0, 0x50, 0, 30, 64)
        start = time.perf_counter()
        for _ in range(transfers):
            assert (await connection.control(setup)).data == b"6.2.0"
        wall = time.perf_counter() - start
        await connection.close()
        print(f"TCP bridge, raw control transfers: {transfers / wall:,.0f} transfers/s "
              f"({wall / transfers * 1e6:.0f} us round trip)")
    finally:
        await server.stop()
        driver.stop()
        await runner


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--bridge-requests", type=int, default=60)
    parser.add_argument("--transfers", type=int, default=3000)
    args = parser.parse_args()
    in_process(args.requests)
    asyncio.run(over_bridge(args.bridge_requests, args.transfers))


if __name__ == "__main__":
    main()
