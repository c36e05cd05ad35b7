"""The host side: control requests over USB the way particle-usb 4.x performs them.

How this works
--------------
:class:`UsbHost` is particle-usb's ``DeviceBase`` request pipeline as an event-driven state
machine over a :class:`HostIo` (something that performs control transfers and runs timers):
an in-process bus on the world clock (``transports.usb.virtual``) or the TCP bridge on the
asyncio clock (``transports.usb.bridge_client``). One control transfer is in flight at a time;
between transfers the pipeline picks, in this order: the RESET of all requests (sent once after
``open``), a RESET of one failed request, a due CHECK, the INIT of the next queued request.

A request goes ``INIT`` (wIndex type, wValue payload size) -> ``SEND`` chunks of at most 4096
bytes (immediately when INIT answered OK, after a CHECK answered OK when INIT answered PENDING)
-> ``CHECK`` polls with the backoff 50, 50, 100, 100, 250, 250, 500, 500, 1000 ms (then 1000)
until OK with a result -> ``RECV`` chunks of at most 4096 bytes when the reply has a size. A
request that is not done after the request timeout (60 s) fails; a request that failed after
INIT gave it an id is RESET on the device. On BUSY the host lowers its concurrency limit to the
number of requests it has active and re-queues the request.

One deliberate difference: when the device answers BUSY while this host has no request active
(another host holds the slots), particle-usb retries INIT at once in a tight loop; fwsim waits
50 ms between such INITs (with a zero-latency virtual bus the tight loop would never let virtual
time advance).

``open`` reads the device descriptor, the serial-number string (the device id: printable
characters, lowercased) and the product string, then the firmware version with the raw 'P'
request 30 (errors ignored, the text cut at the first NUL), and schedules the RESET of all
requests left over from a previous session.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

from control_requests.requests import ControlReply
from firmware_sim.kernel.errors import UsageError
from firmware_sim.kernel.trace import Tracer

from .descriptors import (
    DT_DEVICE,
    DT_STRING,
    GET_DESCRIPTOR,
    LANGID_EN_US,
    DeviceDescriptor,
    decode_string_descriptor,
)
from .errors import (
    UsbDeviceNotFound,
    UsbError,
    UsbMemoryError,
    UsbNotAllowed,
    UsbProtocolError,
    UsbRequestCancelled,
    UsbRequestTimeout,
    UsbStateError,
    UsbTransferError,
)
from .platforms import (
    QUIRK_NO_CONTROL_REQUESTS,
    QUIRK_OUT_DATA_STAGE,
    UsbPlatform,
    platform_for_usb_ids,
)
from .protocol import (
    MAX_CONTROL_TRANSFER_DATA_SIZE,
    MAX_PAYLOAD_SIZE,
    MAX_REQUEST_TYPE,
    PARTICLE_BREQUEST,
    ServiceReply,
    ServiceStatus,
    SetupPacket,
    check_request,
    init_request,
    raw_request,
    recv_request,
    reset_request,
    send_request,
)
from .transfer import TransferResult

__all__ = [
    "DEFAULT_CHECK_INTERVALS_MS",
    "Cancellable",
    "HostIo",
    "HostOptions",
    "HostRequest",
    "HostState",
    "RequestDone",
    "UsbHost",
    "describe_outcome",
]

DEFAULT_CHECK_INTERVALS_MS: tuple[int, ...] = (50, 50, 100, 100, 250, 250, 500, 500, 1000)

TransferDone = Callable[[TransferResult], None]
#: Receives the device's ``ControlReply`` (any result code) or the ``UsbError`` that ended it.
RequestDone = Callable[[ControlReply | UsbError], None]


class Cancellable(Protocol):
    def cancel(self) -> None: ...


class HostIo(Protocol):
    """What the host pipeline runs on."""

    def control_transfer(self, setup: SetupPacket, data: bytes, done: TransferDone) -> None:
        """Perform one control transfer; ``done`` is called later with its outcome."""

    def call_later(self, delay_s: float, callback: Callable[[], None]) -> Cancellable: ...


@dataclass(frozen=True)
class HostOptions:
    request_timeout_s: float = 60.0
    check_intervals_ms: tuple[int, ...] = DEFAULT_CHECK_INTERVALS_MS
    #: Like particle-usb's ``concurrentRequests`` open option (None: the device's limit).
    concurrent_requests: int | None = None
    chunk_size: int = MAX_CONTROL_TRANSFER_DATA_SIZE
    busy_retry_s: float = 0.05

    def check_interval_s(self, attempts: int) -> float:
        table = self.check_intervals_ms
        return table[min(attempts, len(table) - 1)] / 1000.0


class HostState(Enum):
    CLOSED = "closed"
    OPENING = "opening"
    OPEN = "open"
    CLOSING = "closing"


@dataclass(eq=False)
class HostRequest:
    number: int
    type: int
    data: bytes
    done_callback: RequestDone
    proto_id: int | None = None
    data_sent: bool = False
    check_count: int = 0
    done: bool = False
    outcome: ControlReply | UsbError | None = None
    timers: list[Cancellable] = field(default_factory=list)


class UsbHost:
    """One opened USB device, particle-usb style."""

    def __init__(self, io: HostIo, options: HostOptions | None = None, *,
                 tracer: Tracer | None = None) -> None:
        self.io = io
        self.options = options or HostOptions()
        self._tracer = tracer
        self.state = HostState.CLOSED
        self.device_id: str | None = None
        self.product_name: str | None = None
        self.firmware_version: str | None = None
        self.descriptor: DeviceDescriptor | None = None
        self.platform: UsbPlatform | None = None
        self.in_dfu_mode = False
        self._reqs: dict[int, HostRequest] = {}
        self._queue: deque[HostRequest] = deque()
        self._check_queue: deque[HostRequest] = deque()
        self._reset_queue: deque[HostRequest] = deque()
        self.active = 0
        self._max_active: int | None = None
        self._last_number = 0
        self._busy = False
        self._want_close = False
        self._reset_all = False
        self._backoff: Cancellable | None = None
        self._close_callbacks: list[Callable[[], None]] = []
        self.transfers = 0

    @property
    def quirks(self) -> frozenset[str]:
        return self.platform.quirks if self.platform is not None else frozenset()

    @property
    def control_requests_supported(self) -> bool:
        """False with the ``controlRequestsNotSupported`` quirk (the Tachyon)."""
        return QUIRK_NO_CONTROL_REQUESTS not in self.quirks

    @property
    def is_open(self) -> bool:
        return self.state is not HostState.CLOSED

    # -- open / close ---------------------------------------------------------------------------

    def open(self, done: Callable[[UsbError | None], None]) -> None:
        if self.state is HostState.OPEN:
            done(UsbStateError("Device is already open"))
            return
        self.state = HostState.OPENING

        def fail(error: UsbError) -> None:
            self.state = HostState.CLOSED
            done(error)

        def got_descriptor(result: TransferResult) -> None:
            if not result.ok:
                fail(UsbTransferError(result.status.value, "Unable to open USB device"))
                return
            try:
                self.descriptor = DeviceDescriptor.decode(result.data)
            except UsbError as exc:
                fail(exc)
                return
            except Exception as exc:
                fail(UsbProtocolError(str(exc)))
                return
            found = platform_for_usb_ids(self.descriptor.idVendor, self.descriptor.idProduct)
            if found is None:
                fail(UsbDeviceNotFound("Unsupported device type"))
                return
            self.platform, self.in_dfu_mode = found
            self._string(self.descriptor.iSerialNumber, got_serial, fail)

        def got_serial(text: str) -> None:
            self.device_id = "".join(c for c in text if 0x20 <= ord(c) <= 0x7E).lower()
            assert self.descriptor is not None
            self._string(self.descriptor.iProduct, got_product, fail)

        def got_product(text: str) -> None:
            self.product_name = text
            if not self.control_requests_supported:
                got_version(None)  # the quirk: no version read, no RESET of stale requests
                return
            self._transfer(raw_request(30, device_to_host=True), b"", got_version)

        def got_version(result: TransferResult | None) -> None:
            if result is not None and result.ok:
                self.firmware_version = result.data.split(b"\x00", 1)[0].decode(
                    "utf-8", "replace")
            self._reset_all = not self.in_dfu_mode and self.control_requests_supported
            self._max_active = self.options.concurrent_requests
            self.state = HostState.OPEN
            self._trace("usb_host.open", device_id=self.device_id,
                        firmware_version=self.firmware_version)
            done(None)
            self._process()

        self._transfer(SetupPacket(0x80, GET_DESCRIPTOR, DT_DEVICE << 8, 0, 18), b"",
                       got_descriptor)

    def _string(self, index: int, then: Callable[[str], None],
                fail: Callable[[UsbError], None]) -> None:
        if index == 0:
            then("")
            return

        def got(result: TransferResult) -> None:
            if not result.ok:
                fail(UsbTransferError(result.status.value,
                                      f"Unable to get string descriptor at index {index}"))
                return
            try:
                text = decode_string_descriptor(result.data)
            except UsbError as exc:
                fail(exc)
                return
            except Exception as exc:
                fail(UsbProtocolError(str(exc)))
                return
            then(text)

        self._transfer(SetupPacket(0x80, GET_DESCRIPTOR, (DT_STRING << 8) | index,
                                   LANGID_EN_US, 255), b"", got)

    def close(self, done: Callable[[], None] | None = None, *,
              process_pending: bool = True) -> None:
        if self.state is HostState.CLOSED:
            if done is not None:
                done()
            return
        if not process_pending:
            self._reject_all(UsbStateError("Device is being closed"))
        if done is not None:
            self._close_callbacks.append(done)
        self._want_close = True
        self._process()

    # -- requests -------------------------------------------------------------------------------

    def send_request(self, request_type: int, payload: bytes, done: RequestDone, *,
                     timeout_s: float | None = None) -> HostRequest:
        """Queue one control request; ``done`` gets a ``ControlReply`` or a ``UsbError``."""
        if self.state is HostState.CLOSED:
            raise UsbStateError("Device is not open")
        if self.state is HostState.CLOSING or self._want_close:
            raise UsbStateError("Device is being closed")
        if not isinstance(request_type, int) or not 0 <= request_type <= MAX_REQUEST_TYPE:
            raise UsageError(f"Invalid request type {request_type!r} (0..{MAX_REQUEST_TYPE})")
        if not self.control_requests_supported:
            raise UsbNotAllowed("Control requests are not supported")
        payload = bytes(payload)
        if len(payload) > MAX_PAYLOAD_SIZE:
            raise UsageError(f"Request data is too large ({len(payload)} bytes, at most "
                             f"{MAX_PAYLOAD_SIZE})")
        self._last_number += 1
        req = HostRequest(self._last_number, request_type, payload, done)
        timeout = self.options.request_timeout_s if timeout_s is None else timeout_s
        if timeout:
            req.timers.append(self.io.call_later(timeout, lambda: self._timed_out(req)))
        self._reqs[req.number] = req
        self._queue.append(req)
        self._process()
        return req

    def raw_out(self, request: int, done: Callable[[TransferResult], None]) -> None:
        """A raw 'P' host-to-device request (e.g. 40: reset), outside the pipeline like
        particle-usb's ``reset({force: true})``; 1 byte of data with the P2's quirk."""
        data = b"\x00" if QUIRK_OUT_DATA_STAGE in self.quirks else b""
        setup = SetupPacket(0x40, PARTICLE_BREQUEST, 0, request, len(data))
        self._transfer(setup, data, done)

    def raw_in(self, request: int, done: Callable[[TransferResult], None],
               length: int = 64) -> None:
        self._transfer(raw_request(request, device_to_host=True, length=length), b"", done)

    # -- the pipeline ---------------------------------------------------------------------------

    def _process(self) -> None:
        if (self.state is HostState.CLOSED
                or (self.state is HostState.OPENING and not self._want_close) or self._busy):
            return
        if self._want_close and self.state is not HostState.CLOSING:
            self.state = HostState.CLOSING
        if self.in_dfu_mode:
            pass  # control requests are not supported in DFU mode
        elif self._reset_all:
            self._send_reset_all()
            return
        elif self._reset_queue:
            self._send_reset(self._reset_queue.popleft())
            return
        elif self._next_check() or self._next_init():
            return
        if self.state is HostState.CLOSING and self.active == 0:
            self._finish_close()

    def _transfer(self, setup: SetupPacket, data: bytes, done: TransferDone) -> None:
        self.transfers += 1
        self.io.control_transfer(setup, data, done)

    def _exchange(self, setup: SetupPacket, then: Callable[[TransferResult], None]) -> None:
        """One pipeline transfer: busy while it runs, ``_process`` after ``then``."""
        self._busy = True

        def finished(result: TransferResult) -> None:
            try:
                then(result)
            finally:
                self._busy = False
                self._process()

        self._transfer(setup, b"", finished)

    def _send_reset_all(self) -> None:
        def then(result: TransferResult) -> None:
            self._reset_all = False
            self.active = 0

        self._exchange(reset_request(0), then)

    def _send_reset(self, req: HostRequest) -> None:
        assert req.proto_id is not None

        def then(result: TransferResult) -> None:
            self.active = max(0, self.active - 1)

        self._exchange(reset_request(req.proto_id), then)

    def _next_check(self) -> bool:
        while self._check_queue:
            req = self._check_queue.popleft()
            if not req.done:
                break
        else:
            return False
        assert req.proto_id is not None
        self._busy = True
        self._transfer(check_request(req.proto_id), b"",
                       lambda result: self._checked(req, result))
        return True

    def _checked(self, req: HostRequest, result: TransferResult) -> None:
        def release() -> None:
            self._busy = False
            self._process()

        try:
            reply = self._service_reply(result, "CHECK")
            status = reply.status
            if status == ServiceStatus.OK:
                if req.data_sent:
                    if reply.result is None:
                        raise UsbProtocolError("CHECK reply without a result")
                    outcome = reply.result
                    if reply.size:
                        self._recv(req, reply.size, outcome, release)
                        return
                    self._resolve(req, ControlReply(outcome, b""))
                else:
                    def sent() -> None:
                        req.data_sent = True
                        req.check_count = 0
                        self._start_check_timer(req)
                    self._send_data(req, sent, release)
                    return
            elif status == ServiceStatus.PENDING:
                self._start_check_timer(req)
            elif status == ServiceStatus.NO_MEMORY:
                raise UsbMemoryError("Memory allocation error")
            elif status == ServiceStatus.NOT_FOUND:
                raise UsbRequestCancelled("Request was cancelled")
            else:
                raise UsbProtocolError(f"Unknown status code: {status}")
        except UsbError as exc:
            self._reject(req, exc)
        release()

    def _next_init(self) -> bool:
        if self._backoff is not None:
            return False
        if self._max_active and self.active >= self._max_active:
            return False
        while self._queue:
            req = self._queue.popleft()
            if not req.done:
                break
        else:
            return False
        self._busy = True
        setup = init_request(req.type, len(req.data))
        self._transfer(setup, b"", lambda result: self._initialized(req, result))
        return True

    def _initialized(self, req: HostRequest, result: TransferResult) -> None:
        def release() -> None:
            self._busy = False
            self._process()

        try:
            reply = self._service_reply(result, "INIT")
            status = reply.status
            if status in (ServiceStatus.OK, ServiceStatus.PENDING):
                if reply.id is None:
                    raise UsbProtocolError("INIT reply without a request id")
                req.proto_id = reply.id
                self.active += 1
            if status == ServiceStatus.OK:
                if req.data:
                    def sent() -> None:
                        req.data_sent = True
                        self._start_check_timer(req)
                    self._send_data(req, sent, release)
                    return
                req.data_sent = True
                self._start_check_timer(req)
            elif status == ServiceStatus.PENDING:
                if not req.data:
                    raise UsbProtocolError(f"Unexpected status code: {status}")
                self._start_check_timer(req)
            elif status == ServiceStatus.BUSY:
                self._max_active = self.active
                self._queue.appendleft(req)
                if self.active == 0:
                    self._backoff = self.io.call_later(self.options.busy_retry_s,
                                                       self._backoff_over)
            elif status == ServiceStatus.NO_MEMORY:
                raise UsbMemoryError("Memory allocation error")
            else:
                raise UsbProtocolError(f"Unknown status code: {status}")
        except UsbError as exc:
            self._reject(req, exc)
        release()

    def _backoff_over(self) -> None:
        self._backoff = None
        self._process()

    def _send_data(self, req: HostRequest, then: Callable[[], None],
                   release: Callable[[], None]) -> None:
        assert req.proto_id is not None
        proto_id = req.proto_id
        chunk = self.options.chunk_size
        offset = 0

        def next_chunk() -> None:
            size = min(chunk, len(req.data) - offset)
            self._transfer(send_request(proto_id, size), req.data[offset:offset + size],
                           lambda result: sent(result, size))

        def sent(result: TransferResult, size: int) -> None:
            nonlocal offset
            try:
                if not result.ok:
                    raise UsbTransferError(result.status.value, "OUT control transfer failed")
                offset += size
                if offset < len(req.data):
                    if req.done:
                        raise UsbTransferError("cancelled", "Control transfer cancelled")
                    next_chunk()
                    return
                then()
            except UsbError as exc:
                self._reject(req, exc)
            release()

        next_chunk()

    def _recv(self, req: HostRequest, size: int, result_code: int,
              release: Callable[[], None]) -> None:
        assert req.proto_id is not None
        proto_id = req.proto_id
        buffer = bytearray()

        def next_chunk() -> None:
            want = min(self.options.chunk_size, size - len(buffer))
            self._transfer(recv_request(proto_id, want), b"",
                           lambda result: received(result, want))

        def received(result: TransferResult, want: int) -> None:
            try:
                if not result.ok:
                    raise UsbTransferError(result.status.value, "IN control transfer failed")
                if len(result.data) != want:
                    raise UsbProtocolError("Unexpected size of the control transfer")
                buffer.extend(result.data)
                if len(buffer) < size:
                    if req.done:
                        raise UsbTransferError("cancelled", "Control transfer cancelled")
                    next_chunk()
                    return
                self._resolve(req, ControlReply(result_code, bytes(buffer)))
            except UsbError as exc:
                self._reject(req, exc)
            release()

        next_chunk()

    def _service_reply(self, result: TransferResult, what: str) -> ServiceReply:
        if not result.ok:
            raise UsbTransferError(result.status.value, f"{what}: IN control transfer failed")
        return ServiceReply.decode(result.data)

    def _start_check_timer(self, req: HostRequest) -> None:
        delay = self.options.check_interval_s(req.check_count)
        req.check_count += 1

        def due() -> None:
            self._check_queue.append(req)
            self._process()

        req.timers.append(self.io.call_later(delay, due))

    # -- completion -----------------------------------------------------------------------------

    def _timed_out(self, req: HostRequest) -> None:
        self._reject(req, UsbRequestTimeout("Request timeout"))
        self._process()

    def _clear(self, req: HostRequest) -> None:
        for timer in req.timers:
            timer.cancel()
        req.timers.clear()
        self._reqs.pop(req.number, None)
        req.done = True

    def _resolve(self, req: HostRequest, reply: ControlReply) -> None:
        if req.done:
            return
        self._clear(req)
        self.active = max(0, self.active - 1)
        req.outcome = reply
        self._trace("usb_host.done", type=req.type, result=reply.result,
                    reply_size=len(reply.data))
        req.done_callback(reply)

    def _reject(self, req: HostRequest, error: UsbError) -> None:
        if req.done:
            return
        self._clear(req)
        if req.proto_id is not None:
            self._reset_queue.append(req)
        req.outcome = error
        self._trace("usb_host.failed", type=req.type, error=str(error))
        req.done_callback(error)

    def _reject_all(self, error: UsbError) -> None:
        for req in list(self._reqs.values()):
            self._reject(req, error)
        self._queue.clear()
        self._check_queue.clear()
        self._reset_queue.clear()
        if self.active > 0:
            self._reset_all = True

    def _finish_close(self) -> None:
        if self._reqs:
            self._reject_all(UsbStateError("Device has been closed"))
        if self._backoff is not None:
            self._backoff.cancel()
            self._backoff = None
        self.active = 0
        self._reset_all = False
        self.state = HostState.CLOSED
        self._want_close = False
        self._max_active = None
        callbacks, self._close_callbacks = self._close_callbacks, []
        for callback in callbacks:
            callback()

    def _trace(self, kind: str, **fields: object) -> None:
        if self._tracer is not None:
            self._tracer.emit(kind, **fields)


def describe_outcome(outcome: ControlReply | UsbError) -> str:
    if isinstance(outcome, UsbError):
        return f"error: {outcome}"
    return f"result {outcome.result}, {len(outcome.data)} reply bytes"
