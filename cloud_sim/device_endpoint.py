"""The cloud's device-facing endpoint: handshakes, sessions, events, claim codes.

How this works
--------------
The endpoint is sans-IO: ``datagram_received(address, data, reply)`` takes one datagram from a
device connection (an in-process link end, or a UDP peer) together with the function that sends
back to it. Per address it tracks a connection; per session id a :class:`CloudSession`.

* DTLS stand-in: CLIENT_HELLO (device id) -> SERVER_HELLO; CLIENT_FINISHED -> SERVER_FINISHED
  carrying a fresh 8-byte session id. The session is kept for resumption (up to
  ``session_max_age_s``, three days by default, like Particle's automatic renegotiation).
* Application data names its session. An unknown, expired or ended session is answered with a
  CoAP RST (or ignored, ``unknown_session_reply="ignore"``), which makes the device discard its
  session and fall back to a full handshake.
* Registered devices only (``registered_only``, set by the testbed): a CLIENT_HELLO naming a
  device whose key the cloud does not hold (``known_device``) is answered with an
  UNKNOWN_DEVICE alert and leaves nothing behind, so an unknown id is never marked online. Over
  UDP the stand-in travels inside real DTLS that has already authenticated the device
  (``cloud_sim/dtls.py``).
* Half-open sessions (created by CLIENT_FINISHED, not yet confirmed by a HELLO or a resume) are
  capped (``max_half_open``, the oldest dropped first) and expire after ``half_open_expiry_s``;
  both are checked as datagrams arrive, so no timer is involved.
* HELLO marks a full handshake; a ping as the first message on a connection marks a resume.
  Either way the device is online and ``spark/status`` "online" is published. A device marked
  offline for its silence (``offline_after_s``, below) that then sends anything on a confirmed
  session it still holds - a keepalive ping, an ACK, an event - is online again at once, with
  the same ``spark/status`` "online" (a device that talks is online), traced ``device.online``.
* CoAP messages of a session go through its :class:`CoapExchange` (the device's message layer,
  ``firmware_sim.communication.coap_exchange``): requests are ACKed (again, when repeated) and
  handled once; cloud-to-device events are confirmable, retransmitted with a doubling timeout
  until ACKed, answered by a RST, given up after ``max_retransmit`` retransmissions
  (``event.to_device_timeout``), or the session goes.
* Subscriptions (GET ``e/<prefix>``) are ACKed and kept with the session
  (:attr:`CloudSession.subscriptions`): a device that resumes does not send them again (Device
  OS logs "Checksum has not changed; not sending subscriptions"), so they last as long as the
  session the cloud keeps for resumption; a full handshake makes a new session with an empty
  list, and a dropped session takes its list with it. An event published through the REST API
  (:meth:`DeviceEndpoint.send_published_event`) goes to a device whose current session
  subscribed to a prefix of its name.
* Events are ACKed and published on the bus. ``spark/device/session/end`` makes the cloud forget
  the session after acknowledging it (UNVERIFIED cloud behaviour, docs/claiming.md).
  ``spark/device/claim/code`` is redeemed ``claim_confirm_delay_s`` later (2.25 s: with the
  link latency the device clears its code ~2.4 s after sending it, as in the forum log); when
  the claim succeeds the cloud sends ``spark/device/claim/confirm`` to the device.
* The application describe (POST ``d`` with an ``"f"`` list) gives the device's functions and
  variables (:meth:`DeviceEndpoint.interface_of`; kept per device only when it lists some, and
  kept when the device goes offline, as the API still lists them).
  :meth:`DeviceEndpoint.call_function` sends a confirmable POST ``f/<name>`` with the argument
  in the Uri-Query and a one-byte token, :meth:`DeviceEndpoint.get_variable` a GET
  ``v/<name>``; the device ACKs and answers later with a confirmable response carrying the
  token (2.04 + int32 return value, 2.05 + value, 4.04), which the cloud ACKs and matches to
  the call. ``on_result`` gets a :class:`CallResult` once: the answer, ``offline`` (at once:
  no session to send on, or the device is not ``online`` as the device list shows it - the
  cloud keeps an offline device's session for resumption but sends no call on it; every caller,
  the REST routes and the dashboard's plug, gets this one rule), ``not_found`` (a name the
  describe does not list, at once; or a 4.04), or ``timeout`` after ``call_timeout_s`` of
  virtual time without an answer.
* With ``offline_after_s`` set (``fwsim cloud serve`` / ``fwsim up``: 75 s, three device
  keepalives), a device heard from nothing for that long is marked offline and
  ``spark/status`` ``offline`` is published.

Fault points (BUGGIFY style, asked of ``world.chooser``; a seeded run answers no to every one
and draws nothing, so traces without faults are unchanged): ``endpoint:<name>:forget_session``
(asked per message on a live session: the cloud loses the session right there and answers as for
an unknown one), ``endpoint:<name>:drop_ack`` (asked per ACK of a device's confirmable message:
the ACK is not sent, the device retransmits), ``endpoint:<name>:skip_confirm`` (asked when a
claim succeeded: the cloud does not send ``spark/device/claim/confirm``). Each fault that fires
leaves an ``endpoint.fault`` record. :meth:`DeviceEndpoint.restart` models the cloud process
restarting: every session and connection is forgotten (claim redemptions already scheduled still
run: fwsim treats them as durable jobs, UNVERIFIED).

Sessions live in memory only (keyed by session id, indexed by device id); everything written to
the store is stamped in cloud time (``unix_us``: ``EndpointOptions.epoch`` + virtual time), so a
persistent store stays meaningful when the emulator restarts.
"""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Callable, Hashable
from dataclasses import dataclass, replace
from typing import Any

from firmware_sim.communication import wire
from firmware_sim.communication.coap_exchange import (
    CoapExchange,
    Confirmable,
    MessageIds,
    RetransmitPolicy,
)
from firmware_sim.communication.event_names import (
    CLAIM_CODE_EVENT,
    CLAIM_CONFIRM_EVENT,
    SESSION_END_EVENT,
    STATUS_EVENT,
)
from firmware_sim.communication.wire import CoapMessage, CoapType, HandshakeType, RecordType
from firmware_sim.kernel.errors import PeerProtocolError
from firmware_sim.kernel.scheduler import Scheduler, TimerHandle
from firmware_sim.kernel.world import World

from .claims import ClaimResult, redeem_claim_code
from .events import CloudEvent, EventBus
from .model import DeviceRecord
from .store import CloudStore

Reply = Callable[[bytes], None]
#: The cloud's message ids for a session (the device counts from 1, so the two never collide).
CLOUD_MESSAGE_IDS = (0x8000, 0xFFFF)


@dataclass(frozen=True)
class EndpointOptions:
    #: "rst": answer data on an unknown session with a CoAP RST; "ignore": stay silent.
    unknown_session_reply: str = "rst"
    session_max_age_s: float = 3 * 24 * 3600.0
    claim_confirm_delay_s: float = 2.25
    confirm_event: str = CLAIM_CONFIRM_EVENT
    #: also send the confirm event when the claim was refused (the device then clears its code)
    confirm_on_refusal: bool = False
    ack_timeout_s: float = 4.0
    max_retransmit: int = 3
    #: mark a device offline (and publish ``spark/status`` ``offline``) after this many seconds
    #: without a datagram from it; None (the default, in-process scenarios): never
    offline_after_s: float | None = None
    #: Unix time of virtual time 0 (2026-01-01T00:00:00Z), for time requests and timestamps.
    epoch: int = 1_767_225_600
    #: refuse a handshake from a device whose key the cloud does not hold (``known_device``)
    registered_only: bool = False
    #: sessions created but not yet confirmed by a HELLO (or a resume): at most this many ...
    max_half_open: int = 1024
    #: ... and each dropped when still unconfirmed this long after its creation
    half_open_expiry_s: float = 120.0
    #: a function call or variable request unanswered this long (virtual seconds) times out
    #: (UNVERIFIED: the real cloud's wait is not documented; docs/cloud-api.md)
    call_timeout_s: float = 20.0

    def __post_init__(self) -> None:
        if self.unknown_session_reply not in ("rst", "ignore"):
            raise ValueError("unknown_session_reply must be 'rst' or 'ignore'")


#: subscription lists shared between sessions (:meth:`CloudSession.subscribe`), at most this many
_SHARED_SUBSCRIPTIONS: dict[tuple[str, ...], tuple[str, ...]] = {}
_MAX_SHARED_SUBSCRIPTIONS = 1024


#: the trace kind of a confirmable given up on, by the first word of its ``what`` (events:
#: ``event.to_device_timeout``)
_DELIVERY_TIMEOUT_KINDS = {"key": "key_change.timeout", "signal": "signal.timeout",
                           "function": "call.delivery_timeout",
                           "variable": "call.delivery_timeout"}


class CloudSession:
    """A session the cloud keeps for resumption: its device, where it was last heard from, and
    the CoAP exchange (message ids, retransmissions, duplicates) of that session."""

    __slots__ = ("_on_timeout", "address", "created_us", "device_id", "exchange",
                 "full_handshakes", "reply", "resumes", "session_id", "subscriptions")

    def __init__(self, session_id: bytes, device_id: str, created_us: int, *,
                 scheduler: Scheduler, policy: RetransmitPolicy,
                 on_timeout: Callable[[CloudSession, Confirmable], None],
                 address: Hashable | None = None, reply: Reply | None = None) -> None:
        self.session_id = session_id
        self.device_id = device_id
        self.created_us = created_us
        self.address = address
        self.reply = reply
        self.full_handshakes = 0
        self.resumes = 0
        #: the event name prefixes the device subscribed to on this session, in order, each
        #: once (a tuple: most devices have the same two or three, shared when interned)
        self.subscriptions: tuple[str, ...] = ()
        self._on_timeout = on_timeout
        self.exchange = CoapExchange(
            scheduler, self._transmit, ids=MessageIds(*CLOUD_MESSAGE_IDS), policy=policy,
            on_timeout=self._timed_out, timer_label="cloud-retransmit")

    def _timed_out(self, pending: Confirmable) -> None:
        self._on_timeout(self, pending)

    def subscribe(self, prefix: str) -> None:
        if prefix not in self.subscriptions:
            grown = (*self.subscriptions, sys.intern(prefix))
            # devices of one firmware subscribe alike: their sessions share one tuple (a
            # bounded table, since the prefixes come from the devices)
            shared = _SHARED_SUBSCRIPTIONS.get(grown)
            if shared is None and len(_SHARED_SUBSCRIPTIONS) < _MAX_SHARED_SUBSCRIPTIONS:
                shared = _SHARED_SUBSCRIPTIONS[grown] = grown
            self.subscriptions = shared or grown

    def subscribed_to(self, name: str) -> bool:
        """Does a subscription of this session cover the event ``name`` (a prefix of it)?"""
        return any(name.startswith(prefix) for prefix in self.subscriptions)

    def _transmit(self, coap: bytes) -> None:
        """Send to wherever the device was last heard from on this session."""
        if self.reply is not None:
            self.reply(wire.encode_app_data(self.session_id, coap))


@dataclass(frozen=True, slots=True)
class AppInterface:
    """What a device's last application describe listed: function names, variable types."""

    functions: tuple[str, ...]
    variables: dict[str, int]


@dataclass(frozen=True, slots=True)
class CallResult:
    """How a function call or variable request ended: ``ok`` (``value`` is the return value
    or the variable's value), ``offline``, ``not_found``, ``timeout`` or ``error`` (an answer
    that could not be read)."""

    outcome: str
    value: wire.VariableValue | None = None


CallCallback = Callable[[CallResult], None]


@dataclass(slots=True)
class _PendingCall:
    device_id: str
    name: str
    kind: int | None  # the variable's type code; None for a function call
    on_result: CallCallback
    timer: TimerHandle | None = None


#: the variable type codes a describe may list (``Spark_Data_TypeDef``)
_VARIABLE_TYPE_CODES = frozenset(int(kind) for kind in wire.VariableType)


def parse_app_describe(payload: bytes) -> AppInterface | None:
    """The functions and variables of an application describe (None: not one, e.g. the
    system describe). Names that are not text and type codes that are not known are left
    out."""
    try:
        document: Any = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(document, dict) or not isinstance(document.get("f"), list):
        return None
    functions = tuple(name for name in document["f"]
                      if isinstance(name, str) and 0 < len(name) <= wire.MAX_FUNCTION_KEY_LENGTH)
    found = document.get("v")
    variables = ({name: code for name, code in found.items()
                  if isinstance(name, str) and 0 < len(name) <= wire.MAX_VARIABLE_KEY_LENGTH
                  and type(code) is int and code in _VARIABLE_TYPE_CODES}
                 if isinstance(found, dict) else {})
    return AppInterface(functions, variables)


@dataclass(slots=True)
class _Connection:
    device_id: str | None = None
    session_id: bytes | None = None
    first_message_seen: bool = False


class DeviceEndpoint:
    def __init__(self, world: World, store: CloudStore, bus: EventBus,
                 options: EndpointOptions | None = None, name: str = "cloud") -> None:
        self.world = world
        self.store = store
        self.bus = bus
        self.options = options or EndpointOptions()
        self.tracer = world.trace.bind(name, "endpoint")
        self._rng: random.Random = world.rng_for(f"{name}:sessions")
        self.sessions: dict[bytes, CloudSession] = {}
        #: session ids of each device, oldest first (a list: most devices have one session,
        #: and a set costs 216 bytes even then)
        self._sessions_by_device: dict[str, list[bytes]] = {}
        self._connections: dict[Hashable, _Connection] = {}
        self.claim_results: list[ClaimResult] = []
        self._offline_timers: dict[str, TimerHandle] = {}
        #: devices marked offline for their silence while they may still hold a session (a
        #: message on it brings them back online)
        self._quiet: set[str] = set()
        self._retransmit_policy = RetransmitPolicy(self.options.ack_timeout_s,
                                                   self.options.max_retransmit)
        self._fault = world.chooser.fault
        self._forget_fault = f"endpoint:{name}:forget_session"
        self._ack_fault = f"endpoint:{name}:drop_ack"
        self._confirm_fault = f"endpoint:{name}:skip_confirm"
        #: is this device id registered (its key held)? (``Cloud`` sets it to its registry)
        self.known_device: Callable[[str], bool] = lambda device_id: True
        #: sessions not yet confirmed by a HELLO or a resume, oldest first (id -> created)
        self._half_open: dict[bytes, int] = {}
        #: the functions and variables of each device whose last describe listed some
        self._interfaces: dict[str, AppInterface] = {}
        #: function calls and variable requests awaiting the device's answer, by (session,
        #: token); the token byte counts up per endpoint
        self._calls: dict[tuple[bytes, bytes], _PendingCall] = {}
        self._next_call_token = 0

    # -- helpers -------------------------------------------------------------------------------

    @property
    def now_us(self) -> int:
        return self.world.clock.now_us

    @property
    def unix_us(self) -> int:
        """Cloud time: Unix microseconds (what the store's timestamps are in)."""
        return self.options.epoch * 1_000_000 + self.now_us

    def unix_time(self) -> int:
        return self.options.epoch + self.now_us // 1_000_000

    def session_for_device(self, device_id: str) -> CloudSession | None:
        found = [self.sessions[sid] for sid in self._sessions_by_device.get(device_id, ())]
        return max(found, key=lambda s: s.created_us) if found else None

    def _session_to_send_on(self, device_id: str, undeliverable: str,
                            **fields: object) -> CloudSession | None:
        """The device's current session when it can be sent on, else None after tracing
        ``undeliverable`` (with ``fields``)."""
        session = self.session_for_device(device_id)
        if session is None or session.reply is None:
            self.tracer.emit(undeliverable, device_id=device_id, **fields)
            return None
        return session

    def is_online(self, device_id: str) -> bool:
        """Is the device ``online`` as the device list shows it? Function calls and variable
        reads - whoever asks: the REST routes, the dashboard through the testbed's plug - go
        only to such a device, even though the cloud keeps an offline device's session for
        resumption: sending on it would only wait out the call's timeout."""
        device = self.store.get_device(device_id)
        return device is not None and device.online

    def _session_to_call_on(self, device_id: str, undeliverable: str,
                            **fields: object) -> CloudSession | None:
        """:meth:`_session_to_send_on` for a call or a read: None too when the device is not
        online (traced ``undeliverable`` with ``reason`` "offline")."""
        session = self._session_to_send_on(device_id, undeliverable, **fields)
        if session is not None and not self.is_online(device_id):
            self.tracer.emit(undeliverable, device_id=device_id, reason="offline", **fields)
            return None
        return session

    def forget_session(self, device_id: str) -> bool:
        """Drop every session of ``device_id`` (what ``spark/device/session/end`` does)."""
        doomed = list(self._sessions_by_device.get(device_id, ()))
        for sid in doomed:
            self._drop_session(sid, "forgotten")
        return bool(doomed)

    def restart(self) -> int:
        """The cloud process restarts: every session and connection is forgotten (devices get a
        RST at their next message). Returns how many sessions were dropped."""
        doomed = list(self.sessions)
        for session_id in doomed:
            self._drop_session(session_id, "cloud restart")
        self._connections.clear()
        for timer in self._offline_timers.values():
            timer.cancel()
        self._offline_timers.clear()
        self._quiet.clear()
        self.tracer.emit("endpoint.restart", sessions=len(doomed))
        return len(doomed)

    def _fired(self, point: str) -> bool:
        """Ask the fault point ``point``; trace it when it fires."""
        if self._fault(point):
            self.tracer.emit("endpoint.fault", fault=point)
            return True
        return False

    def _send_ack(self, session: CloudSession, message: CoapMessage, code: int = wire.EMPTY,
                  payload: bytes = b"") -> None:
        if not self._fired(self._ack_fault):
            session.exchange.send_ack(message, code, payload)

    def _drop_session(self, session_id: bytes, reason: str) -> None:
        session = self.sessions.pop(session_id, None)
        self._half_open.pop(session_id, None)
        if session is None:
            return
        of_device = self._sessions_by_device.get(session.device_id)
        if of_device is not None:
            if session_id in of_device:
                of_device.remove(session_id)
            if not of_device:
                del self._sessions_by_device[session.device_id]
                self._quiet.discard(session.device_id)  # nothing left to talk on
        session.exchange.close()
        self.tracer.emit("session.dropped", device_id=session.device_id, reason=reason,
                         session_id=session_id)

    def _live_session(self, session_id: bytes) -> CloudSession | None:
        session = self.sessions.get(session_id)
        if session is None:
            return None
        if session_id in self._half_open and self._half_open_expired(session.created_us):
            self._drop_session(session_id, "half-open expired")
            return None
        if self.now_us - session.created_us > round(self.options.session_max_age_s * 1e6):
            self._drop_session(session_id, "expired")
            return None
        return session

    # -- receive -------------------------------------------------------------------------------

    def datagram_received(self, address: Hashable, data: bytes, reply: Reply) -> None:
        if self._half_open:
            self._expire_half_open()
        try:
            record = wire.decode_record(data)
        except PeerProtocolError as exc:
            self.tracer.emit("datagram.malformed", error=str(exc), size=len(data))
            return
        connection = self._connections.setdefault(address, _Connection())
        if record.type is RecordType.HANDSHAKE:
            self._on_handshake(address, connection, HandshakeType(record.subtype), record.body,
                               reply)
        elif record.type is RecordType.APPLICATION_DATA:
            self._on_app_data(address, connection, record.session_id, record.body, reply)
        else:
            self.tracer.emit("datagram.ignored", reason="alert from device")

    def connection_closed(self, address: Hashable) -> None:
        self._connections.pop(address, None)

    def _on_handshake(self, address: Hashable, connection: _Connection, htype: HandshakeType,
                      body: bytes, reply: Reply) -> None:
        if htype is HandshakeType.CLIENT_HELLO:
            if self.options.registered_only and not self.known_device(body.hex()):
                connection.device_id = connection.session_id = None
                self.tracer.emit("dtls.unknown_device", device_id=body.hex())
                reply(wire.encode_alert(wire.AlertCode.UNKNOWN_DEVICE))
                return
            connection.device_id = body.hex()
            connection.session_id = None
            self.tracer.emit("dtls.client_hello", device_id=connection.device_id)
            reply(wire.encode_handshake(HandshakeType.SERVER_HELLO))
        elif htype is HandshakeType.CLIENT_FINISHED and connection.device_id is not None:
            if connection.session_id is None:
                session_id = self._rng.randbytes(wire.SESSION_ID_SIZE)
                connection.session_id = session_id
                self.sessions[session_id] = CloudSession(
                    session_id, connection.device_id, self.now_us,
                    scheduler=self.world.scheduler, policy=self._retransmit_policy,
                    on_timeout=self._delivery_timed_out, address=address, reply=reply)
                self._sessions_by_device.setdefault(connection.device_id, []).append(session_id)
                self.tracer.emit("session.created", device_id=connection.device_id,
                                 session_id=session_id)
                self._hold_half_open(session_id)
            reply(wire.encode_handshake(HandshakeType.SERVER_FINISHED, connection.session_id))
        else:
            self.tracer.emit("dtls.unexpected", message=htype.name)

    def _half_open_expired(self, created_us: int) -> bool:
        return self.now_us - created_us > round(self.options.half_open_expiry_s * 1e6)

    def _expire_half_open(self) -> None:
        """Drop the half-open sessions that expired (oldest first; stops at a live one)."""
        half_open = self._half_open
        while half_open:
            oldest, created_us = next(iter(half_open.items()))
            if not self._half_open_expired(created_us):
                return
            self._drop_session(oldest, "half-open expired")

    def _hold_half_open(self, session_id: bytes) -> None:
        """Count a new session as half-open; over the cap, drop the oldest."""
        half_open = self._half_open
        self._expire_half_open()
        while len(half_open) >= self.options.max_half_open:
            self._drop_session(next(iter(half_open)), "half-open cap")
        half_open[session_id] = self.now_us

    @property
    def half_open_count(self) -> int:
        return len(self._half_open)

    def _on_app_data(self, address: Hashable, connection: _Connection, session_id: bytes,
                     body: bytes, reply: Reply) -> None:
        try:
            message = CoapMessage.decode(body)
        except PeerProtocolError as exc:
            self.tracer.emit("coap.malformed", error=str(exc))
            return
        session = self._live_session(session_id)
        if session is not None and self._fired(self._forget_fault):
            self._drop_session(session_id, "fault")
            session = None
        if session is None:
            self.tracer.emit("session.unknown", session_id=session_id,
                             reply=self.options.unknown_session_reply)
            if self.options.unknown_session_reply == "rst" and message.mtype is CoapType.CON:
                reply(wire.encode_app_data(session_id, CoapMessage(
                    CoapType.RST, wire.EMPTY, message.mid).encode()))
            return
        session.address, session.reply = address, reply
        connection.session_id = session_id
        connection.device_id = session.device_id
        first = not connection.first_message_seen
        connection.first_message_seen = True
        self._touch_device(session.device_id)
        if (session.device_id in self._quiet and session.session_id not in self._half_open
                and not _announces_itself(message, first)):
            self._heard_again(session.device_id)
        if message.mtype is CoapType.ACK:
            self._on_ack(session, message)
            return
        if message.mtype is CoapType.RST:
            session.exchange.acknowledge(message)  # the device refused it: stop retransmitting
            self.tracer.emit("coap.rst_from_device", mid=message.mid)
            return
        duplicate = session.exchange.is_duplicate(message.mid)
        if message.code >> 5 in (2, 4, 5):
            # a separate response: the answer to a function call or variable request
            if message.mtype is CoapType.CON:
                self._send_ack(session, message)
            if not duplicate:
                self._on_call_answer(session, message)
            return
        if message.is_empty:
            # A ping. As the first message of a connection it is a resumed session.
            self._send_ack(session, message)
            if first and not duplicate:
                self._half_open.pop(session.session_id, None)
                session.resumes += 1
                self.tracer.emit("session.resumed", device_id=session.device_id)
                self._device_online(session.device_id)
            return
        self._on_request(session, message, duplicate)

    def _on_request(self, session: CloudSession, message: CoapMessage, duplicate: bool) -> None:
        path = message.uri_path
        ack_code, ack_payload = wire.EMPTY, b""
        handled: Callable[[], None] | None = None
        if message.code == wire.POST and path == (wire.URI_HELLO,):
            try:
                hello = wire.Hello.decode(message.payload)
            except PeerProtocolError as exc:
                self.tracer.emit("hello.malformed", error=str(exc))
                ack_code = wire.BAD_REQUEST
            else:
                handled = lambda: self._on_hello(session, hello)  # noqa: E731
        elif message.code == wire.POST and path == (wire.URI_DESCRIBE,):
            if not duplicate:
                self._on_describe(session.device_id, message.payload)
        elif message.code == wire.GET and path == (wire.URI_TIME,):
            ack_code, ack_payload = wire.CONTENT, self.unix_time().to_bytes(4, "big")
        elif message.code == wire.GET and path and path[0] == wire.URI_PUBLIC_EVENT:
            prefix = "/".join(path[1:])
            self.tracer.emit("subscription", device_id=session.device_id, prefix=prefix)
            session.subscribe(prefix)
        elif message.code == wire.POST and (event := wire.parse_event_uri(path)) is not None:
            name, private = event
            handled = lambda: self._on_device_event(session, name, private,  # noqa: E731
                                                    message.payload, message.max_age)
        else:
            ack_code = wire.NOT_FOUND
        if message.mtype is CoapType.CON:
            self._send_ack(session, message, ack_code, ack_payload)
        if handled is not None and not duplicate:
            handled()

    def _on_describe(self, device_id: str, payload: bytes) -> None:
        interface = parse_app_describe(payload)
        if interface is None:
            return
        if interface.functions or interface.variables:
            self._interfaces[device_id] = interface
        elif self._interfaces.pop(device_id, None) is None:
            return  # nothing listed before or now (most devices): no trace record
        self.tracer.emit("describe.application", device_id=device_id,
                         functions=len(interface.functions),
                         variables=len(interface.variables))

    def _on_hello(self, session: CloudSession, hello: wire.Hello) -> None:
        if hello.device_id.hex() != session.device_id:
            self.tracer.emit("hello.device_mismatch", device_id=session.device_id)
            return
        session.full_handshakes += 1
        self._half_open.pop(session.session_id, None)
        device = self.store.get_device(session.device_id) or DeviceRecord(session.device_id)
        self.store.put_device(replace(device, platform_id=hello.platform_id,
                                      system_version=hello.system_version,
                                      last_handshake_us=self.unix_us))
        self.tracer.emit("handshake.full", device_id=session.device_id,
                         platform_id=hello.platform_id, flags=hello.flags)
        self._device_online(session.device_id)

    def _on_device_event(self, session: CloudSession, name: str, private: bool, payload: bytes,
                         max_age: int | None) -> None:
        data = payload.decode("utf-8", "replace")
        device = self.store.get_device(session.device_id)
        self.tracer.emit("event", device_id=session.device_id, name=name, private=private,
                         size=len(payload))
        self.bus.publish(CloudEvent(name, data, session.device_id, self.unix_us,
                                    max_age if max_age is not None else 60, not private,
                                    device.product_id if device else None))
        if name == SESSION_END_EVENT:
            self._drop_session(session.session_id, "session/end event")
        elif name == CLAIM_CODE_EVENT:
            self.world.scheduler.call_later(self.options.claim_confirm_delay_s,
                                            self._redeem, session.device_id, data,
                                            label="claim-redeem")

    def _redeem(self, device_id: str, code: str) -> None:
        result = redeem_claim_code(self.store, device_id, code, self.unix_us)
        self.claim_results.append(result)
        self.tracer.emit("claim.redeem", device_id=device_id, outcome=result.outcome.value,
                         previous_owner=str(result.previous_owner) if result.previous_owner
                         else None,
                         new_owner=str(result.new_owner) if result.new_owner else None)
        if ((result.outcome.accepted or self.options.confirm_on_refusal)
                and not self._fired(self._confirm_fault)):
            self.send_event(device_id, self.options.confirm_event, b"")

    def _device_online(self, device_id: str) -> None:
        self._quiet.discard(device_id)
        device = self.store.get_device(device_id) or DeviceRecord(device_id)
        if not device.online:
            self.store.put_device(replace(device, online=True))
        self.bus.publish(CloudEvent(STATUS_EVENT, "online", device_id, self.unix_us,
                                    product_id=device.product_id))

    def _touch_device(self, device_id: str) -> None:
        self.store.touch_device(device_id, self.unix_us)
        if self.options.offline_after_s is not None:
            timer = self._offline_timers.pop(device_id, None)
            if timer is not None:
                timer.cancel()
            self._offline_timers[device_id] = self.world.scheduler.call_later(
                self.options.offline_after_s, self._went_quiet, device_id, label="offline")

    def _heard_again(self, device_id: str) -> None:
        """A device marked offline for its silence spoke on its session: online again."""
        self.tracer.emit("device.online", device_id=device_id, reason="heard on its session")
        self._device_online(device_id)

    def _went_quiet(self, device_id: str) -> None:
        self._offline_timers.pop(device_id, None)
        device = self.store.get_device(device_id)
        if device is None or not device.online:
            return
        self.store.put_device(replace(device, online=False))
        if device_id in self._sessions_by_device:
            self._quiet.add(device_id)
        self.tracer.emit("device.offline", device_id=device_id,
                         quiet_s=self.options.offline_after_s)
        self.bus.publish(CloudEvent(STATUS_EVENT, "offline", device_id, self.unix_us,
                                    product_id=device.product_id))

    # -- send ----------------------------------------------------------------------------------

    def send_event(self, device_id: str, name: str, data: bytes) -> bool:
        """Send an event of the cloud's own to the device over its current session
        (confirmable), and publish it on the bus (event streams show it)."""
        session = self._session_to_send_on(device_id, "event.undeliverable", name=name)
        if session is None:
            return False
        self._send_event(session, name, data, private=True, announce=True)
        return True

    def subscriptions_of(self, device_id: str) -> tuple[str, ...]:
        """The prefixes the device subscribed to on its current session."""
        session = self.session_for_device(device_id)
        return session.subscriptions if session is not None else ()

    def send_published_event(self, device_id: str, name: str, data: bytes, *,
                             private: bool = True) -> bool:
        """Send an event published through the REST API to the device when its current
        session subscribed to a prefix of ``name`` (confirmable; not published on the bus: the
        caller put the event there once, for every device). Returns whether it was sent."""
        session = self.session_for_device(device_id)
        if session is None or session.reply is None or not session.subscribed_to(name):
            return False
        self._send_event(session, name, data, private=private, announce=False)
        return True

    def _send_event(self, session: CloudSession, name: str, data: bytes, *, private: bool,
                    announce: bool) -> None:
        mid = session.exchange.allocate_mid()
        message = CoapMessage(CoapType.CON, wire.POST, mid, b"", wire.event_uri(name, private),
                              data)
        self.tracer.emit("event.to_device", device_id=session.device_id, name=name, mid=mid)
        if announce:
            self.bus.publish(CloudEvent(name, data.decode("utf-8", "replace"),
                                        session.device_id, self.unix_us, direction="device"))
        session.exchange.send_confirmable(message, what=f"event {name}")

    def send_key_change(self, device_id: str) -> bool:
        """Tell the device to discard its session: a confirmable ``PUT k`` whose second option
        is the byte 1 (Device OS ``communication/src/protocol.cpp``, ``handle_key_change``;
        other values are ignored by the device). The device acknowledges it, logs "Received a
        key change message; discarding session", clears its persisted session and reconnects
        with a full handshake. Returns False when the device has no session to send it on."""
        session = self._session_to_send_on(device_id, "key_change.undeliverable")
        if session is None:
            return False
        mid = session.exchange.allocate_mid()
        message = CoapMessage(CoapType.CON, wire.PUT, mid, b"", (wire.URI_KEY_CHANGE, "\x01"))
        self.tracer.emit("key_change.to_device", device_id=device_id, mid=mid)
        session.exchange.send_confirmable(message, what="key change")
        return True

    def send_signal(self, device_id: str, on: bool) -> bool:
        """Start (``on``) or stop the device's rainbow LED signal: a confirmable ``PUT s`` with
        a one-byte token and a second option, the byte 1 or 0 (Device OS ``Messages::
        decodeType`` reads that byte as the ninth of the message: not 0 is SIGNAL_START). The
        device answers with a piggybacked 2.04. Returns False when the device has no session."""
        session = self._session_to_send_on(device_id, "signal.undeliverable")
        if session is None:
            return False
        mid = session.exchange.allocate_mid()
        token = bytes((mid & 0xFF,))
        message = CoapMessage(CoapType.CON, wire.PUT, mid, token,
                              (wire.URI_SIGNAL, "\x01" if on else "\x00"))
        self.tracer.emit("signal.to_device", device_id=device_id, on=on, mid=mid)
        session.exchange.send_confirmable(message, what="signal")
        return True

    # -- functions and variables ---------------------------------------------------------------

    def interface_of(self, device_id: str) -> AppInterface | None:
        """The functions and variables of the device's last application describe."""
        return self._interfaces.get(device_id)

    def call_function(self, device_id: str, name: str, argument: str,
                      on_result: CallCallback) -> None:
        """Call the device's function ``name`` with ``argument`` (see the module header)."""
        interface = self._interfaces.get(device_id)
        known = interface is not None and name in interface.functions
        self._request(device_id, name, None, known, wire.POST, wire.URI_FUNCTION,
                      (argument,), on_result)

    def get_variable(self, device_id: str, name: str, on_result: CallCallback) -> None:
        """Ask the device for the value of its variable ``name`` (see the module header)."""
        interface = self._interfaces.get(device_id)
        kind = interface.variables.get(name) if interface is not None else None
        self._request(device_id, name, kind, kind is not None, wire.GET, wire.URI_VARIABLE,
                      (), on_result)

    def _request(self, device_id: str, name: str, kind: int | None, known: bool, code: int,
                 uri: str, query: tuple[str, ...], on_result: CallCallback) -> None:
        what = "function" if uri == wire.URI_FUNCTION else "variable"
        session = self._session_to_call_on(device_id, f"{what}.undeliverable", name=name)
        if session is None:
            on_result(CallResult("offline"))
            return
        if not known:
            on_result(CallResult("not_found"))
            return
        token = self._free_token(session.session_id)
        if token is None:  # 256 answers awaited on one session
            on_result(CallResult("timeout"))
            return
        pending = _PendingCall(device_id, name, kind, on_result)
        key = (session.session_id, token)
        self._calls[key] = pending
        pending.timer = self.world.scheduler.call_later(
            self.options.call_timeout_s, self._call_timed_out, key, label=f"{what}-timeout")
        mid = session.exchange.allocate_mid()
        message = CoapMessage(CoapType.CON, code, mid, token, (uri, name), uri_query=query)
        self.tracer.emit(f"{what}.to_device", device_id=device_id, name=name, mid=mid)
        session.exchange.send_confirmable(message, what=f"{what} {name}")

    def _free_token(self, session_id: bytes) -> bytes | None:
        for _ in range(256):
            self._next_call_token = (self._next_call_token + 1) % 256
            token = bytes((self._next_call_token,))
            if (session_id, token) not in self._calls:
                return token
        return None

    def abandon_calls(self) -> int:
        """The server is stopping: every call and read still awaiting its device's answer
        gets ``timeout`` now (its caller answers 408 and finishes, instead of being cancelled
        mid-request by the shutdown); returns how many."""
        pending, self._calls = list(self._calls.values()), {}
        for call in pending:
            if call.timer is not None:
                call.timer.cancel()
            self.tracer.emit("call.abandoned", device_id=call.device_id, name=call.name)
            call.on_result(CallResult("timeout"))
        return len(pending)

    def _call_timed_out(self, key: tuple[bytes, bytes]) -> None:
        pending = self._calls.pop(key, None)
        if pending is not None:
            self.tracer.emit("call.timeout", device_id=pending.device_id, name=pending.name)
            pending.on_result(CallResult("timeout"))

    def _on_call_answer(self, session: CloudSession, message: CoapMessage) -> None:
        pending = self._calls.pop((session.session_id, message.token), None)
        if pending is None:
            self.tracer.emit("call.unexpected_answer", device_id=session.device_id,
                             code=message.code_text)
            return
        if pending.timer is not None:
            pending.timer.cancel()
        result = _call_result(pending, message)
        self.tracer.emit("call.answer", device_id=pending.device_id, name=pending.name,
                         code=message.code_text, outcome=result.outcome)
        pending.on_result(result)

    def _delivery_timed_out(self, session: CloudSession, pending: Confirmable) -> None:
        """A confirmable nobody acknowledged: traced by what it was (``what``'s first word)."""
        kind = _DELIVERY_TIMEOUT_KINDS.get(pending.what.split(" ", 1)[0],
                                           "event.to_device_timeout")
        self.tracer.emit(kind, device_id=session.device_id, mid=pending.mid)

    def _on_ack(self, session: CloudSession, message: CoapMessage) -> None:
        pending = session.exchange.acknowledge(message)
        self.tracer.emit("coap.acked_by_device", mid=message.mid, known=pending is not None)


def _announces_itself(message: CoapMessage, first: bool) -> bool:
    """Does this message bring its device online by itself (a HELLO, or a ping opening a
    connection: a resume)?"""
    if message.mtype is CoapType.ACK or message.mtype is CoapType.RST:
        return False
    if message.is_empty:
        return first
    return message.code == wire.POST and message.uri_path == (wire.URI_HELLO,)


def _call_result(pending: _PendingCall, message: CoapMessage) -> CallResult:
    """What a device's answer means for the call it answers."""
    if message.code == wire.NOT_FOUND:
        return CallResult("not_found")
    try:
        if pending.kind is None:
            if message.code != wire.CHANGED or len(message.payload) != 4:
                return CallResult("error")
            return CallResult("ok", int.from_bytes(message.payload, "big", signed=True))
        if message.code != wire.CONTENT:
            return CallResult("error")
        return CallResult("ok", wire.decode_variable(wire.VariableType(pending.kind),
                                                     message.payload))
    except PeerProtocolError:
        return CallResult("error")
