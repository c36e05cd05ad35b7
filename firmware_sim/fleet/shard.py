"""One shard of a fleet: a World of devices that reach a cloud in another process over UDP.

How this works
--------------
:func:`run_shard` is a plain function of a picklable :class:`ShardTask` (so any process pool,
or Ray, can run it). It builds a testbed without a cloud whose devices link to
``task.cloud_url`` (``coap://host:port``: one UDP socket per device), gives each device its
claim code and drives the world with the real-time driver inside its own asyncio loop. When
``task.start_barrier`` is given, it waits there once its devices are built, so that every
shard powers its devices on at the same moment. It powers devices on - all at once, or at most
``in_flight`` not yet done at any time - and returns when
every claim code has been cleared (the cloud confirmed it) or ``timeout_s`` wall seconds
passed, with its timings in a :class:`ShardResult`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import time
import urllib.request
from dataclasses import dataclass
from typing import Any

from ..system.timing import FAST
from ..testbed import DeviceSpec, LinkSpec, Testbed, TestbedSpec, provisioned
from . import loop

#: how often a shard checks whether its devices are done (wall seconds)
POLL_S = 0.02


@dataclass(frozen=True)
class ShardTask:
    """What one shard runs: ``codes[i]`` is the claim code of its device ``i``."""

    index: int
    cloud_url: str
    codes: tuple[str, ...]
    seed: int = 0
    timing: str = FAST.name
    timeout_s: float = 300.0
    #: an object with ``wait()`` (a ``multiprocessing`` barrier proxy), or None
    start_barrier: Any = None
    #: trace records kept in memory (0: none; a fleet's trace is for debugging only)
    trace_records: int = 0
    #: devices powered on and not yet done at most (None: all at once); more are powered on
    #: as earlier ones finish, so a shard that falls behind real time does not turn every late
    #: ACK into a retransmission storm
    in_flight: int | None = None
    #: the cloud's REST API and admin token: the shard enrols its devices' keys there (the
    #: device link is DTLS, authenticated by each device's key); None: already known
    api_url: str | None = None
    admin_token: str | None = None


@dataclass(frozen=True)
class ShardResult:
    index: int
    devices: int
    #: devices whose claim code the cloud confirmed (and the device cleared)
    cleared: int
    build_s: float
    #: wall seconds from powering on to the last confirmation (or the timeout)
    run_s: float
    #: ``time.time()`` at power-on and at the end (to line shards up)
    started_at: float
    finished_at: float
    cpu_s: float
    virtual_s: float
    steps: int

    @property
    def devices_per_s(self) -> float:
        return self.cleared / self.run_s if self.run_s > 0 else 0.0


def _raise_open_file_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


#: devices per enrolment request (each entry is about 230 bytes of JSON; the API takes 64 KiB)
ENROL_BATCH = 200


def enrol(api_url: str, admin_token: str | None, devices: list[Any]) -> None:
    """Register the devices' public keys with the cloud (``POST /fwsim/device_keys``) and store
    the cloud's server key in each device's DCT."""
    server_key = b""
    for start in range(0, len(devices), ENROL_BATCH):
        batch = devices[start:start + ENROL_BATCH]
        body = json.dumps({"devices": [{"id": d.device_id, "public_key": d.keys.public_key_der(
            ).hex()} for d in batch]}).encode()
        request = urllib.request.Request(
            f"{api_url}/fwsim/device_keys", data=body, method="POST",
            headers={"Content-Type": "application/json",
                     **({"X-Fwsim-Admin-Token": admin_token} if admin_token else {})})
        with urllib.request.urlopen(request, timeout=60) as response:
            server_key = bytes.fromhex(json.load(response)["server_public_key"])
    for device in devices:
        device.server_config.set_public_key(server_key)


def run_shard(task: ShardTask) -> ShardResult:
    """Run one shard to the end (blocking; it runs its own asyncio loop)."""
    _raise_open_file_limit(len(task.codes) + 256)
    return loop.run(_run(task))


async def _run(task: ShardTask) -> ShardResult:
    cpu0 = time.process_time()
    built_at = time.perf_counter()
    bed = Testbed(TestbedSpec(seed=task.seed, cloud=None, timing=task.timing,
                              trace_memory_limit=task.trace_records,
                              link=LinkSpec(cloud_url=task.cloud_url)))
    driver = bed.driver()
    devices = []
    template = provisioned("x")[0]
    for number, code in enumerate(task.codes):
        spec = DeviceSpec(f"s{task.index}d{number}", wifi=template.wifi)
        device = bed.add_device(spec)
        device.claim.set_claim_code(code.encode())
        devices.append(device)
    if task.api_url is not None:
        await asyncio.get_running_loop().run_in_executor(
            None, enrol, task.api_url, task.admin_token, devices)
    build_s = time.perf_counter() - built_at
    if task.start_barrier is not None:
        await asyncio.get_running_loop().run_in_executor(None, task.start_barrier.wait)
    runner = asyncio.create_task(driver.run())
    started, started_at = time.perf_counter(), time.time()
    waiting = list(reversed(devices))  # powered off yet, next at the end
    limit = task.in_flight or len(devices)
    pending: list[Any] = []
    deadline = started + task.timeout_s
    while (pending or waiting) and time.perf_counter() < deadline:
        if waiting and len(pending) < limit:
            driver.sync()
            while waiting and len(pending) < limit:
                device = waiting.pop()
                device.power_on()
                pending.append(device)
            driver.wake()
        await asyncio.sleep(POLL_S)
        pending = [d for d in pending if d.claim.pending_code() is not None]
    pending += waiting
    run_s = time.perf_counter() - started
    finished_at = time.time()
    driver.stop()
    await runner
    result = ShardResult(
        index=task.index, devices=len(devices), cleared=len(devices) - len(pending),
        build_s=build_s, run_s=run_s, started_at=started_at, finished_at=finished_at,
        cpu_s=time.process_time() - cpu0, virtual_s=bed.world.now,
        steps=bed.world.scheduler.steps)
    if task.trace_records:
        for record in bed.world.trace.tail(task.trace_records):
            print(record.summary())
    bed.close()
    return result


__all__ = ["ShardResult", "ShardTask", "run_shard"]
