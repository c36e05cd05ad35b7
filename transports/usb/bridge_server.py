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
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Sequence

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

__all__ = ["UsbBridgeServer"]

#: A host may not ask the bridge to hold a reply longer than this.
MAX_TIMEOUT_MS = 60_000


class UsbBridgeServer:
    def __init__(self, ports: Callable[[], Sequence[UsbDevicePort]], *,
                 sync: Callable[[], None] = lambda: None,
                 wake: Callable[[], None] = lambda: None) -> None:
        self._ports = ports
        self.sync = sync
        self.wake = wake
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self.transfers = 0

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

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        session = _Session(self, writer)
        decoder = FrameDecoder()
        try:
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    break
                for frame in decoder.feed(chunk):
                    session.handle(frame)
                await writer.drain()
        except PeerProtocolError as exc:
            with contextlib.suppress(Exception):
                writer.write(encode_frame(FrameKind.ERROR, str(exc).encode()))
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            session.close()
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            self._connections.discard(task)


class _Session:
    def __init__(self, server: UsbBridgeServer, writer: asyncio.StreamWriter) -> None:
        self.server = server
        self.writer = writer
        self.port: UsbDevicePort | None = None
        self.epoch = 0
        self._timers: list[asyncio.TimerHandle] = []

    def close(self) -> None:
        for timer in self._timers:
            timer.cancel()

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
        if result.status is TransferStatus.TIMED_OUT:
            delay = min(control.timeout_ms, MAX_TIMEOUT_MS) / 1000.0
            loop = asyncio.get_running_loop()
            self._timers.append(loop.call_later(delay, self._late_write, reply))
        else:
            self.writer.write(reply)

    def _late_write(self, data: bytes) -> None:
        if not self.writer.is_closing():
            self.writer.write(data)
