"""Connection limits of the served REST API: a cap, slow-request timeouts, graceful refusal.

How this works
--------------
uvicorn's HTTP/1.1 protocol (h11) keeps a connection that sends nothing, or sends a request head
one byte at a time (slowloris), open forever, so 1,000 such connections used to exhaust an
open-file limit of 1,024 and deny service to everyone. :func:`guarded_protocol` makes a subclass
of it, bound to one :class:`ConnectionRegistry`, that uvicorn uses instead:

* **Request-head deadline.** From the moment a connection opens - and again after each response
  - the next request head must be complete within ``head_timeout_s``; otherwise the connection
  gets ``408`` and is closed. A connection that never sends anything is the same case. A body
  has its own deadline in the API (``ApiConfig.body_timeout_s``); idle keep-alive connections
  are closed by uvicorn after ``keep_alive_s``.
* **Cap.** At most ``max_connections`` are open (lowered to fit the process's open-file limit,
  :func:`effective_cap`). A connection arriving at the cap evicts the least recently active
  connection that has *no request in progress* (idle, or still trickling a head); if every
  connection is busy (requests running, event streams) the newcomer gets ``503`` and is closed.
  So an attacker holding idle or slow connections cannot starve clients that talk.
* **At the open-file limit** ``accept()`` fails with EMFILE: asyncio then pauses accepting for a
  second and retries, while the open connections go on being served.
* **Malformed HTTP** is answered ``400`` with the API's JSON error shape (uvicorn answers
  ``text/plain``), and a request target that is not ASCII - which uvicorn's decoding raised on,
  killing the connection - is answered the same way.
"""

from __future__ import annotations

import asyncio
import json
import resource
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, cast

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol


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


def effective_cap(limits: ConnectionLimits) -> int:
    """``max_connections``, lowered so that the connections fit the open-file soft limit."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft <= 0:
        return limits.max_connections
    return min(limits.max_connections, max(8, soft - limits.fd_reserve))


class ConnectionRegistry:
    """The open connections of one server, least recently active first."""

    def __init__(self, limits: ConnectionLimits) -> None:
        self.limits = limits
        self.cap = effective_cap(limits)
        self.open: OrderedDict[GuardedH11Protocol, None] = OrderedDict()
        self.refused = 0
        self.evicted = 0
        self.timed_out = 0

    def touch(self, protocol: GuardedH11Protocol) -> None:
        if protocol in self.open:
            self.open.move_to_end(protocol)

    def admit(self, protocol: GuardedH11Protocol) -> bool:
        """Make room for ``protocol`` (evicting an idle connection if needed)."""
        if len(self.open) >= self.cap:
            victim = next((p for p in self.open if p.idle), None)
            if victim is None:
                self.refused += 1
                return False
            self.evicted += 1
            victim.drop(408, "Request timeout",
                        "closed to make room for another connection (it was idle)")
        self.open[protocol] = None
        return True

    def forget(self, protocol: GuardedH11Protocol) -> None:
        self.open.pop(protocol, None)


def _raw_error(status: int, reason: str, error: str, description: str) -> bytes:
    body = json.dumps({"ok": False, "error": error, "error_description": description},
                      separators=(",", ":")).encode()
    return (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n").encode() + body


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with the limits of the module header (use
    :func:`guarded_protocol` to bind it to a registry)."""

    registry: ConnectionRegistry

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None

    @property
    def idle(self) -> bool:
        """No request in progress: waiting for (or receiving) a request head."""
        return self.conn.their_state in (h11.IDLE, h11.MUST_CLOSE, h11.CLOSED, h11.ERROR) and (
            self.cycle is None or self.cycle.response_complete)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a stream transport (uvloop's are not asyncio.Transport subclasses)
        transport = cast(asyncio.Transport, transport)
        super().connection_made(transport)
        if not self.registry.admit(self):
            transport.write(_raw_error(503, "Service Unavailable", "Service unavailable",
                                       "too many open connections; retry shortly"))
            transport.close()
            return
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self.registry.forget(self)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self.registry.touch(self)
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._disarm()  # the head is complete: the request runs on its own deadlines

    def handle_events(self) -> None:
        try:
            super().handle_events()
        except UnicodeDecodeError:  # a request target that is not ASCII
            self.send_400_response("Invalid request target")

    def on_response_complete(self) -> None:
        self.registry.touch(self)
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()

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
        """Close this connection (it has no request in progress) with a last JSON error."""
        self._disarm()
        self.registry.forget(self)
        if not self.transport.is_closing():
            reason = {408: "Request Timeout", 503: "Service Unavailable"}.get(status, "Error")
            self.transport.write(_raw_error(status, reason, error, description))
            self.transport.close()


def guarded_protocol(registry: ConnectionRegistry) -> type[GuardedH11Protocol]:
    """A protocol class for ``uvicorn.Config(http=...)`` bound to ``registry``."""
    return type("ServedH11Protocol", (GuardedH11Protocol,), {"registry": registry})
