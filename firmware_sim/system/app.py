"""User firmware in Python: the application API a simulated device runs.

A firmware is a :class:`Firmware` subclass whose ``setup(particle)`` registers handlers and
timers through the :class:`Particle` facade - the Python shape of Device OS's user API
(``Particle.publish``, ``System.on``, ``Particle.disconnect(CloudDisconnectOptions()
.clearSession(true))``, software timers). A new instance is created on every boot: RAM does not
survive a reset.

Cloud functions and variables (``Particle.function`` / ``Particle.variable``,
``system/src/system_cloud.cpp``): a name of 1-64 bytes of UTF-8 (``USER_FUNC_KEY_LENGTH``,
``USER_VAR_KEY_LENGTH``; an empty name is refused too, an fwsim choice), at most 100 of each
(``USER_FUNC_MAX_COUNT``, ``USER_VAR_MAX_COUNT``); registering a name again replaces its handler
(value, type) in place; each call returns whether it was registered. A function handler takes
the argument (text) and returns an int (int32, wrapped like a C ``int``); a variable holds a
value or a getter called at each request, of type bool, int, double or string. Nothing is
allocated until the first registration (an idle fleet device keeps two empty slots).

User code that raises: every call into the firmware (its construction and ``setup``, timers,
event and system-event handlers, function handlers and variable getters) goes through
:meth:`Particle.run_user`, which hands an exception to the device's ``firmware_failed``: the
device either lets it propagate (a test sees the bug) or panics as a hard fault does on
hardware and abandons the current step (a served world keeps running); see
``FirmwareOptions.firmware_errors``. That includes ``SystemExit`` and ``KeyboardInterrupt``
raised by the firmware: a firmware cannot end the process that serves other devices.

Software timers (``after``, ``every``; Device OS's ``Timer`` on FreeRTOS software timers, 1 ms
tick: ``configTICK_RATE_HZ`` 1000 in ``hal/src/rtl872x/freertos/FreeRTOSConfig.h``): a period
must be a finite number > 0 - FreeRTOS's ``prvInitialiseNewTimer`` asserts
``xTimerPeriodInTicks > 0`` (``timers.c``) - so ``every`` with a period <= 0 raises
``ValueError`` in the firmware (with ``firmware_errors="panic"`` the device panics, as the
assert would); a positive period shorter than the tick is one tick. ``after`` takes a delay >= 0
(negative or not finite: ``ValueError``) and a delay shorter than the tick, 0 included, is one
tick: a firmware that re-arms ``after(0, f)`` from ``f`` advances the virtual clock 1 ms per
call instead of holding every other device on one instant. Each timer keeps one handle in the
boot's table (``every``: its control and its one re-armed entry, until it is cancelled;
``after``: until it fires or is cancelled), so a long-running timer holds no growing list.

Example - the forum workaround::

    class SessionEndWorkaround(Firmware):
        def setup(self, particle):
            self.new_credentials = False
            particle.on_system_event(SystemEvent.NETWORK_CREDENTIALS, self.credentials)
            ...
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Protocol, TypeVar

from ..communication.event_names import SYSTEM_EVENT_PREFIXES_IN_ORDER
from ..communication.wire import (
    MAX_FUNCTION_KEY_LENGTH,
    MAX_VARIABLE_KEY_LENGTH,
    VariableType,
    VariableValue,
    encode_variable,
)
from ..kernel.scheduler import StepAborted, TimerHandle
from ..kernel.world import World
from ..services.log import DeviceLog, LogLevel
from .events import SystemEvent, SystemEventBus, SystemEventHandler
from .features import Feature
from .listening import ListeningMode

EventHandler = Callable[[str, bytes], None]
T = TypeVar("T")
FunctionHandler = Callable[[str], int]
#: a variable's value, or a getter called at each request
VariableSource = VariableValue | Callable[[], VariableValue]
#: ``USER_FUNC_MAX_COUNT`` / ``USER_VAR_MAX_COUNT`` (``system/inc/system_cloud.h``)
MAX_FUNCTIONS = 100
MAX_VARIABLES = 100
#: one FreeRTOS tick (``configTICK_RATE_HZ`` 1000): the shortest period or delay of a timer
TICK_S = 0.001
_TYPE_NAMES = {"bool": VariableType.BOOLEAN, "int": VariableType.INT,
               "double": VariableType.DOUBLE, "string": VariableType.STRING}


def _variable_type(value: VariableSource, kind: VariableType | str | None
                   ) -> VariableType | None:
    """The type a variable is registered with: given, or that of its value (a getter needs
    one given)."""
    if kind is not None:
        if isinstance(kind, VariableType):
            return kind
        return _TYPE_NAMES.get(kind) if isinstance(kind, str) else None
    if isinstance(value, bool):
        return VariableType.BOOLEAN
    if isinstance(value, int):
        return VariableType.INT
    if isinstance(value, float):
        return VariableType.DOUBLE
    if isinstance(value, str):
        return VariableType.STRING
    return None


def _valid_key(name: object, limit: int) -> bool:
    if not isinstance(name, str) or not name:
        return False
    try:
        return len(name.encode("utf-8")) <= limit
    except UnicodeEncodeError:
        return False


def _timer_period(seconds: object, api: str, what: str, *, allow_zero: bool) -> float:
    """``seconds`` as a timer's period or delay: at least one tick (module header); a
    ``ValueError`` for a value Device OS's timers cannot take."""
    valid = (isinstance(seconds, int | float) and not isinstance(seconds, bool)
             and math.isfinite(seconds) and (seconds >= 0 if allow_zero else seconds > 0))
    if not valid:
        bound = ">= 0" if allow_zero else "> 0 (a FreeRTOS timer's period is at least 1 tick)"
        raise ValueError(f"Particle.{api}: the {what} must be a finite number of seconds "
                         f"{bound}, not {seconds!r}"[:200])
    assert isinstance(seconds, int | float)
    return TICK_S if seconds < TICK_S else seconds


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

    def firmware_failed(self, exc: BaseException, where: str) -> None:
        """User firmware raised ``exc`` in ``where``: return to let it propagate, or raise
        ``StepAborted`` after handling it."""


class Firmware:
    """Base class for simulated user firmware; override :meth:`setup`."""

    def setup(self, particle: Particle) -> None:
        """Called once per boot, like the Wiring ``setup()``."""


class _OneShotTimer(TimerHandle):
    """The handle of ``Particle.after``: leaves its boot's timer table when it fires or is
    cancelled."""

    __slots__ = ("_particle", "_user_callback")

    def __init__(self, particle: Particle, callback: Callable[[], None]) -> None:
        super().__init__(_OneShotTimer._fire, None, "app-timer")
        self._particle = particle
        self._user_callback = callback

    def _fire(self) -> None:
        particle = self._particle
        particle._timers.pop(self, None)
        particle.run_user("a timer", self._user_callback)

    def cancel(self) -> None:
        self._particle._timers.pop(self, None)
        self._user_callback = _nothing  # kept alive no longer (``TimerHandle.cancel``)
        super().cancel()


class _PeriodicControl(TimerHandle):
    """The handle ``Particle.every`` returns (never scheduled itself): cancelling it cancels the
    timer's one re-armed entry and takes both out of the boot's timer table."""

    __slots__ = ("_particle", "entry")

    def __init__(self, particle: Particle, callback: Callable[[], None]) -> None:
        super().__init__(callback, (), "app-periodic")
        self._particle = particle
        #: the scheduler entry re-armed on each tick
        self.entry: TimerHandle | None = None

    def cancel(self) -> None:
        timers = self._particle._timers
        timers.pop(self, None)
        entry = self.entry
        if entry is not None:
            timers.pop(entry, None)
            entry.cancel()
            self.entry = None
        super().cancel()


def _nothing() -> None:
    """What a cancelled one-shot holds instead of the firmware's callback."""


class Particle:
    """The user API of one device for one boot."""

    __slots__ = ("_device", "_functions", "_subscriptions", "_timers", "_variables")

    def __init__(self, device: ApplicationHost) -> None:
        self._device = device
        self._subscriptions: list[tuple[str, EventHandler]] = []
        #: this boot's timer handles (an ordered set): cancelled by ``stop``
        self._timers: dict[TimerHandle, None] = {}
        #: registered functions and variables, in registration order (None until the first)
        self._functions: dict[str, FunctionHandler] | None = None
        self._variables: dict[str, tuple[VariableType, VariableSource]] | None = None

    # -- cloud ---------------------------------------------------------------------------------

    def publish(self, name: str, data: str | bytes = "", *, private: bool = True,
                ttl: int = 60) -> bool:
        """Publish an event. Returns False, and the event is lost, unless connected."""
        return self._device.app_publish(name, data, private=private, ttl=ttl)

    def subscribe(self, prefix: str, handler: EventHandler) -> None:
        self._subscriptions.append((prefix, handler))

    def connected(self) -> bool:
        return self._device.cloud_connected

    def function(self, name: str, handler: FunctionHandler) -> bool:
        """``Particle.function``: expose ``handler(argument) -> int`` as ``name``; False (and
        nothing registered) for a bad name, a handler that is not callable, or a 101st."""
        if not _valid_key(name, MAX_FUNCTION_KEY_LENGTH) or not callable(handler):
            return False
        self._functions = self._register(self._functions, name, handler, MAX_FUNCTIONS,
                                         "functions")
        return name in self._functions

    def variable(self, name: str, value: VariableSource,
                 type: VariableType | str | None = None) -> bool:
        """``Particle.variable``: expose ``value`` (or a getter's result, read at each request)
        as ``name``, of ``type`` (``"bool"``, ``"int"``, ``"double"``, ``"string"`` or a
        :class:`VariableType`; taken from the value when not given, required with a getter).
        False (nothing registered) for a bad name or type, or a 101st variable."""
        kind = _variable_type(value, type)
        if not _valid_key(name, MAX_VARIABLE_KEY_LENGTH) or kind is None:
            return False
        self._variables = self._register(self._variables, name, (kind, value), MAX_VARIABLES,
                                         "variables")
        return name in self._variables

    def _register(self, table: dict[str, T] | None, name: str, entry: T, limit: int,
                  what: str) -> dict[str, T]:
        """``table`` (made on the first registration) with ``name`` set to ``entry``, or
        unchanged, with Device OS's ``Too many cloud <what>``, when it is new and ``limit``
        names are registered already."""
        if table is None:
            table = {}
        if name not in table and len(table) >= limit:
            self._device.log.log(LogLevel.ERROR, "system", f"Too many cloud {what}")
        else:
            table[name] = entry
        return table

    def connect(self) -> None:
        self._device.cloud_connect()

    def disconnect(self, *, clear_session: bool = False) -> None:
        self._device.cloud_disconnect(clear_session=clear_session)

    # -- system --------------------------------------------------------------------------------

    def on_system_event(self, mask: int | SystemEvent, handler: SystemEventHandler) -> None:
        def guarded(event: SystemEvent, param: int) -> None:
            self.run_user("a system event handler", handler, event, param)

        self._device.events.subscribe(int(mask), guarded)

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
        """Call ``callback`` once, ``seconds`` from now (at least one tick: module header);
        cancel the returned handle to stop it."""
        delay_s = _timer_period(seconds, "after", "delay", allow_zero=True)
        handle = _OneShotTimer(self, callback)
        self._timers[handle] = None
        self._device.world.scheduler.schedule(handle, delay_s)
        return handle

    def every(self, seconds: float, callback: Callable[[], None]) -> TimerHandle:
        """Call ``callback`` every ``seconds`` (> 0; at least one tick: module header); cancel
        the returned handle to stop."""
        period_s = _timer_period(seconds, "every", "period", allow_zero=False)
        scheduler = self._device.world.scheduler
        control = _PeriodicControl(self, callback)

        def tick(entry: TimerHandle) -> None:
            if control.cancelled:
                return
            self.run_user("a timer", callback)
            if not control.cancelled:
                scheduler.schedule(entry, period_s)  # the same entry, re-armed

        # one entry re-armed on each tick: the same tie-break draw as a new ``call_later``
        entry = control.entry = TimerHandle(tick, None, "app-periodic")
        self._timers[control] = None
        self._timers[entry] = None
        scheduler.schedule(entry, period_s)
        return control

    # -- internal ------------------------------------------------------------------------------

    def run_user(self, where: str, code: Callable[..., T], *args: object) -> T:
        """``code(*args)``, user firmware code; an exception goes to the device's
        ``firmware_failed`` (module header) and, when that returns, propagates."""
        try:
            return code(*args)
        except StepAborted:
            raise
        except BaseException as exc:  # SystemExit and KeyboardInterrupt too: module header
            self._device.firmware_failed(exc, where)
            raise

    def dispatch_event(self, name: str, data: bytes) -> None:
        for prefix, handler in list(self._subscriptions):
            if name.startswith(prefix):
                self.run_user(f"the handler of {prefix!r}", handler, name, data)

    @property
    def function_names(self) -> list[str]:
        return list(self._functions or ())

    @property
    def variable_types(self) -> dict[str, VariableType]:
        return {name: kind for name, (kind, _) in (self._variables or {}).items()}

    def call_function(self, name: str, argument: str) -> int | None:
        """Run the function ``name`` (None: no such function, as ``userFuncSchedule``)."""
        handler = (self._functions or {}).get(name)
        if handler is None:
            return None
        return self.run_user(f"function {name!r}", lambda: int(handler(argument)))

    def variable_value(self, name: str) -> tuple[VariableType, bytes] | None:
        """The type and encoded value of the variable ``name`` (None: no such variable)."""
        found = (self._variables or {}).get(name)
        if found is None:
            return None
        kind, source = found

        def read() -> bytes:
            return encode_variable(kind, source() if callable(source) else source)

        return kind, self.run_user(f"variable {name!r}", read)

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
        for timer in list(self._timers):  # a one-shot leaves the table as it is cancelled
            timer.cancel()
        self._timers.clear()
        self._subscriptions.clear()
        self._functions = self._variables = None
