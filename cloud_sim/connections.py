"""Connection limits of the served REST API: a cap, slow-request timeouts, graceful refusal.

How this works
--------------
uvicorn's HTTP/1.1 protocols keep a connection that sends nothing, or sends a request head one
byte at a time (slowloris), open forever, so 1,000 such connections used to exhaust an
open-file limit of 1,024 and deny service to everyone. :func:`guarded_protocol` makes a subclass
of one of them - ``httptools`` (a C parser, the default when it is installed: the ``cloud``
extra brings it) or the pure-Python ``h11`` - bound to one :class:`ConnectionRegistry`, that
uvicorn uses instead. Both variants apply the same rules, with the same answers:

* **Request-head deadline.** From the moment a connection opens - and again after each response
  - the next request head must be complete within ``head_timeout_s``; otherwise the connection
  gets ``408`` and is closed. A connection that never sends anything is the same case. A body
  has its own deadline in the API (``ApiConfig.body_timeout_s``); idle keep-alive connections
  are closed by uvicorn after ``keep_alive_s``.
* **Cap.** At most ``max_connections`` are open (lowered to fit the process's open-file limit,
  :func:`effective_cap`). A connection arriving at the cap evicts (``408``, closed) one that
  is not running a request, chosen by :class:`Stage`: an *idle* one first (nothing received
  since it opened or since its last answer), then one still receiving a request *head*, then
  one whose request *body* is still arriving (the app waits for it) - within a stage the least
  recently active (the last byte received or answer sent longest ago); last, one opened less
  than ``new_grace_s`` ago that has sent nothing yet, so that an attacker's reconnections
  cannot evict a client in the instant between its connect and its request. A request
  received whole (the app runs it) and an event stream are never evicted; if every
  connection is such, the newcomer gets ``503`` and is closed. So an attacker holding idle,
  slow-head or slow-body connections cannot starve clients that talk.
* **At the open-file limit** ``accept()`` fails with EMFILE: asyncio then pauses accepting for a
  second and retries, while the open connections go on being served.
* **Malformed HTTP** is answered ``400`` with the API's JSON error shape (uvicorn answers
  ``text/plain``), and a request target that is not ASCII - which uvicorn's decoding raised on,
  killing the connection - is answered the same way. So is a request head larger than
  ``max_head_bytes`` (h11 keeps at most that much of an incomplete head; llhttp, under
  httptools, has no limit of its own, so the guard counts the head's bytes).

:func:`http_protocol_name` picks the variant: ``auto`` (httptools if importable, else h11),
``h11`` or ``httptools``; the environment variable ``FWSIM_HTTP_PROTOCOL`` sets the default.
Every answer above is byte for byte the same under both. Where they differ is what counts as
malformed: llhttp refuses (JSON 400) a few heads h11 lets through - bare-LF line ends, folded
header lines, control characters in a header value, ``Content-Length`` next to
``Transfer-Encoding`` (a request-smuggling shape) - so the httptools variant is the stricter.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
from collections import OrderedDict
from dataclasses import dataclass
from enum import IntEnum
from importlib.util import find_spec
from typing import Protocol, cast
from urllib.parse import unquote

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from .http.params import WHOLE_REQUEST_RECEIVED

#: the bytes of a request head kept at most (uvicorn's h11 default; both variants apply it)
MAX_HEAD_BYTES = 16 * 1024
HTTP_PROTOCOLS = ("auto", "h11", "httptools")
INVALID_REQUEST = "Invalid HTTP request received."


@dataclass(frozen=True)
class ConnectionLimits:
    #: open HTTP connections at most (further lowered to fit the open-file limit)
    max_connections: int = 512
    #: seconds a request head may take to arrive (from the connection or the last response)
    head_timeout_s: float = 10.0
    #: seconds an idle keep-alive connection stays open (uvicorn's ``timeout_keep_alive``)
    keep_alive_s: float = 5.0
    #: file descriptors left for everything else (database, UDP, logs, other listeners)
    fd_reserve: int = 128
    #: seconds a new connection that has sent nothing yet is evicted only after slow bodies
    #: (after that it is idle, the first to be evicted)
    new_grace_s: float = 1.0


def effective_cap(limits: ConnectionLimits) -> int:
    """``max_connections``, lowered so that the connections fit the open-file soft limit."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft <= 0:
        return limits.max_connections
    return min(limits.max_connections, max(8, soft - limits.fd_reserve))


def default_http_protocol() -> str:
    """``FWSIM_HTTP_PROTOCOL`` if set, else ``auto``."""
    return os.environ.get("FWSIM_HTTP_PROTOCOL", "auto").strip().lower() or "auto"


def http_protocol_name(choice: str) -> str:
    """The variant ``choice`` (``auto``, ``h11``, ``httptools``) stands for here."""
    if choice not in HTTP_PROTOCOLS:
        raise ValueError(f"unknown HTTP protocol {choice!r} (one of {', '.join(HTTP_PROTOCOLS)})")
    if choice == "auto":
        return "httptools" if find_spec("httptools") is not None else "h11"
    return choice


class Stage(IntEnum):
    """Where a connection's request is, in the order connections are evicted at the cap."""

    #: nothing received since the connection opened or since its last answer
    IDLE = 0
    #: a request head is arriving (slowloris)
    HEAD = 1
    #: the head is parsed and the app waits for the rest of the body (a slow upload)
    BODY = 2
    #: opened less than ``new_grace_s`` ago, nothing received yet: its request is on the way
    NEW = 3
    #: the whole request is in and the app answers it (event streams too): never evicted
    RUNNING = 4


class _Cycle(Protocol):
    """What the guard reads of uvicorn's request-response cycle (both variants have it)."""

    response_started: bool
    response_complete: bool
    more_body: bool


class ConnectionRegistry:
    """The open connections of one server, least recently active first."""

    def __init__(self, limits: ConnectionLimits) -> None:
        self.limits = limits
        self.cap = effective_cap(limits)
        self.open: OrderedDict[Guarded, None] = OrderedDict()
        self.refused = 0
        self.evicted = 0
        self.timed_out = 0

    def touch(self, protocol: Guarded) -> None:
        if protocol in self.open:
            self.open.move_to_end(protocol)

    def admit(self, protocol: Guarded) -> bool:
        """Make room for ``protocol`` (evicting a connection not running a request, if
        needed); False when every open connection runs one."""
        if len(self.open) >= self.cap:
            victim = self.victim()
            if victim is None:
                self.refused += 1
                return False
            self.evicted += 1
            victim.drop(408, "Request timeout",
                        f"closed to make room for another connection ({victim.doing})")
        self.open[protocol] = None
        return True

    def victim(self) -> Guarded | None:
        """The connection to evict: the lowest :class:`Stage` below ``RUNNING``, the least
        recently active of that stage (``open`` is in that order)."""
        found: Guarded | None = None
        lowest = Stage.RUNNING
        for protocol in self.open:
            stage = protocol.stage
            if stage < lowest:
                found, lowest = protocol, stage
                if stage is Stage.IDLE:
                    break
        return found

    def forget(self, protocol: Guarded) -> None:
        self.open.pop(protocol, None)


def _raw_error(status: int, reason: str, error: str, description: str) -> bytes:
    body = json.dumps({"ok": False, "error": error, "error_description": description},
                      separators=(",", ":")).encode()
    # the head h11 writes for the same answer (GuardedH11Protocol.send_400_response)
    return (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
            f"connection: close\r\ncontent-length: {len(body)}\r\n\r\n").encode() + body


class Guarded(asyncio.Protocol):
    """The limits of the module header, shared by both protocol variants (mixed in before
    uvicorn's protocol class, so ``super()`` is uvicorn's; :func:`guarded_protocol` binds it to
    a registry)."""

    registry: ConnectionRegistry
    transport: asyncio.Transport
    loop: asyncio.AbstractEventLoop
    _deadline: asyncio.TimerHandle | None = None
    #: loop time the connection was accepted
    _opened_at = 0.0
    #: bytes arrived since the connection opened or since its last answer
    _heard = False

    def _cycle(self) -> _Cycle | None:
        """uvicorn's current request-response cycle (None before the first head)."""
        raise NotImplementedError

    @property
    def idle(self) -> bool:
        """No request in progress: waiting for (or receiving) a request head."""
        cycle = self._cycle()
        return cycle is None or cycle.response_complete

    @property
    def stage(self) -> Stage:
        """Where this connection's request is (module header, **Cap**)."""
        cycle = self._cycle()
        if cycle is not None and not cycle.response_complete:
            if cycle.more_body and not cycle.response_started:
                return Stage.BODY
            return Stage.RUNNING
        if self._heard:
            return Stage.HEAD
        if self.loop.time() - self._opened_at < self.registry.limits.new_grace_s:
            return Stage.NEW
        return Stage.IDLE

    @property
    def doing(self) -> str:
        """What the connection was doing, for the answer of an eviction."""
        if not self.idle:
            return "its request body was still arriving"
        if self._heard:
            return "its request head was still arriving"
        return "it was idle" if self.stage is Stage.IDLE else "it had sent nothing yet"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a stream transport (uvloop's are not asyncio.Transport subclasses)
        stream = cast(asyncio.Transport, transport)
        super().connection_made(stream)
        self._opened_at = self.loop.time()
        if not self.registry.admit(self):  # no room: refused
            stream.write(_raw_error(503, "Service Unavailable", "Service unavailable",
                                    "too many open connections; retry shortly"))
            stream.close()
            return
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self.registry.forget(self)
        super().connection_lost(exc)

    def _heard_from(self) -> None:
        """Bytes arrived: the connection is the most recently active."""
        self._heard = True
        self.registry.touch(self)

    def _answered(self) -> None:
        """A response is complete: the next head has its own deadline."""
        self._heard = False
        self.registry.touch(self)
        if not self.transport.is_closing():
            self._arm()

    # -- the request-head deadline -------------------------------------------------------------

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.registry.limits.head_timeout_s, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self.idle and not self.transport.is_closing():
            self.registry.timed_out += 1
            self.drop(408, "Request timeout", "the request head did not arrive in time")

    def drop(self, status: int, error: str, description: str) -> None:
        """Close this connection (it runs no request: the app, if it waits for a body, sees
        the client leave) with a last JSON error."""
        self._disarm()
        self.registry.forget(self)
        if not self.transport.is_closing():
            reason = {408: "Request Timeout", 503: "Service Unavailable"}.get(status, "Error")
            self.transport.write(_raw_error(status, reason, error, description))
            self.transport.close()


class GuardedH11Protocol(Guarded, H11Protocol):
    """uvicorn's h11 protocol with the limits of the module header."""

    def _cycle(self) -> _Cycle | None:
        return self.cycle

    def data_received(self, data: bytes) -> None:
        self._heard_from()
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._disarm()  # the head is complete: the request runs on its own deadlines

    def handle_events(self) -> None:
        try:
            super().handle_events()
        except UnicodeDecodeError:  # a request target that is not ASCII
            self.send_400_response("Invalid request target")

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._answered()

    def send_400_response(self, msg: str) -> None:
        if self.transport.is_closing():
            return
        body = json.dumps({"ok": False, "error": "Bad request", "error_description": msg},
                          separators=(",", ":")).encode()
        try:
            data = self.conn.send(h11.Response(
                status_code=400, reason=b"Bad Request",
                headers=[(b"content-type", b"application/json"), (b"connection", b"close"),
                         (b"content-length", str(len(body)).encode())]))
            data = (data or b"") + (self.conn.send(h11.Data(data=body)) or b"")
            data += self.conn.send(h11.EndOfMessage()) or b""
        except h11.LocalProtocolError:  # h11 cannot answer in this state: raw bytes
            data = _raw_error(400, "Bad Request", "Bad request", msg)
        self.transport.write(data)
        self.transport.close()


def _httptools_protocol() -> type[Guarded]:
    """The httptools variant (defined on first use: httptools is optional)."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class GuardedHttpToolsProtocol(Guarded, HttpToolsProtocol):
        """uvicorn's httptools protocol with the limits of the module header."""

        _head_complete = False
        _head_bytes = 0
        _bad_target = False

        def _cycle(self) -> _Cycle | None:
            return self.cycle

        def data_received(self, data: bytes) -> None:
            self._heard_from()
            super().data_received(data)
            if self._head_complete or self.transport.is_closing():
                return
            # llhttp keeps an incomplete head without limit: count it as h11 does
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES:
                self.send_400_response(INVALID_REQUEST)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._head_complete = False
            self._head_bytes = 0

        def on_headers_complete(self) -> None:
            self._head_complete = True
            self._disarm()  # the head is complete: the request runs on its own deadlines
            try:
                super().on_headers_complete()
            except UnicodeDecodeError:  # a request target that is not ASCII
                self._bad_target = True
                raise
            if not self.url.startswith(b"/") and "path" in self.scope:
                # an absolute-form target is routed by its whole text, as under h11 (so
                # ``GET http://other/v1/devices`` is a 404, not /v1/devices)
                raw_path = self.url.partition(b"?")[0]
                self.scope["raw_path"] = raw_path
                self.scope["path"] = unquote(raw_path.decode("ascii"))

        def on_message_complete(self) -> None:
            super().on_message_complete()
            if self.cycle is not None and not self.cycle.more_body:
                self.scope[WHOLE_REQUEST_RECEIVED] = True  # type: ignore[literal-required]

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._answered()

        def send_400_response(self, msg: str) -> None:
            if self._bad_target:
                msg = "Invalid request target"
            if not self.transport.is_closing():
                self.transport.write(_raw_error(400, "Bad Request", "Bad request", msg))
                self.transport.close()

    return GuardedHttpToolsProtocol


def guarded_protocol(registry: ConnectionRegistry, protocol: str = "auto") -> type[Guarded]:
    """A protocol class for ``uvicorn.Config(http=...)`` bound to ``registry``: the
    ``protocol`` variant (``auto``, ``h11``, ``httptools``; see :func:`http_protocol_name`)."""
    base: type[Guarded] = (_httptools_protocol() if http_protocol_name(protocol) == "httptools"
                           else GuardedH11Protocol)
    return type(f"Served{base.__name__.removeprefix('Guarded')}", (base,),
                {"registry": registry})
