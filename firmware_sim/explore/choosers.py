"""The explorer as a chooser: its decisions, fault firings and PCT tie-breaks.

How this works
--------------
A run of the explorer is a world whose chooser (``kernel/choice.py``) is an
:class:`ExplorerChooser`:

* ``tiebreak`` goes to the tie-break policy: the world seed's stream (``SeededChooser``) or
  :class:`PctTiebreaks` (PCT-style: each label gets a random priority, at ``depth - 1`` random
  points a label drops to the lowest priority; same-instant entries run by priority);
* ``chance``/``uniform``/``pick`` go to the seeded streams of the world seed - except ``pick``
  questions named ``explore:...``, the explorer's own decisions (how many actions, which action,
  its parameters, how long to wait), which a :class:`Decider` answers;
* ``fault(name)`` counts how often each fault point was asked; a replay fires exactly the listed
  :class:`~firmware_sim.explore.model.FaultFiring` occurrences, a search asks its decider (for
  fault points matching the scenario's fault patterns), and every firing is recorded.

Deciders: :class:`RandomDecider` (a seeded random walk), :class:`PrefixDecider` (the bounded
exhaustive search: a forced prefix of answers, then the first option, recording how many options
each decision had), and the Hypothesis strategy's decider (``strategies.py``), which draws every
answer from Hypothesis so that Hypothesis can shrink the whole choice sequence.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from fnmatch import fnmatchcase
from typing import Any, Protocol

from ..kernel.choice import Chooser, SeededChooser
from .model import SEEDED, FaultFiring, TiebreakPolicy

EXPLORE_PREFIX = "explore:"


class Decider(Protocol):
    """Answers the explorer's decisions and whether a fault point fires."""

    def choose(self, name: str, count: int) -> int:
        """An index in ``range(count)`` for the decision ``name``."""

    def fire(self, point: str, occurrence: int) -> bool:
        """Should ``point`` fire at its ``occurrence``-th ask? (Only asked for fault points that
        match the scenario's fault patterns.)"""


class FaultPatterns:
    """``fnmatch`` patterns over fault point names (``link:*:drop``), with a cache."""

    def __init__(self, patterns: Sequence[str]) -> None:
        self.patterns = tuple(patterns)
        self._cache: dict[str, bool] = {}

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def match(self, point: str) -> bool:
        hit = self._cache.get(point)
        if hit is None:
            hit = self._cache[point] = any(fnmatchcase(point, p) for p in self.patterns)
        return hit


class RandomDecider:
    """A random walk: uniform choices; a matching fault point fires with ``probability`` while
    fewer than ``max_faults`` fired."""

    def __init__(self, rng: random.Random, *, probability: float = 0.0,
                 max_faults: int = 0) -> None:
        self.rng = rng
        self.probability = probability
        self.max_faults = max_faults
        self.fired = 0

    def choose(self, name: str, count: int) -> int:
        return self.rng.randrange(count) if count > 1 else 0

    def fire(self, point: str, occurrence: int) -> bool:
        if self.fired >= self.max_faults or not self.probability:
            return False
        if self.rng.random() < self.probability:
            self.fired += 1
            return True
        return False


class PrefixDecider:
    """Answers ``prefix`` in order, then 0; records every answer and its option count (the
    exhaustive search walks the tree of these). Fault points never fire."""

    def __init__(self, prefix: Sequence[int]) -> None:
        self.prefix = list(prefix)
        self.taken: list[tuple[int, int]] = []

    def choose(self, name: str, count: int) -> int:
        position = len(self.taken)
        answer = self.prefix[position] if position < len(self.prefix) else 0
        answer = min(answer, count - 1)
        self.taken.append((answer, count))
        return answer

    def fire(self, point: str, occurrence: int) -> bool:
        return False


class PctTiebreaks:
    """PCT-style tie-breaks (Burckhardt et al., "A randomized scheduler with probabilistic
    guarantees of finding bugs"): scheduler labels play the threads. Each label gets a priority
    in [0, 1) when first seen; at each of ``depth - 1`` change points (tie-break asks drawn from
    ``1..horizon``) the asking label drops below every other (a number above 1). Among entries
    due at the same instant and priority the lowest number runs first."""

    def __init__(self, seed: int, depth: int = 3, horizon: int = 4000) -> None:
        self._rng = random.Random(f"fwsim-pct:{seed}")
        self._priorities: dict[str, float] = {}
        count = max(0, depth - 1)
        self._change_points = sorted(self._rng.sample(range(1, horizon + 1), count))
        self._asks = 0
        self._drops = 0

    def tiebreak(self, label: str) -> float:
        self._asks += 1
        if self._change_points and self._asks == self._change_points[0]:
            self._change_points.pop(0)
            self._drops += 1
            self._priorities[label] = 1.0 + self._drops
        priority = self._priorities.get(label)
        if priority is None:
            priority = self._priorities[label] = self._rng.random()
        return priority


class ExplorerChooser:
    """The world chooser of an explorer run (see the module header)."""

    def __init__(self, seed: int, *, tiebreak: TiebreakPolicy = SEEDED,
                 decider: Decider | None = None, patterns: Sequence[str] = (),
                 firings: Sequence[FaultFiring] = ()) -> None:
        self._inner = SeededChooser(seed)
        self.tiebreak: Callable[[str], float] = (
            PctTiebreaks(tiebreak.seed, tiebreak.depth).tiebreak if tiebreak.kind == "pct"
            else self._inner.tiebreak)
        self._decider = decider
        self._patterns = FaultPatterns(patterns)
        self._scripted = frozenset((f.point, f.occurrence) for f in firings)
        self._active = bool(self._scripted) or (decider is not None and bool(self._patterns))
        self._asked: dict[str, int] = {}
        self.fired: list[FaultFiring] = []
        self.decisions = 0

    def chance(self, name: str, p: float) -> bool:
        return self._inner.chance(name, p)

    def uniform(self, name: str, lo: float, hi: float) -> float:
        return self._inner.uniform(name, lo, hi)

    def pick(self, name: str, options: Sequence[Any]) -> int:
        if name.startswith(EXPLORE_PREFIX):
            if self._decider is None:
                return 0
            self.decisions += 1
            return self._decider.choose(name, len(options))
        return self._inner.pick(name, options)

    def fault(self, name: str) -> bool:
        if not self._active:
            return False
        occurrence = self._asked[name] = self._asked.get(name, 0) + 1
        if self._decider is not None:
            fire = self._patterns.match(name) and self._decider.fire(name, occurrence)
        else:
            fire = (name, occurrence) in self._scripted
        if fire:
            self.fired.append(FaultFiring(name, occurrence))
        return fire

    def wants_faults(self, family: str) -> bool:
        """Could a fault point of ``family`` (e.g. ``dct:p2:power_cut:begin``) fire in this
        run? (Used to install costly fault points only when they can matter.)"""
        if self._decider is not None:
            return self._patterns.match(family)
        return any(point.startswith(family.rsplit(":", 1)[0]) for point, _ in self._scripted)


def _is_a_chooser(chooser: ExplorerChooser) -> Chooser:
    return chooser  # mypy checks that an ExplorerChooser satisfies the Chooser protocol

__all__ = ["EXPLORE_PREFIX", "Decider", "ExplorerChooser", "FaultPatterns", "PctTiebreaks",
           "PrefixDecider", "RandomDecider"]
