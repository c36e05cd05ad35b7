"""Shrinking: the smallest schedule that still breaks the same property the same way.

How this works
--------------
A failing run's schedule is replayed with parts taken out; a candidate is kept when its replay
ends with a violation of the same property and signature (:attr:`Violation.key`). In order, and
again until nothing changes or the run budget is spent:

1. drop the ``wait`` steps (decisions where the explorer did nothing);
2. drop steps, in halves, then quarters, ... then one at a time (delta debugging);
3. drop fault firings one at a time;
4. shorten each wait before a step (later steps move up with it): the shortest gap from a short
   ladder of round numbers that still fails;
5. set each parameter to the simplest value of its menu (the first).

After each kept candidate the fault firings are the ones that actually fired in its replay.
Sizes are counted as actions plus fault firings (``Schedule.size`` without waits).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from .actions import ACTIONS
from .model import Schedule, Step, Violation, micros
from .properties import PropertySpec
from .run import WAIT, RunOutcome, execute
from .scenario_file import ScenarioFile

#: gaps (seconds) tried before each step, shortest first
GAP_LADDER = (0.1, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0)


def schedule_size(schedule: Schedule) -> int:
    """Actions (not waits) plus fault firings."""
    return sum(1 for s in schedule.steps if s.action != WAIT) + len(schedule.faults)


@dataclass
class ShrinkResult:
    scenario: ScenarioFile
    outcome: RunOutcome
    violation: Violation
    before: int
    after: int
    runs: int


class _Shrinker:
    def __init__(self, scenario: ScenarioFile, properties: Sequence[PropertySpec],
                 key: tuple[str, str], budget: int) -> None:
        self.scenario = scenario
        self.properties = properties
        self.key = key
        self.budget = budget
        self.runs = 0

    def test(self, schedule: Schedule) -> RunOutcome | None:
        if self.runs >= self.budget:
            return None
        self.runs += 1
        outcome = execute(replace(self.scenario, schedule=schedule), self.properties)
        if any(v.key == self.key for v in outcome.violations):
            return outcome
        return None


def _keep(outcome: RunOutcome, steps: Sequence[Step]) -> Schedule:
    return Schedule(tuple(steps), outcome.schedule.faults)


def _shift(steps: Sequence[Step], index: int, delta: int) -> list[Step]:
    return [s if i < index else replace(s, at_us=s.at_us - delta) for i, s in enumerate(steps)]


def shrink(scenario: ScenarioFile, properties: Sequence[PropertySpec], outcome: RunOutcome,
           key: tuple[str, str], *, budget: int = 400,
           on_run: Callable[[], None] | None = None) -> ShrinkResult:
    """Shrink ``outcome`` (a run of ``scenario`` that violated ``key``)."""
    base = replace(scenario, seed=outcome.seed, tiebreak=outcome.tiebreak)
    shrinker = _Shrinker(base, properties, key, budget)
    before = schedule_size(outcome.schedule)
    best = outcome
    current = outcome.schedule

    def attempt(candidate: Schedule) -> bool:
        nonlocal best, current
        found = shrinker.test(candidate)
        if on_run is not None:
            on_run()
        if found is None:
            return False
        best = found
        current = _keep(found, candidate.steps)
        return True

    steps = [s for s in current.steps if s.action != WAIT]
    if len(steps) != len(current.steps):
        attempt(Schedule(tuple(steps), current.faults))
    changed = True
    while changed and shrinker.runs < budget:
        changed = False
        # steps: halves, quarters, ..., single steps
        chunk = max(1, len(current.steps) // 2)
        while chunk >= 1 and current.steps:
            start = 0
            while start < len(current.steps):
                steps = list(current.steps)
                candidate = steps[:start] + steps[start + chunk:]
                if attempt(Schedule(tuple(candidate), current.faults)):
                    changed = True
                else:
                    start += chunk
            chunk //= 2
        # fault firings
        index = 0
        while index < len(current.faults):
            faults = list(current.faults)
            del faults[index]
            if attempt(Schedule(current.steps, tuple(faults))):
                changed = True
            else:
                index += 1
        # waits
        for index in range(len(current.steps)):
            steps = list(current.steps)
            previous = steps[index - 1].at_us if index else 0
            gap = steps[index].at_us - previous
            for seconds in GAP_LADDER:
                shorter = micros(seconds)
                if shorter >= gap:
                    break
                if attempt(Schedule(tuple(_shift(steps, index, gap - shorter)),
                                    current.faults)):
                    changed = True
                    break
        # parameters
        for index in range(len(current.steps)):
            step = current.steps[index]
            action = ACTIONS.get(step.action)
            if action is None:
                continue
            for name, value in step.params:
                menu = action.params.get(name)
                if not isinstance(menu, tuple) or not menu or menu[0] == value:
                    continue
                simpler = tuple(sorted((k, menu[0] if k == name else v)
                                       for k, v in step.params))
                steps = list(current.steps)
                steps[index] = replace(step, params=simpler)
                if attempt(Schedule(tuple(steps), current.faults)):
                    changed = True
                    step = current.steps[index]
    violation = next(v for v in best.violations if v.key == key)
    final = replace(base, schedule=current)
    return ShrinkResult(final, best, violation, before, schedule_size(current), shrinker.runs)


__all__ = ["GAP_LADDER", "ShrinkResult", "schedule_size", "shrink"]
