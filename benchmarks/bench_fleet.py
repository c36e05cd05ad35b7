"""Fleet benchmarks (issue 16): one world, memory per device, shards in processes.

1. ``--world N`` (default 10,000): N devices in one world (in-process link, MemoryStore, the
   ``fast`` timing profile), each given a claim code of its own; all boot, connect with a full
   handshake, send the code, get it confirmed and clear it. Prints wall time (building and
   running), CPU, virtual time, scheduler steps, trace records and peak RSS. ``--world 100000``
   is the 100,000-device run. ``--rss-timeline S`` also prints the resident set size and the
   number of live scheduler entries every S seconds of virtual time (Linux: ``/proc``), which
   shows where the peak comes from (the instant all devices handshake at once).
2. ``--memory N`` (default 1,000): bytes per idle connected device (device and its cloud
   session), measured with tracemalloc over N devices added to a warm world and run until
   connected; prints the largest allocation sites.
3. ``--fleet N --shards 1,2``: ``fwsim fleet run`` side by side with 1 and 2 shards (worlds in
   separate processes, one cloud process, real UDP), devices per second and the ratio; at most
   ``--in-flight`` devices per shard between power-on and claimed (default: the CLI's).

Run: ``python benchmarks/bench_fleet.py`` (all three with defaults), or one part with
``--only world|memory|fleet``.
"""

from __future__ import annotations

import argparse
import gc
import resource
import sys
import sysconfig
import time
import tracemalloc
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.targets import shard_line, world_lines
from cloud_sim import EndpointOptions
from firmware_sim.cli.fleet_cmd import DEFAULT_IN_FLIGHT
from firmware_sim.testbed import CloudSpec, Testbed, TestbedSpec, provisioned
from firmware_sim.testbed.clouds.particle import ParticlePlug, ParticleSettings


def _rss_mb() -> int | None:
    """The resident set size now, in MB (None where ``/proc`` does not tell)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return None


def world_benchmark(count: int, half_open_cap: int | None = None,
                    timeline_s: float | None = None) -> None:
    """``half_open_cap``: the cloud's cap on half-open sessions (None: the fleet's size). The
    default cap (1,024, ``EndpointOptions.max_half_open``) guards a served cloud against spoofed
    handshakes; with thousands of devices handshaking at the same virtual instant it drops the
    oldest half-open sessions, and those devices start over after a RST. ``timeline_s``: print
    RSS and live scheduler entries every that many seconds of virtual time."""
    started, cpu0 = time.perf_counter(), time.process_time()
    cap = count if half_open_cap is None else half_open_cap
    settings = ParticleSettings(endpoint=EndpointOptions(max_half_open=max(1, cap)))
    testbed = Testbed(TestbedSpec(seed=1, cloud=CloudSpec("particle", settings=settings),
                                  trace_memory_limit=1000, timing="fast"))
    world, cloud = testbed.world, testbed.cloud
    assert isinstance(cloud, ParticlePlug)
    wifi = provisioned("x")[0]
    devices = []
    for i in range(count):
        device = testbed.add_device(type(wifi)(f"d{i}", wifi=wifi.wifi))
        device.claim.set_claim_code(cloud.create_claim_code(cloud.user(f"user{i % 100}"))
                                    .encode())
        device.power_on()
        devices.append(device)
    built = time.perf_counter()
    pending = list(devices)
    next_mark = 0.0
    if timeline_s is not None:
        print(f"  built and powered on: RSS {_rss_mb()} MB")
    # check every 10 ms of virtual time, from the last device backwards (a check of every
    # device per scheduler step would cost more than the devices once there are thousands)
    while pending and world.now < 3600:
        world.run_for(0.01)
        while pending and pending[-1].claim.pending_code() is None:
            pending.pop()
        if timeline_s is not None and world.now >= next_mark - 1e-9:
            print(f"  t={world.now:7.2f} s: RSS {_rss_mb()} MB, "
                  f"{len(world.scheduler)} live scheduler entries, {len(pending)} devices "
                  "to go")
            next_mark += timeline_s
    finished = time.perf_counter()
    claimed = sum(1 for d in devices if cloud.owner_of(d.device_id) is not None)
    print(f"{count} devices claimed by claim code in one world (in-process link, MemoryStore, "
          f"fast timing, half-open session cap {max(1, cap)})")
    cleared = sum(1 for d in devices if d.claim.pending_code() is None)
    print(f"  confirmed and cleared: {cleared}/{count}; owned in the cloud: "
          f"{claimed}/{count}")
    print(f"  wall {finished - started:.2f} s (building {built - started:.2f} s, running "
          f"{finished - built:.2f} s); cpu {time.process_time() - cpu0:.2f} s")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(f"  virtual {world.now:.2f} s; scheduler steps {world.scheduler.steps}; trace records "
          f"{world.trace.records[-1].seq if world.trace.records else 0}; peak RSS "
          f"{peak_mb} MB")
    for line in world_lines(count, finished - started, peak_mb):
        print(line)


def _short(filename: str) -> str:
    """A file name relative to the repository (or to the standard library)."""
    for root in (str(Path(__file__).resolve().parents[1]), sysconfig.get_paths()["stdlib"]):
        if filename.startswith(root + "/"):
            return filename[len(root) + 1:]
    return filename


def memory_benchmark(count: int, top: int = 12) -> None:
    testbed = Testbed(TestbedSpec(seed=1, cloud=CloudSpec("particle"), trace_memory_limit=0,
                                  timing="fast"))
    testbed.add_device(provisioned("warm")[0]).power_on()
    testbed.world.run_for(10)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for i in range(count):
        testbed.add_device(provisioned(f"d{i}")[0]).power_on()
    testbed.world.run_for(10)
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    stats = after.compare_to(before, "lineno")
    total = sum(stat.size_diff for stat in stats)
    connected = sum(1 for d in testbed.devices.values() if d.cloud.connected) - 1
    print(f"\nmemory of an idle connected device (with its cloud session), {count} devices, "
          f"{connected} connected")
    print(f"  {total / count / 1024:.2f} KiB per device; largest sites:")
    for stat in stats[:top]:
        frame = stat.traceback[0]
        print(f"    {stat.size_diff / count:7.0f} B  {_short(frame.filename)}:{frame.lineno}")


def fleet_benchmark(count: int, shard_counts: list[int], in_flight: int | None) -> None:
    from firmware_sim.fleet import FleetPlan, run_fleet

    print(f"\nfwsim fleet run --devices {count}: shards side by side (one cloud process, UDP)")
    rates = {}
    for shards in shard_counts:
        result = run_fleet(FleetPlan(devices=count, shards=shards, in_flight=in_flight))
        for line in result.lines():
            print("  " + line)
        rates[shards] = result.devices_per_s
    base = rates[shard_counts[0]]
    for shards in shard_counts[1:]:
        print(f"  {shards} shards / {shard_counts[0]}: {rates[shards] / base:.2f}x devices/s")
        print(shard_line(rates[shards] / base, shards, shard_counts[0]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--world", type=int, default=10_000)
    parser.add_argument("--memory", type=int, default=1_000)
    parser.add_argument("--fleet", type=int, default=4_000)
    parser.add_argument("--shards", default="1,2")
    parser.add_argument("--in-flight", type=int, default=DEFAULT_IN_FLIGHT,
                        help="per shard, devices booting at once at most (default "
                        f"{DEFAULT_IN_FLIGHT}, as `fwsim fleet run`; 0: all at once)")
    parser.add_argument("--half-open-cap", type=int, default=None,
                        help="the cloud's cap on half-open sessions in --world (default: the "
                        "number of devices; the served default is 1,024)")
    parser.add_argument("--rss-timeline", type=float, default=None, metavar="S",
                        help="in --world, print RSS and live scheduler entries every S seconds "
                        "of virtual time")
    parser.add_argument("--only", choices=["world", "memory", "fleet"])
    args = parser.parse_args()
    if args.rss_timeline is not None and not args.rss_timeline > 0:
        parser.error("--rss-timeline must be a positive number of seconds")
    if args.only in (None, "world"):
        world_benchmark(args.world, args.half_open_cap, args.rss_timeline)
    if args.only in (None, "memory"):
        memory_benchmark(args.memory)
    if args.only in (None, "fleet"):
        fleet_benchmark(args.fleet, [int(k) for k in args.shards.split(",")],
                        args.in_flight or None)


if __name__ == "__main__":
    main()
