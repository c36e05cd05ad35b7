"""The SoftAP HTTP server (port 80 on the device), sans-IO on top of h11.

How this works
--------------
h11 does all HTTP/1.1 parsing and framing; :class:`HttpSession` feeds it the bytes of one
connection and answers each complete request from the device's page table
(``soft_ap_http_pages`` in ``softap_ip.c`` plus the default page handler of ``softap.cpp``):

============================================  ================================================
``/``                                         301 to ``/index`` (WICED ``ROOT_HTTP_PAGE_REDIRECT``)
``/hello``                                    200 ``text/html``: ``Soft AP Setup`` plus its NUL
                                              (the page is the C array, ``sizeof`` bytes)
``/version`` ``/device-id`` ``/scan-ap``      the command: 200, ``application/json``, chunked,
``/configure-ap`` ``/connect-ap``             CORS (``Access-Control-Allow-Origin: *``), cache
``/public-key`` ``/set``                      disabled; the body is the command's reply - empty
                                              when the request body did not parse
``/index``                                    301 to ``/hello``, chunked, empty
anything else                                 404, chunked, empty
============================================  ================================================

The method does not matter (softap-setup GETs commands without a body and POSTs the others as
``application/x-www-form-urlencoded`` - the body is JSON whatever the content type says); the
query string is ignored. A request body over ``max_body_bytes`` is not read (the device's
``malloc`` fails): as soon as the head announces such a ``Content-Length`` (or a chunked body
grows past the limit) the page answers - a command 200 with no body - with ``Connection:
close``, the rest of the input is ignored and the connection closes after the reply. Malformed
HTTP gets a 400 and a close; a connection idle for ``request_timeout_s`` is closed. Keep-alive
follows HTTP/1.1 rules as h11 applies them (UNVERIFIED for the WICED server; docs/softap.md).
"""

from __future__ import annotations

from collections.abc import Callable

import h11

from firmware_sim.kernel.scheduler import TimerHandle

from .commands import COMMAND_NAMES
from .session import SessionHost

HELLO_BODY = b"Soft AP Setup\x00"
MAX_HEADER_BYTES = 8192

CORS = (b"Access-Control-Allow-Origin", b"*")
NO_CACHE = [(b"Cache-Control", b"no-store, no-cache, must-revalidate"), (b"Pragma", b"no-cache")]
CHUNKED = (b"Transfer-Encoding", b"chunked")
CLOSE = (b"Connection", b"close")
_REASONS = {200: b"OK", 301: b"Moved Permanently", 400: b"Bad Request", 404: b"Not Found"}

Header = tuple[bytes, bytes]


def _announced_length(request: h11.Request) -> int:
    """The request's ``Content-Length`` (h11 has checked it is digits), 0 without one; a
    chunked body announces nothing (h11 ignores ``Content-Length`` next to it)."""
    length = 0
    for name, value in request.headers:
        if name == b"transfer-encoding":
            return 0
        if name == b"content-length":
            length = int(value)
    return length


class HttpSession:
    """One client connection of the HTTP setup server."""

    protocol = "http"

    def __init__(self, softap: SessionHost, conn: int, send: Callable[[bytes], None],
                 close: Callable[[], None]) -> None:
        self.softap = softap
        self.conn = conn
        self._send_bytes = send
        self._close_transport = close
        self._h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADER_BYTES)
        self._request: h11.Request | None = None
        self._body = bytearray()
        self._busy = False
        self._closed = False
        #: a too-large body was refused: nothing more is read, the reply ends the connection
        self._ignoring_input = False
        self._timer: TimerHandle | None = None
        self._arm_timer()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def busy(self) -> bool:
        return self._busy

    # -- input ---------------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if data:
            self._receive(data)

    def eof_received(self) -> None:
        self._receive(b"")  # h11: empty data means the peer closed its side

    def _receive(self, data: bytes) -> None:
        if self._closed or self._ignoring_input:
            return
        try:
            self._h11.receive_data(data)
        except RuntimeError:  # data after the peer closed: nothing left to serve
            return
        self._pump()

    def connection_lost(self) -> None:
        if not self._closed:
            self._finish("connection lost")

    def _pump(self) -> None:
        while not self._busy and not self._closed:
            try:
                event = self._h11.next_event()
            except h11.RemoteProtocolError as exc:
                self._bad_request(str(exc))
                return
            if event is h11.NEED_DATA:
                return
            if event is h11.PAUSED:
                if (self._h11.our_state is h11.DONE and self._h11.their_state is h11.DONE):
                    self._h11.start_next_cycle()
                    continue
                return
            if isinstance(event, h11.Request):
                self._request = event
                self._body = bytearray()
                if _announced_length(event) > self.softap.options.max_body_bytes:
                    self._dispatch(too_large=True)
            elif isinstance(event, h11.Data):
                self._body += event.data
                if len(self._body) > self.softap.options.max_body_bytes:
                    self._dispatch(too_large=True)
            elif isinstance(event, h11.EndOfMessage):
                self._dispatch(too_large=False)
            elif isinstance(event, h11.ConnectionClosed):
                self.close("client closed")
                return

    # -- pages ---------------------------------------------------------------------------------

    def _dispatch(self, *, too_large: bool) -> None:
        request = self._request
        assert request is not None
        self._busy = True
        self._ignoring_input = too_large
        self._cancel_timer()
        path = request.target.split(b"?", 1)[0].decode("latin-1")
        self.softap.tracer.emit("softap.http_request", conn=self.conn,
                                method=request.method.decode("latin-1"), path=path[:100],
                                size=len(self._body), too_large=too_large)
        name = path[1:]
        if path == "/":
            self._respond(301, [(b"Location", b"/index"), (b"Content-Length", b"0")], b"")
        elif path == "/hello":
            self._respond(200, [(b"Content-Type", b"text/html"),
                                (b"Content-Length", b"%d" % len(HELLO_BODY))], HELLO_BODY)
        elif name in COMMAND_NAMES:
            self._send_head(200, [(b"Content-Type", b"application/json"), CHUNKED, *NO_CACHE,
                                  CORS])
            body = None if too_large else bytes(self._body)
            self.softap.commands.execute(name, body, self._command_reply, conn=self.conn,
                                         protocol="http")
        elif path == "/index":
            self._respond(301, [(b"Location", b"/hello"), (b"Content-Type", b"text/plain"),
                                CHUNKED, CORS], b"")
        else:
            self._respond(404, [CHUNKED, CORS], b"")

    def _command_reply(self, payload: bytes | None) -> None:
        if self._closed:
            return
        self._end_response(payload or b"")

    def _respond(self, status: int, headers: list[Header], body: bytes) -> None:
        self._send_head(status, headers)
        self._end_response(body)

    def _send_head(self, status: int, headers: list[Header]) -> None:
        if self._ignoring_input:  # the unread body ends the connection after this reply
            headers = [*headers, CLOSE]
        self._send(h11.Response(status_code=status, reason=_REASONS[status], headers=headers))

    def _end_response(self, body: bytes) -> None:
        request = self._request
        if body and request is not None and request.method != b"HEAD":
            self._send(h11.Data(data=body))
        self._send(h11.EndOfMessage())
        self._busy = False
        if self._h11.our_state is h11.MUST_CLOSE or self._h11.their_state is not h11.DONE:
            self.close("response complete")
            return
        self._h11.start_next_cycle()
        self._request = None
        self._arm_timer()
        self._pump()

    def _bad_request(self, error: str) -> None:
        self.softap.tracer.emit("softap.bad_request", conn=self.conn, protocol="http",
                                error=error[:200])
        if self._h11.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            try:
                self._send(h11.Response(status_code=400, reason=_REASONS[400],
                                        headers=[(b"Content-Length", b"0"),
                                                 (b"Connection", b"close")]))
                self._send(h11.EndOfMessage())
            except h11.LocalProtocolError:
                pass
        self.close("bad request")

    def _send(self, event: h11.Event) -> None:
        data = self._h11.send(event)
        if data:
            self._send_bytes(data)

    # -- lifecycle -----------------------------------------------------------------------------

    def _arm_timer(self) -> None:
        self._cancel_timer()
        self._timer = self.softap.world.call_later(self.softap.options.request_timeout_s,
                                                   self._timed_out, label="softap-http-timeout")

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _timed_out(self) -> None:
        self._timer = None
        if self._busy or self._closed:
            return
        self.softap.tracer.emit("softap.timeout", conn=self.conn, protocol="http",
                                after_s=self.softap.options.request_timeout_s)
        self.close("timeout")

    def close(self, reason: str) -> None:
        if self._closed:
            return
        self._finish(reason)
        self._close_transport()

    def _finish(self, reason: str) -> None:
        self._closed = True
        self._cancel_timer()
        self.softap.session_closed(self, reason)
