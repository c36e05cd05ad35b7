"""The firmware's software timers (``Particle.after`` / ``Particle.every``, ``system/app.py``):
a period Device OS's FreeRTOS timers cannot take is refused (``every(0)`` froze a served world
on one virtual instant: security QA), nothing shorter than the 1 ms tick, and one handle per
timer however long it runs (``every(0.01)`` held 69,991 handles after 700 s). On virtual time,
with a step budget so that a regression fails instead of hanging."""

from __future__ import annotations

import math
from collections.abc import Callable
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_sim.kernel.world import World
from firmware_sim.system.app import TICK_S, Firmware, Particle
from firmware_sim.system.device import Device, FirmwareOptions

#: more steps than the runs below need by far; a world frozen on one instant exhausts it
STEP_BUDGET = 200_000


class Idle(Firmware):
    """Registers nothing: the test drives ``device.particle``."""


class Ticker(Firmware):
    """A well-behaved neighbour: counts its 50 ms ticks."""

    ticks: list[float]

    def setup(self, particle: Particle) -> None:
        self.ticks = []
        particle.every(0.05, lambda: self.ticks.append(particle.millis() / 1000))


class ZeroPeriod(Firmware):
    def setup(self, particle: Particle) -> None:
        particle.every(0, lambda: None)


class AfterZeroLoop(Firmware):
    """Busy loop on one instant: ``after(0, f)`` re-armed from ``f``."""

    calls = 0

    def setup(self, particle: Particle) -> None:
        def again() -> None:
            self.calls += 1
            particle.after(0, again)

        particle.after(0, again)


def _device(world: World, name: str, firmware: Callable[[], Firmware],
            errors: str = "raise") -> Device:
    device = Device(world, name, profile="p2", firmware=firmware,
                    options=FirmwareOptions(firmware_errors=errors))
    device.power_on()
    return device


def _run_bounded(world: World, seconds: float) -> None:
    """``world.run_for(seconds)``, failing (not hanging) when the clock stops advancing."""
    until = world.now + seconds
    for _ in range(STEP_BUDGET):
        due = world.scheduler.next_due_us()
        if due is None or due / 1e6 > until:
            world.run_for(max(0.0, until - world.now))
            return
        world.scheduler.step()
    pytest.fail(f"virtual clock stuck at {world.now} s after {STEP_BUDGET} steps")


def _running(world: World, firmware: Callable[[], Firmware] = Idle) -> Device:
    device = _device(world, "d", firmware)
    _run_bounded(world, 5)
    assert device.firmware is not None
    return device


bad_periods = st.one_of(st.floats(max_value=0.0), st.sampled_from([math.inf, math.nan]),
                        st.sampled_from(["1", None, True, b"\x01"]))


@settings(max_examples=40, deadline=None)
@given(period=bad_periods)
def test_a_period_device_os_cannot_take_is_refused_with_a_clear_error(period: object) -> None:
    world = World(seed=1)
    particle = _running(world).particle
    timers = len(particle._timers)
    with pytest.raises(ValueError, match=r"^Particle\.every: the period must be .* > 0"):
        particle.every(period, lambda: None)  # type: ignore[arg-type]
    if not (isinstance(period, float) and period == 0.0):  # after(0) is allowed: next tick
        with pytest.raises(ValueError, match=r"^Particle\.after: the delay must be .* >= 0"):
            particle.after(period, lambda: None)  # type: ignore[arg-type]
    assert len(particle._timers) == timers  # nothing registered


@settings(max_examples=40, deadline=None)
@given(period=st.floats(min_value=1e-9, max_value=60.0))
def test_a_positive_period_runs_at_least_one_tick_apart(period: float) -> None:
    world = World(seed=2)
    particle = _running(world).particle
    times: list[int] = []
    particle.every(period, lambda: times.append(world.clock.now_us))
    _run_bounded(world, max(3 * period, 0.01))
    gaps = {b - a for a, b in pairwise(times)}
    assert len(times) >= 2
    assert gaps == {max(round(period * 1e6), round(TICK_S * 1e6))}


def test_every_zero_in_setup_panics_the_device_and_the_world_keeps_advancing() -> None:
    """The QA case: with ``panic`` (served worlds) the firmware's ``every(0)`` panics its device
    (as the FreeRTOS assert would) on each boot; the clock advances, the neighbour ticks."""
    world = World(seed=3)
    evil = _device(world, "evil", ZeroPeriod, "panic")
    good = _device(world, "good", Ticker, "panic")
    _run_bounded(world, 30)
    assert world.now >= 30
    assert isinstance(good.firmware, Ticker)
    assert len(good.firmware.ticks) > 400  # 50 ms ticks over most of the 30 s
    failed = world.trace.find("app.failed")
    assert failed and {r.get("where") for r in failed} == {"setup()"}
    assert "Particle.every: the period must be" in str(failed[0].get("error"))
    assert {r.get("code") for r in world.trace.find("device.panic")} == {1}  # hard_fault
    assert 1 < evil.boot_count < 30  # a boot loop paced by the panic, not a frozen instant


def test_every_zero_in_setup_raises_out_of_the_run_by_default() -> None:
    world = World(seed=3)
    _device(world, "evil", ZeroPeriod)
    with pytest.raises(ValueError, match=r"^Particle\.every: "):
        _run_bounded(world, 10)


def test_after_zero_rearmed_from_its_callback_advances_one_tick_per_call() -> None:
    world = World(seed=4)
    evil = _device(world, "evil", AfterZeroLoop, "panic")
    good = _device(world, "good", Ticker, "panic")
    _run_bounded(world, 5)
    assert isinstance(evil.firmware, AfterZeroLoop) and isinstance(good.firmware, Ticker)
    calls = evil.firmware.calls
    _run_bounded(world, 2)
    assert evil.firmware.calls - calls == 2000  # one call per 1 ms tick
    assert len(good.firmware.ticks) >= 100
    assert len(evil.particle._timers) == 1  # the one pending call


def test_the_timer_table_stays_bounded_however_many_ticks() -> None:
    world = World(seed=5)
    particle = _running(world).particle
    baseline = len(particle._timers)
    ticks: list[int] = []
    every = particle.every(0.01, lambda: ticks.append(1))
    fired: list[int] = []

    def rearm() -> None:  # a watchdog-style timeout: re-armed, the old one cancelled
        fired.append(1)

    pending = particle.after(60, rearm)

    def kick() -> None:
        nonlocal pending
        pending.cancel()
        pending = particle.after(60, rearm)
        particle.after(0.002, lambda: fired.append(0))  # one-shots leave as they fire

    particle.every(0.1, kick)
    _run_bounded(world, 100.05)
    assert len(ticks) == 10_005 and fired.count(0) == 1000 and 1 not in fired
    # every(0.01), every(0.1): a control and an entry each; the pending after(60)
    assert len(particle._timers) - baseline == 5
    every.cancel()
    assert len(particle._timers) - baseline == 3  # its control and entry left with it
    for _ in range(1000):  # started and stopped again and again: nothing stays behind
        particle.every(0.5, lambda: ticks.append(2)).cancel()
    assert len(particle._timers) - baseline == 3
    _run_bounded(world, 1)
    assert len(ticks) == 10_005
    particle.stop()
    assert not particle._timers
    _run_bounded(world, 100)
    assert 1 not in fired and len(ticks) == 10_005  # stop() cancelled every timer


def test_cancelling_a_periodic_timer_from_its_callback_stops_it() -> None:
    world = World(seed=6)
    particle = _running(world).particle
    ticks: list[float] = []

    def once() -> None:
        ticks.append(world.now)
        if len(ticks) == 3:
            handle.cancel()

    handle = particle.every(0.5, once)
    _run_bounded(world, 10)
    assert len(ticks) == 3 and not handle.active


def test_same_seed_same_timer_interleaving() -> None:
    def run() -> list[tuple[str, int]]:
        world = World(seed=7)
        order: list[tuple[str, int]] = []
        particle = _running(world).particle
        for name in "abc":
            particle.every(0.01, lambda name=name: order.append((name, world.clock.now_us)))
            particle.after(0.02, lambda name=name: order.append((name.upper(), world.clock.now_us)))
        _run_bounded(world, 0.1)
        return order

    first = run()
    assert first == run()
    assert len(first) == 3 * 10 + 3
