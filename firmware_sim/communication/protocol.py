"""Device side of the cloud protocol: establish (full handshake or resume), messages, keepalive.

How this works
--------------
``begin(port)`` mirrors Device OS ``Protocol::begin()`` (``communication/src/protocol.cpp``; the
session restore is ``communication/src/dtls_message_channel.cpp``):

1. log ``Establish secure connection`` and try to restore the persisted session;
2. **resume** (restore COMPLETE): log ``restored session from persisted session data.
   next_msg_id=N``, move the session, compare the app-state CRC; if equal log ``Skipping HELLO
   message``, send a CoAP ping (``ping(true)``: true is ``forceCoAP``, not synchronous) and
   report ``SESSION_RESUMED`` ``resume_send_s`` later (the ping's ACK is awaited like any other
   handshake message, not by ``begin``); if different fall through to HELLO on the restored
   session;
3. **full handshake** (NO_SESSION): a DTLS handshake of two round trips (see ``wire.py``), then
   log ``Sending HELLO message`` and send HELLO (the platform's flags, ``wire.hello_flags_for``)
   **synchronously**: ``begin`` waits for its ACK (``send_synchronous``, ``coap_channel.h``),
   dropping requests from the cloud meanwhile; a timeout (MESSAGE_TIMEOUT) or an RST for it
   (MESSAGE_RESET) logs ``Could not send HELLO message: N`` and is the begin result. Once
   acknowledged: log ``Handshake completed``, persist the session, send the forced system
   DESCRIBE, and report ``NO_ERROR``.

Phases: IDLE -> DTLS_HELLO -> DTLS_FINISHED -> HELLO -> ESTABLISHED (or straight to ESTABLISHED on
a resume; HELLO -> ESTABLISHED on a resume whose app state changed) -> CLOSED. The DTLS stand-in's
handshake messages are retransmitted after ``dtls_retransmit_s``, doubling, and the attempt fails
(``MESSAGE_TIMEOUT``) after ``dtls_max_retransmit`` retransmissions. CoAP messages go through a
:class:`CoapExchange` (``coap_exchange.py``): every confirmable message is tracked until its ACK
and retransmitted with a doubling timeout; one still unanswered after ``max_retransmit``
retransmissions fails the connection (``MESSAGE_TIMEOUT``, ``PING_TIMEOUT`` for pings). A CoAP RST
(whatever its id, except while the HELLO awaits its ACK) logs ``Received RST message; discarding
session``, forgets the persisted session and fails the connection with
``IO_ERROR_DISCARD_SESSION``, so the next attempt is a full handshake. Requests from the cloud are
ACKed (again, when repeated) and handed on once. The first message received on a resumed session
resets the session's use counter. Once established, a keepalive ping is sent after ``keepalive_s``
without traffic.

Function calls (POST ``f/<name>``, the argument in the Uri-Query) and variable requests (GET
``v/<name>``) are ACKed (empty; a call whose argument is longer than
``MAX_FUNCTION_ARG_LENGTH`` bytes gets a 4.00 ACK and is not run, ``functions.h``), then run in
a scheduler entry of their own (the application's context) and answered with a separate
confirmable response carrying the request's token: 2.04 and the int32 return value, 2.05 and
the variable's value, 4.04 for an unknown variable (``variables.cpp``). A call of an unknown
function is never answered (``userFuncSchedule`` returns -1 after the ACK went out; the cloud
knows the names from the describe). A connection closed meanwhile drops the answer.

Everything happens on the world scheduler; the protocol never blocks and never reads a clock.
Results go to a :class:`ProtocolListener` (the system layer), always from a fresh scheduler
entry so that listener code never runs inside ``begin``/``datagram_received``.
"""

from __future__ import annotations

import functools
import struct
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum, IntEnum
from typing import Protocol

from ..kernel.errors import PeerProtocolError
from ..kernel.link import DatagramPort
from ..kernel.scheduler import Scheduler, TimerHandle
from ..kernel.trace import Tracer
from ..services.log import DeviceLog
from . import wire
from .coap_exchange import CoapExchange, Confirmable, MessageIds, RetransmitPolicy
from .session import RestoreStatus, SessionData, SessionPersist
from .wire import CoapMessage, CoapType, HandshakeType, RecordType

LOG_HANDSHAKE = "comm.protocol.handshake"
LOG_PROTOCOL = "comm.protocol"
LOG_DTLS = "comm.dtls"
LOG_COAP = "comm.coap"


class ProtocolResult(IntEnum):
    """How establishing or running a connection ended: a subset of Device OS's ``ProtocolResult``
    enum (``communication/inc/protocol_defs.h``), which despite its name also holds the successes
    ``NO_ERROR`` (0: full handshake) and ``SESSION_RESUMED`` (13).

    SESSION_RESUMED (13) and IO_ERROR_DISCARD_SESSION (21) are the values Device OS logs and
    returns; the others follow the header's order (UNVERIFIED).
    """

    NO_ERROR = 0
    PING_TIMEOUT = 1
    INVALID_STATE = 3
    MALFORMED_MESSAGE = 5
    AUTHENTICATION_ERROR = 8
    MESSAGE_TIMEOUT = 10
    MESSAGE_RESET = 12
    SESSION_RESUMED = 13
    IO_ERROR_DISCARD_SESSION = 21


class Phase(Enum):
    IDLE = "idle"
    DTLS_HELLO = "dtls_hello"
    DTLS_FINISHED = "dtls_finished"
    #: the HELLO is out, ``begin`` waits for its ACK (``send_synchronous``)
    HELLO = "hello"
    ESTABLISHED = "established"
    CLOSED = "closed"


@dataclass(frozen=True)
class ProtocolOptions:
    """Timing knobs. Values are UNVERIFIED approximations of Device OS defaults; the timing
    profiles (``firmware_sim/system/timing.py``) set the last two."""

    ack_timeout_s: float = 4.0
    max_retransmit: int = 3
    dtls_retransmit_s: float = 1.0
    dtls_max_retransmit: int = 4
    keepalive_s: float = 25.0
    #: the device's DTLS computation (ECDHE, ECDSA) between the server's flight and its answer
    dtls_crypto_s: float = 0.0
    #: from ``Skipping HELLO message`` (and its ping) until ``begin`` returns SESSION_RESUMED
    resume_send_s: float = 0.0


@dataclass(frozen=True, slots=True)
class DeviceIdentity:
    device_id: bytes
    platform_id: int
    system_module_version: int
    product_id: int = 0xFFFF
    product_version: int = 0xFFFF
    #: the HELLO's flags; None: what Device OS sets on this platform (``wire.hello_flags_for``)
    hello_flags: int | None = None
    #: checksum of the device keys; a change invalidates the persisted session
    keys_checksum: int = 0
    #: UDP/DTLS platforms persist the session; TCP (Gen2 Photon) never resumes.
    persists_session: bool = True
    #: decides COMPRESSED_OTA; fwsim's installed bootloader (``hal/modules.py``
    #: ``BOOTLOADER_VERSION``)
    bootloader_version: int = 2300

    def __post_init__(self) -> None:
        if self.hello_flags is None:
            flags = wire.hello_flags_for(self.platform_id, self.bootloader_version)
            object.__setattr__(self, "hello_flags", int(flags))

    @property
    def flags(self) -> int:
        """The HELLO's flags (``hello_flags`` once resolved)."""
        return self.hello_flags if self.hello_flags is not None else 0

    def app_state_crc(self, describe: bytes) -> int:
        """CRC over what Device OS compares on resume: the system describe, the HELLO flags,
        the system module version, the maximum binary size and the OTA chunk size (fwsim leaves
        out the maximum message size, which it never changes)."""
        header = struct.pack(">HHIH", self.flags, self.system_module_version,
                             0x180000, 512)
        return zlib.crc32(header + describe)


@functools.lru_cache(maxsize=16)
def _retransmit_policy(ack_timeout_s: float, max_retransmit: int) -> RetransmitPolicy:
    """One (immutable) policy object per setting, shared by every device that uses it."""
    return RetransmitPolicy(ack_timeout_s, max_retransmit)


def _what(kind: str, name: str) -> str:
    """``kind + name``, one string object for equal texts (``sys.intern``): every device of a
    fleet keeps the same few in its messages awaiting an ACK."""
    return sys.intern(kind + name)


def _is_success(ack: CoapMessage) -> bool:
    """An empty ACK or a 2.xx response (fwsim's cloud acknowledges with empty ACKs)."""
    return ack.code == wire.EMPTY or ack.code >> 5 == 2


class _DescribeAcked:
    """``on_ack`` of an application describe: keeps its checksum with the session once the
    cloud accepts it (a slotted object: a third of a closure's size, one per device at once)."""

    __slots__ = ("crc", "session")

    def __init__(self, session: SessionPersist, crc: int) -> None:
        self.session = session
        self.crc = crc

    def __call__(self, ack: CoapMessage) -> None:
        if _is_success(ack):
            self.session.update_describe_crc(self.crc)


class ProtocolListener(Protocol):
    """Where the protocol reports (the system layer's cloud connection); every call comes from
    a scheduler entry of its own."""

    def protocol_begin_result(self, code: ProtocolResult) -> None: ...

    def protocol_error(self, code: ProtocolResult) -> None: ...

    def protocol_event(self, name: str, data: bytes) -> None: ...

    def protocol_time(self, unix_time: int) -> None: ...

    def protocol_idle(self) -> None: ...

    def protocol_server_moved(self, payload: bytes, respond: Callable[[int], None]) -> None: ...

    def protocol_function_call(self, name: str, argument: str) -> int | None:
        """Run the function ``name``; its return value, None when there is no such function."""

    def protocol_variable_request(self, name: str) -> tuple[wire.VariableType, bytes] | None:
        """The variable ``name``'s type and encoded value, None when there is none."""

    def protocol_signal(self, on: bool) -> None:
        """The cloud started (``on``) or stopped the device's rainbow LED signal."""


class DeviceProtocol:
    """The device's half of one cloud connection at a time."""

    __slots__ = (
        "_begin_reported", "_begin_timer", "_dtls_attempts", "_dtls_timer", "_exchange",
        "_heard_on_resumed", "_held", "_hello_mid", "_keepalive", "_listener", "_log",
        "_next_token", "_port",
        "_resumed", "_scheduler", "_session", "_session_id", "_subscription_mids",
        "_subscriptions_crc", "_system_describe", "_tracer", "identity", "options", "phase",
    )

    def __init__(self, *, scheduler: Scheduler, tracer: Tracer, log: DeviceLog,
                 session: SessionPersist, identity: DeviceIdentity, options: ProtocolOptions,
                 listener: ProtocolListener, system_describe: Callable[[], bytes]) -> None:
        self._scheduler = scheduler
        self._tracer = tracer
        self._log = log
        self._session = session
        self.identity = identity
        self.options = options
        self._listener = listener
        self._system_describe = system_describe
        self.phase = Phase.IDLE
        self._port: DatagramPort | None = None
        self._session_id = b""
        self._resumed = False
        self._heard_on_resumed = False
        self._next_token = 1
        #: the HELLO's message id while ``begin`` waits for its ACK
        self._hello_mid: int | None = None
        self._exchange = CoapExchange(
            scheduler, self._send_raw, frame=self._frame_coap, ids=MessageIds(1, 0xFFFF),
            policy=_retransmit_policy(options.ack_timeout_s, options.max_retransmit),
            on_timeout=self._coap_timeout, on_retransmit=self._coap_retransmit,
            timer_label="coap-retransmit")
        self._dtls_timer: TimerHandle | None = None
        self._dtls_attempts = 0
        self._keepalive: TimerHandle | None = None
        self._begin_timer: TimerHandle | None = None
        self._begin_reported = False
        #: datagrams that arrived while ``begin`` was still running (see ``resume_send_s``);
        #: None when there are none (most devices never hold one: no empty list each)
        self._held: list[bytes] | None = None
        #: message ids of the subscriptions not yet acknowledged (None: none), and their checksum
        self._subscription_mids: list[int] | None = None
        self._subscriptions_crc = 0

    # -- public API ----------------------------------------------------------------------------

    @property
    def established(self) -> bool:
        return self.phase is Phase.ESTABLISHED

    @property
    def pending_count(self) -> int:
        return self._exchange.pending_count

    @property
    def resumed(self) -> bool:
        return self._resumed

    def begin(self, port: DatagramPort) -> None:
        """Start establishing over ``port``; the outcome goes to ``protocol_begin_result``."""
        if self.phase not in (Phase.IDLE, Phase.CLOSED):
            raise RuntimeError(f"begin() in phase {self.phase.value}")
        self._reset_connection_state()
        self._port = port
        self._log.info(LOG_HANDSHAKE, "Establish secure connection")
        if self.identity.persists_session:
            status, data = self._session.restore(self.identity.keys_checksum)
        else:
            status, data = RestoreStatus.NO_SESSION, None
        if status is RestoreStatus.NO_SESSION and data is not None:
            self._log.warn(LOG_DTLS, f"session has expired after {data.use_counter} uses")
        self._tracer.emit("session.restore", status=status.name,
                          use_counter=data.use_counter if data else None)
        if status is RestoreStatus.COMPLETE and data is not None:
            self._resume(data)
        else:
            self._start_dtls_handshake()

    def close(self) -> None:
        """Tear the connection down (the socket closes; the persisted session stays)."""
        self._exchange.close()
        self._cancel_timer("_dtls_timer")
        self._cancel_timer("_keepalive")
        self._cancel_timer("_begin_timer")
        self._held = None
        self._subscription_mids = None
        if self._port is not None:
            self._port.close()
            self._port = None
        if self.phase is not Phase.IDLE:
            self.phase = Phase.CLOSED

    def publish(self, name: str, data: bytes, *, private: bool, ttl: int = 60,
                on_ack: Callable[[CoapMessage], None] | None = None) -> int | None:
        """Send an event as a confirmable POST; returns the message id, None if not possible.

        ``on_ack(ack)`` runs when the cloud's ACK arrives (inside ``datagram_received``)."""
        if self.phase is not Phase.ESTABLISHED:
            return None
        return self._send_con(wire.POST, wire.event_uri(name, private), data,
                              what=_what("event ", name), max_age=ttl if ttl != 60 else None,
                              on_ack=on_ack)

    def send_describe(self, payload: bytes, what: str = "describe") -> int | None:
        if self.phase is not Phase.ESTABLISHED:
            return None
        return self._send_con(wire.POST, (wire.URI_DESCRIBE,), payload, what=what)

    def send_time_request(self) -> int | None:
        if self.phase is not Phase.ESTABLISHED:
            return None
        return self._send_con(wire.GET, (wire.URI_TIME,), b"", what="time request", token=True,
                              on_ack=self._on_time_ack)

    def send_subscription(self, prefix: str) -> int | None:
        if self.phase is not Phase.ESTABLISHED:
            return None
        return self._send_con(wire.GET, (wire.URI_PUBLIC_EVENT, prefix), b"",
                              what=_what("subscribe ", prefix))

    def post_application_describe(self, payload: bytes) -> bool:
        """``post_description(DESCRIBE_APPLICATION, force=false)``: skipped (log ``Checksum has
        not changed; not sending application DESCRIBE``) when this session's cloud already
        acknowledged a describe with the same checksum; returns whether it was sent. The
        checksum is kept with the session once the cloud acknowledges it."""
        if self.phase is not Phase.ESTABLISHED:
            return False
        crc = zlib.crc32(payload) or 1
        data = self._session.load()
        if data is not None and data.describe_crc == crc:
            self._log.info(LOG_PROTOCOL,
                           "Checksum has not changed; not sending application DESCRIBE")
            return False
        self._send_con(wire.POST, (wire.URI_DESCRIBE,), payload, what="application describe",
                       on_ack=_DescribeAcked(self._session, crc))
        return True

    def send_subscriptions(self, prefixes: list[str]) -> bool:
        """``send_subscriptions(force=false)``: skipped (``Checksum has not changed; not
        sending subscriptions``) when this session's cloud has the same set, else logs
        ``Sending subscriptions`` and sends one subscription (GET ``e/<prefix>``) per prefix.
        The checksum is kept with the session once every one of them is acknowledged."""
        if self.phase is not Phase.ESTABLISHED:
            return False
        crc = zlib.crc32("\n".join(prefixes).encode()) or 1
        data = self._session.load()
        if data is not None and data.subscriptions_crc == crc:
            self._log.info(LOG_PROTOCOL, "Checksum has not changed; not sending subscriptions")
            return False
        self._log.info(LOG_PROTOCOL, "Sending subscriptions")
        self._subscriptions_crc = crc
        acked = self._subscription_acked  # one bound method for all of them
        self._subscription_mids = mids = []
        for prefix in prefixes:
            mid = self._send_con(wire.GET, (wire.URI_PUBLIC_EVENT, prefix), b"",
                                 what=_what("subscribe ", prefix), on_ack=acked)
            mids.append(mid)
        if not mids:
            self._subscription_mids = None
        return True

    def _subscription_acked(self, ack: CoapMessage) -> None:
        mids = self._subscription_mids
        if mids is None or ack.mid not in mids:
            return
        if not _is_success(ack):
            self._subscription_mids = None  # one refusal: the checksum is not kept
            return
        mids.remove(ack.mid)
        if not mids:
            self._subscription_mids = None
            self._session.update_subscriptions_crc(self._subscriptions_crc)

    def ping(self) -> int | None:
        if self.phase is not Phase.ESTABLISHED:
            return None
        return self._send_con(wire.EMPTY, (), b"", what="ping")

    # -- establishing --------------------------------------------------------------------------

    def _reset_connection_state(self) -> None:
        self._exchange.close()
        self._resumed = False
        self._heard_on_resumed = False
        self._session_id = b""
        self._dtls_attempts = 0
        self._begin_reported = False
        self._hello_mid = None

    def _resume(self, data: SessionData) -> None:
        self._session_id = data.session_id
        self._exchange.ids.restart(data.next_coap_id or 1)
        self._resumed = True
        self._log.info(LOG_DTLS, "restored session from persisted session data. "
                       f"next_msg_id={self._exchange.ids.next}")
        self._tracer.emit("session.move", session_id=data.session_id,
                          use_counter=data.use_counter)
        self.phase = Phase.ESTABLISHED
        describe = self._system_describe()
        if self.identity.app_state_crc(describe) == data.app_state_crc:
            self._log.info(LOG_HANDSHAKE, "Skipping HELLO message")
            self._send_con(wire.EMPTY, (), b"", what="resume ping")
            self._arm_keepalive()
            self._report_begin(ProtocolResult.SESSION_RESUMED, self.options.resume_send_s)
        else:
            self._tracer.emit("session.app_state_changed", cached=data.app_state_crc)
            self._send_hello()

    def _start_dtls_handshake(self) -> None:
        self.phase = Phase.DTLS_HELLO
        self._tracer.emit("dtls.handshake_start")
        self._send_dtls(HandshakeType.CLIENT_HELLO, self.identity.device_id)

    def _send_dtls(self, htype: HandshakeType, body: bytes) -> None:
        datagram = wire.encode_handshake(htype, body)
        self._dtls_attempts = 0
        self._transmit_dtls(datagram)

    def _transmit_dtls(self, datagram: bytes) -> None:
        if self._dtls_attempts > self.options.dtls_max_retransmit:
            self._cancel_timer("_dtls_timer")
            self._tracer.emit("dtls.handshake_timeout")
            self._report_begin(ProtocolResult.MESSAGE_TIMEOUT)
            return
        delay = self.options.dtls_retransmit_s * (2 ** self._dtls_attempts)
        self._dtls_attempts += 1
        self._send_raw(datagram)
        # replaces the previous timer (``reschedule``: without leaving a cancelled entry behind)
        self._dtls_timer = self._scheduler.reschedule(self._dtls_timer, delay,
                                                      self._transmit_dtls, datagram,
                                                      label="dtls-retransmit")

    def _send_hello(self) -> None:
        """``Protocol::hello``: the HELLO is sent synchronously (``set_confirm_received(true)``,
        ``CoAPReliableChannel::send_synchronous``): ``begin`` goes on only once its ACK came."""
        self.phase = Phase.HELLO
        self._log.info(LOG_HANDSHAKE, "Sending HELLO message")
        ident = self.identity
        hello = wire.Hello(ident.product_id, ident.product_version, ident.flags,
                           ident.platform_id, ident.device_id, ident.system_module_version)
        self._hello_mid = self._send_con(wire.POST, (wire.URI_HELLO,), hello.encode(),
                                         what="hello", on_ack=self._hello_acked)

    def _hello_acked(self, _ack: CoapMessage) -> None:
        """The rest of ``begin`` (any ACK delivers the HELLO): log ``Handshake completed``,
        persist the session, send the forced system DESCRIBE, return NO_ERROR."""
        self._hello_mid = None
        self.phase = Phase.ESTABLISHED
        self._log.info(LOG_HANDSHAKE, "Handshake completed")
        ident = self.identity
        describe = self._system_describe()
        if ident.persists_session:
            self._session.save(SessionData(self._session_id, ident.keys_checksum, 0,
                                           self._exchange.ids.next,
                                           ident.app_state_crc(describe)))
            self._tracer.emit("session.persisted", session_id=self._session_id)
        self._send_con(wire.POST, (wire.URI_DESCRIBE,), describe, what="system describe")
        self._arm_keepalive()
        self._report_begin(ProtocolResult.NO_ERROR)

    def _hello_failed(self, code: ProtocolResult) -> None:
        """``send_synchronous`` gave up on the HELLO (MESSAGE_TIMEOUT: never acknowledged;
        MESSAGE_RESET: an RST for it): ``begin`` logs it and returns the error."""
        self._hello_mid = None
        self._log.error(LOG_HANDSHAKE, f"Could not send HELLO message: {int(code)}")
        self._fail(code)

    def _report_begin(self, code: ProtocolResult, delay_s: float = 0.0) -> None:
        if self._begin_reported:
            return
        self._begin_reported = True
        if delay_s > 0:
            self._begin_timer = self._scheduler.call_later(
                delay_s, self._begin_result_due, code, label="protocol-begin-result")
        else:
            self._scheduler.call_soon(self._listener.protocol_begin_result, code,
                                      label="protocol-begin-result")

    def _begin_result_due(self, code: ProtocolResult) -> None:
        """``begin`` returns: the system hears the result, then what arrived meanwhile is
        processed (Device OS reads the socket only after ``begin`` returned)."""
        self._begin_timer = None
        self._listener.protocol_begin_result(code)
        held, self._held = self._held, None
        for data in held or ():
            self._scheduler.call_soon(self.datagram_received, data, label="protocol-held")

    def _fail(self, code: ProtocolResult) -> None:
        """A connection-level failure: before ``begin`` reported, it is the begin result."""
        self._tracer.emit("protocol.failed", code=code.name)
        self.close()
        if not self._begin_reported:
            self._report_begin(code)
        else:
            self._scheduler.call_soon(self._listener.protocol_error, code, label="protocol-error")

    # -- sending -------------------------------------------------------------------------------

    def _send_raw(self, datagram: bytes) -> None:
        if self._port is not None:
            self._port.send(datagram)

    def _frame_coap(self, coap: bytes) -> bytes:
        """The datagram carrying ``coap`` on this session. A confirmable keeps it for its
        retransmissions: the session id never changes while one is awaited (a new session
        starts with ``begin``, which closes the exchange first)."""
        return wire.encode_app_data(self._session_id, coap)

    def _send_con(self, code: int, uri_path: tuple[str, ...], payload: bytes, *, what: str,
                  max_age: int | None = None, token: bool = False, token_bytes: bytes = b"",
                  on_ack: Callable[[CoapMessage], None] | None = None) -> int:
        mid = self._exchange.allocate_mid()
        tok = token_bytes
        if token:
            tok = bytes([self._next_token & 0xFF])
            self._next_token += 1
        message = CoapMessage(CoapType.CON, code, mid, tok, uri_path, payload, max_age)
        self._tracer.emit("coap.send", mid=mid, what=what, size=len(payload))
        self._exchange.send_confirmable(message, what=what, on_ack=on_ack)
        self._touch()
        return mid

    def _coap_retransmit(self, pending: Confirmable) -> None:
        self._tracer.emit("coap.retransmit", mid=pending.mid, what=pending.what,
                          attempt=pending.transmissions)

    def _coap_timeout(self, pending: Confirmable) -> None:
        self._tracer.emit("coap.timeout", mid=pending.mid, what=pending.what)
        if self.phase is Phase.HELLO:
            self._hello_failed(ProtocolResult.MESSAGE_TIMEOUT)
            return
        is_ping = pending.what in ("ping", "resume ping")
        self._fail(ProtocolResult.PING_TIMEOUT if is_ping else ProtocolResult.MESSAGE_TIMEOUT)

    # -- keepalive -----------------------------------------------------------------------------

    def _touch(self) -> None:
        if self.phase is Phase.ESTABLISHED:
            self._arm_keepalive()

    def _arm_keepalive(self) -> None:
        # re-armed on every message: ``reschedule`` keeps the handle's heap entry
        self._keepalive = self._scheduler.reschedule(self._keepalive, self.options.keepalive_s,
                                                     self._keepalive_due, label="keepalive")

    def _keepalive_due(self) -> None:
        self._keepalive = None
        if self.phase is Phase.ESTABLISHED:
            self.ping()

    def _cancel_timer(self, attr: str) -> None:
        timer: TimerHandle | None = getattr(self, attr)
        if timer is not None:
            timer.cancel()
            setattr(self, attr, None)

    # -- receiving -----------------------------------------------------------------------------

    def datagram_received(self, data: bytes) -> None:
        if self.phase in (Phase.IDLE, Phase.CLOSED):
            return
        if self._begin_timer is not None:
            if self._held is None:
                self._held = []
            self._held.append(bytes(data))
            return
        try:
            record = wire.decode_record(data)
        except PeerProtocolError as exc:
            self._tracer.emit("datagram.malformed", error=str(exc), size=len(data))
            return
        if record.type is RecordType.HANDSHAKE:
            self._on_handshake(HandshakeType(record.subtype), record.body)
        elif record.type is RecordType.ALERT:
            self._tracer.emit("dtls.alert", code=record.subtype)
            if self.phase in (Phase.DTLS_HELLO, Phase.DTLS_FINISHED):
                self._fail(ProtocolResult.AUTHENTICATION_ERROR)
        elif (record.session_id == self._session_id
              and self.phase in (Phase.ESTABLISHED, Phase.HELLO)):
            try:
                message = CoapMessage.decode(record.body)
            except PeerProtocolError as exc:
                self._tracer.emit("coap.malformed", error=str(exc))
                return
            self._on_coap(message)
        else:
            self._tracer.emit("datagram.ignored", reason="unexpected session or phase")

    def _on_handshake(self, htype: HandshakeType, body: bytes) -> None:
        if self.phase is Phase.DTLS_HELLO and htype is HandshakeType.SERVER_HELLO:
            self.phase = Phase.DTLS_FINISHED
            if self.options.dtls_crypto_s > 0:
                # The key exchange and the signatures are computed before the answer goes out.
                self._dtls_timer = self._scheduler.reschedule(
                    self._dtls_timer, self.options.dtls_crypto_s, self._send_dtls,
                    HandshakeType.CLIENT_FINISHED, b"", label="dtls-crypto")
            else:
                self._send_dtls(HandshakeType.CLIENT_FINISHED, b"")
        elif self.phase is Phase.DTLS_FINISHED and htype is HandshakeType.SERVER_FINISHED:
            self._cancel_timer("_dtls_timer")
            self._session_id = body
            self._exchange.ids.restart(1)
            self._tracer.emit("dtls.handshake_done", session_id=body)
            self._send_hello()
        else:
            self._tracer.emit("dtls.unexpected", message=htype.name, phase=self.phase.value)

    def _on_coap(self, message: CoapMessage) -> None:
        if self._resumed and not self._heard_on_resumed:
            self._heard_on_resumed = True
            self._session.cancel_move()
            self._tracer.emit("session.use_counter_reset")
        self._touch()
        if self.phase is Phase.HELLO:
            self._on_coap_awaiting_hello(message)
            return
        if message.mtype is CoapType.RST:
            self._log.warn(LOG_COAP, "Received RST message; discarding session")
            self._session.discard()
            self._fail(ProtocolResult.IO_ERROR_DISCARD_SESSION)
            return
        if message.mtype is CoapType.ACK:
            self._on_ack(message)
            return
        # A request from the cloud (CON or NON).
        if message.code == wire.POST and message.uri_path == (wire.URI_SERVER_MOVED,):
            self._on_server_moved(message)
            return
        duplicate = self._exchange.is_duplicate(message.mid)
        path = message.uri_path
        if len(path) == 2 and path[0] in (wire.URI_FUNCTION, wire.URI_VARIABLE):
            self._on_app_request(message, duplicate)
            return
        if message.code == wire.PUT and path[:1] == (wire.URI_SIGNAL,):
            # SIGNAL_START / SIGNAL_STOP (Device OS ``Messages::decodeType``: the byte after
            # ``s``, the second option's first, not 0 starts it): a piggybacked 2.04 ACK, then
            # the signal
            if message.mtype is CoapType.CON:
                self._exchange.send_ack(message, wire.CHANGED)
            if not duplicate:
                on = len(path) > 1 and path[1][:1] not in ("", "\x00")
                self._tracer.emit("signal.received", on=on)
                self._scheduler.call_soon(self._listener.protocol_signal, on,
                                          label="protocol-signal")
            return
        if message.mtype is CoapType.CON:
            self._exchange.send_ack(message)
        if duplicate:
            return
        event = wire.parse_event_uri(message.uri_path)
        if message.code == wire.POST and event is not None:
            name, _private = event
            self._tracer.emit("event.received", name=name, size=len(message.payload))
            self._scheduler.call_soon(self._listener.protocol_event, name, message.payload,
                                      label="protocol-event")
        elif message.code == wire.PUT and message.uri_path[:1] == (wire.URI_KEY_CHANGE,):
            # ``handle_key_change``: the parameter option's byte 1 discards the session.
            if message.uri_path[1:2] == ("\x01",):
                self._log.warn(LOG_PROTOCOL, "Received a key change message; discarding session")
                self._session.discard()
                self._fail(ProtocolResult.IO_ERROR_DISCARD_SESSION)
        else:
            self._tracer.emit("coap.unhandled_request", code=message.code_text,
                              uri="/".join(message.uri_path))

    def _on_ack(self, message: CoapMessage) -> None:
        pending = self._exchange.acknowledge(message)
        if pending is None:
            self._tracer.emit("coap.unexpected_ack", mid=message.mid)
            return
        self._tracer.emit("coap.acked", mid=message.mid, what=pending.what,
                          code=message.code_text)
        self._session.update_coap_id(self._exchange.ids.next)
        if pending.on_ack is not None:
            pending.on_ack(message)
        if self._exchange.idle:
            self._scheduler.call_soon(self._listener.protocol_idle, label="protocol-idle")

    def _on_coap_awaiting_hello(self, message: CoapMessage) -> None:
        """``send_synchronous``'s loop: ACKs and RSTs go to the message store (an RST, whatever
        its id, logs and discards the session; one for the HELLO fails it with MESSAGE_RESET);
        requests from the cloud are dropped unanswered ("drop CON messages on the floor")."""
        if message.mtype is CoapType.RST:
            self._log.warn(LOG_COAP, "Received RST message; discarding session")
            self._session.discard()
            if message.mid == self._hello_mid:
                self._tracer.emit("coap.reset", mid=message.mid, what="hello")
                self._hello_failed(ProtocolResult.MESSAGE_RESET)
            return
        if message.mtype is CoapType.ACK:
            self._on_ack(message)
            return
        self._tracer.emit("coap.dropped", mid=message.mid, reason="awaiting the HELLO's ACK")

    def _on_app_request(self, message: CoapMessage, duplicate: bool) -> None:
        """A function call (POST ``f/<name>``) or variable request (GET ``v/<name>``)."""
        kind, name = message.uri_path
        argument = message.uri_query[0] if message.uri_query else ""
        is_call = kind == wire.URI_FUNCTION and message.code == wire.POST
        is_read = kind == wire.URI_VARIABLE and message.code == wire.GET
        too_long = is_call and len(argument.encode("utf-8", "surrogatepass")
                                   ) > wire.MAX_FUNCTION_ARG_LENGTH
        if message.mtype is CoapType.CON:
            self._exchange.send_ack(message, wire.BAD_REQUEST if too_long else wire.EMPTY)
        if duplicate or too_long or not message.token:
            return
        if is_call:
            self._tracer.emit("function.call", name=name, size=len(argument))
            self._scheduler.call_soon(self._run_function, name, argument, message.token,
                                      self._session_id, label="app-function")
        elif is_read:
            self._tracer.emit("variable.request", name=name)
            self._scheduler.call_soon(self._read_variable, name, message.token,
                                      self._session_id, label="app-variable")
        else:
            self._tracer.emit("coap.unhandled_request", code=message.code_text,
                              uri="/".join(message.uri_path))

    def _answer(self, session_id: bytes, code: int, token: bytes, payload: bytes,
                what: str) -> None:
        """A separate response on the connection the request came on (dropped if it went)."""
        if self.phase is Phase.ESTABLISHED and self._session_id == session_id:
            self._send_con(code, (), payload, what=what, token_bytes=token)

    def _run_function(self, name: str, argument: str, token: bytes, session_id: bytes) -> None:
        result = self._listener.protocol_function_call(name, argument)
        if result is None:
            self._tracer.emit("function.unknown", name=name)
            return
        self._answer(session_id, wire.CHANGED, token, wire.encode_function_return(result),
                     _what("function ", name))

    def _read_variable(self, name: str, token: bytes, session_id: bytes) -> None:
        found = self._listener.protocol_variable_request(name)
        if found is None:
            self._answer(session_id, wire.NOT_FOUND, token, b"", _what("variable ", name))
            return
        self._answer(session_id, wire.CONTENT, token, found[1], _what("variable ", name))

    def _on_server_moved(self, message: CoapMessage) -> None:
        """``handle_server_moved_request``: a CON with a token is acknowledged and handed to the
        system, whose result goes back as a CON response with the same token."""
        if message.mtype is not CoapType.CON or not message.token:
            self._log.error(LOG_PROTOCOL, "Received a malformed ServerMoved request")
            return
        if self._exchange.is_duplicate(message.mid):
            self._exchange.send_ack(message)
            return
        self._log.warn(LOG_PROTOCOL, "Received a ServerMoved request")
        self._exchange.send_ack(message)
        token = message.token

        def respond(result: int) -> None:
            if self.phase is Phase.ESTABLISHED:
                code = wire.CHANGED if result == 0 else (
                    wire.BAD_REQUEST if result in (-280, -270) else wire.INTERNAL_SERVER_ERROR)
                self._send_con(code, (), b"", what="server moved response", token_bytes=token)

        self._scheduler.call_soon(self._listener.protocol_server_moved, message.payload, respond,
                                  label="protocol-server-moved")

    def _on_time_ack(self, message: CoapMessage) -> None:
        if len(message.payload) >= 4:
            unix_time = int.from_bytes(message.payload[:4], "big")
            self._scheduler.call_soon(self._listener.protocol_time, unix_time,
                                      label="protocol-time")
