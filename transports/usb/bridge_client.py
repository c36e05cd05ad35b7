"""Python host over the USB bridge: ``fwsim usb ...`` and the bridge tests and benchmark.

How this works
--------------
:class:`UsbBridgeConnection` speaks the bridge framing (``bridge_protocol``) over asyncio
streams: ``list_devices``, ``open`` and ``control`` (one control transfer; replies are matched
to requests by tag, so transfers may overlap). :class:`AsyncioHostIo` adapts it to the
:class:`~transports.usb.host.HostIo` of the particle-usb pipeline, whose timers then run on the
asyncio clock (real time). :class:`BridgeUsbClient` is the resulting ``ControlClient``::

    client = await BridgeUsbClient.connect("127.0.0.1:5555")
    await client.set_claim_code(code)
    await client.aclose()
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import Callable
from typing import Any

from control_requests.client import ControlClient
from control_requests.requests import ControlReply
from firmware_sim.kernel.errors import PeerProtocolError, UsageError

from .bridge_protocol import (
    FrameDecoder,
    FrameKind,
    decode_control_reply,
    decode_open_reply,
    encode_control,
    encode_frame,
    encode_open,
)
from .errors import UsbBridgeError, UsbDeviceNotFound, UsbError
from .host import HostOptions, UsbHost
from .protocol import SetupPacket
from .transfer import TransferResult, TransferStatus

__all__ = ["AsyncioHostIo", "BridgeUsbClient", "UsbBridgeConnection", "parse_address"]


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (or just ``PORT``, meaning 127.0.0.1)."""
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host, port_text = "127.0.0.1", text
    try:
        port = int(port_text)
    except ValueError:
        raise UsageError(f"invalid bridge address {text!r}: expected HOST:PORT") from None
    if not 0 < port <= 65535:
        raise UsageError(f"invalid bridge address {text!r}: port out of range")
    return host or "127.0.0.1", port


def _settle(future: asyncio.Future[Any]) -> Callable[[Any], None]:
    """A callback that resolves ``future`` unless it is already done (e.g. cancelled)."""
    def settle(value: Any) -> None:
        if not future.done():
            future.set_result(value)
    return settle


class UsbBridgeConnection:
    """One TCP connection to a USB bridge (one host-side device handle)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._decoder = FrameDecoder()
        self._tags = itertools.count(1)
        self._pending: dict[int, asyncio.Future[TransferResult]] = {}
        self._replies: asyncio.Queue[tuple[int, bytes]] = asyncio.Queue()
        self._closed = False
        self._error: UsbBridgeError | None = None
        self._pump = asyncio.ensure_future(self._read_loop())

    @classmethod
    async def connect(cls, address: str, timeout_s: float = 5.0) -> UsbBridgeConnection:
        host, port = parse_address(address)
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port),
                                                    timeout_s)
        except (OSError, TimeoutError) as exc:
            raise UsbBridgeError(f"cannot connect to the USB bridge at {host}:{port}: "
                                 f"{exc}") from None
        return cls(reader, writer)

    async def close(self) -> None:
        self._closed = True
        self._writer.close()
        with contextlib.suppress(Exception):
            await self._writer.wait_closed()
        self._pump.cancel()
        with contextlib.suppress(BaseException):
            await self._pump

    async def _read_loop(self) -> None:
        try:
            while True:
                chunk = await self._reader.read(65536)
                if not chunk:
                    raise UsbBridgeError("the USB bridge closed the connection")
                for frame in self._decoder.feed(chunk):
                    if frame.kind == FrameKind.CONTROL_REPLY:
                        tag, result = decode_control_reply(frame.body)
                        future = self._pending.pop(tag, None)
                        if future is not None and not future.done():
                            future.set_result(result)
                    elif frame.kind == FrameKind.ERROR:
                        raise UsbBridgeError("USB bridge error: "
                                             + frame.body.decode("utf-8", "replace"))
                    else:
                        await self._replies.put((frame.kind, frame.body))
        except PeerProtocolError as exc:
            self._fail(UsbBridgeError(f"malformed frame from the USB bridge: {exc}"))
        except UsbBridgeError as exc:
            self._fail(exc)
        except (OSError, ConnectionError) as exc:
            self._fail(UsbBridgeError(f"USB bridge connection lost: {exc}"))

    def _fail(self, error: UsbBridgeError) -> None:
        self._error = error
        for future in self._pending.values():
            if not future.done():
                future.set_result(TransferResult(TransferStatus.ERROR))
        self._pending.clear()
        self._replies.put_nowait((-1, b""))

    async def _request(self, frame: bytes, expect: FrameKind, timeout_s: float) -> bytes:
        if self._error is not None:
            raise self._error
        self._writer.write(frame)
        await self._writer.drain()
        try:
            kind, body = await asyncio.wait_for(self._replies.get(), timeout_s)
        except TimeoutError:
            raise UsbBridgeError("the USB bridge did not answer") from None
        if kind == -1:
            assert self._error is not None
            raise self._error
        if kind != expect:
            raise UsbBridgeError(f"unexpected frame 0x{kind:02x} from the USB bridge")
        return body

    async def list_devices(self, timeout_s: float = 5.0) -> list[dict[str, Any]]:
        body = await self._request(encode_frame(FrameKind.LIST), FrameKind.LIST_REPLY,
                                   timeout_s)
        try:
            listing = json.loads(body)
            devices = listing["devices"]
        except (ValueError, KeyError, TypeError) as exc:
            raise UsbBridgeError(f"malformed LIST reply: {exc}") from None
        return list(devices)

    async def open(self, serial: str, epoch: int = 0, timeout_s: float = 5.0) -> int:
        body = await self._request(encode_open(serial, epoch), FrameKind.OPEN_REPLY, timeout_s)
        status, opened = decode_open_reply(body)
        if status is not TransferStatus.COMPLETED:
            raise UsbDeviceNotFound(f"no attached USB device with serial number {serial}")
        return opened

    async def control(self, setup: SetupPacket, data: bytes = b"",
                      timeout_ms: int = 5000) -> TransferResult:
        if self._error is not None:
            return TransferResult(TransferStatus.ERROR)
        tag = next(self._tags) & 0xFFFFFFFF
        future: asyncio.Future[TransferResult] = asyncio.get_running_loop().create_future()
        self._pending[tag] = future
        self._writer.write(encode_control(tag, setup, data, timeout_ms))
        try:
            await self._writer.drain()
            return await asyncio.wait_for(future, timeout_ms / 1000.0 + 5.0)
        except (TimeoutError, OSError, ConnectionError):
            self._pending.pop(tag, None)
            return TransferResult(TransferStatus.ERROR)


class AsyncioHostIo:
    """``HostIo`` over a bridge connection; timers on the running asyncio loop."""

    def __init__(self, connection: UsbBridgeConnection, transfer_timeout_ms: int = 5000) -> None:
        self.connection = connection
        self.transfer_timeout_ms = transfer_timeout_ms
        self._loop = asyncio.get_running_loop()
        self._tasks: set[asyncio.Task[None]] = set()

    def control_transfer(self, setup: SetupPacket, data: bytes,
                         done: Callable[[TransferResult], None]) -> None:
        async def run() -> None:
            done(await self.connection.control(setup, data, self.transfer_timeout_ms))

        task = self._loop.create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def call_later(self, delay_s: float, callback: Callable[[], None]) -> asyncio.TimerHandle:
        return self._loop.call_later(delay_s, callback)


class BridgeUsbClient(ControlClient):
    """A particle-usb style host on a bridged device, as a ``ControlClient``."""

    def __init__(self, connection: UsbBridgeConnection, host: UsbHost,
                 device: dict[str, Any]) -> None:
        self.connection = connection
        self.usb = host
        self.device = device

    @classmethod
    async def connect(cls, address: str, device_id: str | None = None,
                      options: HostOptions | None = None) -> BridgeUsbClient:
        connection = await UsbBridgeConnection.connect(address)
        try:
            devices = await connection.list_devices()
            if device_id is not None:
                devices = [d for d in devices
                           if str(d.get("serialNumber", "")).lower() == device_id.lower()]
            if not devices:
                raise UsbDeviceNotFound("no device found on the USB bridge" + (
                    f" with id {device_id}" if device_id else ""))
            device = devices[0]
            await connection.open(str(device["serialNumber"]))
            host = UsbHost(AsyncioHostIo(connection), options)
            opened: asyncio.Future[UsbError | None] = asyncio.get_running_loop().create_future()
            host.open(_settle(opened))
            error = await opened
            if error is not None:
                raise error
        except BaseException:
            await connection.close()
            raise
        return cls(connection, host, device)

    async def send_request(self, request_type: int, payload: bytes) -> tuple[int, bytes]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[ControlReply | UsbError] = loop.create_future()
        self.usb.send_request(request_type, payload, _settle(future))
        outcome = await future
        if isinstance(outcome, UsbError):
            raise outcome
        return outcome.result, outcome.data

    async def raw_in(self, request: int, length: int = 64) -> TransferResult:
        future: asyncio.Future[TransferResult] = asyncio.get_running_loop().create_future()
        self.usb.raw_in(request, _settle(future), length)
        return await future

    async def raw_out(self, request: int) -> TransferResult:
        future: asyncio.Future[TransferResult] = asyncio.get_running_loop().create_future()
        self.usb.raw_out(request, _settle(future))
        return await future

    async def aclose(self) -> None:
        if self.usb.is_open:
            closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self.usb.close(lambda: _settle(closed)(None))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(closed, 5.0)
        await self.connection.close()
