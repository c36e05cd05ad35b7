"""The device-side control-request dispatcher, transport-agnostic.

How this works
--------------
A transport hands over ``(channel, type, payload)`` with :meth:`ControlDispatcher.submit` and
gets a :class:`RequestHandle`; the result and the reply bytes arrive through the handle's
completion callback, possibly later on the world clock (joining a Wi-Fi network takes seconds).
The order of checks is Device OS's (``system_control_internal.cpp``):

1. the security / protected-state check (``security_mode_check_control_request``,
   ``services/src/security_mode.cpp``): a protected device refuses all but a few requests with
   ``PROTECTED`` (-1801). This is the one check that depends on the carrier: Device OS allows
   more over BLE than over USB, and counts every channel that is not its BLE channel as USB, so
   the channel name ``"ble"`` gets the BLE allow-list and every other name (``"usb"``, the
   testbed's in-process ``"direct"``/``"control"``/``"steering"``) the USB one. Handlers never
   see the distinction;
2. the request filter (``system_ctrl_set_request_filter``): DENY gives ``NOT_ALLOWED`` (-130);
3. the handler of a type the platform implements; a payload that does not decode gives
   ``BAD_DATA`` (-280) - and runs the type's ``on_bad_data`` action first, for the handlers
   whose failure cleanup in Device OS also covers a failed decode (FIRMWARE_UPDATE_DATA and
   FINISH_FIRMWARE_UPDATE cancel the transfer);
4. any other type (``APP_CUSTOM`` 10, unknown numbers, the types DOS 6.2 has commented out) goes
   to the application's handler when one is registered, else ``NOT_SUPPORTED`` (-120).

A type the platform knows but does not support (``SET_SECURITY_KEY`` on a P2) answers
``NOT_SUPPORTED`` itself. Handlers run in a fresh scheduler entry, never inside ``submit``.

A handler (or the application's handler) that raises anything but a ``DeviceOsError`` is a bug:
the request is completed with INTERNAL (-250) - the host gets an answer, as from Device OS - a
``control.handler_failed`` record is traced, and the exception is re-raised, so a test or
scenario fails loudly and a served world's real-time driver contains it
(``firmware_sim.kernel.realtime``).

After the transport delivered the reply it calls :meth:`RequestHandle.reply_delivered`; requests
that act only then (RESET, FACTORY_RESET, DFU_MODE, SAFE_MODE) do so 1000 ms later. The device
closes its dispatcher when it shuts down (:meth:`ControlDispatcher.close`; a dispatcher serves
one boot): a request not yet handled is dropped and an action due after a reply never runs, as
a reset or power loss ends them on hardware.
:meth:`RequestHandle.cancel` completes a pending request with ``CANCELLED`` (-140); its handler
still runs (if it had not yet) and its late completion is ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from google.protobuf.message import Message

from firmware_sim.kernel.errors import DeviceOsError, ResultCode
from firmware_sim.kernel.scheduler import Scheduler, TimerHandle
from firmware_sim.kernel.trace import Tracer

from . import codec
from .errors import BadData, EncodingFailed
from .services import DeviceServices
from .types import DOS_6_2_UNIMPLEMENTED, RequestType

Completion = Callable[[int, bytes], None]


class FilterAction(Enum):
    ACCEPT = "accept"
    DENY = "deny"


RequestFilter = Callable[[str, int], FilterAction]


@dataclass
class AppRequest:
    """A request handed to the application's custom handler."""

    channel: str
    type: int
    payload: bytes
    _handle: RequestHandle

    def reply(self, result: int = 0, data: bytes = b"") -> None:
        self._handle._complete(int(result), bytes(data))


AppHandler = Callable[[AppRequest], None]

#: The channel name of the BLE transport (``transports/ble``): the only carrier Device OS treats
#: as BLE in its protected-state check; every other channel counts as USB.
BLE_CHANNEL = "ble"

#: What a protected device still answers over USB - and over every channel that is not BLE
#: (``security_mode_check_control_request``, ``services/src/security_mode.cpp``). APP_CUSTOM
#: passes the check and goes on to the application's handler.
ALLOWED_WHEN_PROTECTED = frozenset(
    {
        RequestType.SET_PROTECTED_STATE,
        RequestType.GET_PROTECTED_STATE,
        RequestType.DEVICE_ID,
        RequestType.APP_CUSTOM,
    }
)

#: What a protected device answers over BLE: the USB list plus what Wi-Fi provisioning over BLE
#: needs (the same function of ``security_mode.cpp``).
ALLOWED_WHEN_PROTECTED_OVER_BLE = ALLOWED_WHEN_PROTECTED | frozenset(
    {
        RequestType.WIFI_SCAN_NETWORKS,
        RequestType.WIFI_JOIN_NEW_NETWORK,
        RequestType.WIFI_CLEAR_KNOWN_NETWORKS,
    }
)


def allowed_when_protected(channel: str, request_type: int) -> bool:
    """Whether a protected device lets ``request_type`` arriving on ``channel`` through."""
    allowed = ALLOWED_WHEN_PROTECTED_OVER_BLE if channel == BLE_CHANNEL else ALLOWED_WHEN_PROTECTED
    return request_type in allowed


@dataclass
class HandlerContext:
    """Everything a handler needs; it must call :meth:`done` exactly once."""

    services: DeviceServices
    request_type: RequestType
    channel: str
    payload: bytes
    message: Message | None
    handle: RequestHandle

    def done(self, result: int = 0, reply: Message | bytes | None = None) -> None:
        data = b""
        if isinstance(reply, Message):
            try:
                data = codec.encode_reply(reply)
            except EncodingFailed as exc:
                self.handle.tracer.emit(
                    "control.encode_failed", type=int(self.request_type), error=str(exc)
                )
                self.handle._complete(exc.code, b"")
                return
        elif reply is not None:
            data = bytes(reply)
        self.handle._complete(int(result), data)

    def after_reply(self, action: Callable[[], None], delay_s: float = 1.0) -> None:
        """Run ``action`` ``delay_s`` after the reply reached the host."""
        self.handle._after_delivery = (action, delay_s)


Handler = Callable[[HandlerContext], None]
#: What a request type does when its payload does not decode (before BAD_DATA is answered).
BadDataAction = Callable[[DeviceServices], None]


@dataclass
class RequestHandle:
    channel: str
    type: int
    payload: bytes
    on_complete: Completion
    scheduler: Scheduler
    tracer: Tracer
    completed: bool = False
    result: int | None = None
    reply: bytes = b""
    _after_delivery: tuple[Callable[[], None], float] | None = field(default=None, repr=False)
    #: the dispatcher that took the request (None: a handle made outside one)
    _owner: ControlDispatcher | None = field(default=None, repr=False)

    def _complete(self, result: int, reply: bytes) -> None:
        if self.completed:
            self.tracer.emit("control.late_completion", type=self.type, result=result)
            return
        self.completed = True
        self.result, self.reply = result, reply
        self.tracer.emit(
            "control.done",
            channel=self.channel,
            type=self.type,
            result=result,
            reply_size=len(reply),
        )
        self.on_complete(result, reply)

    def cancel(self) -> None:
        """Cancel a pending request: its completion gets CANCELLED (-140)."""
        if not self.completed:
            self._after_delivery = None
            self._complete(int(ResultCode.CANCELLED), b"")

    def reply_delivered(self) -> None:
        if self._after_delivery is not None:
            action, delay = self._after_delivery
            self._after_delivery = None
            if self._owner is not None:
                self._owner._run_after_reply(action, delay)
            else:
                self.scheduler.call_later(delay, action, label="control-after-reply")


class ControlDispatcher:
    """Routes control requests of every transport to the handlers of one device."""

    def __init__(
        self,
        services: DeviceServices,
        scheduler: Scheduler,
        tracer: Tracer,
        handlers: dict[RequestType, Handler],
        *,
        supported: frozenset[RequestType] | None = None,
        protected: Callable[[], bool] = lambda: False,
        on_bad_data: dict[RequestType, BadDataAction] | None = None,
    ) -> None:
        self.services = services
        self.scheduler = scheduler
        self.tracer = tracer
        self.handlers = handlers
        self.supported = supported if supported is not None else frozenset(handlers)
        self._protected = protected
        self._on_bad_data = on_bad_data or {}
        self.request_filter: RequestFilter | None = None
        self.app_handler: AppHandler | None = None
        #: set by :meth:`close`: the device this dispatcher served has shut down
        self.closed = False
        self._after_reply_timers: list[TimerHandle] = []

    def close(self) -> None:
        """The device shut down (a reset, a power loss): its RAM is gone, so a request not yet
        handled is dropped (the host times out) and an action due after a reply (a RESET's,
        a DFU_MODE's, an update's apply) never runs."""
        self.closed = True
        for timer in self._after_reply_timers:
            timer.cancel()
        self._after_reply_timers.clear()

    def _run_after_reply(self, action: Callable[[], None], delay_s: float) -> None:
        if self.closed:
            self.tracer.emit("control.after_reply_dropped")
            return
        timers = [t for t in self._after_reply_timers if not t.cancelled]
        timers.append(self.scheduler.call_later(delay_s, action, label="control-after-reply"))
        self._after_reply_timers = timers

    def set_request_filter(self, request_filter: RequestFilter | None) -> None:
        self.request_filter = request_filter

    def set_app_handler(self, handler: AppHandler | None) -> None:
        self.app_handler = handler

    def submit(
        self, channel: str, request_type: int, payload: bytes, on_complete: Completion
    ) -> RequestHandle:
        handle = RequestHandle(
            channel, int(request_type), bytes(payload), on_complete, self.scheduler, self.tracer,
            _owner=self,
        )
        self.tracer.emit(
            "control.request", channel=channel, type=int(request_type), size=len(payload)
        )
        self.scheduler.call_soon(self._process, handle, label="control-request")
        return handle

    def _process(self, handle: RequestHandle) -> None:
        # A request cancelled before its turn still runs (Device OS only discards the
        # result): a cancelled SET_CLAIM_CODE is still stored.
        if self.closed:
            self.tracer.emit("control.dropped", type=handle.type)
            return
        number = handle.type
        known = _known_type(number)
        if self._protected() and not allowed_when_protected(handle.channel, number):
            handle._complete(int(ResultCode.PROTECTED), b"")
            return
        if (
            self.request_filter is not None
            and self.request_filter(handle.channel, number) is FilterAction.DENY
        ):
            handle._complete(int(ResultCode.NOT_ALLOWED), b"")
            return
        if known is None or known is RequestType.APP_CUSTOM or known in DOS_6_2_UNIMPLEMENTED:
            self._to_app(handle)
            return
        handler = self.handlers.get(known)
        if handler is None or known not in self.supported:
            if handler is None:
                self.tracer.emit("control.not_simulated", type=number)
            handle._complete(int(ResultCode.NOT_SUPPORTED), b"")
            return
        message: Message | None = None
        pair = codec.message_pair(known)
        # Device OS decodes only requests that have fields; an empty request's payload is
        # never looked at (garbage there is not BAD_DATA).
        if pair is not None and not pair.request_is_empty:
            try:
                message = codec.decode_request(known, handle.payload)
            except BadData as exc:
                self.tracer.emit("control.bad_data", type=number, error=str(exc))
                cleanup = self._on_bad_data.get(known)
                if cleanup is not None:
                    cleanup(self.services)
                handle._complete(int(ResultCode.BAD_DATA), b"")
                return
        context = HandlerContext(
            self.services, known, handle.channel, handle.payload, message, handle
        )
        try:
            handler(context)
        except DeviceOsError as exc:
            handle._complete(exc.code, b"")
        except Exception as exc:
            self._failed(handle, exc)
            raise

    def _failed(self, handle: RequestHandle, exc: Exception) -> None:
        """A handler bug: answer INTERNAL (-250) before the exception goes on."""
        self.tracer.emit("control.handler_failed", type=handle.type,
                         error=f"{type(exc).__name__}: {exc}"[:300])
        if not handle.completed:
            handle._complete(int(ResultCode.INTERNAL), b"")

    def _to_app(self, handle: RequestHandle) -> None:
        if self.app_handler is None:
            handle._complete(int(ResultCode.NOT_SUPPORTED), b"")
            return
        self.tracer.emit("control.to_app", type=handle.type)
        try:
            self.app_handler(AppRequest(handle.channel, handle.type, handle.payload, handle))
        except DeviceOsError as exc:
            handle._complete(exc.code, b"")
        except Exception as exc:
            self._failed(handle, exc)
            raise


def _known_type(number: int) -> RequestType | None:
    try:
        return RequestType(number)
    except ValueError:
        return None
