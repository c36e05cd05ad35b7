"""Aligning a real device's log with the model's timeline, and judging the timing.

How this works
--------------
Two lines can pair only if their templates are equal (``template.py``). Among the pairings
that keep both logs in order, :func:`diff_logs` takes one with the most pairs (a longest common
subsequence of templates) and, among those, the one whose timing agrees best: the summed
absolute timing deltas of its pairs. A real excerpt is usually a few lines out of a long run,
and the same line (``Cloud connected``) occurs many times in the model, so the timing
tie-break is what picks the right occurrence.

Timing is compared in one of two ways:

* ``relative`` (default, for excerpts whose uptime origin differs from the model's): each
  aligned pair is compared with the previous aligned pair - the real interval
  ``real[k] - real[k-1]`` against the model's ``model[k] - model[k-1]``. The first pair is the
  anchor (no timing verdict). When choosing the occurrence, a candidate anchor is tried for
  every model line that can pair with the first pairable real line.
* ``absolute`` (a log captured from power-up, on the same uptime origin): each pair compares
  the uptimes themselves.

A pair's timing agrees when ``|model interval - real interval| <= max(tolerance * |real
interval|, min_tolerance_ms)`` (defaults: 10 % and 20 ms). Unpaired real lines whose template
also appears among the unpaired model lines are *order differences* (the line exists on both
sides, in another order); the other unpaired real lines are *only in the real log*; unpaired
model lines are *only in the model* (those between the first and the last pair are counted as
"within the aligned span"). The logs *agree* when every real line is paired and every pair's
timing agrees (``strict``: and no model line within the span is left over).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from .parse import LogLine
from .template import line_template

_BIG = 10**12


class TimingMode(Enum):
    RELATIVE = "relative"
    ABSOLUTE = "absolute"


@dataclass(frozen=True)
class Tolerance:
    relative: float = 0.10
    min_ms: int = 20

    def allowed_ms(self, real_interval_ms: int) -> float:
        return max(self.relative * abs(real_interval_ms), float(self.min_ms))


@dataclass(frozen=True)
class Pair:
    real: LogLine
    model: LogLine
    template: str
    #: model uptime minus real uptime
    offset_ms: int
    #: what the timing compares (None for the anchor of a relative comparison)
    real_ms: int | None
    model_ms: int | None
    allowed_ms: float | None

    @property
    def delta_ms(self) -> int | None:
        if self.real_ms is None or self.model_ms is None:
            return None
        return self.model_ms - self.real_ms

    @property
    def timing_ok(self) -> bool:
        delta = self.delta_ms
        return delta is None or self.allowed_ms is None or abs(delta) <= self.allowed_ms


@dataclass
class LogDiff:
    real: list[LogLine]
    model: list[LogLine]
    mode: TimingMode
    tolerance: Tolerance
    strict: bool = False
    pairs: list[Pair] = field(default_factory=list)
    only_real: list[LogLine] = field(default_factory=list)
    only_model: list[LogLine] = field(default_factory=list)
    #: (real line, model line) with the same template, left unpaired by the ordering
    order_differences: list[tuple[LogLine, LogLine]] = field(default_factory=list)
    #: model lines left over between the first and the last pair
    only_model_in_span: list[LogLine] = field(default_factory=list)

    @property
    def timing_differences(self) -> list[Pair]:
        return [pair for pair in self.pairs if not pair.timing_ok]

    @property
    def agree(self) -> bool:
        return (bool(self.pairs) and not self.only_real and not self.order_differences
                and not self.timing_differences
                and not (self.strict and self.only_model_in_span))


def _align(real_t: list[str], model_t: list[str], cost: list[list[int]]) -> list[tuple[int, int]]:
    """Longest common subsequence of templates, ties broken by the smallest summed cost."""
    n, m = len(real_t), len(model_t)
    # score[i][j]: best (pairs * BIG - cost) aligning real[i:] with model[j:]
    score = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        row, below = score[i], score[i + 1]
        for j in range(m - 1, -1, -1):
            best = below[j] if below[j] >= row[j + 1] else row[j + 1]
            if real_t[i] == model_t[j]:
                take = _BIG - cost[i][j] + below[j + 1]
                if take > best:
                    best = take
            row[j] = best
    pairs: list[tuple[int, int]] = []
    i = j = 0
    while i < n and j < m:
        if real_t[i] == model_t[j] and score[i][j] == _BIG - cost[i][j] + score[i + 1][j + 1]:
            pairs.append((i, j))
            i, j = i + 1, j + 1
        elif score[i][j] == score[i + 1][j]:
            i += 1
        else:
            j += 1
    return pairs


def diff_logs(real: list[LogLine], model: list[LogLine], *,
              mode: TimingMode = TimingMode.RELATIVE, tolerance: Tolerance | None = None,
              strict: bool = False) -> LogDiff:
    tolerance = tolerance or Tolerance()
    real_t = [line_template(line) for line in real]
    model_t = [line_template(line) for line in model]
    candidates: list[int | None] = [None]
    if mode is TimingMode.RELATIVE:
        first = next((i for i, t in enumerate(real_t) if t in set(model_t)), None)
        if first is not None:
            candidates = [j for j, t in enumerate(model_t) if t == real_t[first]]
    best: list[tuple[int, int]] = []
    best_key: tuple[int, int] | None = None
    for anchor in candidates:
        if anchor is None:
            cost = [[abs(mline.uptime_ms - rline.uptime_ms) for mline in model] for rline in real]
        else:
            shift = model[anchor].uptime_ms - real[first or 0].uptime_ms
            cost = [[abs(mline.uptime_ms - rline.uptime_ms - shift) for mline in model]
                    for rline in real]
        pairs = _align(real_t, model_t, cost)
        key = (len(pairs), -sum(cost[i][j] for i, j in pairs))
        if best_key is None or key > best_key:
            best, best_key = pairs, key
    return _report(real, model, real_t, model_t, best, mode, tolerance, strict)


def _report(real: list[LogLine], model: list[LogLine], real_t: list[str], model_t: list[str],
            aligned: list[tuple[int, int]], mode: TimingMode, tolerance: Tolerance,
            strict: bool) -> LogDiff:
    result = LogDiff(real, model, mode, tolerance, strict)
    previous: tuple[int, int] | None = None
    for i, j in aligned:
        rline, mline = real[i], model[j]
        real_ms: int | None
        model_ms: int | None
        if mode is TimingMode.ABSOLUTE:
            real_ms, model_ms = rline.uptime_ms, mline.uptime_ms
        elif previous is None:
            real_ms = model_ms = None
        else:
            real_ms = rline.uptime_ms - real[previous[0]].uptime_ms
            model_ms = mline.uptime_ms - model[previous[1]].uptime_ms
        allowed = None if real_ms is None else tolerance.allowed_ms(real_ms)
        result.pairs.append(Pair(rline, mline, real_t[i], mline.uptime_ms - rline.uptime_ms,
                                 real_ms, model_ms, allowed))
        previous = (i, j)
    paired_real = {i for i, _ in aligned}
    paired_model = {j for _, j in aligned}
    left_model = [j for j in range(len(model)) if j not in paired_model]
    used: set[int] = set()
    for i in range(len(real)):
        if i in paired_real:
            continue
        twin = next((j for j in left_model if j not in used and model_t[j] == real_t[i]), None)
        if twin is None:
            result.only_real.append(real[i])
        else:
            used.add(twin)
            result.order_differences.append((real[i], model[twin]))
    result.only_model = [model[j] for j in left_model if j not in used]
    if aligned:
        low, high = aligned[0][1], aligned[-1][1]
        result.only_model_in_span = [model[j] for j in left_model
                                     if low < j < high and j not in used]
    return result


__all__ = ["LogDiff", "Pair", "TimingMode", "Tolerance", "diff_logs"]
