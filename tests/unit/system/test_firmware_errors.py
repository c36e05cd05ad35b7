"""An exception raised by the user firmware (``FirmwareOptions.firmware_errors``): ``raise``
lets it out of the world's run; ``panic`` makes the device panic like a hard fault (reset, the
next boot's ``spark/device/last_reset`` is ``panic, hard_fault``, the call that raised gets no
answer) while the world and the other devices carry on. On virtual time."""

from __future__ import annotations

from dataclasses import replace

import pytest

from cloud_sim.device_endpoint import CallResult
from firmware_sim.kernel.errors import UsageError
from firmware_sim.kernel.scheduler import StepAborted
from firmware_sim.kernel.world import World
from firmware_sim.system.app import Firmware, Particle
from firmware_sim.system.device import Device, FirmwareOptions
from firmware_sim.testbed import Testbed, TestbedSpec, provisioned
from firmware_sim.testbed.clouds.particle import ParticlePlug


class Buggy(Firmware):
    """Each entry point can be made to fail; ``ok`` and ``level`` always work."""

    fail_setup = False

    def setup(self, particle: Particle) -> None:
        particle.function("boom", self.boom)
        particle.function("not_an_int", lambda argument: "seven")  # type: ignore[arg-type,return-value]
        particle.function("ok", lambda argument: 7)
        particle.variable("oops", lambda: 1 / 0, "int")
        particle.variable("level", 3)
        if self.fail_setup:
            raise KeyError("setup bug")

    def boom(self, argument: str) -> int:
        raise RuntimeError(f"user bug {argument}")


def _bed(firmware_errors: str | None, *names: str, seed: int = 5) -> Testbed:
    return Testbed(TestbedSpec(seed=seed, devices=tuple(provisioned(*names, firmware=Buggy)),
                               timing="fast", firmware_errors=firmware_errors))


def _endpoint(bed: Testbed):  # type: ignore[no-untyped-def]
    plug = bed.cloud
    assert isinstance(plug, ParticlePlug)
    return plug.cloud.endpoint


def _online(bed: Testbed) -> None:
    bed.power_on()
    assert bed.run_until(lambda: all(d.cloud_connected for d in bed.devices.values()), 30)
    bed.run_for(1)


def test_by_default_the_exception_leaves_the_run_so_a_test_sees_the_bug() -> None:
    with _bed(None, "d") as bed:
        _online(bed)
        device = bed.devices["d"]
        _endpoint(bed).call_function(device.device_id, "boom", "x", lambda result: None)
        with pytest.raises(RuntimeError, match="user bug x"):
            bed.run_for(2)


@pytest.mark.parametrize("name", ["boom", "not_an_int"])
def test_panic_a_failing_function_resets_the_device_and_the_call_gets_no_answer(
        name: str) -> None:
    with _bed("panic", "d", "other") as bed:
        _online(bed)
        endpoint = _endpoint(bed)
        device, other = bed.devices["d"], bed.devices["other"]
        boots = device.boot_count
        results: list[CallResult] = []
        endpoint.call_function(device.device_id, name, "x", results.append)
        endpoint.call_function(other.device_id, "ok", "", results.append)
        bed.run_for(2)
        assert results == [CallResult("ok", 7)]  # the other device answered; this one panicked
        failed = bed.world.trace.find("app.failed")
        assert [r.get("where") for r in failed] == [f"function {name!r}"]
        assert "Traceback" in str(failed[0].get("traceback"))
        assert [r.get("code") for r in bed.world.trace.find("device.panic")] == [1]
        assert f"[app] ERROR: function {name!r} raised" in "\n".join(device.log_lines())
        assert bed.run_until(lambda: device.cloud_connected and device.boot_count == boots + 1, 30)
        bed.run_for(endpoint.options.call_timeout_s)
        assert results[-1] == CallResult("timeout")  # never answered, as on hardware
        plug = bed.cloud
        assert isinstance(plug, ParticlePlug)
        last_resets = [e.data for e in plug.cloud.bus.find("spark/device/last_reset")
                       if e.device_id == device.device_id]
        assert last_resets[-1] == "panic, hard_fault"
        # the device works again after its reset
        endpoint.call_function(device.device_id, "ok", "", results.append)
        bed.run_for(2)
        assert results[-1] == CallResult("ok", 7)


def test_panic_a_failing_variable_getter_gets_no_answer_not_a_not_found() -> None:
    with _bed("panic", "d") as bed:
        _online(bed)
        endpoint = _endpoint(bed)
        device = bed.devices["d"]
        results: list[CallResult] = []
        endpoint.get_variable(device.device_id, "oops", results.append)
        bed.run_for(endpoint.options.call_timeout_s + 1)
        assert results == [CallResult("timeout")]
        assert [r.get("where") for r in bed.world.trace.find("app.failed")] == ["variable 'oops'"]
        assert bed.run_until(lambda: device.cloud_connected, 30)
        endpoint.get_variable(device.device_id, "level", results.append)
        bed.run_for(2)
        assert results[-1] == CallResult("ok", 3)


def test_panic_in_timers_handlers_and_setup() -> None:
    with _bed("panic", "d") as bed:
        _online(bed)
        device = bed.devices["d"]
        particle = device.particle

        def bad_timer() -> None:
            raise ValueError("timer bug")

        particle.after(1, bad_timer)
        bed.run_for(2)
        assert bed.world.trace.find("app.failed")[-1].get("where") == "a timer"
        assert bed.run_until(lambda: device.cloud_connected, 30)
        device.particle.subscribe("mine", lambda name, data: [][1])
        bed.world.scheduler.call_later(0, device.particle.dispatch_event, "mine/1", b"")
        bed.run_for(1)
        assert bed.world.trace.find("app.failed")[-1].get("where") == "the handler of 'mine'"
        # a firmware whose setup() always fails panics on every boot: a boot loop, as on
        # hardware (one panic pattern of 10.4 s per boot), and the world keeps running
        assert bed.run_until(lambda: device.cloud_connected, 30)
        Buggy.fail_setup = True
        try:
            device.reset()
            bed.run_for(35)
        finally:
            Buggy.fail_setup = False
        wheres = [r.get("where") for r in bed.world.trace.find("app.failed")]
        assert wheres.count("setup()") >= 3
        assert not device.app_setup_done


@pytest.mark.parametrize("exc", [SystemExit(0), KeyboardInterrupt()])
def test_panic_a_firmware_cannot_end_the_process(exc: BaseException) -> None:
    """A timer that raises SystemExit or KeyboardInterrupt panics its device like any other
    exception (QA: it ended a served world and every other device with it)."""
    with _bed("panic", "d", "other") as bed:
        _online(bed)
        device, other = bed.devices["d"], bed.devices["other"]

        def bad_timer() -> None:
            raise exc

        device.particle.after(1, bad_timer)
        bed.run_for(2)
        assert [r.get("code") for r in bed.world.trace.find("device.panic")] == [1]
        assert bed.run_until(lambda: device.cloud_connected, 30) and other.cloud_connected


def test_raise_lets_a_system_exit_through() -> None:
    with _bed("raise", "d") as bed:
        _online(bed)
        bed.devices["d"].particle.after(1, lambda: (_ for _ in ()).throw(SystemExit(3)))
        with pytest.raises(SystemExit):
            bed.run_for(2)


def test_step_aborted_ends_only_its_own_step() -> None:
    world = World(seed=1)
    ran: list[str] = []

    def aborts() -> None:
        ran.append("a")
        raise StepAborted

    world.scheduler.call_later(1, aborts)
    world.scheduler.call_later(2, ran.append, "b")
    world.run_for(3)
    assert ran == ["a", "b"]


def test_an_unknown_policy_is_refused() -> None:
    with pytest.raises(UsageError, match="firmware_errors"):
        Device(World(seed=1), "d", profile="p2",
               options=replace(FirmwareOptions(), firmware_errors="ignore"))


@pytest.mark.parametrize("hang", ["loop", "sleep"])
def test_served_a_firmware_that_hangs_is_reset_by_the_step_watchdog(hang: str) -> None:
    """A served world's step watchdog interrupts a firmware that loops or blocks (security QA:
    one ``time.sleep`` in a function stalled every device and the REST API): the device resets
    with the reason ``watchdog`` and the world, with its other device, keeps running."""
    import asyncio
    import time

    from firmware_sim.kernel.realtime import AsyncioDriver

    def hangs() -> None:
        if hang == "sleep":
            time.sleep(30)
        while True:
            pass

    with _bed("panic", "d", "other") as bed:
        _online(bed)
        device, other = bed.devices["d"], bed.devices["other"]
        ticks: list[float] = []
        other.particle.every(0.05, lambda: ticks.append(bed.world.now))
        device.particle.after(0.1, hangs)
        driver = AsyncioDriver(bed.world, speed=1.0, step_watchdog_s=0.3)

        async def main() -> None:
            runner = asyncio.ensure_future(driver.run())
            started = time.monotonic()
            while not bed.world.trace.find("device.watchdog") and time.monotonic() - started < 5:
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.3)
            driver.stop()
            await runner

        began = time.monotonic()
        asyncio.run(main())
        assert time.monotonic() - began < 3  # interrupted, not waited out
    [failed] = bed.world.trace.find("app.failed")
    assert failed.get("where") == "a timer" and "WatchdogExpired" in str(failed.get("error"))
    assert [r.get("reason") for r in bed.world.trace.find("device.reset")] == ["watchdog"]
    assert "hung WatchdogExpired: a step ran longer than 0.3 s; watchdog reset" in "\n".join(
        device.log_lines())
    assert ticks and ticks[-1] > 0.5 + ticks[0]  # the other device's firmware kept running
    assert driver.failure_count == 0  # handled as the device's, not contained as a bug
