"""Virtual time.

Time is kept as an integer number of microseconds so that two timers computed in different ways
(``1.0 + 0.5`` vs ``1.5``) land on exactly the same instant and meet the scheduler's tie-break
(asked of the world's chooser) instead of an accidental float ordering. Public helpers take and
give seconds.
"""

from __future__ import annotations

from typing import Protocol

MICROS_PER_SECOND = 1_000_000


def to_micros(seconds: float) -> int:
    """Convert seconds (float) to integer microseconds, rounding to the nearest microsecond."""
    return round(seconds * MICROS_PER_SECOND)


def to_seconds(micros: int) -> float:
    """Convert integer microseconds to float seconds."""
    return micros / MICROS_PER_SECOND


class Clock(Protocol):
    """Anything that can tell the current time in microseconds."""

    @property
    def now_us(self) -> int: ...


class VirtualClock:
    """A monotonic clock that only moves when told to.

    ``advance_to`` never goes backwards; attempting to is a programming error.
    """

    __slots__ = ("_now_us",)

    def __init__(self, start_us: int = 0) -> None:
        self._now_us = start_us

    @property
    def now_us(self) -> int:
        return self._now_us

    @property
    def now(self) -> float:
        """Current time in seconds."""
        return self._now_us / MICROS_PER_SECOND

    def millis(self) -> int:
        """Current time in whole milliseconds (what Device OS ``millis()`` would return)."""
        return self._now_us // 1000

    def advance_to(self, when_us: int) -> None:
        if when_us < self._now_us:
            raise ValueError(f"virtual clock cannot go backwards ({when_us} < {self._now_us})")
        self._now_us = when_us

    def advance(self, seconds: float) -> None:
        self.advance_to(self._now_us + to_micros(seconds))
