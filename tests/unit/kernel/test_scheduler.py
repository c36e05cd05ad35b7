from __future__ import annotations

import pytest

from firmware_sim.kernel import URGENT, SeededChooser, World
from firmware_sim.kernel.clock import VirtualClock, to_micros
from firmware_sim.kernel.errors import ConfigurationError, UsageError
from firmware_sim.kernel.scheduler import Scheduler
from firmware_sim.kernel.world import parse_seed


def test_entries_run_in_due_time_order_and_advance_the_clock() -> None:
    clock = VirtualClock()
    sched = Scheduler(clock, SeededChooser(0))
    seen: list[tuple[str, int]] = []
    sched.call_later(2.0, lambda: seen.append(("b", clock.now_us)))
    sched.call_later(1.0, lambda: seen.append(("a", clock.now_us)))
    sched.call_later(3.5, lambda: seen.append(("c", clock.now_us)))
    while sched.step():
        pass
    assert seen == [("a", 1_000_000), ("b", 2_000_000), ("c", 3_500_000)]


def test_same_instant_order_is_fixed_by_the_seed() -> None:
    def order(seed: int) -> list[int]:
        clock = VirtualClock()
        sched = Scheduler(clock, SeededChooser(seed))
        out: list[int] = []
        for i in range(12):
            sched.call_at(1000, out.append, i)
        while sched.step():
            pass
        return out

    assert order(7) == order(7)
    orders = {tuple(order(seed)) for seed in range(8)}
    assert len(orders) > 1, "different seeds should be able to reorder same-instant entries"
    assert all(sorted(o) == list(range(12)) for o in orders)


def test_priority_beats_tiebreak() -> None:
    clock = VirtualClock()
    for seed in range(10):
        sched = Scheduler(clock, SeededChooser(seed))
        out: list[str] = []
        sched.call_at(clock.now_us, out.append, "normal")
        sched.call_at(clock.now_us, out.append, "urgent", priority=URGENT)
        while sched.step():
            pass
        assert out == ["urgent", "normal"]


def test_cancelled_entries_never_run() -> None:
    clock = VirtualClock()
    sched = Scheduler(clock, SeededChooser(0))
    out: list[int] = []
    handle = sched.call_later(1.0, out.append, 1)
    sched.call_later(2.0, out.append, 2)
    handle.cancel()
    assert len(sched) == 1
    while sched.step():
        pass
    assert out == [2]


def test_clock_never_goes_backwards() -> None:
    clock = VirtualClock(10)
    with pytest.raises(ValueError):
        clock.advance_to(5)
    clock.advance(0.5)
    assert clock.now_us == 10 + to_micros(0.5)
    assert clock.millis() == 500


def test_world_run_until_stops_at_the_first_instant_the_predicate_holds() -> None:
    world = World(1)
    flag: list[bool] = []
    world.call_later(3.0, flag.append, True)
    world.call_later(10.0, flag.append, True)
    assert world.run_until(lambda: bool(flag), timeout=60)
    assert world.now == 3.0
    assert not world.run_until(lambda: len(flag) > 5, timeout=20)
    assert world.now == 23.0


def test_run_until_idle_is_bounded() -> None:
    world = World(0)

    def forever() -> None:
        world.call_later(1.0, forever)

    forever()
    assert world.run_until_idle(max_seconds=5) is False
    assert world.now == 5.0


@pytest.mark.parametrize("bad", ["-1", "abc", "", "1.5", str(2**63)])
def test_bad_seeds_are_refused_with_a_clear_error(bad: str) -> None:
    with pytest.raises(ConfigurationError, match="invalid seed"):
        parse_seed(bad)


def test_seed_accepts_hex_and_decimal() -> None:
    assert parse_seed("0x10") == 16
    assert parse_seed(" 42 ") == 42


def test_duplicate_node_names_are_refused() -> None:
    world = World()
    world.add_node("a", object())
    with pytest.raises(UsageError):
        world.add_node("a", object())
    with pytest.raises(UsageError):
        world.add_node("has space", object())
