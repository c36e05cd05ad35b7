from __future__ import annotations

import asyncio

from firmware_sim.kernel import AsyncioDriver, RealtimeDriver, World


class FakeWall:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_blocking_driver_maps_wall_time_onto_virtual_time() -> None:
    world = World()
    wall = FakeWall()
    fired: list[float] = []
    world.call_later(1.0, lambda: fired.append(world.now))
    world.call_later(2.5, lambda: fired.append(world.now))
    RealtimeDriver(world, wall=wall, sleep=wall.sleep).run(3.0)
    assert fired == [1.0, 2.5]
    assert world.now == 3.0


def test_speed_factor() -> None:
    world = World()
    wall = FakeWall()
    RealtimeDriver(world, speed=10.0, wall=wall, sleep=wall.sleep).run(2.0)
    assert world.now == 20.0


def test_asyncio_driver_runs_due_entries_and_stops() -> None:
    world = World()
    fired: list[float] = []
    world.call_later(0.05, lambda: fired.append(world.now))

    async def main() -> None:
        driver = AsyncioDriver(world)
        task = asyncio.ensure_future(driver.run())
        await asyncio.sleep(0.2)
        driver.sync()
        world.call_soon(lambda: fired.append(-1.0))  # input injected from "the edge"
        driver.wake()
        await asyncio.sleep(0.05)
        driver.stop()
        await task

    asyncio.run(main())
    assert fired[0] == 0.05 and fired[1] == -1.0
    assert 0.2 <= world.now < 2.0


def test_one_runtime_protocol_serves_the_cloud_and_the_udp_edge() -> None:
    import typing

    import cloud_sim.runtime
    import transports.net
    from firmware_sim.kernel import NullRuntime, Runtime

    assert cloud_sim.runtime.Runtime is Runtime
    assert typing.get_type_hints(transports.net.UdpPort.__init__)["runtime"] is Runtime
    assert cloud_sim.runtime.NullRuntime is NullRuntime

    async def drive() -> None:
        world = World()
        runtime: Runtime = AsyncioDriver(world, wall=FakeWall())
        world.call_later(0.0, lambda: None)
        runtime.sync()  # runs what is due now
        runtime.wake()
        assert world.scheduler.next_due_us() is None

    asyncio.run(drive())
    null: Runtime = NullRuntime()
    null.sync()
    null.wake()
