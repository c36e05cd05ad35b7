"""Benchmarks of the emulated cloud.

1. Claim API throughput: ``fwsim cloud serve`` (uvicorn, SQLite) runs in a subprocess; httpx
   clients on loopback claim devices by id (``POST /v1/devices``, every request a real claim of
   a fresh unclaimed online device) and create claim codes (``POST /v1/device_claims``) with 1,
   10 and 50 concurrent clients. Prints requests per second and latency percentiles.
2. Claim codes at scale, in process: one World on virtual time with N devices (10,000 by
   default), each given a claim code of its own; all boot, connect with a full handshake, send
   the code, get it confirmed and clear it. Prints the wall time, the virtual time and the
   scheduler steps.

Run: ``python benchmarks/bench_cloud.py`` (``--quick`` for a short run, ``--devices N``,
``--seconds S`` per concurrency level).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import subprocess
import sys
import time

import httpx

from firmware_sim.testbed import CloudSpec, Testbed, TestbedSpec, provisioned
from firmware_sim.testbed.clouds.particle import ParticlePlug

LEVELS = (1, 10, 50)
#: the /fwsim namespace (seeding) is behind an admin token on a served cloud
ADMIN_TOKEN = "bench-cloud-admin-token-0123456789"


def start_cloud() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", "firmware_sim.cli", "cloud", "serve",
                             "--http", "0", "--coap", "0", "--db", ":memory:", "--for", "3600",
                             "--admin-token", ADMIN_TOKEN],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stdout is not None
    url = ""
    for line in proc.stdout:
        if "REST API" in line:
            url = line.split()[4]
        if "ready" in line:
            break
    if not url:
        raise SystemExit("fwsim cloud serve did not start")
    return proc, url


async def seed(http: httpx.AsyncClient, users: int, devices: int) -> tuple[list[str], list[str]]:
    body = (await http.post("/fwsim/seed", json={"users": [
        {"username": f"bench{i}@example.com", "password": "pw"} for i in range(users)]})).json()
    tokens = [body["users"][f"bench{i}@example.com"]["access_token"] for i in range(users)]
    ids = [f"e00f{n:020x}" for n in range(devices)]
    for start in range(0, devices, 500):
        batch = [{"id": i, "online": True, "platform_id": 32} for i in ids[start:start + 500]]
        (await http.post("/fwsim/seed", json={"devices": batch})).raise_for_status()
    return tokens, ids


async def measure(http: httpx.AsyncClient, clients: int, seconds: float,
                  request: object) -> tuple[float, list[float]]:
    latencies: list[float] = []
    stop_at = time.perf_counter() + seconds

    async def worker(n: int) -> None:
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            await request(n)  # type: ignore[operator]
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker(n) for n in range(clients)))
    return len(latencies) / (time.perf_counter() - started), latencies


def ms(values: list[float], q: float) -> str:
    ordered = sorted(values)
    return f"{ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000:.1f}"


async def api_benchmark(seconds: float) -> None:
    proc, url = start_cloud()
    try:
        limits = httpx.Limits(max_connections=max(LEVELS), max_keepalive_connections=max(LEVELS))
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30,
                                     headers={"X-Fwsim-Admin-Token": ADMIN_TOKEN}) as http:
            tokens, ids = await seed(http, 2 * max(LEVELS), int(6000 * seconds) + 2000)
            # claim codes are made by other users than the claims (who own many devices by
            # then, and ``device_ids`` lists them all)
            code_tokens = tokens[max(LEVELS):]
            fresh = iter(ids)

            async def claim(n: int) -> None:
                response = await http.post("/v1/devices", json={"id": next(fresh)},
                                           headers={"Authorization": f"Bearer {tokens[n]}"})
                assert response.status_code == 200, response.text

            async def claim_code(n: int) -> None:
                response = await http.post("/v1/device_claims", json={},
                                           headers={"Authorization": f"Bearer {code_tokens[n]}"})
                assert response.status_code == 200, response.text

            print(f"claim API over HTTP (uvicorn + SQLite :memory:, httpx on loopback, "
                  f"{seconds:g} s per level)")
            print(f"{'request':<26} {'clients':>7} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
            for name, request in (("POST /v1/devices (claim)", claim),
                                  ("POST /v1/device_claims", claim_code)):
                for clients in LEVELS:
                    rate, latencies = await measure(http, clients, seconds, request)
                    print(f"{name:<26} {clients:>7} {rate:>9.0f} {ms(latencies, 0.5):>8} "
                          f"{ms(latencies, 0.99):>8}")
            claimed = len(ids) - len(list(fresh))
            print(f"(devices claimed during the run: {claimed})")
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


def world_benchmark(count: int) -> None:
    started = time.perf_counter()
    testbed = Testbed(TestbedSpec(seed=1, cloud=CloudSpec("particle"),
                                  trace_memory_limit=1000))
    world = testbed.world
    cloud = testbed.cloud
    assert isinstance(cloud, ParticlePlug)
    devices = []
    for i in range(count):
        device = testbed.add_device(provisioned(f"d{i}")[0])
        code = cloud.create_claim_code(cloud.user(f"user{i % 100}"))
        device.claim.set_claim_code(code.encode())
        device.power_on()
        devices.append(device)
    built = time.perf_counter()
    pending = list(devices)

    def all_cleared() -> bool:
        while pending and pending[-1].claim.pending_code() is None:
            pending.pop()
        return not pending

    done = world.run_until(all_cleared, timeout=3600)
    finished = time.perf_counter()
    claimed = sum(1 for d in devices if cloud.owner_of(d.device_id) is not None)
    print(f"\n{count} devices claimed by claim code in one world (in-process link, MemoryStore)")
    print(f"  all codes confirmed and cleared: {done}; devices owned: {claimed}/{count}")
    print(f"  wall time: {finished - started:.1f} s (building {built - started:.1f} s, "
          f"running {finished - built:.1f} s)")
    print(f"  virtual time: {world.now:.1f} s; scheduler steps: {world.scheduler.steps}; "
          f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--quick", action="store_true", help="1 s per level, 1000 devices")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.devices = 1.0, 1000
    asyncio.run(api_benchmark(args.seconds))
    world_benchmark(args.devices)


if __name__ == "__main__":
    main()
