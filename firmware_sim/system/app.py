"""User firmware in Python: the application API a simulated device runs.

A firmware is a :class:`Firmware` subclass whose ``setup(particle)`` registers handlers and
timers through the :class:`Particle` facade - the Python shape of Device OS's user API
(``Particle.publish``, ``System.on``, ``Particle.disconnect(CloudDisconnectOptions()
.clearSession(true))``, software timers). A new instance is created on every boot: RAM does not
survive a reset.

Example - the forum workaround::

    class SessionEndWorkaround(Firmware):
        def setup(self, particle):
            self.new_credentials = False
            particle.on_system_event(SystemEvent.NETWORK_CREDENTIALS, self.credentials)
            ...
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from ..communication.event_names import SYSTEM_EVENT_PREFIXES_IN_ORDER
from ..kernel.scheduler import TimerHandle
from ..kernel.world import World
from ..services.log import DeviceLog, LogLevel
from .events import SystemEvent, SystemEventBus, SystemEventHandler
from .features import Feature
from .listening import ListeningMode

EventHandler = Callable[[str, bytes], None]


class ApplicationHost(Protocol):
    """What the application API uses of its device (``system.device.Device`` provides it)."""

    @property
    def world(self) -> World: ...

    @property
    def events(self) -> SystemEventBus: ...

    @property
    def listening(self) -> ListeningMode: ...

    @property
    def log(self) -> DeviceLog: ...

    @property
    def cloud_connected(self) -> bool: ...

    def app_publish(self, name: str, data: str | bytes, *, private: bool, ttl: int) -> bool: ...

    def cloud_connect(self) -> None: ...

    def cloud_disconnect(self, *, clear_session: bool = False) -> None: ...

    def reset(self, reason: str = "user", delay_s: float = 0.0, *,
              safe_mode: bool = False) -> None: ...

    def uptime_ms(self) -> int: ...

    def set_feature(self, feature: Feature, enabled: bool) -> int: ...


class Firmware:
    """Base class for simulated user firmware; override :meth:`setup`."""

    def setup(self, particle: Particle) -> None:
        """Called once per boot, like the Wiring ``setup()``."""


class Particle:
    """The user API of one device for one boot."""

    __slots__ = ("_device", "_subscriptions", "_timers")

    def __init__(self, device: ApplicationHost) -> None:
        self._device = device
        self._subscriptions: list[tuple[str, EventHandler]] = []
        self._timers: list[TimerHandle] = []

    # -- cloud ---------------------------------------------------------------------------------

    def publish(self, name: str, data: str | bytes = "", *, private: bool = True,
                ttl: int = 60) -> bool:
        """Publish an event. Returns False, and the event is lost, unless connected."""
        return self._device.app_publish(name, data, private=private, ttl=ttl)

    def subscribe(self, prefix: str, handler: EventHandler) -> None:
        self._subscriptions.append((prefix, handler))

    def connected(self) -> bool:
        return self._device.cloud_connected

    def connect(self) -> None:
        self._device.cloud_connect()

    def disconnect(self, *, clear_session: bool = False) -> None:
        self._device.cloud_disconnect(clear_session=clear_session)

    # -- system --------------------------------------------------------------------------------

    def on_system_event(self, mask: int | SystemEvent, handler: SystemEventHandler) -> None:
        self._device.events.subscribe(int(mask), handler)

    def reset(self) -> None:
        self._device.reset("user")

    def enable_feature(self, feature: Feature) -> int:
        """``System.enableFeature`` (e.g. ``Feature.DISABLE_LISTENING_MODE``)."""
        return self._device.set_feature(feature, True)

    def disable_feature(self, feature: Feature) -> int:
        return self._device.set_feature(feature, False)

    def listen(self, enable: bool = True) -> None:
        if enable:
            self._device.listening.enter()
        else:
            self._device.listening.exit()

    def millis(self) -> int:
        return self._device.uptime_ms()

    def log(self, message: str, level: LogLevel = LogLevel.INFO) -> None:
        self._device.log.log(level, "app", message)

    # -- timers --------------------------------------------------------------------------------

    def after(self, seconds: float, callback: Callable[[], None]) -> TimerHandle:
        handle = self._device.world.scheduler.call_later(seconds, callback, label="app-timer")
        self._timers.append(handle)
        return handle

    def every(self, seconds: float, callback: Callable[[], None]) -> TimerHandle:
        """Call ``callback`` every ``seconds``; cancel the returned handle to stop."""
        scheduler = self._device.world.scheduler
        control = TimerHandle(callback, (), "app-periodic")

        def tick() -> None:
            if control.cancelled:
                return
            callback()
            if not control.cancelled:
                self._timers.append(scheduler.call_later(seconds, tick, label="app-periodic"))

        self._timers.append(scheduler.call_later(seconds, tick, label="app-periodic"))
        return control

    # -- internal ------------------------------------------------------------------------------

    def dispatch_event(self, name: str, data: bytes) -> None:
        for prefix, handler in list(self._subscriptions):
            if name.startswith(prefix):
                handler(name, data)

    @property
    def subscription_prefixes(self) -> list[str]:
        """What the device subscribes to, in Device OS's order: the system's own prefixes
        (``registerSystemSubscriptions``: ``particle``, ``spark``, registered at start-up),
        then the application's in registration order, each once."""
        prefixes = list(SYSTEM_EVENT_PREFIXES_IN_ORDER)
        for prefix, _ in self._subscriptions:
            if prefix not in prefixes:
                prefixes.append(prefix)
        return prefixes

    def stop(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        self._subscriptions.clear()
