"""The USB bridge server: simulated devices' USB ports on a loopback TCP socket.

How this works
--------------
An edge adapter (real sockets, real time). Each TCP connection is one host-side handle: LIST
enumerates the attached devices, OPEN binds the connection to one device's current enumeration
(epoch), CONTROL runs one control transfer on it. Before a transfer touches the world the server
calls ``sync`` (virtual time catches up with the wall clock) and afterwards ``wake`` (the driver
re-reads the schedule); a transfer the device never completes (the P2's zero-length OUT) is
answered TIMED_OUT after the timeout the host put in the frame. A malformed frame gets an ERROR
frame and the connection is closed; the world is untouched. Framing: ``bridge_protocol``.

Limits (:class:`BridgeLimits`, docs/security.md): at most ``max_connections`` connections - one
arriving at the cap evicts the least recently active connection that has no reply pending, or
is refused with an ERROR frame; a connection silent for ``idle_timeout_s`` is closed, and so is
one whose frame has started but not finished arriving within ``frame_timeout_s`` (a slow
sender); a connection holds at most ``max_pending_replies`` delayed TIMED_OUT replies (more are
answered at once). Each closing sends an ERROR frame saying why. The listener is fwsim's own
(``transports.accept``): at the open-file limit it logs one line per interval, no tracebacks.

Fairness and backpressure: a connection's frames are handled ``frames_per_turn`` at a time, then
the connection yields to the event loop (other connections, the REST API) and waits while more
than ``max_write_buffer`` bytes of its replies are unsent - it is not read meanwhile, so a host
that does not read its replies stops being served instead of growing the server's memory, and
is closed after ``write_timeout_s`` of that. A transfer the device stalls costs the connection
one of ``stall_burst`` tokens, refilled at ``stalls_per_s``; with none left the connection is
not read until one is back, so a flood of stalling requests cannot grow the trace (one
``usb.stall`` record each) faster than that. Nothing is dropped: the host is only slowed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from firmware_sim.kernel.errors import PeerProtocolError

from ..accept import AcceptLimits, accept_forever, listen
from .bridge_protocol import (
    PROTOCOL_VERSION,
    Frame,
    FrameDecoder,
    FrameKind,
    decode_control,
    decode_open,
    encode_control_reply,
    encode_frame,
    encode_open_reply,
)
from .device_port import UsbDevicePort
from .transfer import TransferResult, TransferStatus

__all__ = ["BridgeLimits", "UsbBridgeServer"]

_log = logging.getLogger(__name__)

#: A host may not ask the bridge to hold a reply longer than this.
MAX_TIMEOUT_MS = 60_000
#: bytes read from a connection at a time: its frames are decoded at once and held until handled,
#: so this bounds what a connection that is not being served holds (1,638 LIST frames)
READ_SIZE = 8192


@dataclass(frozen=True)
class BridgeLimits:
    max_connections: int = 64
    #: seconds without a byte from the host before the connection is closed
    idle_timeout_s: float = 300.0
    #: seconds a started frame may take to arrive completely
    frame_timeout_s: float = 10.0
    #: delayed TIMED_OUT replies one connection may have waiting
    max_pending_replies: int = 32
    #: frames handled before the connection yields to the others
    frames_per_turn: int = 16
    #: bytes of unsent replies above which the connection is not read
    max_write_buffer: int = 256 * 1024
    #: seconds a connection may leave its replies unread (above the limit) before it is closed
    write_timeout_s: float = 30.0
    #: stalled transfers per connection: sustained rate, and burst
    stalls_per_s: float = 50.0
    stall_burst: int = 50
    #: the accept loop at the open-file limit (one log line per interval, no traceback)
    accept: AcceptLimits = field(default_factory=AcceptLimits)


class UsbBridgeServer:
    def __init__(self, ports: Callable[[], Sequence[UsbDevicePort]], *,
                 sync: Callable[[], None] = lambda: None,
                 wake: Callable[[], None] = lambda: None,
                 limits: BridgeLimits | None = None) -> None:
        self._ports = ports
        self.sync = sync
        self.wake = wake
        self.limits = limits or BridgeLimits()
        self._listener: socket.socket | None = None
        self._accepting: asyncio.Task[None] | None = None
        self._connections: set[asyncio.Task[None]] = set()
        #: open sessions, least recently active first
        self._sessions: OrderedDict[_Session, None] = OrderedDict()
        self.transfers = 0
        self.refused = 0
        self.evicted = 0
        self.timed_out = 0

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        self._listener = listen(host, port)
        sockname = self._listener.getsockname()
        address = (str(sockname[0]), int(sockname[1]))
        self._accepting = asyncio.get_running_loop().create_task(accept_forever(
            self._listener, self._accepted, name=f"USB bridge {address[0]}:{address[1]}",
            log=_log, limits=self.limits.accept))
        return address

    async def stop(self) -> None:
        if self._accepting is not None:
            self._accepting.cancel()
            with contextlib.suppress(BaseException):
                await self._accepting
        if self._listener is not None:
            self._listener.close()
        for task in list(self._connections):
            task.cancel()
        for task in list(self._connections):
            with contextlib.suppress(BaseException):
                await task

    def unsent_reply_bytes(self) -> list[int]:
        """Bytes of replies waiting to be sent, per open connection."""
        return [session.writer.transport.get_write_buffer_size() for session in self._sessions]

    def listing(self) -> list[tuple[int, UsbDevicePort]]:
        return [(index, port) for index, port in enumerate(self._ports()) if port.attached]

    def _admit(self, session: _Session) -> bool:
        if len(self._sessions) >= self.limits.max_connections:
            victim = next((s for s in self._sessions if not s.pending_replies), None)
            if victim is None:
                self.refused += 1
                return False
            self.evicted += 1
            victim.evict()
        self._sessions[session] = None
        return True

    def _accepted(self, connection: socket.socket) -> None:
        self._connections.add(asyncio.get_running_loop().create_task(self._open(connection)))

    async def _open(self, connection: socket.socket) -> None:
        try:
            reader, writer = await asyncio.open_connection(sock=connection)
        except OSError:
            connection.close()
            self._connections.discard(asyncio.current_task())
            return
        await self._serve(reader, writer)

    async def _turn(self, writer: asyncio.StreamWriter) -> None:
        """Let the other connections run, then wait until the host has read its replies."""
        await asyncio.sleep(0)
        try:
            await asyncio.wait_for(writer.drain(), self.limits.write_timeout_s)
        except TimeoutError:
            self.timed_out += 1
            raise PeerProtocolError("replies not read for too long") from None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        session = _Session(self, writer, task)
        decoder = FrameDecoder()
        limits = self.limits
        writer.transport.set_write_buffer_limits(high=limits.max_write_buffer)
        try:
            if not self._admit(session):
                raise PeerProtocolError("too many USB bridge connections; retry shortly")
            while True:
                partial = decoder.pending > 0
                try:
                    chunk = await asyncio.wait_for(
                        reader.read(READ_SIZE),
                        limits.frame_timeout_s if partial else limits.idle_timeout_s)
                except TimeoutError:
                    self.timed_out += 1
                    raise PeerProtocolError(
                        "frame incomplete for too long" if partial
                        else "idle for too long") from None
                if not chunk:
                    break
                self._sessions.move_to_end(session)
                for count, frame in enumerate(decoder.feed(chunk), 1):
                    if frame.kind == FrameKind.CONTROL:
                        await session.stall_budget()
                    session.handle(frame)
                    if count % max(1, limits.frames_per_turn) == 0:
                        await self._turn(writer)
                await self._turn(writer)
        except PeerProtocolError as exc:
            # cancelled here (stop, eviction) the connection just ends: no task error to log
            with contextlib.suppress(Exception, asyncio.CancelledError):
                writer.write(encode_frame(FrameKind.ERROR, str(exc).encode()))
                if writer.transport.get_write_buffer_size() > limits.max_write_buffer:
                    writer.transport.abort()  # it does not read: nothing more will reach it
                else:
                    await asyncio.wait_for(writer.drain(), 1.0)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._sessions.pop(session, None)
            session.close()
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1.0)
            self._connections.discard(task)


class _Session:
    def __init__(self, server: UsbBridgeServer, writer: asyncio.StreamWriter,
                 task: asyncio.Task[None]) -> None:
        self.server = server
        self.writer = writer
        self.task = task
        self.port: UsbDevicePort | None = None
        self.epoch = 0
        self._timers: set[asyncio.TimerHandle] = set()
        self._stall_tokens = float(server.limits.stall_burst)
        self._stall_refilled = time.monotonic()

    async def stall_budget(self) -> None:
        """Wait until this connection may have one more transfer stalled."""
        limits = self.server.limits
        while True:
            now = time.monotonic()
            self._stall_tokens = min(float(limits.stall_burst), self._stall_tokens
                                     + (now - self._stall_refilled) * limits.stalls_per_s)
            self._stall_refilled = now
            if self._stall_tokens >= 1.0:
                return
            await asyncio.sleep((1.0 - self._stall_tokens) / limits.stalls_per_s)

    @property
    def pending_replies(self) -> int:
        return len(self._timers)

    def close(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()

    def evict(self) -> None:
        """Make room for a new connection: say why, then end this one."""
        with contextlib.suppress(Exception):
            self.writer.write(encode_frame(FrameKind.ERROR, b"closed to make room for another "
                                           b"connection (this one was idle)"))
        self.task.cancel()

    def handle(self, frame: Frame) -> None:
        if frame.kind == FrameKind.LIST:
            self._list()
        elif frame.kind == FrameKind.OPEN:
            self._open(frame.body)
        elif frame.kind == FrameKind.CONTROL:
            self._control(frame.body)
        else:
            raise PeerProtocolError(f"unknown frame kind 0x{frame.kind:02x}")

    def _list(self) -> None:
        self.server.sync()
        devices = []
        for index, port in self.server.listing():
            entry = port.describe()
            entry["index"] = index
            devices.append(entry)
        body = json.dumps({"version": PROTOCOL_VERSION, "devices": devices},
                          separators=(",", ":")).encode()
        self.writer.write(encode_frame(FrameKind.LIST_REPLY, body))

    def _open(self, body: bytes) -> None:
        epoch, serial = decode_open(body)
        self.server.sync()
        for _, port in self.server.listing():
            if port.describe()["serialNumber"].lower() == serial.lower() and (
                    epoch in (0, port.epoch)):
                self.port, self.epoch = port, port.epoch
                self.writer.write(encode_open_reply(TransferStatus.COMPLETED, port.epoch))
                return
        self.port = None
        self.writer.write(encode_open_reply(TransferStatus.NO_DEVICE, 0))

    def _control(self, body: bytes) -> None:
        control = decode_control(body)
        if self.port is None:
            result = TransferResult(TransferStatus.NO_DEVICE)
        else:
            self.server.sync()
            result = self.port.control_transfer(control.setup, control.data, epoch=self.epoch)
            self.server.transfers += 1
            self.server.wake()
        if result.status is TransferStatus.STALL:
            self._stall_tokens -= 1.0
        reply = encode_control_reply(control.tag, result)
        if (result.status is TransferStatus.TIMED_OUT
                and len(self._timers) < self.server.limits.max_pending_replies):
            delay = min(control.timeout_ms, MAX_TIMEOUT_MS) / 1000.0
            loop = asyncio.get_running_loop()
            timer: asyncio.TimerHandle | None = None

            def late_write() -> None:
                self._timers.discard(timer)
                if not self.writer.is_closing():
                    self.writer.write(reply)

            timer = loop.call_later(delay, late_write)
            self._timers.add(timer)
        else:
            self.writer.write(reply)
