"""Speed of the device core on virtual time, and memory per idle device.

Prints, for the session-end-workaround scenario, the simulated seconds, the wall seconds and
their ratio (target: >= 10,000x faster than real time), then the memory per device of 1,000
devices that booted, connected to the cloud and sit idle in one world (keepalive pings only).

    python benchmarks/bench_scenarios.py [--runs N] [--devices N]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.targets import scenario_line
from firmware_sim.scenarios import get_scenario
from firmware_sim.testbed import CloudSpec, Testbed, TestbedSpec, provisioned


def scenario_speed(runs: int) -> None:
    scenario = get_scenario("session-end-workaround")
    walls = []
    simulated = 0.0
    for seed in range(runs):
        start = time.perf_counter()
        result = scenario.run(seed)
        walls.append(time.perf_counter() - start)
        assert result.passed
        simulated = result.simulated_seconds
    wall = statistics.median(walls)
    print(f"session-end-workaround: simulated {simulated:.1f} s, wall {wall * 1000:.2f} ms "
          f"(median of {runs}), {simulated / wall:,.0f}x faster than real time")
    print(scenario_line(simulated / wall))


def idle_memory(count: int) -> None:
    gc.collect()
    tracemalloc.start()
    testbed = Testbed(TestbedSpec(seed=1, cloud=CloudSpec("particle"),
                                  trace_memory_limit=1000))
    world = testbed.world
    gc.collect()
    base, _ = tracemalloc.get_traced_memory()
    start = time.perf_counter()
    devices = []
    for i in range(count):
        device = testbed.add_device(provisioned(f"d{i}")[0])
        device.power_on()
        devices.append(device)
    world.run_for(60)
    connected = sum(d.cloud_connected for d in devices)
    gc.collect()
    used, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    wall = time.perf_counter() - start
    per_device = (used - base) / count
    print(f"{count} idle devices ({connected} connected) in one world: "
          f"{per_device / 1024:.1f} KiB per device including its cloud session "
          f"(peak {peak / 2**20:.1f} MiB total; trace kept to the last 1000 records); "
          f"60 simulated seconds took {wall:.2f} s wall")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--devices", type=int, default=1000)
    args = parser.parse_args()
    scenario_speed(args.runs)
    idle_memory(args.devices)


if __name__ == "__main__":
    main()
