"""How long one device event blocks the server, against the number of open idle event streams.

A served cloud (SQLite store, as ``fwsim cloud serve``) has N open streams of other users
(``GET /v1/devices/events`` of N accounts: idle for this device) and one follower of the
device. The figure is the wall time of publishing one event, which runs on the server's loop:
the index of :mod:`cloud_sim.http.fanout` touches only the streams that follow the event, so
the time stays flat as N grows. For reference the same figure for a per-stream filter (each
open stream checks each event, with a store lookup for ownership - the scheme before the
index) is printed alongside.

    python benchmarks/bench_event_streams.py [--events 200]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cloud_sim import Cloud, CloudEvent, DeviceRecord, Principal
from cloud_sim.http.fanout import StreamHub, device_key, owner_key
from cloud_sim.sqlite_store import SqliteStore
from firmware_sim.kernel import World

DEVICE = "e00f" + "ab" * 10


def per_stream_filters(cloud: Cloud, streams: int) -> list[asyncio.Queue[CloudEvent]]:
    """The earlier scheme: one bus listener per stream, each looking the device up."""
    queues: list[asyncio.Queue[CloudEvent]] = []
    for i in range(streams):
        queue: asyncio.Queue[CloudEvent] = asyncio.Queue(1000)
        mine = Principal.user(f"u{i}")

        def listener(event: CloudEvent, queue: asyncio.Queue[CloudEvent] = queue,
                     mine: Principal = mine) -> None:
            device = cloud.store.get_device(event.device_id or "")
            if device is not None and device.owner == mine:
                queue.put_nowait(event)
        cloud.bus.subscribe(listener)
        queues.append(queue)
    return queues


async def publish_cost(idle: int, events: int, indexed: bool) -> float:
    cloud = Cloud(World(1, trace_memory_limit=100), store=SqliteStore(":memory:"))
    cloud.store.put_device(DeviceRecord(DEVICE, owner=Principal.user("owner")))
    if indexed:
        hub = StreamHub(cloud, max_streams=idle + 10, max_per_token=idle + 10)
        for i in range(idle):
            hub.open([owner_key(Principal.user(f"u{i}"))], None, f"t{i}")
        follower = hub.open([device_key(DEVICE)], None, "follower")
    else:
        per_stream_filters(cloud, idle)
    started = time.perf_counter()
    for n in range(events):
        cloud.bus.publish(CloudEvent("temp", str(n), DEVICE, n))
    elapsed = (time.perf_counter() - started) / events
    if indexed:
        assert follower.queue.qsize() == min(events, 1000)
    cloud.store.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200)
    args = parser.parse_args()
    print("one device event, published on the server's loop (SQLite store)")
    print(f"{'idle streams':>13} {'indexed (fwsim)':>16} {'per-stream filters':>19}")
    for idle in (0, 100, 1000, 10_000):
        indexed = asyncio.run(publish_cost(idle, args.events, True))
        if idle <= 1000:
            cost = asyncio.run(publish_cost(idle, max(10, args.events // 20), False))
            filters = f"{cost * 1e6:>16.1f} us"
        else:
            filters = f"{'(too slow)':>19}"
        print(f"{idle:>13,} {indexed * 1e6:>13.1f} us {filters}")


if __name__ == "__main__":
    main()
