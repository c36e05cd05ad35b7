"""Benchmark: N claim-button devices over real MQTT sockets, then a customer claims each.

The emulated ThingsBoard runs on loopback (``ThingsBoardServer``, every port picked free). The
devices are the simulator's claim-button firmware (``ClaimButtonDevice`` + ``MqttUplink``) in
their own World, driven at wall time, each on its own TCP connection (``socket_connector``).
Phase 1: all devices boot, connect and send claim info (a PUBACK each). Phase 2: customer A
claims every device over the REST API (httpx, 32 requests in flight).

Prints connects/s, registered claims/s, customer claims/s, p50/p99 latencies and peak RSS.
Usage: python benchmarks/bench_thingsboard.py [--devices 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import time

import httpx

from cloud_sim.thingsboard.demo import seed_demo
from cloud_sim.thingsboard.device import ButtonConfig, ClaimButtonDevice, MqttUplink
from cloud_sim.thingsboard.server import TbServerConfig, ThingsBoardServer
from cloud_sim.thingsboard.service import ThingsBoardService
from cloud_sim.thingsboard.settings import MqttLimits, ThingsBoardSettings
from cloud_sim.thingsboard.uplinks import socket_connector
from firmware_sim.kernel.realtime import AsyncioDriver
from firmware_sim.kernel.world import World


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def main(count: int) -> None:
    settings = ThingsBoardSettings(mqtt=MqttLimits(max_connections=count + 100))
    service = ThingsBoardService(World(1, trace_memory_limit=5_000), settings=settings,
                                 epoch_ms=int(time.time() * 1000))
    demo = seed_demo(service)
    names = [f"Bench {i}" for i in range(count)]
    tokens = [service.access_token_of(service.create_device(demo.tenant.id, n)) for n in names]
    server = ThingsBoardServer(service, TbServerConfig(http_port=0, mqtt_port=0, coap_port=0))
    await server.start()

    devices_world = World(2, trace_memory_limit=5_000)
    driver = AsyncioDriver(devices_world)
    driver_task = asyncio.create_task(driver.run())
    connector = socket_connector("127.0.0.1", server.mqtt_port, driver)
    connected_at: dict[str, float] = {}
    acked_at: dict[str, float] = {}
    started: dict[str, float] = {}
    buttons = []
    for name, token in zip(names, tokens, strict=True):
        uplink = MqttUplink(devices_world, name, token, connector, keepalive_s=120)
        button = ClaimButtonDevice(devices_world, name, uplink,
                                   ButtonConfig(duration_ms=600_000, qr_text=False))
        uplink.client.on_connected = (lambda n=name, u=uplink: (
            connected_at.setdefault(n, time.perf_counter()), u._flush()))
        button._answered = (lambda ok, detail, n=name: acked_at.setdefault(
            n, time.perf_counter()))  # type: ignore[method-assign]
        buttons.append(button)
    t0 = time.perf_counter()
    driver.sync()
    for button in buttons:
        started[button.name] = time.perf_counter()
        button.power_on()
    driver.wake()
    while len(acked_at) < count and time.perf_counter() - t0 < 120:
        await asyncio.sleep(0.02)
    t_connected = max(connected_at.values()) - t0
    t_registered = max(acked_at.values()) - t0
    register_latency = [acked_at[n] - started[n] for n in acked_at]

    secrets = {b.name: b.secret or "" for b in buttons}
    async with httpx.AsyncClient(base_url=server.http_url, timeout=30) as http:
        login = await http.post("/api/auth/login", json={"username": "customerA@thingsboard.org",
                                                         "password": "customer"})
        headers = {"X-Authorization": f"Bearer {login.json()['token']}"}
        latencies: list[float] = []
        outcomes: dict[int, int] = {}
        gate = asyncio.Semaphore(32)

        async def claim(name: str) -> None:
            async with gate:
                start = time.perf_counter()
                response = await http.post(f"/api/customer/device/{name}/claim",
                                           json={"secretKey": secrets[name]}, headers=headers)
                latencies.append(time.perf_counter() - start)
                outcomes[response.status_code] = outcomes.get(response.status_code, 0) + 1

        t1 = time.perf_counter()
        await asyncio.gather(*(claim(n) for n in names))
        t_claims = time.perf_counter() - t1

    for button in buttons:
        button.uplink.close()
    driver.stop()
    await driver_task
    await server.stop()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"devices:                {count} (MQTT 5 over TCP loopback, one socket each)")
    print(f"connected:              {len(connected_at)} in {t_connected:.2f} s "
          f"= {len(connected_at) / t_connected:,.0f} connects/s")
    print(f"claim info registered:  {len(acked_at)} PUBACKs in {t_registered:.2f} s "
          f"= {len(acked_at) / t_registered:,.0f} claims/s; latency p50 "
          f"{statistics.median(register_latency) * 1000:.1f} ms, p99 "
          f"{percentile(register_latency, 0.99) * 1000:.1f} ms")
    print(f"customer claims:        {len(latencies)} in {t_claims:.2f} s = "
          f"{len(latencies) / t_claims:,.0f} claims/s; statuses {outcomes}; latency p50 "
          f"{statistics.median(latencies) * 1000:.1f} ms, p99 "
          f"{percentile(latencies, 0.99) * 1000:.1f} ms")
    print(f"peak RSS:               {rss_mb:.0f} MiB (server and devices in one process)")


def raise_file_limit(needed: int) -> None:
    """Server and devices share this process: two sockets per device."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, hard), hard))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=1000)
    devices = parser.parse_args().devices
    raise_file_limit(2 * devices + 256)
    asyncio.run(main(devices))
