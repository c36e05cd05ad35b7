"""System-layer cloud connection: connect/disconnect and ``Spark_Handshake``.

How this works
--------------
States (all transitions live in this file):

    DISCONNECTED --connect() & network ready--> SOCKET_CONNECTING --socket up--> HANDSHAKING
    HANDSHAKING --resumed / full handshake--> HANDSHAKE_PENDING --all messages acked--> CONNECTED
    any state --disconnect(), network lost, protocol error--> DISCONNECTED (then reconnect if
    a connection is still wanted)

``cloud_status`` events: ``connecting`` (1, with log ``Cloud: connecting``) when an attempt
starts; ``handshake`` (2) or ``session_resume`` (3) when the protocol reports how it
established; ``connected`` (8, log ``Cloud connected``) once every handshake message is acked,
preceded by ``All handshake messages have been processed`` when ``Spark_Handshake`` ended with
messages still awaiting their ACK (``clientMessagesProcessed``; not when none was left).
On the way down ``disconnecting`` (9) only if it was connected, then ``disconnected`` (0).

After the protocol reports (``Spark_Handshake`` in Device OS
``system/src/system_cloud_internal.cpp``):

* full handshake: notify ``handshake``; the claim-code rule (``claiming.py``: publish
  ``spark/device/claim/code`` if a code is pending); presence announcement (TCP only); time
  request;
* resume: notify ``session_resume``; log ``cloud connected from existing session.``; the
  claim-code rule (publishes nothing unless the firmware option ``send_claim_code_on_resume``
  models the fix);
* both: ``spark/device/safemode`` in safe mode, ``spark/device/last_reset`` once per boot, the
  firmware-update flags, then the application describe and subscriptions (each skipped when the
  session's cloud already has the same checksum).

``disconnect(clear_session=True)`` saves a zeroed session (``Clearing session data``) at once when
disconnected, otherwise while tearing the connection down, so the next connection is a full
handshake.

Rule for user publishes (documented in docs/device-model.md): an application ``publish`` only
goes out in state CONNECTED; in any other state - including the whole handshake - it returns
False and the event is lost, which is what users observe on real devices.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from ..communication.event_names import (
    KEY_ERROR_EVENT,
    LAST_RESET_EVENT,
    SAFE_MODE_EVENT,
    UPDATES_ENABLED_EVENT,
    UPDATES_FORCED_EVENT,
)
from ..communication.protocol import (
    DeviceIdentity,
    DeviceProtocol,
    ProtocolOptions,
    ProtocolResult,
)
from ..communication.session import SessionPersist
from ..communication.wire import VariableType
from ..kernel.link import DatagramPort, Receiver
from ..kernel.scheduler import Scheduler, TimerHandle
from ..kernel.trace import Tracer
from ..services.log import DeviceLog
from .claiming import ClaimCodeRules
from .events import CloudStatus, SystemEvent, SystemEventBus, TimeChanged

LOG = "system"

CloudConnector = Callable[[Receiver], DatagramPort]
#: ``handleServerMovedRequest(payload, respond)``: ``respond(system_error)`` answers the cloud
ServerMovedHandler = Callable[[bytes, Callable[[int], None]], None]


class CloudState(Enum):
    DISCONNECTED = "disconnected"
    SOCKET_CONNECTING = "socket_connecting"
    HANDSHAKING = "handshaking"
    HANDSHAKE_PENDING = "handshake_pending"
    CONNECTED = "connected"


#: ``SPARK_CLOUD_DISCONNECT_OPTION_CLEAR_SESSION`` (``system/inc/system_cloud.h``)
CLEAR_SESSION = 0x04

#: ``ParticleKeyErrorFlag::SERVER_SETTINGS_CORRUPTED`` (``system/inc/system_cloud.h``): the
#: server key (2) and address (8) failed validation at start-up and were restored
SERVER_SETTINGS_CORRUPTED = 2 | 8

_PANIC_NAMES = {1: "hard_fault", 3: "memory_fault", 4: "bus_fault", 5: "usage_fault",
                8: "out_of_heap", 10: "assert_failed", 13: "stack_overflow"}


def reset_reason_event_data(reason: str, data: int = 0) -> str:
    """``formatResetReasonEventData``: the reason string, and for a panic ``, <name>`` (the
    panic code's name where Device OS has one, else the number)."""
    if reason != "panic":
        return reason
    return f"panic, {_PANIC_NAMES.get(data, str(data))}"


@dataclass(frozen=True)
class CloudTiming:
    #: ``Cloud: connecting`` until the socket is open (the DNS lookup of the server included)
    socket_connect_s: float = 0.08
    reconnect_backoff_s: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0)


class HandshakeQuestions(Protocol):
    """What a handshake asks the device at the time (the device answers from its state)."""

    def app_describe(self) -> bytes: ...

    def app_subscriptions(self) -> list[str]: ...

    def send_app_description(self) -> bool:
        """``system_mode() != AUTOMATIC || APPLICATION_SETUP_DONE``: send the application
        DESCRIBE and subscriptions after the handshake."""

    def time_known(self) -> bool:
        """``hal_rtc_time_is_valid() || spark_sync_time_last() != 0``: a resume skips the time
        request when the device already knows the time."""

    def call_function(self, name: str, argument: str) -> int | None:
        """Run the application's function ``name`` (None: none of that name)."""

    def variable_value(self, name: str) -> tuple[VariableType, bytes] | None:
        """The type and encoded value of the application's variable ``name`` (None: none)."""


@dataclass(slots=True)
class HandshakeInputs:
    """What the system layer publishes during a handshake (set by the device)."""

    is_tcp: bool
    publish_reset_info: bool
    reset_reason: str | None
    updates_enabled: bool
    updates_forced: bool
    #: asked during each handshake (one object, not four callables: a fleet has many devices)
    device: HandshakeQuestions
    safe_mode: bool = False
    #: panic code of a ``panic`` reset (``HAL_Core_Get_Last_Reset_Info``'s data)
    reset_data: int = 0
    #: ``particle_key_errors``: published as ``spark/device/key/error`` when not 0
    key_errors: int = 0


class CloudConnection:
    """The system's view of the cloud connection of one device."""

    __slots__ = (
        "_clear_session_on_disconnect", "_events", "_failures", "_last_reset_sent", "_log",
        "_on_cloud_event", "_on_server_moved", "_on_time", "_scheduler", "_session", "_timer",
        "_tracer", "blocked", "claiming", "connector", "handshakes", "inputs", "network_ready",
        "protocol", "state", "time_synced", "timing", "want_connected",
    )

    def __init__(self, *, scheduler: Scheduler, tracer: Tracer, log: DeviceLog,
                 events: SystemEventBus, claiming: ClaimCodeRules, session: SessionPersist,
                 identity: DeviceIdentity, protocol_options: ProtocolOptions,
                 inputs: HandshakeInputs, system_describe: Callable[[], bytes],
                 on_cloud_event: Callable[[str, bytes], None],
                 timing: CloudTiming | None = None,
                 on_server_moved: ServerMovedHandler | None = None,
                 on_time: Callable[[int], None] | None = None) -> None:
        self._scheduler = scheduler
        self._tracer = tracer
        self._log = log
        self._events = events
        self.claiming = claiming
        self._session = session
        self.inputs = inputs
        self.timing = timing or CloudTiming()
        self._on_cloud_event = on_cloud_event
        self._on_time = on_time
        #: a time response arrived on this boot (``spark_sync_time_last() != 0``)
        self.time_synced = False
        self._on_server_moved: ServerMovedHandler = (
            on_server_moved or (lambda _payload, respond: respond(-120)))  # NOT_SUPPORTED
        self.protocol = DeviceProtocol(scheduler=scheduler, tracer=tracer.child("comm"),
                                       log=log, session=session, identity=identity,
                                       options=protocol_options, listener=self,
                                       system_describe=system_describe)
        self.state = CloudState.DISCONNECTED
        self.want_connected = False
        self.connector: CloudConnector | None = None
        self.network_ready = False
        self.blocked = False  # listening mode pauses the cloud connection
        self._timer: TimerHandle | None = None
        self._failures = 0
        self._last_reset_sent = False
        self._clear_session_on_disconnect = False
        self.handshakes = {"full": 0, "resumed": 0}

    # -- control -------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self.state is CloudState.CONNECTED

    def connect(self) -> None:
        self.want_connected = True
        self._maybe_start()

    def disconnect(self, *, clear_session: bool = False) -> None:
        self.want_connected = False
        self._cancel_timer()
        if clear_session:
            if self.state is CloudState.DISCONNECTED:
                self._clear_session()
            else:
                self._clear_session_on_disconnect = True
        self._teardown()

    def set_network_ready(self, ready: bool) -> None:
        self.network_ready = ready
        if ready:
            self._maybe_start()
        else:
            self._cancel_timer()
            self._teardown()

    def set_blocked(self, blocked: bool) -> None:
        self.blocked = blocked
        if blocked:
            self._cancel_timer()
            self._teardown()
        else:
            self._maybe_start()

    def shutdown(self) -> None:
        """Drop everything without events (reboot / power loss)."""
        self._cancel_timer()
        self.protocol.close()
        self.state = CloudState.DISCONNECTED

    # -- internals -----------------------------------------------------------------------------

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _set_state(self, state: CloudState) -> None:
        self.state = state
        self._tracer.emit("cloud.state", state=state.value)

    def _maybe_start(self) -> None:
        if (self.state is not CloudState.DISCONNECTED or not self.want_connected
                or not self.network_ready or self.blocked or self._timer is not None):
            return
        if self.connector is None:
            self._tracer.emit("cloud.no_connector")
            return
        self._set_state(CloudState.SOCKET_CONNECTING)
        self._log.info(LOG, "Cloud: connecting")
        self._events.notify(SystemEvent.CLOUD_STATUS, CloudStatus.CONNECTING)
        self._timer = self._scheduler.call_later(self.timing.socket_connect_s,
                                                 self._socket_connected, label="cloud-socket")

    def _socket_connected(self) -> None:
        self._timer = None
        if self.state is not CloudState.SOCKET_CONNECTING or self.connector is None:
            return
        port = self.connector(self.protocol.datagram_received)
        self._log.info(LOG, "Cloud socket connected")
        self._log.info(LOG, "Starting handshake: presense_announce="
                       f"{1 if self.inputs.is_tcp else 0}")
        self._set_state(CloudState.HANDSHAKING)
        self.protocol.begin(port)

    def _teardown(self) -> None:
        if self.state is CloudState.DISCONNECTED:
            return
        was_connected = self.state is CloudState.CONNECTED
        if was_connected:
            self._log.info(LOG, "Cloud: disconnecting")
            self._events.notify(SystemEvent.CLOUD_STATUS, CloudStatus.DISCONNECTING)
        if self._clear_session_on_disconnect:
            self._clear_session_on_disconnect = False
            self._clear_session()
        self.protocol.close()
        self._set_state(CloudState.DISCONNECTED)
        self._log.info(LOG, "Cloud: disconnected")
        self._events.notify(SystemEvent.CLOUD_STATUS, CloudStatus.DISCONNECTED)

    def _clear_session(self) -> None:
        self._log.info(LOG, "Clearing session data")
        self._session.clear()

    def _retry(self, delay: float) -> None:
        self._cancel_timer()
        if not self.want_connected:
            return
        self._tracer.emit("cloud.reconnect_scheduled", delay_s=delay)
        self._timer = self._scheduler.call_later(delay, self._retry_due, label="cloud-retry")

    def _retry_due(self) -> None:
        self._timer = None
        self._maybe_start()

    def _backoff(self) -> float:
        delays = self.timing.reconnect_backoff_s
        delay = delays[min(self._failures, len(delays) - 1)]
        self._failures += 1
        return delay

    # -- ProtocolListener ----------------------------------------------------------------------

    def protocol_begin_result(self, code: ProtocolResult) -> None:
        if self.state is not CloudState.HANDSHAKING:
            return
        if code is ProtocolResult.SESSION_RESUMED:
            self.handshakes["resumed"] += 1
            self._tracer.emit("handshake.resumed", claim_code_pending=self.claiming.code_pending)
            self._events.notify(SystemEvent.CLOUD_STATUS, CloudStatus.SESSION_RESUME)
            self._log.info(LOG, "cloud connected from existing session.")
            self.claiming.after_handshake(resumed=True, publish=self._publish_private)
            if not self.inputs.device.time_known():
                self.protocol.send_time_request()
            self._after_handshake()
        elif code is ProtocolResult.NO_ERROR:
            self.handshakes["full"] += 1
            self._tracer.emit("handshake.full", claim_code_pending=self.claiming.code_pending)
            self._events.notify(SystemEvent.CLOUD_STATUS, CloudStatus.HANDSHAKE)
            self.claiming.after_handshake(resumed=False, publish=self._publish_private)
            if self.inputs.is_tcp:
                self._tracer.emit("presence.announce")
            self.protocol.send_time_request()
            self._after_handshake()
        else:
            self._handshake_failed(code)

    def _handshake_failed(self, code: ProtocolResult,
                          retry_code: ProtocolResult | None = None) -> None:
        """``handle_cloud_connection``: ``WARN("Cloud handshake failed, code=%d")``, then
        ``cloud_disconnect``; a discarded session is retried at once, anything else backs off."""
        self._log.warn(LOG, f"Cloud handshake failed, code={int(code)}")
        self._teardown()
        cause = retry_code or code
        self._retry(0.0 if cause is ProtocolResult.IO_ERROR_DISCARD_SESSION
                    else self._backoff())

    def protocol_error(self, code: ProtocolResult) -> None:
        if self.state is CloudState.DISCONNECTED:
            return
        self._tracer.emit("cloud.connection_error", code=code.name)
        if self.state is CloudState.HANDSHAKE_PENDING:
            # The handshake messages were never all acknowledged: still a failed handshake.
            # ``handle_cloud_connection`` then finds the communication loop failing and reports
            # MESSAGE_TIMEOUT, whatever the protocol error was.
            self._handshake_failed(ProtocolResult.MESSAGE_TIMEOUT, retry_code=code)
            return
        self._teardown()
        self._retry(0.0 if code is ProtocolResult.IO_ERROR_DISCARD_SESSION else self._backoff())

    def protocol_server_moved(self, payload: bytes, respond: Callable[[int], None]) -> None:
        self._on_server_moved(payload, respond)

    def protocol_event(self, name: str, data: bytes) -> None:
        self._on_cloud_event(name, data)

    def protocol_signal(self, on: bool) -> None:
        # ``spark_signal``: the RGB LED's rainbow ("shouting rainbows"), as the control
        # request START_NYAN_SIGNAL starts it
        self._tracer.emit("led.nyan", on=on, via="cloud")

    def protocol_function_call(self, name: str, argument: str) -> int | None:
        return self.inputs.device.call_function(name, argument)

    def protocol_variable_request(self, name: str) -> tuple[VariableType, bytes] | None:
        return self.inputs.device.variable_value(name)

    def protocol_time(self, unix_time: int) -> None:
        self._tracer.emit("time.synced", unix_time=unix_time)
        self.time_synced = True
        if self._on_time is not None:
            self._on_time(unix_time)
        self._events.notify(SystemEvent.TIME_CHANGED, TimeChanged.SYNC)

    def protocol_idle(self) -> None:
        if self.state is CloudState.HANDSHAKE_PENDING:
            # ``clientMessagesProcessed`` (the protocol's ``notify_client_messages_processed``
            # when its last awaited message is acknowledged): only while the handshake waits for
            # them; ``handle_cloud_connection`` then logs ``Cloud connected``
            self._log.info(LOG, "All handshake messages have been processed")
            self._set_connected()

    # -- handshake steps -----------------------------------------------------------------------

    def _publish_private(self, name: str, data: bytes) -> int | None:
        return self.protocol.publish(name, data, private=True)

    def _after_handshake(self) -> None:
        inputs = self.inputs
        if inputs.safe_mode:
            self.protocol.publish(SAFE_MODE_EVENT, b"", private=True)
        if (inputs.publish_reset_info and not self._last_reset_sent
                and inputs.reset_reason is not None):
            self._last_reset_sent = True
            self._log.info(LOG, f"Send {LAST_RESET_EVENT} event")
            data = reset_reason_event_data(inputs.reset_reason, inputs.reset_data)
            self.protocol.publish(LAST_RESET_EVENT, data.encode(), private=True)
        self.protocol.publish(UPDATES_ENABLED_EVENT,
                              b"true" if inputs.updates_enabled else b"false", private=True)
        self.protocol.publish(UPDATES_FORCED_EVENT,
                              b"true" if inputs.updates_forced else b"false", private=True)
        if inputs.device.send_app_description():
            self._send_application_description()
        if inputs.key_errors:
            self._log.info(LOG, f"Send event {KEY_ERROR_EVENT}={inputs.key_errors}")
            self.protocol.publish(KEY_ERROR_EVENT, str(inputs.key_errors).encode(), private=True)
        self._set_state(CloudState.HANDSHAKE_PENDING)
        if self.protocol.pending_count == 0:
            self._set_connected()

    def _send_application_description(self) -> None:
        """``sendApplicationDescription``: both lines are logged every time; the protocol
        skips either message when this session's cloud already acknowledged the same
        checksum (``Checksum has not changed; ...``)."""
        self._log.info(LOG, "Sending application DESCRIBE")
        self.protocol.post_application_describe(self.inputs.device.app_describe())
        self._log.info(LOG, "Sending subscriptions")
        self.protocol.send_subscriptions(self.inputs.device.app_subscriptions())

    def _set_connected(self) -> None:
        self._failures = 0
        self._set_state(CloudState.CONNECTED)
        self._log.info(LOG, "Cloud connected")
        self._events.notify(SystemEvent.CLOUD_STATUS, CloudStatus.CONNECTED)
