"""The device side of the USB control-request service (``UsbControlRequestChannel``).

How this works
--------------
A sans-IO state machine fed one control transfer at a time (:meth:`UsbControlService.handle`,
setup packet + OUT data) that answers with a :class:`TransferResult`: the IN data, an ACK, or a
STALL. It runs on the world clock: the asynchronous steps of Device OS (allocating a large
request buffer, running the handler) are scheduler entries. Facts: device-os.md §4 and
``system/src/usb_control_request_channel.cpp`` at Device OS 6.2.0.

Each request moves through these states::

    INIT size=0      ->  PENDING (handler queued)                       reply OK + id
    INIT size<=64    ->  RECV_PAYLOAD (pooled buffer)                   reply OK + id
    INIT size>64     ->  ALLOC_PENDING -> RECV_PAYLOAD | ALLOC_FAILED   reply PENDING + id
    SEND ... (until offset == size)      RECV_PAYLOAD -> PENDING (handler runs)
    handler completes                    PENDING -> DONE (result, reply bytes)
    CHECK on DONE, no reply data  -> finished once that CHECK reply is delivered
    RECV ... (until offset == size)  -> finished once the last chunk is delivered

At most 4 requests are active (a fifth INIT answers BUSY without an id). Ids are a 16-bit
counter per boot (``++lastReqId_``: after 65535 it wraps to 0, which Device OS does not skip).
RESET with an id cancels that request (NOT_FOUND if unknown); RESET with id 0 cancels all.
Cancelling a request whose handler runs completes its dispatcher handle with CANCELLED (-140);
finishing a DONE request tells the dispatcher the reply was delivered (so RESET & co act 1000 ms
later) only when it finished normally, never when it was cancelled.

The device STALLs: unknown service requests (``bRequest`` 6-15); INIT, CHECK and RESET whose
``wLength`` is not 64 (below 64 by the explicit check; above 64 because the HAL then hands the
callback no buffer); SEND to an unknown id, in the wrong state or past the announced size; RECV
to an unknown id, before the reply is ready, of 0 bytes or past the reply. fwsim also STALLs a
service request sent in the wrong direction (Device OS does not check the direction; the data
stage would then be meaningless - docs/usb.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

from firmware_sim.kernel.errors import ResultCode
from firmware_sim.kernel.scheduler import Scheduler, TimerHandle
from firmware_sim.kernel.trace import Tracer

from ..device_surface import Completion, SubmittedRequest
from .protocol import (
    MAX_POOLED_PAYLOAD_SIZE,
    MIN_WLENGTH,
    USB_REQUEST_INVALID_ID,
    USB_REQUEST_MAX_ACTIVE_COUNT,
    ServiceReply,
    ServiceStatus,
    ServiceType,
    SetupPacket,
)
from .transfer import TransferResult

__all__ = [
    "CHANNEL_NAME",
    "ControlSubmitter",
    "RequestState",
    "SubmittedRequest",
    "UsbControlService",
    "UsbServiceFaults",
    "UsbServiceTiming",
]

#: The channel name the dispatcher sees for requests that arrived over USB.
CHANNEL_NAME = "usb"

class ControlSubmitter(Protocol):
    """What the service needs of the device's control-request dispatcher (the ``submit`` of
    :class:`~transports.device_surface.ControlEndpoint`)."""

    def submit(self, channel: str, request_type: int, payload: bytes,
               on_complete: Completion) -> SubmittedRequest: ...


class RequestState(Enum):
    ALLOC_PENDING = "alloc_pending"
    ALLOC_FAILED = "alloc_failed"
    RECV_PAYLOAD = "recv_payload"
    PENDING = "pending"
    DONE = "done"


@dataclass
class UsbServiceTiming:
    #: How long the system thread takes to allocate a buffer for a payload above 64 bytes.
    alloc_delay_s: float = 0.001


@dataclass
class UsbServiceFaults:
    """Fault knobs for tests: make the device run out of memory."""

    #: The system pool is exhausted: INIT answers NO_MEMORY.
    pool_exhausted: bool = False
    #: The heap is exhausted: a payload above 64 bytes cannot be allocated (CHECK: NO_MEMORY).
    heap_exhausted: bool = False


@dataclass(eq=False)
class _Request:
    id: int
    type: int
    size: int
    state: RequestState
    payload: bytearray = field(default_factory=bytearray)
    offset: int = 0
    result: int = int(ResultCode.UNKNOWN)
    reply: bytes = b""
    submitted: SubmittedRequest | None = None
    alloc_timer: TimerHandle | None = None


class UsbControlService:
    """One boot's USB control-request channel."""

    def __init__(self, *, dispatcher: Callable[[], ControlSubmitter], scheduler: Scheduler,
                 tracer: Tracer, on_init: Callable[[int], None] | None = None,
                 timing: UsbServiceTiming | None = None,
                 faults: UsbServiceFaults | None = None) -> None:
        self._dispatcher = dispatcher
        self._scheduler = scheduler
        self._tracer = tracer
        self._on_init = on_init
        self.timing = timing or UsbServiceTiming()
        self.faults = faults or UsbServiceFaults()
        self._active: list[_Request] = []  # newest first, as Device OS's list
        self.last_request_id = USB_REQUEST_INVALID_ID
        self.closed = False

    # -- queries (tests, tooling) ---------------------------------------------------------------

    @property
    def active_count(self) -> int:
        return len(self._active)

    def state_of(self, request_id: int) -> RequestState | None:
        req = self._find(request_id)
        return None if req is None else req.state

    # -- entry point ----------------------------------------------------------------------------

    def handle(self, setup: SetupPacket, data: bytes = b"") -> TransferResult:
        """Process one service request (``bRequest`` 0x01-0x0F)."""
        if self.closed:
            return self._stall(setup, "channel closed")
        kind = setup.bRequest
        if kind == ServiceType.SEND:
            if setup.is_in:
                return self._stall(setup, "SEND must be host-to-device")
            return self._send(setup, data)
        if not setup.is_in:
            return self._stall(setup, "service request must be device-to-host")
        if kind == ServiceType.RECV:
            return self._recv(setup)
        if kind not in (ServiceType.INIT, ServiceType.CHECK, ServiceType.RESET):
            return self._stall(setup, "unknown service request")
        if setup.wLength != MIN_WLENGTH:
            return self._stall(setup, f"wLength {setup.wLength} != {MIN_WLENGTH}")
        if kind == ServiceType.INIT:
            reply = self._init(setup)
        elif kind == ServiceType.CHECK:
            reply = self._check(setup)
        else:
            reply = self._reset(setup)
        return TransferResult.completed(reply)

    def shutdown(self) -> None:
        """The device goes down: forget everything, answer nothing any more."""
        self.closed = True
        for req in self._active:
            if req.alloc_timer is not None:
                req.alloc_timer.cancel()
        self._active.clear()

    # -- service requests -----------------------------------------------------------------------

    def _init(self, setup: SetupPacket) -> bytes:
        request_type, size = setup.wIndex, setup.wValue
        if len(self._active) >= USB_REQUEST_MAX_ACTIVE_COUNT:
            self._tracer.emit("usb.busy", type=request_type, active=len(self._active))
            return ServiceReply(ServiceStatus.BUSY).encode()
        if self.faults.pool_exhausted:
            self._tracer.emit("usb.no_memory", type=request_type, stage="pool")
            return ServiceReply(ServiceStatus.NO_MEMORY).encode()
        self.last_request_id = (self.last_request_id + 1) & 0xFFFF
        req = _Request(self.last_request_id, request_type, size, RequestState.PENDING)
        self._active.insert(0, req)
        if size == 0:
            status = ServiceStatus.OK
        elif size <= MAX_POOLED_PAYLOAD_SIZE:
            status = ServiceStatus.OK
            req.state = RequestState.RECV_PAYLOAD
        else:
            status = ServiceStatus.PENDING
            req.state = RequestState.ALLOC_PENDING
            req.alloc_timer = self._scheduler.call_later(
                self.timing.alloc_delay_s, self._allocated, req, label="usb-alloc")
        self._tracer.emit("usb.init", id=req.id, type=request_type, size=size,
                          status=status.name)
        if size == 0:
            self._invoke(req)
            if self._on_init is not None:
                self._on_init(request_type)
        return ServiceReply(status, id=req.id).encode()

    def _check(self, setup: SetupPacket) -> bytes:
        req = self._find(setup.wIndex)
        if req is None:
            return ServiceReply(ServiceStatus.NOT_FOUND).encode()
        state = req.state
        if state is RequestState.ALLOC_FAILED:
            self._finish(req, int(ResultCode.NO_MEMORY))
            return ServiceReply(ServiceStatus.NO_MEMORY).encode()
        if state is RequestState.RECV_PAYLOAD:
            return ServiceReply(ServiceStatus.OK).encode()
        if state is not RequestState.DONE:  # ALLOC_PENDING, PENDING
            return ServiceReply(ServiceStatus.PENDING).encode()
        if req.reply:
            return ServiceReply(ServiceStatus.OK, size=len(req.reply), result=req.result).encode()
        reply = ServiceReply(ServiceStatus.OK, result=req.result).encode()
        self._finish(req, int(ResultCode.NONE))  # this CHECK reply is the last transfer
        return reply

    def _send(self, setup: SetupPacket, data: bytes) -> TransferResult:
        req = self._find(setup.wIndex)
        size = setup.wLength
        if req is None:
            return self._stall(setup, "SEND: unknown request id")
        if req.state is not RequestState.RECV_PAYLOAD:
            return self._stall(setup, f"SEND: request {req.id} is {req.state.value}")
        if req.offset + size > req.size:
            return self._stall(setup, f"SEND: {req.offset}+{size} bytes exceed the announced "
                               f"{req.size}")
        if len(data) != size:
            return self._stall(setup, f"SEND: data stage of {len(data)} bytes, wLength {size}")
        req.payload += data
        req.offset += size
        if req.offset == req.size:
            req.offset = 0
            req.state = RequestState.PENDING
            self._invoke(req)
        return TransferResult.completed()

    def _recv(self, setup: SetupPacket) -> TransferResult:
        req = self._find(setup.wIndex)
        size = setup.wLength
        if req is None:
            return self._stall(setup, "RECV: unknown request id")
        if req.state is not RequestState.DONE:
            return self._stall(setup, f"RECV: request {req.id} is {req.state.value}")
        if size == 0 or req.offset + size > len(req.reply):
            return self._stall(setup, f"RECV: {req.offset}+{size} bytes of a "
                               f"{len(req.reply)}-byte reply")
        chunk = req.reply[req.offset:req.offset + size]
        req.offset += size
        if req.offset == len(req.reply):
            self._finish(req, int(ResultCode.NONE))
        return TransferResult.completed(chunk)

    def _reset(self, setup: SetupPacket) -> bytes:
        request_id = setup.wIndex
        if request_id != USB_REQUEST_INVALID_ID:
            req = self._find(request_id)
            if req is None:
                return ServiceReply(ServiceStatus.NOT_FOUND).encode()
            self._tracer.emit("usb.reset", id=request_id, cancelled=1)
            self._finish(req, int(ResultCode.CANCELLED))
        else:
            count = len(self._active)
            self._tracer.emit("usb.reset", id=0, cancelled=count)
            while self._active:
                self._finish(self._active[0], int(ResultCode.CANCELLED))
        return ServiceReply(ServiceStatus.OK).encode()

    # -- internals ------------------------------------------------------------------------------

    def _find(self, request_id: int) -> _Request | None:
        for req in self._active:
            if req.id == request_id:
                return req
        return None

    def _stall(self, setup: SetupPacket, reason: str) -> TransferResult:
        self._tracer.emit("usb.stall", setup=setup.describe(), reason=reason)
        return TransferResult.stall()

    def _allocated(self, req: _Request) -> None:
        req.alloc_timer = None
        if req not in self._active or req.state is not RequestState.ALLOC_PENDING:
            return
        if self.faults.heap_exhausted:
            req.state = RequestState.ALLOC_FAILED
            self._tracer.emit("usb.no_memory", id=req.id, type=req.type, stage="heap")
        else:
            req.state = RequestState.RECV_PAYLOAD

    def _invoke(self, req: _Request) -> None:
        def completed(result: int, reply: bytes) -> None:
            if req not in self._active or req.state is not RequestState.PENDING:
                return  # cancelled meanwhile: Device OS frees the request
            req.state = RequestState.DONE
            req.result, req.reply, req.offset = int(result), bytes(reply), 0
            self._tracer.emit("usb.done", id=req.id, type=req.type, result=req.result,
                              reply_size=len(req.reply))

        req.submitted = self._dispatcher().submit(CHANNEL_NAME, req.type, bytes(req.payload),
                                                  completed)
        req.payload = bytearray()

    def _finish(self, req: _Request, result: int) -> None:
        """``finishActiveRequest``: drop ``req``; its completion handler sees ``result``."""
        self._active.remove(req)
        if req.alloc_timer is not None:
            req.alloc_timer.cancel()
            req.alloc_timer = None
        previous, req.state = req.state, RequestState.DONE
        self._tracer.emit("usb.finish", id=req.id, type=req.type, result=result)
        if req.submitted is None:
            return
        if previous is RequestState.PENDING:
            req.submitted.cancel()
        elif result == int(ResultCode.NONE):
            req.submitted.reply_delivered()
