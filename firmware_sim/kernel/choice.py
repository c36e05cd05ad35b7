"""The Chooser: every nondeterministic choice of a simulation goes through one seam.

How this works
--------------
A run of a World is a pure function of its inputs and of the choices made along the way: the
order in which same-instant scheduler entries run, which datagram a lossy link loses, how long a
jittered delay lasts, whether a fault point fires. Components never draw random numbers for such
choices themselves; they ask the world's chooser (``world.chooser``), naming the choice:

* ``tiebreak(label) -> float``: the scheduler asks once per entry it schedules (``label`` is the
  entry's label). Among entries due at the same instant with the same priority, the lowest
  number runs first; equal numbers run in scheduling order.
* ``chance(name, p) -> bool``: does an event of probability ``p`` happen? (The datagram link asks
  ``chance("link:<link>:loss", loss)`` per datagram when its loss is not 0.)
* ``uniform(name, lo, hi) -> float``: a value in ``[lo, hi]``, e.g. a jittered delay in seconds.
* ``pick(name, options) -> int``: the index of one of ``options`` (a non-empty sequence).
* ``fault(name) -> bool``: should the fault point ``name`` fire now ("drop this datagram")? The
  links ask ``fault("link:<link>:drop")`` per datagram and ``fault("stream:<link>:reset")`` per
  stream write.

Names are ``:``-separated, most general part first (``link:cloud-link-1:loss``), so an explorer
can steer a family of choices by prefix. Implementations:

* :class:`SeededChooser` - the default: every name draws from its own ``random.Random`` stream
  fixed by the world seed (``fwsim:<seed>:<name>``, the same derivation as ``World.rng_for``), so
  adding a choice point does not perturb the others. Two streams predate the chooser and keep
  their seeds so that every seeded trace stays byte-identical: tie-breaks draw from
  ``fwsim-scheduler:<seed>``, and a link's loss choice ``link:<link>:loss`` draws from the link's
  old stream ``fwsim:<seed>:link:<link>``. ``fault`` is always False and draws nothing;
  ``chance`` with ``p == 0`` is False and draws nothing.
* :class:`RecordingChooser` - wraps another chooser and appends every question and answer as a
  :class:`Choice` ``(kind, name, value)`` to ``choices``.
* :class:`ScriptedChooser` - answers from a recorded list of choices, checking that the run asks
  the same question (kind and name) at each position; a different question, or a question past
  the end of the script, raises :class:`ReplayDivergence`, unless a ``then`` chooser was given to
  answer everything after the script. Replaying a recording of a run gives a byte-identical
  trace.

An explorer is just another chooser: PCT-style scheduling answers ``tiebreak`` from per-label
priorities, an exhaustive search answers ``pick``/``chance`` from the branch it is walking (a
script for the prefix, ``then`` for the rest), a fault injector answers ``fault`` True at the
occurrence it wants to test.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from enum import StrEnum
from typing import Any, NamedTuple, Protocol

from .errors import ConfigurationError, FwSimError, UsageError


class ChoiceKind(StrEnum):
    """Which question a :class:`Choice` answers (the :class:`Chooser` method's name)."""

    TIEBREAK = "tiebreak"
    CHANCE = "chance"
    UNIFORM = "uniform"
    PICK = "pick"
    FAULT = "fault"


ChoiceValue = float | int | bool


class Choice(NamedTuple):
    """One question asked of a chooser and its answer (a tuple: cheap to record by the million)."""

    kind: ChoiceKind
    name: str
    value: ChoiceValue

    def to_json(self) -> str:
        return json.dumps({"kind": self.kind.value, "name": self.name, "value": self.value},
                          separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_json(cls, line: str) -> Choice:
        """Parse a line written by :meth:`to_json`; ``ConfigurationError`` if it is not one."""
        try:
            obj = json.loads(line)
            kind = ChoiceKind(obj["kind"])
            name = obj["name"]
            value = obj["value"]
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigurationError(f"not a recorded choice: {line[:80]!r} ({exc})") from None
        if kind in (ChoiceKind.CHANCE, ChoiceKind.FAULT):
            valid = isinstance(value, bool)
        elif kind is ChoiceKind.PICK:
            valid = isinstance(value, int) and not isinstance(value, bool)
        else:
            valid = isinstance(value, int | float) and not isinstance(value, bool)
        if not valid or not isinstance(name, str):
            raise ConfigurationError(f"not a recorded choice: {line[:80]!r} (bad name or value)")
        return cls(kind, name, value)


class ReplayDivergence(FwSimError):
    """A scripted run asked for a different choice than the script recorded, or for more."""


class Chooser(Protocol):
    """The questions a simulation asks; see the module header."""

    def tiebreak(self, label: str) -> float: ...

    def chance(self, name: str, p: float) -> bool: ...

    def uniform(self, name: str, lo: float, hi: float) -> float: ...

    def pick(self, name: str, options: Sequence[Any]) -> int: ...

    def fault(self, name: str) -> bool: ...


def seeded_stream(seed: int | str, name: str) -> random.Random:
    """The random stream of ``name`` under ``seed`` (what ``World.rng_for`` returns)."""
    return random.Random(f"fwsim:{seed}:{name}")


def _check_probability(p: float) -> None:
    if not 0.0 <= p <= 1.0:
        raise UsageError(f"a probability must be between 0 and 1, not {p!r}")


def _check_options(options: Sequence[Any]) -> None:
    if not options:
        raise UsageError("cannot pick from no options")


def _stream_key(name: str) -> str:
    # The datagram link drew its loss from world.rng_for(f"link:{link}") before the chooser
    # existed; its loss choice keeps that stream so seeded traces stay byte-identical.
    if name.startswith("link:") and name.endswith(":loss"):
        return name[: -len(":loss")]
    return name


class SeededChooser:
    """Today's behaviour: seeded streams, no faults (see the module header)."""

    __slots__ = ("_streams", "seed", "tie_random")

    def __init__(self, seed: int | str) -> None:
        self.seed = seed
        #: the tie-break stream (the scheduler draws from it directly: the label is not used)
        self.tie_random = random.Random(f"fwsim-scheduler:{seed}").random
        self._streams: dict[str, random.Random] = {}

    def _stream(self, name: str) -> random.Random:
        stream = self._streams.get(name)
        if stream is None:
            stream = self._streams[name] = seeded_stream(self.seed, _stream_key(name))
        return stream

    def tiebreak(self, label: str) -> float:
        return self.tie_random()

    def chance(self, name: str, p: float) -> bool:
        _check_probability(p)
        return p > 0.0 and self._stream(name).random() < p

    def uniform(self, name: str, lo: float, hi: float) -> float:
        return self._stream(name).uniform(lo, hi)

    def pick(self, name: str, options: Sequence[Any]) -> int:
        _check_options(options)
        return self._stream(name).randrange(len(options))

    def fault(self, name: str) -> bool:
        return False


class RecordingChooser:
    """Forwards every question to ``inner`` and records it with its answer in ``choices``."""

    def __init__(self, inner: Chooser) -> None:
        self.inner = inner
        self.choices: list[Choice] = []

    def tiebreak(self, label: str) -> float:
        value = self.inner.tiebreak(label)
        self.choices.append(Choice(ChoiceKind.TIEBREAK, label, value))
        return value

    def chance(self, name: str, p: float) -> bool:
        value = self.inner.chance(name, p)
        self.choices.append(Choice(ChoiceKind.CHANCE, name, value))
        return value

    def uniform(self, name: str, lo: float, hi: float) -> float:
        value = self.inner.uniform(name, lo, hi)
        self.choices.append(Choice(ChoiceKind.UNIFORM, name, value))
        return value

    def pick(self, name: str, options: Sequence[Any]) -> int:
        value = self.inner.pick(name, options)
        self.choices.append(Choice(ChoiceKind.PICK, name, value))
        return value

    def fault(self, name: str) -> bool:
        value = self.inner.fault(name)
        self.choices.append(Choice(ChoiceKind.FAULT, name, value))
        return value


class ScriptedChooser:
    """Answers from ``script`` in order; ``then`` (if given) answers after the script ends."""

    def __init__(self, script: Sequence[Choice], *, then: Chooser | None = None) -> None:
        self._script = list(script)
        self._position = 0
        self.then = then

    @property
    def position(self) -> int:
        """How many scripted choices have been answered."""
        return self._position

    @property
    def remaining(self) -> int:
        """How many scripted choices are still unanswered."""
        return len(self._script) - self._position

    def check_finished(self) -> None:
        """Raise :class:`ReplayDivergence` if the run asked for fewer choices than scripted."""
        if self.remaining:
            nxt = self._script[self._position]
            raise ReplayDivergence(
                f"replay diverged: the run ended after {self._position} of {len(self._script)} "
                f"scripted choices (next was {nxt.kind.value} {nxt.name!r})")

    def _next(self, kind: ChoiceKind, name: str) -> Choice | Chooser:
        """The scripted answer to this question, or the ``then`` chooser past the script."""
        position = self._position
        if position >= len(self._script):
            if self.then is not None:
                return self.then
            raise ReplayDivergence(
                f"replay diverged: the run asked for {kind.value} {name!r} after all "
                f"{len(self._script)} scripted choices were used")
        choice = self._script[position]
        if choice.kind != kind or choice.name != name:
            raise ReplayDivergence(
                f"replay diverged at choice #{position}: the run asked for {kind.value} "
                f"{name!r}, the script recorded {choice.kind.value} {choice.name!r}")
        self._position = position + 1
        return choice

    def tiebreak(self, label: str) -> float:
        answer = self._next(ChoiceKind.TIEBREAK, label)
        return float(answer.value) if isinstance(answer, Choice) else answer.tiebreak(label)

    def chance(self, name: str, p: float) -> bool:
        _check_probability(p)
        answer = self._next(ChoiceKind.CHANCE, name)
        return bool(answer.value) if isinstance(answer, Choice) else answer.chance(name, p)

    def uniform(self, name: str, lo: float, hi: float) -> float:
        answer = self._next(ChoiceKind.UNIFORM, name)
        if isinstance(answer, Choice):
            return float(answer.value)
        return answer.uniform(name, lo, hi)

    def pick(self, name: str, options: Sequence[Any]) -> int:
        _check_options(options)
        answer = self._next(ChoiceKind.PICK, name)
        if not isinstance(answer, Choice):
            return answer.pick(name, options)
        index = int(answer.value)
        if not 0 <= index < len(options):
            raise ReplayDivergence(
                f"replay diverged at choice #{self._position - 1}: pick {name!r} recorded "
                f"option {index} of only {len(options)}")
        return index

    def fault(self, name: str) -> bool:
        answer = self._next(ChoiceKind.FAULT, name)
        return bool(answer.value) if isinstance(answer, Choice) else answer.fault(name)


__all__ = [
    "Choice",
    "ChoiceKind",
    "ChoiceValue",
    "Chooser",
    "RecordingChooser",
    "ReplayDivergence",
    "ScriptedChooser",
    "SeededChooser",
    "seeded_stream",
]
