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
answered at once). Each closing sends an ERROR frame saying why.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from firmware_sim.kernel.errors import PeerProtocolError

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

#: A host may not ask the bridge to hold a reply longer than this.
MAX_TIMEOUT_MS = 60_000


@dataclass(frozen=True)
class BridgeLimits:
    max_connections: int = 64
    #: seconds without a byte from the host before the connection is closed
    idle_timeout_s: float = 300.0
    #: seconds a started frame may take to arrive completely
    frame_timeout_s: float = 10.0
    #: delayed TIMED_OUT replies one connection may have waiting
    max_pending_replies: int = 32


class UsbBridgeServer:
    def __init__(self, ports: Callable[[], Sequence[UsbDevicePort]], *,
                 sync: Callable[[], None] = lambda: None,
                 wake: Callable[[], None] = lambda: None,
                 limits: BridgeLimits | None = None) -> None:
        self._ports = ports
        self.sync = sync
        self.wake = wake
        self.limits = limits or BridgeLimits()
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        #: open sessions, least recently active first
        self._sessions: OrderedDict[_Session, None] = OrderedDict()
        self.transfers = 0
        self.refused = 0
        self.evicted = 0
        self.timed_out = 0

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        self._server = await asyncio.start_server(self._serve, host, port)
        sockname = self._server.sockets[0].getsockname()
        return str(sockname[0]), int(sockname[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
        for task in list(self._connections):
            task.cancel()
        for task in list(self._connections):
            with contextlib.suppress(BaseException):
                await task

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

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        session = _Session(self, writer, task)
        decoder = FrameDecoder()
        limits = self.limits
        try:
            if not self._admit(session):
                raise PeerProtocolError("too many USB bridge connections; retry shortly")
            while True:
                partial = decoder.pending > 0
                try:
                    chunk = await asyncio.wait_for(
                        reader.read(65536),
                        limits.frame_timeout_s if partial else limits.idle_timeout_s)
                except TimeoutError:
                    self.timed_out += 1
                    raise PeerProtocolError(
                        "frame incomplete for too long" if partial
                        else "idle for too long") from None
                if not chunk:
                    break
                self._sessions.move_to_end(session)
                for frame in decoder.feed(chunk):
                    session.handle(frame)
                await writer.drain()
        except PeerProtocolError as exc:
            with contextlib.suppress(Exception):
                writer.write(encode_frame(FrameKind.ERROR, str(exc).encode()))
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
