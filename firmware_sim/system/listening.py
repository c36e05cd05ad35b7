"""Listening mode (``system_listening_mode.cpp``).

How this works
--------------
Two states, NORMAL and LISTENING. Outside safe mode the feature flag DISABLE_LISTENING_MODE
(``system/features.py``) forbids entering (NOT_ALLOWED). ``enter()`` raises ``setup_begin``
(``wifi_listen_begin``),
pauses the cloud connection (it is torn down and not retried while listening) and enables the
listening-mode consoles (USB serial commands, SoftAP on the Photon). ``exit()`` raises
``setup_end`` and lets the cloud connect again. A device without Wi-Fi credentials enters
listening mode at boot. Entering while already listening is a no-op (START_LISTENING maps
INVALID_STATE to 0); so is exiting while not listening. Given a device log, entering logs
``[system.listen] INFO: Entering listening mode`` before the cloud is paused and exiting logs
``[system.listen] INFO: Exiting listening mode`` before ``setup_end``
(``ListeningModeHandler::enter``/``exit``, ``LOG_SOURCE_CATEGORY("system.listen")``).

The device (``Device._listening_changed``) also leaves its network on entering, as
``ListeningModeHandler::enter`` does (``NetworkManager::deactivateConnections``), and joins it
again on leaving (docs/device-model.md, "Network and listening mode").
"""

from __future__ import annotations

from collections.abc import Callable

from ..kernel.trace import Tracer
from ..services.log import DeviceLog
from .events import SystemEvent, SystemEventBus

LOG = "system.listen"


class ListeningMode:
    __slots__ = ("_allowed", "_events", "_listeners", "_log", "_pause_cloud", "_tracer",
                 "active")

    def __init__(self, tracer: Tracer, events: SystemEventBus,
                 pause_cloud: Callable[[bool], None],
                 allowed: Callable[[], bool] = lambda: True,
                 log: DeviceLog | None = None) -> None:
        self._tracer = tracer
        self._log = log
        self._events = events
        self._pause_cloud = pause_cloud
        self._allowed = allowed
        self.active = False
        self._listeners: list[Callable[[bool], None]] = []

    def on_change(self, listener: Callable[[bool], None]) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    @property
    def allowed(self) -> bool:
        """False outside safe mode when the feature DISABLE_LISTENING_MODE is set
        (``ListeningModeHandler::enter`` answers NOT_ALLOWED)."""
        return self._allowed()

    def enter(self) -> bool:
        """Returns False when already listening, or when listening mode is not allowed."""
        if self.active:
            return False
        if not self._allowed():
            self._tracer.emit("listening.not_allowed", reason="FEATURE_DISABLE_LISTENING_MODE")
            return False
        self.active = True
        self._tracer.emit("listening.enter")
        if self._log is not None:
            self._log.info(LOG, "Entering listening mode")
        self._events.notify(SystemEvent.SETUP_BEGIN, 0)
        self._pause_cloud(True)
        for listener in list(self._listeners):
            listener(True)
        return True

    def exit(self) -> bool:
        if not self.active:
            return False
        self.active = False
        self._tracer.emit("listening.exit")
        if self._log is not None:
            self._log.info(LOG, "Exiting listening mode")
        self._events.notify(SystemEvent.SETUP_END, 0)
        for listener in list(self._listeners):
            listener(False)
        self._pause_cloud(False)
        return True
