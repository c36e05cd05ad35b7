"""Benchmark: N claim-button devices over real MQTT sockets, then a customer claims each.

One testbed world holds the emulated ThingsBoard, served on loopback (every port picked free;
``Testbed.serve_cloud``), and N claim-button devices of the demo tenant, each linked to the
served MQTT port over its own TCP connection (``ThingsBoardPlug.served_mqtt_connector``, the
``transports.tcp`` bridge), the World driven at wall time. Phase 1: all devices boot, connect
and send claim info (a PUBACK each). Phase 2: customer A claims every device over the REST API
(httpx, 32 requests in flight).

Prints connects/s, registered claims/s, customer claims/s, p50/p99 latencies and peak RSS.
Usage: python benchmarks/bench_thingsboard.py [--devices 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import time
from typing import Any

import httpx

from firmware_sim.testbed import CloudSpec, ServeOptions, Testbed, TestbedSpec
from firmware_sim.testbed.clouds.thingsboard import (
    ButtonConfig,
    MqttLimits,
    TbCloudSettings,
    ThingsBoardPlug,
    ThingsBoardSettings,
)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def main(count: int) -> None:
    settings = TbCloudSettings(
        service=ThingsBoardSettings(mqtt=MqttLimits(max_connections=count + 100)),
        epoch_ms=int(time.time() * 1000))
    testbed = Testbed(TestbedSpec(seed=1, access_points=(), trace_memory_limit=5_000,
                                  cloud=CloudSpec("thingsboard", settings=settings)))
    plug = testbed.cloud
    assert isinstance(plug, ThingsBoardPlug)
    served = await testbed.serve_cloud(ServeOptions(extra={"coap_port": 0}))
    driver = testbed.driver()
    driver_task = asyncio.create_task(driver.run())

    names = [f"Bench {i}" for i in range(count)]
    connector = plug.served_mqtt_connector()
    buttons = [plug.add_button(name, ButtonConfig(duration_ms=600_000, qr_text=False),
                               connector=connector) for name in names]
    nodes = {button.node: button.name for button in buttons}
    connected_at: dict[str, float] = {}
    acked_at: dict[str, float] = {}
    started: dict[str, float] = {}

    def watch(record: Any) -> None:
        name = nodes.get(record.node)
        if name is None:
            return
        if record.kind == "mqtt.connected":
            connected_at.setdefault(name, time.perf_counter())
        elif record.kind == "claim.acked":
            acked_at.setdefault(name, time.perf_counter())

    testbed.world.trace.subscribe(watch)
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
    async with httpx.AsyncClient(base_url=served.http_url, timeout=30) as http:
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

    driver.sync()
    for button in buttons:
        button.power_off()
    driver.wake()
    await served.stop()
    driver.stop()
    await driver_task
    testbed.close()
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
