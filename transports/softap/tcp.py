"""The SoftAP raw TCP protocol (port 5609): header parser and per-connection state machine.

How this works
--------------
A request is ``<command>\\n<length>\\n\\n<body>`` and the device parses it as
``SimpleProtocolDispatcher::handle`` does (``hal/src/photon/softap.cpp``):

* the name is read up to ``\\n`` or NUL, but at most 30 characters: after the 30th the device
  stops and reads what follows as the length, so an over-long name ends up an unknown command;
* the length is ``length = length * 10 + (c - '0')`` for every byte up to ``\\n`` (32-bit
  wrap-around; a non-digit gives a garbage number);
* then bytes are skipped up to an empty line (two ``\\n`` in a row, counting the length's own);
* a known command gets ``\\n\\n`` at once, then runs; ``configure-ap`` and ``set`` first read
  exactly ``length`` body bytes (a shorter length truncates the JSON, which then fails to
  parse: no answer after the ``\\n\\n``); the other commands ignore the body;
* the JSON reply follows and the device closes the connection - softap-setup only calls back on
  close. ``ant-internal`` / ``ant-external`` select the antenna and close without a reply, as
  does an unknown name.

Deviations that keep fwsim from hanging where the device would (docs/softap.md): a header longer
than ``max_header_bytes``, a body length above ``max_body_bytes`` or negative (the device's
``malloc`` fails: ``\\n\\n`` and no answer), and a connection that has not delivered a complete
request ``request_timeout_s`` after it opened (the device waits forever; fwsim closes it).
:class:`TcpHeaderParser` is pure; :class:`TcpSession` gets bytes in and calls ``send`` /
``close``; its timer runs on the world's scheduler.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from firmware_sim.kernel.scheduler import TimerHandle

from .commands import ANTENNA_COMMANDS
from .session import SessionHost

MAX_NAME = 30
NEWLINE = 0x0A


def _wrap32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


@dataclass(frozen=True)
class TcpHeader:
    name: str
    length: int
    #: the name had more than 30 characters (the rest was read as the length)
    name_overflow: bool = False


class _Stage(Enum):
    NAME = "name"
    LENGTH = "length"
    BLANK = "blank"
    DONE = "done"
    FAILED = "failed"


class TcpHeaderParser:
    """Incremental parser of the request header; never raises on any input."""

    def __init__(self, max_header_bytes: int = 128) -> None:
        self.max_header_bytes = max_header_bytes
        self.header: TcpHeader | None = None
        self.error: str | None = None
        self._stage = _Stage.NAME
        self._name = bytearray()
        self._length = 0
        self._overflow = False
        self._name_full = False
        self._seen_newline = True
        self._consumed = 0

    @property
    def done(self) -> bool:
        return self._stage in (_Stage.DONE, _Stage.FAILED)

    def feed(self, data: bytes) -> int:
        """Consume header bytes from ``data``; returns how many were used (the body follows)."""
        for index, byte in enumerate(data):
            if self.done:
                return index
            self._consumed += 1
            if self._consumed > self.max_header_bytes:
                self._stage = _Stage.FAILED
                self.error = f"header longer than {self.max_header_bytes} bytes"
                return index + 1
            self._step(byte)
        return len(data)

    def _step(self, byte: int) -> None:
        if self._stage is _Stage.NAME:
            if byte in (0, NEWLINE):
                self._stage = _Stage.LENGTH
            else:
                self._name.append(byte)
                if len(self._name) == MAX_NAME:
                    self._stage = _Stage.LENGTH
                    self._name_full = True
        elif self._stage is _Stage.LENGTH:
            if self._name_full:  # the byte after a 30-character name decides
                self._overflow = byte != NEWLINE
                self._name_full = False
            if byte == NEWLINE:
                self._stage = _Stage.BLANK
                self._seen_newline = True
            else:
                self._length = _wrap32(self._length * 10 + byte - 0x30)
        elif self._stage is _Stage.BLANK:
            if byte == NEWLINE:
                if self._seen_newline:
                    self._stage = _Stage.DONE
                    self.header = TcpHeader(self._name.decode("latin-1"), self._length,
                                            self._overflow)
                self._seen_newline = True
            else:
                self._seen_newline = False


def encode_request(name: str, body: bytes | None = None) -> bytes:
    """A request as softap-setup writes it (``name\\n0\\n\\n`` without a body)."""
    payload = body or b""
    return name.encode("latin-1") + b"\n%d\n\n" % len(payload) + payload


class _State(Enum):
    HEADER = "header"
    BODY = "body"
    EXECUTING = "executing"
    CLOSED = "closed"


class TcpSession:
    """One client connection of the raw TCP protocol."""

    protocol = "tcp"

    def __init__(self, softap: SessionHost, conn: int, send: Callable[[bytes], None],
                 close: Callable[[], None]) -> None:
        self.softap = softap
        self.conn = conn
        self._send = send
        self._close_transport = close
        options = softap.options
        self._parser = TcpHeaderParser(options.max_header_bytes)
        self._state = _State.HEADER
        self._body = bytearray()
        self._header: TcpHeader | None = None
        self._timer: TimerHandle | None = softap.world.call_later(
            options.request_timeout_s, self._timed_out, label="softap-tcp-timeout")

    @property
    def closed(self) -> bool:
        return self._state is _State.CLOSED

    @property
    def busy(self) -> bool:
        return self._state is _State.EXECUTING

    # -- input ---------------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._state is _State.HEADER:
            used = self._parser.feed(data)
            if self._parser.error is not None:
                self.softap.tracer.emit("softap.bad_request", conn=self.conn, protocol="tcp",
                                        error=self._parser.error)
                self.close("bad header")
                return
            if self._parser.header is None:
                return
            data = data[used:]
            self._header_complete(self._parser.header)
        if self._state is _State.BODY:
            self._body += data
            self._body_progress()

    def eof_received(self) -> None:
        if self._state in (_State.HEADER, _State.BODY):
            self.softap.tracer.emit("softap.incomplete_request", conn=self.conn, protocol="tcp",
                                    stage=self._state.value)
            self.close("client closed before a complete request")

    def connection_lost(self) -> None:
        if self._state is not _State.CLOSED:
            self._finish("connection lost")

    # -- protocol ------------------------------------------------------------------------------

    def _header_complete(self, header: TcpHeader) -> None:
        self._header = header
        softap = self.softap
        name = header.name
        if name in ANTENNA_COMMANDS:
            softap.tracer.emit("softap.antenna", conn=self.conn, antenna=ANTENNA_COMMANDS[name])
            self.close("antenna selected")
            return
        if not softap.commands.knows(name):
            softap.tracer.emit("softap.unknown_command", conn=self.conn, protocol="tcp",
                               name=name[:40], name_overflow=header.name_overflow)
            self.close("unknown command")
            return
        self._send(b"\n\n")  # "allow for some protocol preamble before the payload"
        if not softap.commands.reads_body(name):
            self._execute(b"")
        elif header.length < 0 or header.length > softap.options.max_body_bytes:
            self._execute(None)
        elif header.length == 0:
            self._execute(b"")
        else:
            self._state = _State.BODY

    def _body_progress(self) -> None:
        assert self._header is not None
        if len(self._body) >= self._header.length:
            self._execute(bytes(self._body[:self._header.length]))

    def _execute(self, body: bytes | None) -> None:
        assert self._header is not None
        self._state = _State.EXECUTING
        self._cancel_timer()
        self.softap.commands.execute(self._header.name, body, self._reply, conn=self.conn,
                                     protocol="tcp")

    def _reply(self, payload: bytes | None) -> None:
        if self._state is _State.CLOSED:
            return
        if payload:
            self._send(payload)
        self.close("replied" if payload else "no reply")

    # -- lifecycle -----------------------------------------------------------------------------

    def _timed_out(self) -> None:
        self._timer = None
        if self._state in (_State.HEADER, _State.BODY):
            self.softap.tracer.emit("softap.timeout", conn=self.conn, protocol="tcp",
                                    stage=self._state.value,
                                    after_s=self.softap.options.request_timeout_s)
            self.close("timeout")

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def close(self, reason: str) -> None:
        """Close the connection (the device's ``wiced_tcp_server_disconnect_socket``)."""
        if self._state is _State.CLOSED:
            return
        self._finish(reason)
        self._close_transport()

    def _finish(self, reason: str) -> None:
        self._state = _State.CLOSED
        self._cancel_timer()
        self.softap.session_closed(self, reason)
