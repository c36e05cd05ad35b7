"""Wall time of provisioning 100 devices over BLE in one world.

Each device (a P2 in listening mode, its own mobile secret) gets its own phone; all phones work
at once on the world's virtual air: scan, connect, MTU, EC-JPAKE handshake, then
``join_new_network``, ``set_claim_code``, ``is_claimed`` and ``stop_listening``. Two phones:

* ``world``: :class:`~transports.ble.provisioning.BlePhone`, callbacks on the world clock;
* ``bleak``: :class:`~transports.ble.client.ProvisioningClient` over the bleak backend, 100
  asyncio tasks stepped by one :class:`~transports.ble.bridge.SteppingBridge`.

Both then run the world until every device has published its claim code. Printed: wall
seconds (and per device), virtual seconds, scheduler steps, handshakes, claim codes sent. The
handshake's CPU cost per side is ``benchmarks/bench_ble_handshake.py``'s.

    python benchmarks/bench_ble_provision.py [--devices 100] [--phone world|bleak|both]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable

from control_requests import requests
from firmware_sim.kernel import World
from firmware_sim.system import AccessPoint, Device
from firmware_sim.testbed import CloudSpec, DeviceSpec, Testbed, TestbedSpec
from firmware_sim.testbed.adapters import surface_for
from firmware_sim.testbed.clouds.particle import ParticlePlug
from transports.ble import BlePeripheral, BlePhone, attach_ble
from transports.ble.bleak_backend import SimulatedBle
from transports.ble.client import ProvisioningClient, scan_for_devices

HOME = AccessPoint("HomeNet", "home-pass-1")
OWNER = ParticlePlug.user("bench@example.com")


def build(count: int, seed: int) -> tuple[World, ParticlePlug, list[Device],
                                          list[BlePeripheral]]:
    testbed = Testbed(TestbedSpec(seed=seed, access_points=(HOME,), cloud=CloudSpec("particle"),
                                  trace_memory_limit=50_000))
    world, cloud = testbed.world, testbed.cloud
    assert isinstance(cloud, ParticlePlug)
    devices, peripherals = [], []
    for index in range(count):
        device = testbed.add_device(DeviceSpec(f"dev{index:03d}", profile="p2"))
        peripherals.append(attach_ble(surface_for(device)))
        device.power_on()
        devices.append(device)
    world.run_for(1.0)
    return world, cloud, devices, peripherals


def claims_sent(devices: list[Device]) -> int:
    return sum(1 for d in devices if d.claim.pending_code() is None and d.claim.is_device_claimed())


def finish(world: World, devices: list[Device], limit_s: float = 120.0) -> None:
    world.run_until(lambda: claims_sent(devices) == len(devices), limit_s)


class _Script:
    """One phone's requests, each sent when the previous one is answered."""

    def __init__(self, phone: BlePhone, calls: list[requests.Call[object]]) -> None:
        self.phone = phone
        self.calls = calls
        self.expected = len(calls)
        self.results: list[int] = []

    def start(self) -> None:
        self._send()

    def _send(self) -> None:
        call = self.calls.pop(0)
        self.phone.send(call.request.type, call.request.payload, self._answered)

    def _answered(self, result: int, _reply: bytes) -> None:
        self.results.append(result)
        if self.calls:
            self._send()

    @property
    def finished(self) -> bool:
        return len(self.results) == self.expected


def with_world_phones(count: int, seed: int) -> dict[str, float]:
    world, cloud, devices, peripherals = build(count, seed)
    scripts = []
    start_virtual = world.now
    started = time.perf_counter()
    for device, peripheral in zip(devices, peripherals, strict=True):
        phone = BlePhone(world, device.mobile_secret, address=peripheral.address,
                         central=f"phone-{device.name}")
        code = cloud.create_claim_code(OWNER, ttl_s=3600)
        calls: list[requests.Call[object]] = [
            requests.join_new_network(HOME.ssid, HOME.password),  # type: ignore[list-item]
            requests.set_claim_code(code),  # type: ignore[list-item]
            requests.is_claimed(),  # type: ignore[list-item]
            requests.stop_listening()]  # type: ignore[list-item]
        script = _Script(phone, calls)
        script.start()
        scripts.append(script)
    world.run_until(lambda: all(script.finished for script in scripts), 300.0)
    provisioned = time.perf_counter() - started
    provision_virtual = world.now - start_virtual
    ok = sum(1 for script in scripts if script.results == [0, 0, 0, 0])
    finish(world, devices)
    total = time.perf_counter() - started
    return {"wall_s": provisioned, "virtual_s": provision_virtual, "ok": ok,
            "steps": world.scheduler.steps, "total_wall_s": total,
            "claims": claims_sent(devices), "virtual_total_s": world.now - start_virtual}


def with_bleak_clients(count: int, seed: int) -> dict[str, float]:
    world, cloud, devices, _ = build(count, seed)
    start_virtual = world.now

    async def main() -> int:
        sim = SimulatedBle(world)
        try:
            found = await scan_for_devices(1.0, backend=sim.scanner_backend, bridge=sim.bridge)
            by_address = {entry.address: entry for entry in found}

            async def provision(device: Device, address: str) -> bool:
                code = cloud.create_claim_code(OWNER, ttl_s=3600)
                async with ProvisioningClient.for_address(
                        by_address[address].ble_device, device.mobile_secret,
                        backend=sim.client_backend, bridge=sim.bridge) as client:
                    await client.join_new_network(HOME.ssid, HOME.password)
                    await client.set_claim_code(code)
                    await client.is_claimed()
                    await client.stop_listening()
                return True

            peripherals = world.shared["ble-air"].peripherals
            done = await asyncio.gather(*(provision(p.device, p.address) for p in peripherals))
            return sum(done)
        finally:
            await sim.bridge.aclose()

    started = time.perf_counter()
    ok = asyncio.run(main())
    provisioned = time.perf_counter() - started
    provision_virtual = world.now - start_virtual
    finish(world, devices)
    total = time.perf_counter() - started
    return {"wall_s": provisioned, "virtual_s": provision_virtual, "ok": ok,
            "steps": world.scheduler.steps, "total_wall_s": total,
            "claims": claims_sent(devices), "virtual_total_s": world.now - start_virtual}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--phone", choices=["world", "bleak", "both"], default="both")
    args = parser.parse_args()
    runs: list[tuple[str, Callable[[int, int], dict[str, float]]]] = []
    if args.phone in ("world", "both"):
        runs.append(("world-clock phones (BlePhone)", with_world_phones))
    if args.phone in ("bleak", "both"):
        runs.append(("ProvisioningClient over the bleak backend", with_bleak_clients))
    print(f"BLE provisioning of {args.devices} devices in one world "
          "(scan, connect, MTU, EC-JPAKE, join_new_network, set_claim_code, is_claimed, "
          "stop_listening)")
    for label, run in runs:
        figures = run(args.devices, args.seed)
        print(f"{label}:")
        print(f"  provisioned {int(figures['ok'])}/{args.devices} in {figures['wall_s']:.2f} s "
              f"wall ({figures['wall_s'] / args.devices * 1e3:.1f} ms per device), "
              f"{figures['virtual_s']:.2f} s virtual")
        print(f"  then until every claim code was published: {figures['total_wall_s']:.2f} s "
              f"wall, {figures['virtual_total_s']:.1f} s virtual, "
              f"{int(figures['claims'])}/{args.devices} claimed, "
              f"{int(figures['steps'])} scheduler steps")


if __name__ == "__main__":
    main()
