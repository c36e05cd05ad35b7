"""The values an exploration is made of: steps, fault firings, schedules, violations.

A *schedule* is what a run did that the world did not decide by itself: the timed actions of the
actors (:class:`Step`, at an exact virtual microsecond) and the fault points the explorer fired
(:class:`FaultFiring`: the N-th time a named fault point was asked). Together with the world
description and its seed, a schedule replays a run exactly; it is what a replay file holds and
what the shrinker makes smaller.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

#: a parameter value of an action
ParamValue = str | int | float | bool
#: an action's parameters, sorted by name (hashable, comparable)
Params = tuple[tuple[str, ParamValue], ...]


def params_of(mapping: Mapping[str, ParamValue] | Iterable[tuple[str, ParamValue]]) -> Params:
    """Canonical (sorted) parameters."""
    items = mapping.items() if isinstance(mapping, Mapping) else mapping
    return tuple(sorted(items))


def seconds(us: int) -> float:
    """Microseconds as seconds (exact for whole microseconds; how times are written)."""
    return us / 1_000_000


def micros(s: float) -> int:
    return round(s * 1_000_000)


@dataclass(frozen=True, order=True)
class Step:
    """Do ``action`` with ``params`` at virtual time ``at_us``."""

    at_us: int
    action: str
    params: Params = ()

    def param(self, name: str, default: ParamValue | None = None) -> ParamValue | None:
        for key, value in self.params:
            if key == name:
                return value
        return default

    def describe(self) -> str:
        args = " ".join(f"{k}={v}" for k, v in self.params)
        return f"t={seconds(self.at_us):g}s {self.action}{' ' + args if args else ''}"


@dataclass(frozen=True, order=True)
class FaultFiring:
    """The fault point ``point`` fires the ``occurrence``-th time it is asked (1-based)."""

    point: str
    occurrence: int

    def describe(self) -> str:
        return f"fault {self.point} #{self.occurrence}"


@dataclass(frozen=True)
class Schedule:
    steps: tuple[Step, ...] = ()
    faults: tuple[FaultFiring, ...] = ()

    @property
    def size(self) -> int:
        """Actions plus fault firings (what shrinking minimises first)."""
        return len(self.steps) + len(self.faults)

    @property
    def wait_us(self) -> int:
        """The time of the last action (what shrinking minimises last)."""
        return self.steps[-1].at_us if self.steps else 0

    def describe(self) -> list[str]:
        return [s.describe() for s in self.steps] + [f.describe() for f in self.faults]


@dataclass(frozen=True)
class Violation:
    """A property broke: where (virtual time, trace sequence number) and why."""

    #: the name of the property that broke
    prop: str
    message: str
    #: a short class of the violation (e.g. ``resumed-without-code``); shrinking keeps it
    signature: str = ""
    t_us: int = 0
    #: the sequence number of the ``explore.violation`` trace record (0: not traced)
    seq: int = 0

    @property
    def key(self) -> tuple[str, str]:
        return (self.prop, self.signature)

    def describe(self) -> str:
        sig = f" [{self.signature}]" if self.signature else ""
        return f"{self.prop}{sig} at t={seconds(self.t_us):.6f}s: {self.message}"


@dataclass(frozen=True)
class TiebreakPolicy:
    """How same-instant scheduler entries are ordered: ``seeded`` (the world seed's stream) or
    ``pct`` (PCT-style priorities per label, ``depth - 1`` priority change points, from
    ``seed``)."""

    kind: str = "seeded"
    seed: int = 0
    depth: int = 3

    def describe(self) -> str:
        return "seeded" if self.kind == "seeded" else f"pct(seed={self.seed}, depth={self.depth})"


@dataclass
class Coverage:
    """What a set of runs visited: abstract states at decision points and (state, action)
    pairs."""

    states: set[tuple[object, ...]] = field(default_factory=set)
    pairs: set[tuple[tuple[object, ...], str]] = field(default_factory=set)

    def update(self, other: Coverage) -> None:
        self.states |= other.states
        self.pairs |= other.pairs


SEEDED = TiebreakPolicy()
NO_SCHEDULE = Schedule()

#: the action of a step that only lets time pass (it takes no parameters)
WAIT = "wait"
#: the parameters each registered action accepts (``actions.register`` fills it), so that a
#: scenario file is checked without importing the actions
ACTION_PARAMS: dict[str, tuple[str, ...]] = {}


__all__ = ["ACTION_PARAMS", "NO_SCHEDULE", "SEEDED", "WAIT", "Coverage", "FaultFiring",
           "ParamValue", "Params", "Schedule", "Step", "TiebreakPolicy", "Violation", "micros",
           "params_of", "seconds"]
