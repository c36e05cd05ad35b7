"""An in-World byte-stream pair, for scenarios and tests of the sans-IO MQTT objects.

How this works
--------------
:class:`LoopbackPair` has two ends of the :class:`~.stream.ByteStream` shape. ``write`` on one
end queues the bytes for the other and schedules their delivery ``latency_s`` later on the World
scheduler; each scheduled entry takes the queue head, so bytes arrive in order. ``close`` sends
an end-of-stream after the queued bytes; ``abort`` drops them and resets the peer. It is the
stand-in for the kernel's stream link (same end API) until that is wired in.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from firmware_sim.kernel.world import World

_EOF = object()
_RESET = object()


class LoopbackEnd:
    def __init__(self, pair: LoopbackPair, name: str) -> None:
        self.pair = pair
        self.name = name
        self.peer: LoopbackEnd | None = None
        self.on_data: Callable[[bytes], None] | None = None
        self.on_eof: Callable[[], None] | None = None
        self.on_reset: Callable[[], None] | None = None
        self._closed = False
        self._inbox: deque[object] = deque()
        self._gone = False

    @property
    def closed(self) -> bool:
        return self._closed

    def write(self, data: bytes) -> None:
        if not self._closed and data:
            self._send(bytes(data))

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._send(_EOF)

    def abort(self) -> None:
        if not self._closed:
            self._closed = True
            if self.peer is not None:
                self.peer._inbox.clear()
            self._send(_RESET)

    def _send(self, item: object) -> None:
        peer = self.peer
        if peer is None or peer._gone:
            return
        peer._inbox.append(item)
        self.pair.world.call_later(self.pair.latency_s, peer._deliver,
                                   label=f"{self.pair.name}-deliver")

    def _deliver(self) -> None:
        if not self._inbox or self._gone:
            return
        item = self._inbox.popleft()
        if item is _EOF or item is _RESET:
            self._gone = True
            was_closed, self._closed = self._closed, True
            callback = self.on_eof if item is _EOF else self.on_reset
            if callback is not None and not was_closed:
                callback()
            return
        assert isinstance(item, bytes)
        if not self._closed and self.on_data is not None:
            self.on_data(item)


class LoopbackPair:
    def __init__(self, world: World, name: str, *, latency_s: float = 0.02) -> None:
        self.world = world
        self.name = name
        self.latency_s = latency_s
        self.a = LoopbackEnd(self, f"{name}.a")
        self.b = LoopbackEnd(self, f"{name}.b")
        self.a.peer, self.b.peer = self.b, self.a
