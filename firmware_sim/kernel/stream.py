"""An in-process byte-stream link (TCP-like) on virtual time, beside the datagram link.

How this works
--------------
A :class:`StreamLink` joins two :class:`StreamEnd` objects, ``a`` and ``b``. Each end has an
inbox: a FIFO of segments in flight towards it (data, the peer's orderly FIN, the peer's RST).
``write`` cuts the bytes into segments of at most ``chunk_size`` bytes (all of them when it is
None), appends them to the peer's inbox and schedules one entry per segment that delivers the
inbox's head. A segment is due ``latency_s`` after it was sent, but never before the segment
ahead of it, so bytes arrive in the order written whatever the scheduler's tie-break does and
however ``latency_s`` changes at run time.

Closing:

* ``close()`` - orderly: a FIN follows everything written so far; the peer's ``on_eof`` runs
  once all of it arrived. The closing end takes no more writes and calls its owner back no more
  (data the peer still sends to it is discarded). The peer may go on writing until it closes.
* ``abort()`` - RST: data in flight in either direction is dropped; the peer's ``on_reset`` runs
  after ``latency_s``.
* ``link.reset()`` - the network breaks: everything in flight is dropped and both ends' owners
  (unless they closed first) get ``on_reset`` at the current instant.

A closed end (closed, aborted, or reset) ignores ``write``/``close``/``abort``. The world's
chooser is asked ``fault("stream:<link>:reset")`` per write: when an explorer says yes, the
network breaks at that write (the write is lost and the link resets).

:class:`StreamListener` is the server side: ``connect()`` opens a new link and returns the
client's end; the server's end is handed to ``on_accept`` after ``latency_s``, before any byte
the client wrote. A closed listener refuses: the client end gets ``on_reset``.

Every event leaves one compact record in the trace, node = link name, layer ``link``:
``stream.open``, ``stream.data`` (side, size), ``stream.fin``, ``stream.abort``,
``stream.reset``, ``stream.discarded`` (side, size, why), ``stream.accepted``,
``stream.refused``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from enum import Enum

from .clock import to_micros
from .errors import UsageError
from .scheduler import TimerHandle
from .world import World


class _Kind(Enum):
    OPEN = "open"
    DATA = "data"
    FIN = "fin"
    RST = "rst"


class _Segment:
    __slots__ = ("data", "kind")

    def __init__(self, kind: _Kind, data: bytes) -> None:
        self.kind = kind
        self.data = data


class StreamEnd:
    """One side of a :class:`StreamLink`; its owner sets the ``on_*`` callbacks."""

    def __init__(self, link: StreamLink, side: str) -> None:
        self.link = link
        self.side = side
        self.on_data: Callable[[bytes], None] | None = None
        self.on_eof: Callable[[], None] | None = None
        self.on_reset: Callable[[], None] | None = None
        self._closed = False
        self._peer: StreamEnd = self
        self._inbox: deque[_Segment] = deque()
        # Scheduler entries that will deliver the inbox (one per segment, any entry due at an
        # instant may take the head): cancelled together when the inbox is dropped.
        self._entries: deque[TimerHandle] = deque()
        self._last_due_us = 0

    @property
    def closed(self) -> bool:
        """True once this end was closed or aborted, or the connection was reset."""
        return self._closed

    def write(self, data: bytes) -> None:
        """Send ``data``: delivered to the peer in order after the latency; no-op when closed."""
        if self._closed or not data:
            return
        self.link._write(self, bytes(data))

    def close(self) -> None:
        """Orderly close: a FIN follows everything written so far."""
        if self._closed:
            return
        self._closed = True
        self.link._close(self)

    def abort(self) -> None:
        """Reset the connection: in-flight data is dropped, the peer gets ``on_reset``."""
        if self._closed:
            return
        self._closed = True
        self.link._abort(self)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<StreamEnd {self.link.name}.{self.side} {state}>"


class StreamLink:
    """Two connected :class:`StreamEnd` objects, ``a`` and ``b`` (see the module header)."""

    def __init__(self, world: World, name: str, *, latency_s: float = 0.0,
                 chunk_size: int | None = None) -> None:
        self.world = world
        self.name = name
        self.latency_s = latency_s
        self.chunk_size = chunk_size
        self._label = f"{name}-deliver"
        self._reset_fault = f"stream:{name}:reset"
        self._accept: Callable[[StreamEnd], bool] | None = None
        self.a = StreamEnd(self, "a")
        self.b = StreamEnd(self, "b")
        self.a._peer, self.b._peer = self.b, self.a
        self._emit("stream.open", latency_s=latency_s, chunk_size=chunk_size)

    # -- settings ------------------------------------------------------------------------------

    @property
    def latency_s(self) -> float:
        """One-way latency for segments sent from now on (may change at run time)."""
        return self._latency_s

    @latency_s.setter
    def latency_s(self, value: float) -> None:
        if not value >= 0:
            raise UsageError(f"stream latency must be a non-negative number of seconds, "
                             f"not {value!r}")
        self._latency_s = value

    @property
    def chunk_size(self) -> int | None:
        """Largest piece a write is cut into (None: each write arrives whole)."""
        return self._chunk_size

    @chunk_size.setter
    def chunk_size(self, value: int | None) -> None:
        if value is not None and (isinstance(value, bool) or value < 1):
            raise UsageError(f"stream chunk_size must be None or a positive integer, "
                             f"not {value!r}")
        self._chunk_size = value

    # -- the network breaks --------------------------------------------------------------------

    def reset(self) -> None:
        """Drop everything in flight; both ends' owners (unless closed) get ``on_reset`` now."""
        self._break()

    def _break(self, **fields: object) -> None:
        self._emit("stream.reset", **fields)
        scheduler = self.world.scheduler
        for end in (self.a, self.b):
            _drop_inbox(end)
            if not end._closed:
                end._closed = True
                scheduler.call_soon(_notify_reset, end, label=self._label)

    # -- called by the ends --------------------------------------------------------------------

    def _write(self, source: StreamEnd, data: bytes) -> None:
        if self.world.chooser.fault(self._reset_fault):
            self._break(fault=self._reset_fault)
            return
        self._emit("stream.data", side=source.side, size=len(data))
        target = source._peer
        size = self._chunk_size
        if size is None or len(data) <= size:
            self._send(target, _Segment(_Kind.DATA, data))
            return
        for offset in range(0, len(data), size):
            self._send(target, _Segment(_Kind.DATA, data[offset:offset + size]))

    def _close(self, source: StreamEnd) -> None:
        self._emit("stream.fin", side=source.side)
        self._send(source._peer, _Segment(_Kind.FIN, b""))

    def _abort(self, source: StreamEnd) -> None:
        self._emit("stream.abort", side=source.side)
        target = source._peer
        _drop_inbox(source)
        _drop_inbox(target)
        self._send(target, _Segment(_Kind.RST, b""))

    def _open(self, accept: Callable[[StreamEnd], bool]) -> None:
        """Used by :class:`StreamListener`: ``b`` is offered to ``accept`` before any data."""
        self._accept = accept
        self._send(self.b, _Segment(_Kind.OPEN, b""))

    # -- delivery ------------------------------------------------------------------------------

    def _send(self, target: StreamEnd, segment: _Segment) -> None:
        scheduler = self.world.scheduler
        due_us = max(scheduler.clock.now_us + to_micros(self._latency_s),
                     target._last_due_us)
        target._last_due_us = due_us
        target._entries.append(scheduler.call_at(due_us, self._arrive, target,
                                                 label=self._label))
        target._inbox.append(segment)

    def _arrive(self, target: StreamEnd) -> None:
        segment = target._inbox.popleft()
        entries = target._entries
        while entries and not entries[0].active:  # forget entries that ran
            entries.popleft()
        kind = segment.kind
        if kind is _Kind.DATA:
            callback = target.on_data
            if target._closed or callback is None:
                self._emit("stream.discarded", side=target.side, size=len(segment.data),
                           why="closed" if target._closed else "no on_data")
                return
            callback(segment.data)
        elif kind is _Kind.FIN:
            if not target._closed and target.on_eof is not None:
                target.on_eof()
        elif kind is _Kind.RST:
            if not target._closed:
                target._closed = True
                _notify_reset(target)
        elif self._accept is not None and self._accept(target):
            self._emit("stream.accepted")
        else:
            self._emit("stream.refused")
            target.abort()

    def _emit(self, kind: str, **fields: object) -> None:
        self.world.trace.emit(self.name, "link", kind, **fields)

    def __repr__(self) -> str:
        return f"<StreamLink {self.name} latency={self._latency_s}s chunk={self._chunk_size}>"


def _drop_inbox(end: StreamEnd) -> None:
    """Drop every segment in flight towards ``end``."""
    for entry in end._entries:
        entry.cancel()
    end._entries.clear()
    end._inbox.clear()
    end._last_due_us = 0


def _notify_reset(end: StreamEnd) -> None:
    if end.on_reset is not None:
        end.on_reset()


class StreamListener:
    """The server side: ``connect()`` makes a link whose ``b`` end goes to ``on_accept``."""

    def __init__(self, world: World, name: str, on_accept: Callable[[StreamEnd], None], *,
                 latency_s: float = 0.0, chunk_size: int | None = None) -> None:
        self.world = world
        self.name = name
        self.on_accept = on_accept
        self.latency_s = latency_s
        self.chunk_size = chunk_size
        self.listening = True
        self.connections = 0

    def connect(self) -> StreamEnd:
        """Open a connection; returns the client's end (writable at once)."""
        self.connections += 1
        link = StreamLink(self.world, f"{self.name}-{self.connections}",
                          latency_s=self.latency_s, chunk_size=self.chunk_size)
        link._open(self._offer)
        return link.a

    def close(self) -> None:
        """Stop listening: connections that arrive from now on are refused."""
        self.listening = False

    def _offer(self, end: StreamEnd) -> bool:
        if not self.listening:
            return False
        self.on_accept(end)
        return True


__all__ = ["StreamEnd", "StreamLink", "StreamListener"]
