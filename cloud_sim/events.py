"""The cloud's event bus: device events, the cloud's own, and those published through the API,
for streams and tests."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from .model import Principal

#: the ``coreid`` event streams show for an event published through the REST API (what the
#: real cloud shows, e.g. docs.particle.io reference/cloud-apis/firmware-update-events)
API_COREID = "api"
#: ... for an event of the cloud's own that concerns no device
INTERNAL_COREID = "particle-internal"


@dataclass(frozen=True, slots=True)
class CloudEvent:
    name: str
    data: str
    device_id: str | None
    published_us: int
    ttl: int = 60
    public: bool = False
    product_id: int | None = None
    #: who the event goes to: "cloud" (from a device) or "device" (from the cloud to a device;
    #: an event published through the API is sent to devices too)
    direction: str = "cloud"
    #: the account that published it with ``POST /v1/devices/events``: its own event streams
    #: see it (None: from a device, the cloud, or a product's ``POST /v1/products/:p/events``,
    #: which goes to the product's streams)
    publisher: Principal | None = None
    #: published through the REST API (streams show ``coreid`` ``api``)
    via_api: bool = False

    @property
    def coreid(self) -> str:
        """What event streams show as the event's ``coreid``."""
        if self.device_id is not None:
            return self.device_id
        return API_COREID if self.via_api else INTERNAL_COREID


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
