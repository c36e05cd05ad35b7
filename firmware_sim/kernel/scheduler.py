"""Deterministic event scheduler on virtual time.

How this works
--------------
Entries live in one heap ordered by ``(due_us, priority, tiebreak, seq)``:

* ``due_us`` - the virtual instant the callback runs at;
* ``priority`` - lower runs first among entries due at the same instant (``URGENT`` < ``NORMAL``);
* ``tiebreak`` - a number the world's chooser gives when the entry is created
  (``chooser.tiebreak(label)``, see ``choice.py``). The seeded chooser draws it from a stream
  fixed by the world seed, so same-instant, same-priority entries run in an order that is fixed
  by the seed (same seed, same order, every run) but may differ between seeds; an explorer's
  chooser steers that order instead;
* ``seq`` - insertion counter: entries with equal tie-breaks run in the order they were created.

Cancelled entries stay in the heap until they come up (a keepalive re-armed on every message
leaves one behind each time). The scheduler counts them and, when they are more than half of a
heap of at least 1,024 entries, rebuilds the heap without them; the order of the live entries
is a total order on their keys, so it is unchanged.

Components that need FIFO delivery among same-instant entries (a link carrying several datagrams
with equal latency) keep their own queue and let each scheduled entry take the queue's head.

``step()`` pops one entry, advances the clock to its due time and runs it. Exceptions propagate
out of ``step()`` (and so out of ``run_*``) unchanged: a failing callback is a bug, never hidden.
"""

from __future__ import annotations

from collections.abc import Callable
from heapq import heapify, heappop, heappush
from typing import Any

from .choice import Chooser, SeededChooser
from .clock import MICROS_PER_SECOND, VirtualClock

URGENT = 0
NORMAL = 1


class TimerHandle:
    """A scheduled callback; ``cancel()`` makes it a no-op."""

    __slots__ = ("args", "callback", "cancelled", "due_us", "label", "scheduler")

    def __init__(self, due_us: int, callback: Callable[..., Any], args: tuple[Any, ...],
                 label: str, scheduler: Scheduler | None = None) -> None:
        self.due_us = due_us
        self.callback = callback
        self.args = args
        self.label = label
        self.cancelled = False
        #: told of a cancellation while the entry is in its heap
        self.scheduler = scheduler

    def cancel(self) -> None:
        if not self.cancelled:
            self.cancelled = True
            scheduler = self.scheduler
            if scheduler is not None:
                self.scheduler = None
                scheduler._entry_cancelled()

    @property
    def active(self) -> bool:
        """True until the handle is cancelled or has run."""
        return not self.cancelled

    def __repr__(self) -> str:
        state = "cancelled" if self.cancelled else "active"
        return f"<TimerHandle {self.label or self.callback!r} due={self.due_us}us {state}>"


class Scheduler:
    """Heap of timers on a :class:`VirtualClock`; same-instant order comes from ``chooser``."""

    def __init__(self, clock: VirtualClock, chooser: Chooser) -> None:
        self.clock = clock
        self._tiebreak = chooser.tiebreak
        #: the seeded chooser's tie-break ignores the label: draw from its stream directly
        self._tie_random = chooser.tie_random if type(chooser) is SeededChooser else None
        self._heap: list[tuple[int, int, float, int, TimerHandle]] = []
        self._seq = 0
        self._cancelled = 0
        self.steps = 0

    def __len__(self) -> int:
        return sum(1 for entry in self._heap if not entry[4].cancelled)

    def call_at(self, due_us: int, callback: Callable[..., Any], *args: Any,
                priority: int = NORMAL, label: str = "") -> TimerHandle:
        """Run ``callback(*args)`` at virtual instant ``due_us`` (clamped to now)."""
        now_us = self.clock._now_us
        if due_us < now_us:
            due_us = now_us
        handle = TimerHandle(due_us, callback, args, label, self)
        self._seq = seq = self._seq + 1
        tie_random = self._tie_random
        heappush(self._heap, (due_us, priority,
                              tie_random() if tie_random is not None else self._tiebreak(label),
                              seq, handle))
        return handle

    def call_later(self, delay_s: float, callback: Callable[..., Any], *args: Any,
                   priority: int = NORMAL, label: str = "") -> TimerHandle:
        """Run ``callback(*args)`` ``delay_s`` seconds from now."""
        # call_at inlined (the hottest path of a fleet): same arithmetic as to_micros
        now_us = self.clock._now_us
        due_us = now_us + round(delay_s * MICROS_PER_SECOND)
        if due_us < now_us:
            due_us = now_us
        handle = TimerHandle(due_us, callback, args, label, self)
        self._seq = seq = self._seq + 1
        tie_random = self._tie_random
        heappush(self._heap, (due_us, priority,
                              tie_random() if tie_random is not None else self._tiebreak(label),
                              seq, handle))
        return handle

    def call_soon(self, callback: Callable[..., Any], *args: Any, priority: int = NORMAL,
                  label: str = "") -> TimerHandle:
        """Run ``callback(*args)`` at the current instant, after the running entry.

        Among other entries already due now with the same priority it takes its place by
        tie-break, not necessarily last.
        """
        return self.call_at(self.clock.now_us, callback, *args, priority=priority, label=label)

    def next_due_us(self) -> int | None:
        """Due time of the earliest live entry, or None when idle."""
        heap = self._heap
        while heap and heap[0][4].cancelled:
            heappop(heap)
            self._cancelled -= 1
        return heap[0][0] if heap else None

    def _entry_cancelled(self) -> None:
        self._cancelled += 1
        heap = self._heap
        if self._cancelled > 512 and 2 * self._cancelled > len(heap):
            self._heap = heap = [entry for entry in heap if not entry[4].cancelled]
            heapify(heap)
            self._cancelled = 0

    def step(self) -> bool:
        """Run one entry. Returns False when nothing is scheduled."""
        heap = self._heap
        while heap:
            due_us, _, _, _, handle = heappop(heap)
            if handle.cancelled:
                self._cancelled -= 1
                continue
            self.clock._now_us = due_us  # never backwards: the heap's minimum
            handle.cancelled = True  # a handle runs at most once
            handle.scheduler = None
            self.steps += 1
            handle.callback(*handle.args)
            return True
        return False

    def run_until_time(self, until_us: int) -> None:
        """Run every entry due at or before ``until_us``, then set the clock to ``until_us``."""
        while True:
            nxt = self.next_due_us()
            if nxt is None or nxt > until_us:
                break
            self.step()
        if until_us > self.clock.now_us:
            self.clock.advance_to(until_us)
