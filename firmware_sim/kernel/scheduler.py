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

An entry holds ``tiebreak`` and ``seq`` as one *order key*: with the seeded chooser, whose
tie-breaks are the floats of ``random.random()`` (each exactly ``k / 2**53`` for an integer
``k``), the int ``k << 64 | seq``, which orders exactly like the pair (one object per entry where
the pair takes two; a fleet has hundreds of thousands of entries at once); with any other
chooser the tuple ``(tiebreak, seq)``.

Cancelled entries stay in the heap until they come up; ``cancel()`` drops what the entry would
have called (callback and arguments) at once. The scheduler counts cancelled entries and, when
there are more than 512 of them and they are more than a sixteenth of the heap, rebuilds the heap
without them (a rebuild costs about 16 entries looked at per cancellation; a fleet's heap stays
close to its live size); the order of the live entries is a total order on their keys, so it is
unchanged.

``reschedule(handle, delay_s, ...)`` is ``handle.cancel()`` followed by ``call_later(delay_s,
...)`` - the same tie-break draw, the same sequence number, so the same order - without leaving a
cancelled entry behind when the new key is later than the handle's current one (a keepalive
re-armed on every message): the handle's tuple in the heap, its *carrier*, stays, and the handle
remembers its new key. When the carrier comes up (always before the new key could, its key being
smaller) the entry with the new key is pushed in its place. A new key smaller than the carrier's
(the same instant, a smaller tie-break) is pushed at once and the old carrier counts as
cancelled.

``schedule(handle, delay_s)`` schedules like ``call_later`` (the same tie-break draw, with the
handle's own label) a handle made by its owner, usually a subclass that carries the owner's state
(a CoAP message awaiting its ACK is its own retransmission timer): one object per entry instead of
the owner's object, a handle and an arguments tuple. A handle whose ``args`` is None is called with
itself as the only argument. The same handle may be scheduled again once it has run.

``post_later`` schedules like ``call_later`` (the same tie-break draw) but returns no handle:
its entry, which cannot be cancelled, is one tuple ``(due_us, priority, order key, callback,
args)`` instead of a tuple and a :class:`TimerHandle` (a datagram in flight).

Components that need FIFO delivery among same-instant entries (a link carrying several datagrams
with equal latency) keep their own queue and let each scheduled entry take the queue's head.

``step()`` pops one entry, advances the clock to its due time and runs it. Exceptions propagate
out of ``step()`` (and so out of ``run_*``) unchanged: a failing callback is a bug, never hidden.
The one exception is :class:`StepAborted`, which a callback raises on purpose to abandon the rest
of its step (a simulated CPU that stops where it is: a firmware panic); ``step()`` swallows it.
"""

from __future__ import annotations

from collections.abc import Callable
from heapq import heapify, heappop, heappush, heapreplace
from typing import Any

from .choice import Chooser, SeededChooser
from .clock import MICROS_PER_SECOND, VirtualClock

URGENT = 0
NORMAL = 1


#: ``k << 64 | seq`` for a seeded tie-break ``k / 2**53``, else ``(tiebreak, seq)``
OrderKey = int | tuple[float, int]
Entry = tuple[int, int, OrderKey, "TimerHandle"]
#: an entry of ``post_later``: no handle, the callback and its arguments in the tuple
Posted = tuple[int, int, OrderKey, Callable[..., Any], tuple[Any, ...]]
#: the seeded tie-breaks times this are their integer numerators
_TIE_SCALE = float(2 ** 53)


class StepAborted(BaseException):
    """Raised by code inside a step to abandon the rest of it; the scheduler swallows it. A
    ``BaseException``, so that no ``except Exception`` between the raise and the scheduler
    catches it (those frames are unwound without running further)."""


class WatchdogExpired(BaseException):
    """Raised into a step that ran longer than a served world's step watchdog allows (a
    callback that blocks or loops; ``kernel.realtime``). A ``BaseException``, so that an
    ``except Exception`` in the interrupted code does not swallow it."""


def _released(*_args: Any) -> None:
    """What a cancelled handle holds instead of its callback (which it no longer keeps alive)."""


class TimerHandle:
    """A scheduled callback; ``cancel()`` makes it a no-op."""

    __slots__ = ("_carrier", "_entry", "args", "callback", "cancelled", "label", "scheduler")

    def __init__(self, callback: Callable[..., Any], args: tuple[Any, ...] | None, label: str,
                 scheduler: Scheduler | None = None) -> None:
        self.callback = callback
        #: what ``callback`` is called with; None: the handle itself
        self.args = args
        self.label = label
        self.cancelled = False
        #: told of a cancellation while the entry is in its heap
        self.scheduler = scheduler
        #: while it is scheduled: the key (with this handle) the callback runs at, and its live
        #: tuple in the heap, that key or a smaller one (see ``reschedule``)
        self._entry: Entry | None = None
        self._carrier: Entry | None = None

    def cancel(self) -> None:
        if not self.cancelled:
            self.cancelled = True
            self._entry = self._carrier = None
            self.callback = _released
            self.args = ()
            scheduler = self.scheduler
            if scheduler is not None:
                self.scheduler = None
                scheduler._entry_cancelled()

    @property
    def due_us(self) -> int | None:
        """The virtual instant it runs at while it is scheduled (its entry's key), else None."""
        entry = self._entry
        return None if entry is None else entry[0]

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
        self._heap: list[Entry | Posted] = []
        self._seq = 0
        self._cancelled = 0
        self.steps = 0
        #: the due time of the last entry made by call_later, post_later or reschedule
        self._last_due_us = -1

    def __len__(self) -> int:
        return sum(1 for entry in self._heap
                   if len(entry) == 5 or entry is entry[3]._carrier)

    def call_at(self, due_us: int, callback: Callable[..., Any], *args: Any,
                priority: int = NORMAL, label: str = "") -> TimerHandle:
        """Run ``callback(*args)`` at virtual instant ``due_us`` (clamped to now)."""
        now_us = self.clock._now_us
        handle = TimerHandle(callback, args, label, self)
        self._push(handle, now_us if due_us < now_us else due_us, priority)
        return handle

    def call_later(self, delay_s: float, callback: Callable[..., Any], *args: Any,
                   priority: int = NORMAL, label: str = "") -> TimerHandle:
        """Run ``callback(*args)`` ``delay_s`` seconds from now."""
        handle = TimerHandle(callback, args, label, self)
        self._push(handle, self._due_after(delay_s), priority)
        return handle

    def schedule(self, handle: TimerHandle, delay_s: float, *, priority: int = NORMAL) -> None:
        """Run ``handle`` (not scheduled now: new, or run already) ``delay_s`` seconds from now:
        ``call_later`` with the handle's callback, arguments and label, without a new handle."""
        if handle._carrier is not None:
            raise ValueError("the handle is scheduled already")
        handle.cancelled = False
        handle.scheduler = self
        self._push(handle, self._due_after(delay_s), priority)

    def post_later(self, delay_s: float, callback: Callable[..., Any], *args: Any,
                   priority: int = NORMAL, label: str = "") -> None:
        """``call_later`` without a handle (the entry cannot be cancelled; ``label`` is only
        given to the chooser): the same tie-break draw and order, a lighter entry."""
        due_us = self._due_after(delay_s)
        heappush(self._heap, (due_us, priority, self._order_key(label), callback, args))

    def reschedule(self, handle: TimerHandle | None, delay_s: float,
                   callback: Callable[..., Any], *args: Any, priority: int = NORMAL,
                   label: str = "") -> TimerHandle:
        """``handle.cancel()`` (when given) then ``call_later(delay_s, callback, *args)``, with
        the same tie-break draw and so the same order; returns the handle to keep: ``handle``
        itself when it was active here (and its tuple in the heap is kept, no cancelled entry is
        left behind, when the new key is later than that tuple's), else a new one."""
        carrier = handle._carrier if handle is not None and handle.scheduler is self else None
        if carrier is None:
            if handle is not None:
                handle.cancel()
            return self.call_later(delay_s, callback, *args, priority=priority, label=label)
        assert handle is not None
        due_us = self._due_after(delay_s)
        # the sequence number is new, so the keys differ before the handles are compared
        entry = (due_us, priority, self._order_key(label), handle)
        handle._entry = entry
        handle.callback = callback
        handle.args = args
        handle.label = label
        if entry < carrier:
            handle._carrier = entry
            heappush(self._heap, entry)
            self._entry_cancelled()  # the old carrier
        return handle

    # -- making entries (the hottest path of a fleet) -----------------------------------------

    def _due_after(self, delay_s: float) -> int:
        """The instant ``delay_s`` from now (never before now; the same arithmetic as
        ``to_micros``); equal consecutive due times share one int object."""
        now_us = self.clock._now_us
        due_us = now_us + round(delay_s * MICROS_PER_SECOND)
        if due_us < now_us:
            due_us = now_us
        if due_us == self._last_due_us:  # share the int: entries often come in same-due runs
            return self._last_due_us
        self._last_due_us = due_us
        return due_us

    def _order_key(self, label: str) -> OrderKey:
        """The next entry's tie-break and sequence number, as one order key (module header):
        one draw from the chooser per entry made."""
        self._seq = seq = self._seq + 1
        tie_random = self._tie_random
        if tie_random is not None:
            return int(tie_random() * _TIE_SCALE) << 64 | seq
        return (self._tiebreak(label), seq)

    def _push(self, handle: TimerHandle, due_us: int, priority: int) -> None:
        handle._entry = handle._carrier = entry = (
            due_us, priority, self._order_key(handle.label), handle)
        heappush(self._heap, entry)

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
        while heap:
            entry = heap[0]
            if len(entry) == 5:  # posted
                return entry[0]
            handle = entry[3]
            live = handle._entry
            if live is entry:
                return entry[0]
            if live is not None and entry is handle._carrier:
                handle._carrier = live  # the entry it carries takes its place
                heapreplace(heap, live)
            else:  # cancelled
                heappop(heap)
                self._cancelled -= 1
        return None

    def _entry_cancelled(self) -> None:
        self._cancelled += 1
        heap = self._heap
        if self._cancelled > 512 and 16 * self._cancelled > len(heap):
            # live handles only, each with its own entry (a carrier gives way to what it carries)
            live: list[Entry | Posted] = []
            for entry in heap:
                if len(entry) == 5:  # posted
                    live.append(entry)
                    continue
                handle = entry[3]
                if entry is handle._carrier and handle._entry is not None:
                    handle._carrier = handle._entry
                    live.append(handle._entry)
            self._heap = heap = live
            heapify(heap)
            self._cancelled = 0

    def step(self) -> bool:
        """Run one entry. Returns False when nothing is scheduled."""
        heap = self._heap
        while heap:
            entry = heappop(heap)
            if len(entry) == 5:  # posted
                self.clock._now_us = entry[0]
                self.steps += 1
                try:  # noqa: SIM105 - a try is free in the hot path; suppress() is not
                    entry[3](*entry[4])
                except StepAborted:
                    pass
                return True
            handle = entry[3]
            live = handle._entry
            if live is not entry:
                if live is not None and entry is handle._carrier:
                    handle._carrier = live  # the entry it carries takes its place
                    heappush(heap, live)
                else:  # cancelled
                    self._cancelled -= 1
                continue
            self.clock._now_us = entry[0]  # never backwards: the heap's minimum
            handle.cancelled = True  # a handle runs at most once
            handle.scheduler = None
            handle._entry = handle._carrier = None
            self.steps += 1
            args = handle.args
            try:
                if args is None:
                    handle.callback(handle)
                else:
                    handle.callback(*args)
            except StepAborted:
                pass
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
