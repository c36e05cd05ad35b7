"""An in-process datagram link with latency and chosen loss.

How this works
--------------
A link joins two endpoints. ``send`` on one side appends the datagram to that direction's FIFO
queue and schedules one entry ``latency_s`` later that delivers the queue's head. Because every
entry takes the head, datagrams arrive in the order they were sent even when several are due at
the same instant (the scheduler's tie-break cannot reorder them). Before queueing, the world's
chooser is asked per datagram: the fault point ``fault("link:<name>:drop")`` (always False
unless an explorer injects it), when ``loss`` is not 0 ``chance("link:<name>:loss", loss)``,
then the fault point ``fault("link:<name>:delay")``; so "which datagram was lost" is part of
the replayable run. A delayed datagram (the fault fired) is held back an extra
``uniform("link:<name>:delay_s", 0.5, 3.0)`` seconds and delivered on its own, so later
datagrams may overtake it, as on a real UDP path. Nothing is asked or traced beyond the two
fault questions unless a fault fires, so runs without faults keep their traces. ``loss`` and
``latency_s`` may be changed while the link is in use (an explorer's loss bursts and latency
changes). Either side can ``close``; datagrams in flight to or from a closed side are dropped (a
UDP socket that went away).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from .world import World

Receiver = Callable[[bytes], None]


class DatagramPort(Protocol):
    """One side of a datagram link as a device or cloud sees it."""

    def send(self, data: bytes) -> None: ...

    def close(self) -> None: ...

    @property
    def closed(self) -> bool: ...


class LinkEnd:
    """One side (``"a"`` or ``"b"``) of a :class:`DatagramLink`; ``receiver`` gets each
    datagram that arrives."""

    __slots__ = ("_closed", "_deliver", "_link", "_queue", "_side", "peer", "receiver")

    def __init__(self, link: DatagramLink, side: str) -> None:
        self._link = link
        self._side = side
        self.receiver: Receiver | None = None
        self._closed = False
        self.peer: LinkEnd | None = None
        #: datagrams in flight towards this end (a list while there are any; None when idle)
        self._queue: list[bytes] | None = None
        #: while datagrams are in flight: ``_deliver_head`` bound once, which every delivery
        #: entry calls (one object per busy end, not one per datagram)
        self._deliver: Callable[[], None] | None = None

    @property
    def name(self) -> str:
        """``<link name>.a`` or ``.b`` (made when asked: a fleet has a link per device)."""
        return f"{self._link.name}.{self._side}"

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def link(self) -> DatagramLink:
        """The link this end belongs to."""
        return self._link

    def send(self, data: bytes) -> None:
        peer = self.peer
        if self._closed or peer is None or peer._closed:
            return
        self._link.transmit(self, peer, bytes(data))

    def close(self) -> None:
        self._closed = True
        self._queue = None
        self._deliver = None

    def _deliver_head(self) -> None:
        queue = self._queue
        if not queue:
            return
        data = queue.pop(0)
        if not queue:
            self._queue = self._deliver = None
        if not self._closed and self.receiver is not None:
            self.receiver(data)


class DatagramLink:
    """Two connected :class:`LinkEnd` objects, ``a`` and ``b``. The names of its choice and
    fault points are made when asked, not kept (a fleet has a link per device)."""

    __slots__ = ("_chooser", "_deliver_label", "a", "b", "dropped", "latency_s", "loss", "name",
                 "sent", "world")

    def __init__(self, world: World, name: str, *, latency_s: float = 0.09,
                 loss: float = 0.0) -> None:
        if not 0.0 <= loss <= 1.0:
            raise ValueError("loss must be between 0 and 1")
        if latency_s < 0:
            raise ValueError("latency must not be negative")
        self.world = world
        self.name = name
        self.latency_s = latency_s
        self.loss = loss
        self._chooser = world.chooser
        self.a = LinkEnd(self, "a")
        self.b = LinkEnd(self, "b")
        self.a.peer, self.b.peer = self.b, self.a
        self.sent = 0
        self.dropped = 0
        #: the label of every delivery entry (one string per link, not one per datagram)
        self._deliver_label = f"{name}-deliver"

    def transmit(self, source: LinkEnd, target: LinkEnd, data: bytes) -> None:
        self.sent += 1
        name = self.name
        drop_fault = f"link:{name}:drop"
        if self._chooser.fault(drop_fault):
            self.dropped += 1
            self.world.trace.emit(name, "link", "datagram.lost", direction=source.name,
                                  size=len(data), fault=drop_fault)
            return
        if self.loss and self._chooser.chance(f"link:{name}:loss", self.loss):
            self.dropped += 1
            self.world.trace.emit(name, "link", "datagram.lost", direction=source.name,
                                  size=len(data))
            return
        delay_fault = f"link:{name}:delay"
        if self._chooser.fault(delay_fault):
            extra = self._chooser.uniform(f"{delay_fault}_s", 0.5, 3.0)
            self.world.trace.emit(name, "link", "datagram.delayed", direction=source.name,
                                  size=len(data), extra_s=round(extra, 6), fault=delay_fault)
            self.world.scheduler.post_later(self.latency_s + extra, self._deliver_one, target,
                                            data, label=self._deliver_label)
            return
        queue = target._queue
        if queue is None:
            queue = target._queue = []
        deliver = target._deliver
        if deliver is None:
            deliver = target._deliver = target._deliver_head
        queue.append(data)
        # an entry without a handle that calls the end's shared bound method: one tuple per
        # datagram in flight (a fleet has tens of thousands at once)
        self.world.scheduler.post_later(self.latency_s, deliver, label=self._deliver_label)

    def _deliver_one(self, target: LinkEnd, data: bytes) -> None:
        if not target.closed and target.receiver is not None:
            target.receiver(data)
