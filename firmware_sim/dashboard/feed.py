"""The dashboard's view of a running world: trace records sorted per device, and wake-ups for
the live streams.

How this works
--------------
:class:`Feed` subscribes to the world's trace. A *router* (given by the cloud's backend) says
which device a record concerns - by its node, its ``device``/``device_id`` field, or the session
it names - and whether the record is worth keeping; kept records go into that device's ring
buffer (the live log, the event stream, the "why" panel and the sequence diagram are read from
it). Any record about a device, kept or not, bumps :attr:`Feed.generation` and wakes every open
stream (:meth:`Feed.wait`), which then recomputes what it shows and sends only what changed.
The records the trace still holds in memory when the feed starts are read first, so a dashboard
mounted late shows the history too.

Everything runs on the event loop's thread (the real-time driver steps the world there), so the
listener sets ``asyncio.Event`` objects directly. The listener does a few dictionary look-ups per
record; buffers are bounded (:data:`PER_DEVICE`, :data:`BUDGET` in all, :data:`MAX_DEVICES`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from typing import Any

from ..kernel.trace import Trace, TraceRecord

#: records kept per device at most
PER_DEVICE = 3000
#: records kept in all: a testbed of many devices keeps fewer per device (200 at least)
BUDGET = 200_000
#: devices with a buffer at most (a cloud serving a fleet: the first ones seen)
MAX_DEVICES = 500


def per_device_for(devices: int) -> int:
    """Records kept per device for a testbed of ``devices`` devices (:data:`BUDGET`)."""
    return max(200, min(PER_DEVICE, BUDGET // max(1, devices)))
#: extra items (cloud events) kept per device
EXTRAS_PER_DEVICE = 200

#: ``router(record) -> (device name, keep)`` or None when the record concerns no device
Router = Callable[[TraceRecord], tuple[str, bool] | None]


class Feed:
    def __init__(self, trace: Trace, router: Router, *, per_device: int = PER_DEVICE) -> None:
        self.trace = trace
        self.router = router
        self.per_device = per_device
        self.records: dict[str, deque[TraceRecord]] = {}
        self.extras: dict[str, deque[tuple[int, Any]]] = {}
        self.generation = 0
        self._extra_seq = 0
        self._waiters: set[asyncio.Event] = set()
        self._hooks: list[Callable[[str, TraceRecord], None]] = []
        self.closed = False
        for record in list(trace.memory.records):  # what happened before the dashboard came
            self._on_record(record)
        self._unsubscribe = trace.subscribe(self._on_record)

    def close(self) -> None:
        """Stop listening and end every open stream."""
        if not self.closed:
            self.closed = True
            self._unsubscribe()
            self._wake()

    def on_device_record(self, hook: Callable[[str, TraceRecord], None]) -> None:
        """Call ``hook(device name, record)`` for every record about a device."""
        self._hooks.append(hook)

    def _buffer(self, name: str) -> deque[TraceRecord] | None:
        buffer = self.records.get(name)
        if buffer is None and len(self.records) < MAX_DEVICES:
            buffer = self.records[name] = deque(maxlen=self.per_device)
        return buffer

    def _on_record(self, record: TraceRecord) -> None:
        routed = self.router(record)
        if routed is None:
            return
        name, keep = routed
        if keep:
            buffer = self._buffer(name)
            if buffer is not None:
                buffer.append(record)
        for hook in self._hooks:
            hook(name, record)
        self.generation += 1
        self._wake()

    def add_extra(self, name: str, item: Any) -> None:
        """Keep ``item`` (e.g. a cloud event) for device ``name``, with a sequence number."""
        extras = self.extras.get(name)
        if extras is None:
            if len(self.extras) >= MAX_DEVICES:
                return
            extras = self.extras[name] = deque(maxlen=EXTRAS_PER_DEVICE)
        self._extra_seq += 1
        extras.append((self._extra_seq, item))
        self.generation += 1
        self._wake()

    def device_records(self, name: str) -> list[TraceRecord]:
        return list(self.records.get(name, ()))

    def device_extras(self, name: str) -> list[tuple[int, Any]]:
        return list(self.extras.get(name, ()))

    # -- waiting -------------------------------------------------------------------------------

    def _wake(self) -> None:
        for event in self._waiters:
            event.set()

    async def wait(self, generation: int, timeout_s: float) -> bool:
        """Wait until :attr:`generation` moves past ``generation`` (True) or ``timeout_s``
        passes (False); returns at once when the feed is closed (False)."""
        if self.closed:
            return False
        if self.generation != generation:
            return True
        event = asyncio.Event()
        self._waiters.add(event)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), timeout_s)
        finally:
            self._waiters.discard(event)
        return not self.closed and self.generation != generation

    @property
    def streams(self) -> int:
        """Streams waiting right now."""
        return len(self._waiters)


__all__ = ["BUDGET", "EXTRAS_PER_DEVICE", "MAX_DEVICES", "PER_DEVICE", "Feed", "Router",
           "per_device_for"]
