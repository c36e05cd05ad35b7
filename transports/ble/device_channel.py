"""The device side of the BLE control channel (``BleControlRequestChannel``), sans-IO.

How it works
------------
The GATT layer reports link events (:meth:`connected`, :meth:`disconnected`,
:meth:`mtu_changed`, :meth:`cccd_changed`, :meth:`data_written`); the channel's work happens in
:meth:`_run`, which the world scheduler calls ``loop_s`` after an event, like the system thread
loop that runs ``BleControlRequestChannel::run`` on the device:

1. Each connection starts clean: the input pool, the partial frames, queued replies and the
   session are dropped, ``Connected`` is logged and a new EC-JPAKE handshake waits for the
   phone's round one.
2. RX writes land in a 1024-byte pool (``BUFFER_POOL_SIZE``) until ``_run`` drains them; a
   write that does not fit is ``NO_MEMORY`` and ends the connection. ``_run`` drains only what
   the current frame needs (a :class:`~.framing.FrameAssembler`).
3. While handshaking, every byte is a handshake packet (so a request sent too early fails the
   handshake). A failure logs ``Handshake failed``, raises ``ble_prov_mode`` /
   ``handshake_failed`` and disconnects; success logs ``Handshake done`` and raises
   ``handshake_done``.
4. Afterwards each complete frame is decrypted (a bad tag, a replayed or reordered counter ends
   the connection), logged as ``Received a request message; type: %u, ID: %u`` and handed to
   the control-request dispatcher. Its completion is encrypted into a reply, unless it belongs
   to a previous connection (then it is dropped).
5. Outgoing bytes (handshake packets, replies) form one stream; each ``_run`` sends at most one
   notification of up to ATT_MTU - 3 bytes, and only once the phone enabled the CCCD. When the
   last byte of a reply has been notified, the request's ``reply_delivered`` runs.

Every channel error is logged as ``Channel error: <code>`` and disconnects the phone; the
device stays connectable and the next connection starts over.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Final, Protocol

from firmware_sim.kernel.errors import ResultCode, UsageError
from firmware_sim.kernel.scheduler import Scheduler, TimerHandle
from firmware_sim.kernel.trace import Tracer

from ..device_surface import Completion, SubmittedRequest
from .channel_crypto import ChannelCryptoError, ChannelSession
from .ecjpake import EcJpakeRole
from .framing import (
    FrameAssembler,
    FramingError,
    frame_handshake,
    handshake_assembler,
    message_assembler,
)
from .gatt import ATT_DEFAULT_MTU, max_notification_payload
from .handshake import DeviceHandshake, DeviceHandshakeState, HandshakeFailed

__all__ = [
    "BUFFER_POOL_SIZE",
    "ChannelHost",
    "ChannelTiming",
    "DeviceControlChannel",
    "InboundPool",
    "PeripheralLink",
    "ProvModeEvent",
]

#: ``BUFFER_POOL_SIZE`` of ``ble_control_request_channel.cpp``.
BUFFER_POOL_SIZE: Final = 1024
LOG_CATEGORY: Final = "system.ctrl.ble"


class ProvModeEvent:
    """``ble_prov_mode`` system event parameters (``system_event.h``)."""

    CONNECTED: Final = 0
    DISCONNECTED: Final = 1
    HANDSHAKE_FAILED: Final = 2
    HANDSHAKE_DONE: Final = 3


class PeripheralLink(Protocol):
    """The device's end of one BLE connection, as the GATT layer provides it."""

    @property
    def peer_address(self) -> str: ...

    def notify(self, data: bytes) -> None:
        """Send one TX notification (at most ATT_MTU - 3 bytes)."""

    def disconnect(self) -> None:
        """Terminate the connection; the GATT layer then reports :meth:`disconnected`."""


class ChannelHost(Protocol):
    """What the channel needs from the device it runs on."""

    @property
    def scheduler(self) -> Scheduler: ...

    @property
    def tracer(self) -> Tracer: ...

    def log(self, level: str, category: str, message: str) -> None: ...

    def prov_mode_event(self, param: int) -> None: ...

    def mobile_secret(self) -> bytes | None: ...

    def randbytes(self, count: int) -> bytes: ...

    def submit(self, request_type: int, payload: bytes, on_complete: Completion
               ) -> SubmittedRequest: ...


@dataclass(frozen=True)
class ChannelTiming:
    #: Delay between a link event and the channel's processing (the system loop).
    loop_s: float = 0.001


class InboundPool:
    """Received RX packets not yet read by the channel, at most ``capacity`` bytes in all.

    fwsim counts payload bytes only; the real pool also spends a few bytes of bookkeeping per
    packet, so it fills slightly earlier (docs/ble.md).
    """

    def __init__(self, capacity: int = BUFFER_POOL_SIZE) -> None:
        self.capacity = capacity
        self._packets: deque[bytes] = deque()
        self.used = 0

    def put(self, packet: bytes) -> bool:
        if self.used + len(packet) > self.capacity:
            return False
        if packet:
            self._packets.append(bytes(packet))
            self.used += len(packet)
        return True

    def read(self, count: int) -> bytes:
        """Up to ``count`` bytes, across packets."""
        parts: list[bytes] = []
        while count > 0 and self._packets:
            head = self._packets[0]
            if len(head) <= count:
                parts.append(self._packets.popleft())
                count -= len(head)
            else:
                parts.append(head[:count])
                self._packets[0] = head[count:]
                count = 0
        data = b"".join(parts)
        self.used -= len(data)
        return data

    def clear(self) -> None:
        self._packets.clear()
        self.used = 0


@dataclass
class _ReadyReply:
    conn_id: int
    request_id: int
    result: int
    payload: bytes
    handle: SubmittedRequest | None


class _ChannelError(Exception):
    def __init__(self, result: int, reason: str) -> None:
        super().__init__(reason)
        self.result = result
        self.reason = reason


class DeviceControlChannel:
    """One device's BLE control channel; reset on every connection."""

    def __init__(self, host: ChannelHost, *, timing: ChannelTiming | None = None,
                 pool_size: int = BUFFER_POOL_SIZE) -> None:
        self.host = host
        self.timing = timing or ChannelTiming()
        self.pool = InboundPool(pool_size)
        self._link: PeripheralLink | None = None
        self._conn_id = 0
        self._max_packet = max_notification_payload(ATT_DEFAULT_MTU)
        self._subscribed = False
        self._handshake: DeviceHandshake | None = None
        self._handshake_reader: FrameAssembler = handshake_assembler()
        self._message_reader: FrameAssembler = message_assembler()
        self.session: ChannelSession | None = None
        self._ready: deque[_ReadyReply] = deque()
        self._out: deque[bytes] = deque()
        self._out_offset = 0
        self._queued_bytes = 0
        self._sent_bytes = 0
        self._awaiting_delivery: deque[tuple[int, SubmittedRequest]] = deque()
        self._run_handle: TimerHandle | None = None
        #: Counters for tests and benchmarks.
        self.stats = {"connections": 0, "handshakes": 0, "handshake_failures": 0,
                      "requests": 0, "replies": 0, "replies_dropped": 0, "channel_errors": 0,
                      "notifications": 0}

    # -- state -------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._link is not None

    @property
    def handshake_done(self) -> bool:
        return self.session is not None

    @property
    def subscribed(self) -> bool:
        return self._subscribed

    @property
    def max_packet_size(self) -> int:
        return self._max_packet

    # -- link events (from the GATT layer) ---------------------------------------------------

    def connected_event(self, link: PeripheralLink) -> None:
        """A central connected (``BLE_EVT_CONNECTED``)."""
        if self._link is not None:
            raise UsageError("the BLE control channel already has a connection")
        self._link = link
        self._conn_id += 1
        self._max_packet = max_notification_payload(ATT_DEFAULT_MTU)
        self._subscribed = False
        self.pool.clear()
        self._reset()
        self.stats["connections"] += 1
        self._log("TRACE", "Connected")
        self.host.tracer.emit("ble.connected", peer=link.peer_address, conn=self._conn_id)
        self.host.prov_mode_event(ProvModeEvent.CONNECTED)
        secret = self.host.mobile_secret()
        if secret is None:
            self._channel_error(_ChannelError(int(ResultCode.NOT_FOUND),
                                              "no printable mobile secret"))
            return
        self._handshake = DeviceHandshake(secret, self.host.randbytes)

    def disconnected_event(self) -> None:
        """The connection ended, whoever ended it (``BLE_EVT_DISCONNECTED``)."""
        if self._link is None:
            return
        peer = self._link.peer_address
        self._link = None
        self._conn_id += 1
        self._subscribed = False
        self.pool.clear()
        self._reset()
        self._log("TRACE", "Disconnected")
        self.host.tracer.emit("ble.disconnected", peer=peer)
        self.host.prov_mode_event(ProvModeEvent.DISCONNECTED)

    def mtu_changed(self, mtu: int) -> None:
        """``BLE_EVT_ATT_MTU_UPDATED``: notifications may now carry MTU - 3 bytes."""
        if self._link is not None:
            self._max_packet = max_notification_payload(mtu)
            self._schedule_run()

    def cccd_changed(self, notify: bool) -> None:
        """The phone wrote the TX CCCD."""
        if self._link is not None:
            self._subscribed = notify
            self.host.tracer.emit("ble.cccd", notify=notify)
            self._schedule_run()

    def data_written(self, data: bytes) -> None:
        """An RX write (with or without response)."""
        if self._link is None:
            return
        if not self.pool.put(data):
            self.host.tracer.emit("ble.pool_full", size=len(data), used=self.pool.used,
                                  capacity=self.pool.capacity)
            self._channel_error(_ChannelError(
                int(ResultCode.NO_MEMORY),
                f"{len(data)}-byte write does not fit the {self.pool.capacity}-byte pool "
                f"({self.pool.used} bytes queued)"))
            return
        self._schedule_run()

    # -- the system loop ---------------------------------------------------------------------

    def _schedule_run(self) -> None:
        if self._run_handle is None or not self._run_handle.active:
            self._run_handle = self.host.scheduler.call_later(
                self.timing.loop_s, self._run, label="ble-channel")

    def _run(self) -> None:
        self._run_handle = None
        if self._link is None:
            return
        try:
            if self._handshake is not None:
                self._run_handshake()
            if self._handshake is None and self.session is not None:
                self._send_replies()
                self._receive_requests()
            self._send_packet()
        except _ChannelError as error:
            self._channel_error(error)
            return
        if self._link is not None and (
                (self._subscribed and self._out) or self._ready or self.pool.used):
            self._schedule_run()

    def _run_handshake(self) -> None:
        handshake = self._handshake
        assert handshake is not None
        try:
            while self.pool.used:
                payload = self._handshake_reader.push(
                    self.pool.read(self._handshake_reader.wants()))
                if payload is None:
                    continue
                for reply in handshake.receive(payload):
                    self._enqueue(frame_handshake(reply))
                if self._handshake_done(handshake):
                    return
        except (HandshakeFailed, FramingError) as exc:
            self.stats["handshake_failures"] += 1
            self._log("ERROR", "Handshake failed")
            self.host.tracer.emit("ble.handshake_failed", error=str(exc),
                                  result=int(exc.result))
            self.host.prov_mode_event(ProvModeEvent.HANDSHAKE_FAILED)
            raise _ChannelError(int(exc.result), str(exc)) from None

    def _handshake_done(self, handshake: DeviceHandshake) -> bool:
        if handshake.state is not DeviceHandshakeState.DONE:
            return False
        self.session = ChannelSession(handshake.secret, EcJpakeRole.SERVER)
        self._handshake = None
        self.stats["handshakes"] += 1
        self._log("TRACE", "Handshake done")
        self.host.tracer.emit("ble.handshake_done")
        self.host.prov_mode_event(ProvModeEvent.HANDSHAKE_DONE)
        return True

    def _receive_requests(self) -> None:
        session = self.session
        assert session is not None
        while self.pool.used:
            frame = self._message_reader.push(self.pool.read(self._message_reader.wants()))
            if frame is None:
                continue
            try:
                request = session.open_request(frame)
            except ChannelCryptoError as exc:
                # mbedtls_ccm_auth_decrypt fails -> mbedtlsError() -> SYSTEM_ERROR_UNKNOWN
                raise _ChannelError(int(ResultCode.UNKNOWN), str(exc)) from None
            self.stats["requests"] += 1
            self._log("TRACE", f"Received a request message; type: {request.request_type}, "
                               f"ID: {request.request_id}")
            self.host.tracer.emit("ble.request", id=request.request_id,
                                  type=request.request_type, size=len(request.payload))
            self._submit(request.request_id, request.request_type, request.payload)

    def _submit(self, request_id: int, request_type: int, payload: bytes) -> None:
        conn_id = self._conn_id
        holder: list[SubmittedRequest] = []

        def completed(result: int, reply: bytes) -> None:
            handle = holder[0] if holder else None
            if conn_id != self._conn_id or self.session is None:
                self.stats["replies_dropped"] += 1
                self.host.tracer.emit("ble.reply_dropped", id=request_id, result=result,
                                      reason="the connection it came from is gone")
                return
            self._ready.append(_ReadyReply(conn_id, request_id, result, reply, handle))
            self._schedule_run()

        holder.append(self.host.submit(request_type, payload, completed))

    def _send_replies(self) -> None:
        session = self.session
        assert session is not None
        while self._ready:
            ready = self._ready.popleft()
            if ready.conn_id != self._conn_id:
                self.stats["replies_dropped"] += 1
                continue
            try:
                frame = session.seal_reply(ready.request_id, ready.result, ready.payload)
            except UsageError as exc:
                raise _ChannelError(int(ResultCode.INTERNAL), str(exc)) from None
            self._enqueue(frame)
            self.stats["replies"] += 1
            self._log("TRACE", f"Enqueued a reply message for sending; ID: {ready.request_id}")
            self.host.tracer.emit("ble.reply", id=ready.request_id, result=ready.result,
                                  size=len(ready.payload))
            if ready.handle is not None:
                self._awaiting_delivery.append((self._queued_bytes, ready.handle))

    def _enqueue(self, data: bytes) -> None:
        self._out.append(data)
        self._queued_bytes += len(data)

    def _send_packet(self) -> None:
        link = self._link
        if link is None or not self._subscribed or not self._out:
            return
        packet = bytearray()
        while self._out and len(packet) < self._max_packet:
            head = self._out[0]
            take = min(self._max_packet - len(packet), len(head) - self._out_offset)
            packet += head[self._out_offset:self._out_offset + take]
            self._out_offset += take
            if self._out_offset == len(head):
                self._out.popleft()
                self._out_offset = 0
        self._sent_bytes += len(packet)
        self.stats["notifications"] += 1
        link.notify(bytes(packet))
        while self._awaiting_delivery and self._awaiting_delivery[0][0] <= self._sent_bytes:
            _, handle = self._awaiting_delivery.popleft()
            handle.reply_delivered()

    # -- errors and reset --------------------------------------------------------------------

    def _channel_error(self, error: _ChannelError) -> None:
        self.stats["channel_errors"] += 1
        self._log("ERROR", f"Channel error: {error.result}")
        self.host.tracer.emit("ble.channel_error", result=error.result, reason=error.reason)
        link = self._link
        self._reset()
        self._handshake = None
        if link is not None:
            link.disconnect()

    def _reset(self) -> None:
        """``resetChannel``: forget the handshake, session, partial frames and queues."""
        self._handshake = None
        self.session = None
        self._handshake_reader.reset()
        self._message_reader.reset()
        self._ready.clear()
        self._out.clear()
        self._out_offset = 0
        self._queued_bytes = 0
        self._sent_bytes = 0
        self._awaiting_delivery.clear()
        if self._run_handle is not None:
            self._run_handle.cancel()
            self._run_handle = None

    def _log(self, level: str, message: str) -> None:
        self.host.log(level, LOG_CATEGORY, message)

