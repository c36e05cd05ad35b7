"""System events with Device OS numbering (``system/inc/system_event.h``).

Subscribers register with a mask of event bits. ``notify`` queues the event; the queue is drained
in order on the device's application context (a scheduler entry at the same instant), which is
how Device OS delivers system events to application handlers: asynchronously, in the order they
were raised.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum, IntFlag

from ..kernel.scheduler import Scheduler
from ..kernel.trace import Tracer


class SystemEvent(IntFlag):
    SETUP_BEGIN = 1 << 1  # wifi_listen_begin
    SETUP_UPDATE = 1 << 2  # wifi_listen_update
    SETUP_END = 1 << 3  # wifi_listen_end
    NETWORK_CREDENTIALS = 1 << 4
    NETWORK_STATUS = 1 << 5
    CLOUD_STATUS = 1 << 6
    BUTTON_STATUS = 1 << 7
    FIRMWARE_UPDATE = 1 << 8
    FIRMWARE_UPDATE_PENDING = 1 << 9
    RESET_PENDING = 1 << 10
    RESET = 1 << 11
    BUTTON_CLICK = 1 << 12
    BUTTON_FINAL_CLICK = 1 << 13
    TIME_CHANGED = 1 << 14
    LOW_BATTERY = 1 << 15
    BATTERY_STATE = 1 << 16
    POWER_SOURCE = 1 << 17
    OUT_OF_MEMORY = 1 << 18
    BLE_PROV_MODE = 1 << 19
    FIRMWARE_UPDATE_STATUS = 1 << 20
    AUX_POWER_STATE = 1 << 21


ALL_EVENTS = 0xFFFFFFFFFFFFFFFF

# Aliases with the Device OS names.
WIFI_LISTEN_BEGIN = SystemEvent.SETUP_BEGIN
WIFI_LISTEN_UPDATE = SystemEvent.SETUP_UPDATE
WIFI_LISTEN_END = SystemEvent.SETUP_END


class NetworkCredentials(IntEnum):
    ADDED = 1
    CLEARED = 2


class CloudStatus(IntEnum):
    DISCONNECTED = 0
    CONNECTING = 1
    HANDSHAKE = 2
    SESSION_RESUME = 3
    CONNECTED = 8
    DISCONNECTING = 9


class NetworkStatus(IntEnum):
    POWERING_OFF = 2
    OFF = 3
    POWERING_ON = 4
    ON = 5
    CONNECTING = 6
    CONNECTED = 7
    DISCONNECTING = 10
    DISCONNECTED = 11


class BleProvMode(IntEnum):
    CONNECTED = 0
    DISCONNECTED = 1
    HANDSHAKE_FAILED = 2
    HANDSHAKE_DONE = 3


class TimeChanged(IntEnum):
    MANUALLY = 0
    SYNC = 1


class FirmwareUpdate(IntEnum):
    BEGIN = 0
    COMPLETE = 1
    PROGRESS = 2
    FAILED = -1


_PARAM_ENUMS: dict[SystemEvent, type[IntEnum]] = {
    SystemEvent.NETWORK_CREDENTIALS: NetworkCredentials,
    SystemEvent.CLOUD_STATUS: CloudStatus,
    SystemEvent.NETWORK_STATUS: NetworkStatus,
    SystemEvent.BLE_PROV_MODE: BleProvMode,
    SystemEvent.TIME_CHANGED: TimeChanged,
    SystemEvent.FIRMWARE_UPDATE: FirmwareUpdate,
}


def param_name(event: SystemEvent, param: int) -> str:
    enum = _PARAM_ENUMS.get(event)
    if enum is not None:
        try:
            return enum(param).name.lower()
        except ValueError:
            pass
    return str(param)


def event_name(event: SystemEvent) -> str:
    return (event.name or str(int(event))).lower()


SystemEventHandler = Callable[[SystemEvent, int], None]


@dataclass(slots=True)
class _Subscription:
    mask: int
    handler: SystemEventHandler


class SystemEventBus:
    """Queues system events and delivers them, in order, to subscribers whose mask matches."""

    __slots__ = (
        "_drain_scheduled", "_queue", "_scheduler", "_subscriptions", "_tracer", "enabled",
    )

    def __init__(self, scheduler: Scheduler, tracer: Tracer) -> None:
        self._scheduler = scheduler
        self._tracer = tracer
        self._subscriptions: list[_Subscription] = []
        self._queue: list[tuple[SystemEvent, int]] = []
        self._drain_scheduled = False
        self.enabled = True

    def subscribe(self, mask: int, handler: SystemEventHandler) -> Callable[[], None]:
        subscription = _Subscription(int(mask), handler)
        self._subscriptions.append(subscription)
        return lambda: self._subscriptions.remove(subscription)

    def clear(self) -> None:
        """Forget subscribers and queued events (RAM is lost on reboot)."""
        self._subscriptions.clear()
        self._queue.clear()

    def notify(self, event: SystemEvent, param: int = 0) -> None:
        self._tracer.emit("system_event", event=event_name(event), param=int(param),
                          param_name=param_name(event, param))
        if not self.enabled:
            return
        self._queue.append((event, int(param)))
        if not self._drain_scheduled:
            self._drain_scheduled = True
            self._scheduler.call_soon(self._drain, label="system-events")

    def _drain(self) -> None:
        self._drain_scheduled = False
        while self._queue:
            event, param = self._queue.pop(0)
            for subscription in list(self._subscriptions):
                if subscription.mask & int(event):
                    subscription.handler(event, param)
