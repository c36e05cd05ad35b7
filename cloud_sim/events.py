"""The cloud's event bus: device events and the cloud's own, for streams and tests."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CloudEvent:
    name: str
    data: str
    device_id: str | None
    published_us: int
    ttl: int = 60
    public: bool = False
    product_id: int | None = None
    #: who the event goes to: "cloud" (from a device) or "device" (from the cloud to a device)
    direction: str = "cloud"


Listener = Callable[[CloudEvent], None]


class EventBus:
    def __init__(self, history: int = 1000) -> None:
        self.history: deque[CloudEvent] = deque(maxlen=history)
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def publish(self, event: CloudEvent) -> None:
        self.history.append(event)
        for listener in list(self._listeners):
            listener(event)

    def find(self, name: str | None = None, device_id: str | None = None) -> list[CloudEvent]:
        return [e for e in self.history
                if (name is None or e.name == name)
                and (device_id is None or e.device_id == device_id)]
