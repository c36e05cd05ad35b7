"""Search strategies: which runs to try, deterministic per seed.

* ``random`` - a random walk: every run gets its own world seed (tie-breaks, claim codes,
  session ids) and a seeded :class:`~firmware_sim.explore.choosers.RandomDecider` (how many
  actions, which, their parameters, the waits, spontaneous fault firings).
* ``pct`` - the random walk, plus PCT-style priorities for same-instant scheduler entries
  (:class:`~firmware_sim.explore.choosers.PctTiebreaks`, depth ``pct_depth``).
* ``exhaustive`` - every decision sequence of the scenario up to ``depth`` decisions, in order
  (depth-first over the tree of decisions, each run replaying a prefix and taking the first
  option after it); one world seed; no spontaneous faults. Complete when the tree is exhausted.
* ``hypothesis`` - Hypothesis draws every decision (``st.data()``); a failure is shrunk by
  Hypothesis over the whole choice sequence (its shrinker, not ours); seeded with ``@seed``, no
  example database, so the same seed gives the same runs.

Each strategy is an iterator of :class:`RunPlan` told each run's outcome (``feedback``); the
hypothesis strategy drives its own loop (``hypothesis_search``).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ..kernel.errors import ConfigurationError
from .choosers import Decider, PrefixDecider, RandomDecider
from .model import TiebreakPolicy, Violation
from .properties import PropertySpec
from .run import RunOutcome, execute
from .scenario_file import ExploreDesc, ScenarioFile

STRATEGIES = ("random", "pct", "exhaustive", "hypothesis")


@dataclass
class RunPlan:
    index: int
    seed: int
    tiebreak: TiebreakPolicy
    decider: Decider


class Strategy:
    name = "strategy"
    #: for bounded searches: True once every run was tried
    exhausted: bool | None = None

    def plans(self) -> Iterator[RunPlan]:
        raise NotImplementedError

    def feedback(self, plan: RunPlan, outcome: RunOutcome) -> None:
        pass


class RandomStrategy(Strategy):
    name = "random"

    def __init__(self, seed: int, explore: ExploreDesc) -> None:
        self.seed = seed
        self.explore = explore
        self._seeds = random.Random(f"fwsim-explore:{seed}:seeds")

    def _tiebreak(self, index: int, world_seed: int) -> TiebreakPolicy:
        return TiebreakPolicy()

    def plans(self) -> Iterator[RunPlan]:
        index = 0
        while True:
            world_seed = self._seeds.getrandbits(31)
            decider = RandomDecider(random.Random(f"fwsim-explore:{self.seed}:{index}"),
                                    probability=self.explore.fault_probability,
                                    max_faults=self.explore.max_faults)
            yield RunPlan(index, world_seed, self._tiebreak(index, world_seed), decider)
            index += 1


class PctStrategy(RandomStrategy):
    name = "pct"

    def __init__(self, seed: int, explore: ExploreDesc, depth: int = 3) -> None:
        super().__init__(seed, explore)
        self.depth = depth

    def _tiebreak(self, index: int, world_seed: int) -> TiebreakPolicy:
        return TiebreakPolicy("pct", world_seed ^ 0x5EED, self.depth)


class ExhaustiveStrategy(Strategy):
    name = "exhaustive"

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.exhausted = False
        self._prefix: list[int] | None = []

    def plans(self) -> Iterator[RunPlan]:
        index = 0
        while self._prefix is not None:
            yield RunPlan(index, self.seed, TiebreakPolicy(), PrefixDecider(self._prefix))
            index += 1
        self.exhausted = True

    def feedback(self, plan: RunPlan, outcome: RunOutcome) -> None:
        assert isinstance(plan.decider, PrefixDecider)
        taken = plan.decider.taken
        for position in range(len(taken) - 1, -1, -1):
            answer, count = taken[position]
            if answer + 1 < count:
                self._prefix = [a for a, _ in taken[:position]] + [answer + 1]
                return
        self._prefix = None


def make_strategy(name: str, seed: int, explore: ExploreDesc, *, pct_depth: int = 3
                  ) -> Strategy:
    if name == "random":
        return RandomStrategy(seed, explore)
    if name == "pct":
        return PctStrategy(seed, explore, pct_depth)
    if name == "exhaustive":
        return ExhaustiveStrategy(seed)
    raise ConfigurationError(f"unknown strategy {name!r} (known: {', '.join(STRATEGIES)})")


# -- hypothesis ------------------------------------------------------------------------------------


class HypothesisDecider:
    """Every decision drawn from Hypothesis; shrinking goes towards the first option and fewer
    faults. Fault firings are drawn up front, as "fire at the N-th ask of a matching fault
    point", so a run costs a handful of draws however many datagrams it sends."""

    #: the N of a fault firing is drawn from 1..FAULT_HORIZON
    FAULT_HORIZON = 200

    def __init__(self, data: Any, probability: float, max_faults: int) -> None:
        from hypothesis import strategies as st

        self._data = data
        self._st = st
        self._asks = 0
        self._fire_at: set[int] = set()
        if probability > 0 and max_faults > 0:
            count: int = data.draw(st.integers(0, max_faults))
            for _ in range(count):
                self._fire_at.add(data.draw(st.integers(1, self.FAULT_HORIZON)))

    def choose(self, name: str, count: int) -> int:
        if count <= 1:
            return 0
        value: int = self._data.draw(self._st.integers(0, count - 1))
        return value

    def fire(self, point: str, occurrence: int) -> bool:
        self._asks += 1
        return self._asks in self._fire_at


class _Found(Exception):
    def __init__(self, outcome: RunOutcome) -> None:
        super().__init__("violation")
        self.outcome = outcome


@dataclass
class HypothesisResult:
    #: the first failing run and the shrunk one, for the key Hypothesis shrank
    first: RunOutcome | None
    shrunk: RunOutcome | None
    key: tuple[str, str] | None
    runs: int
    shrink_runs: int


def hypothesis_search(scenario: ScenarioFile, properties: list[PropertySpec], *, runs: int,
                      seed: int, on_outcome: Callable[[RunOutcome], None],
                      should_stop: Callable[[], bool] | None = None,
                      known: frozenset[tuple[str, str]] = frozenset()) -> HypothesisResult:
    """Up to ``runs`` Hypothesis examples; the first violation found whose (property,
    signature) is not in ``known`` is shrunk by Hypothesis (keeping its property and
    signature). ``on_outcome`` sees every generated run."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed
    from hypothesis import strategies as st

    explore = scenario.explore or ExploreDesc()
    state: dict[str, Any] = {"first": None, "key": None, "runs": 0, "shrink": 0}
    world_seed = scenario.seed

    def matches(violations: list[Violation]) -> bool:
        return any(v.key == state["key"] for v in violations)

    @settings(max_examples=max(1, runs), database=None, deadline=None, derandomize=False,
              suppress_health_check=list(HealthCheck), phases=[Phase.generate, Phase.shrink],
              report_multiple_bugs=False, print_blob=False)
    @hypothesis_seed(seed)
    @given(st.data())
    def probe(data: Any) -> None:
        if should_stop is not None and state["first"] is None and should_stop():
            return  # the budget is spent: every further example passes at once
        decider = HypothesisDecider(data, explore.fault_probability, explore.max_faults)
        outcome = execute(scenario, properties, decider=decider, seed=world_seed)
        if state["first"] is None:
            state["runs"] += 1
            on_outcome(outcome)
            new = [v for v in outcome.violations if v.key not in known]
            found = bool(new)
            if found:
                state["first"] = outcome
                state["key"] = new[0].key
        else:
            state["shrink"] += 1
            found = matches(outcome.violations)
        if found:  # one raise site: Hypothesis tells failures apart by where they come from
            raise _Found(outcome)

    shrunk: RunOutcome | None = None
    try:
        probe()
    except _Found as found:
        shrunk = found.outcome
    return HypothesisResult(state["first"], shrunk, state["key"], state["runs"], state["shrink"])


__all__ = ["STRATEGIES", "ExhaustiveStrategy", "HypothesisDecider", "HypothesisResult",
           "PctStrategy", "RandomStrategy", "RunPlan", "Strategy", "hypothesis_search",
           "make_strategy"]
