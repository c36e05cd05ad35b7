"""A phone that provisions a device over the virtual air, on the world clock.

How it works
------------
:class:`BlePhone` is what a setup app's BLE layer does, as callbacks on the world clock (no
asyncio), so scenarios and benchmarks can run it inside ``world.run_for``. The first request
opens a session: scan until the device's advertisement shows up (by name or address), connect,
exchange the MTU, enable TX notifications, run the EC-JPAKE handshake through a
:class:`~.client_channel.ClientControlChannel`; then requests are sealed, written in packets
of at most ATT_MTU - 3 bytes (write with response, one packet after the other, so two frames
never interleave) and matched to replies by id. A lost connection fails the requests in flight
with ``IO`` and the next request opens a new session.

``BlePhone`` also implements the scenarios' ``Provisioning`` protocol (``set_claim_code``,
``join_new_network``, ``start_listening``, ``stop_listening``), and :func:`ble_provisioning`
builds the factory that runs the claim-code scenarios over BLE.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from control_requests.requests import Call
from control_requests.steps import Done, ProvisioningSteps
from firmware_sim.kernel.errors import FwSimError, ResultCode
from firmware_sim.kernel.scheduler import TimerHandle
from firmware_sim.kernel.world import World

from ..device_surface import BleDevice
from .air import AdvertisementReport, AirScan, BleAir, CentralConnection
from .client_channel import ClientControlChannel
from .framing import split_packets
from .gatt import DEVICE_MAX_MTU, RX_UUID, characteristic_by_uuid, max_notification_payload
from .peripheral import AdvertisingPolicy, BlePeripheral

__all__ = ["BlePhone", "PhoneTiming", "attach_ble", "ble_provisioning"]

ReplyHandler = Callable[[int, bytes], None]


@dataclass(frozen=True)
class PhoneTiming:
    scan_timeout_s: float = 10.0
    handshake_timeout_s: float = 10.0
    request_timeout_s: float = 60.0


class _SessionState(Enum):
    IDLE = "idle"
    OPENING = "opening"
    READY = "ready"


@dataclass
class _Pending:
    request_type: int
    payload: bytes
    on_reply: ReplyHandler
    timer: TimerHandle | None = None


def attach_ble(device: BleDevice, *, advertising: AdvertisingPolicy | str = "listening",
               air: BleAir | None = None) -> BlePeripheral:
    """Make ``device`` a BLE peripheral on its world's air."""
    peripheral = BlePeripheral(device, advertising=advertising)
    (air or BleAir.of(device.world)).add_peripheral(peripheral)
    return peripheral


class BlePhone(ProvisioningSteps):
    """A BLE central that talks to one device's control channel."""

    def __init__(self, world: World, mobile_secret: str | bytes, *, name: str | None = None,
                 address: str | None = None, central: str = "phone",
                 air: BleAir | None = None, mtu: int = DEVICE_MAX_MTU,
                 timing: PhoneTiming | None = None) -> None:
        if name is None and address is None:
            raise FwSimError("BlePhone needs the device's name or address")
        self.world = world
        self.air = air or BleAir.of(world)
        self.secret = mobile_secret
        self.target_name = name
        self.target_address = address.upper() if address else None
        self.central = central
        self.mtu = mtu
        self.timing = timing or PhoneTiming()
        self.tracer = world.trace.bind(central, "ble-phone")
        self._random = world.rng_for(f"ble-phone:{central}")
        self._state = _SessionState.IDLE
        self._connection: CentralConnection | None = None
        self._channel: ClientControlChannel | None = None
        self._scan: AirScan | None = None
        self._timer: TimerHandle | None = None
        self._queued: deque[_Pending] = deque()
        self._in_flight: dict[int, _Pending] = {}
        self._writes: deque[bytes] = deque()
        self._writing = False
        self.sessions = 0

    # -- generic requests --------------------------------------------------------------------

    def send(self, request_type: int, payload: bytes, on_reply: ReplyHandler) -> None:
        """Send one control request; ``on_reply(result, reply)`` runs on the world clock."""
        pending = _Pending(int(request_type), bytes(payload), on_reply)
        self._queued.append(pending)
        if self._state is _SessionState.READY:
            self._flush()
        elif self._state is _SessionState.IDLE:
            self._open()

    def call(self, call: Call[None], done: Done) -> None:
        self.send(call.request.type, call.request.payload, lambda result, _reply: done(result))

    @property
    def ready(self) -> bool:
        return self._state is _SessionState.READY

    def close(self) -> None:
        """Disconnect; requests in flight fail with ``IO``."""
        if self._connection is not None and self._connection.connected:
            self._connection.disconnect()
        self._fail_all(int(ResultCode.CANCELLED), "closed by the phone")

    # -- session set-up ----------------------------------------------------------------------

    def _open(self) -> None:
        self._state = _SessionState.OPENING
        self.sessions += 1
        self.tracer.emit("phone.ble.scan", name=self.target_name, address=self.target_address)
        self._scan = self.air.start_scan(self._on_report)
        self._arm(self.timing.scan_timeout_s, int(ResultCode.NOT_FOUND),
                  "the device was not found")

    def _on_report(self, report: AdvertisementReport) -> None:
        if self._scan is None:
            return
        if self.target_address is not None:
            match = report.address == self.target_address
        else:
            match = report.parsed.local_name == self.target_name
        if not match:
            return
        self._scan.stop()
        self._scan = None
        self.tracer.emit("phone.ble.connect", address=report.address)
        self.air.connect(report.address, central=self.central, on_connected=self._on_connected,
                         on_failed=lambda error: self._fail_all(int(ResultCode.IO), str(error)))

    def _on_connected(self, connection: CentralConnection) -> None:
        self._connection = connection
        connection.on_notification = self._on_notification
        connection.on_disconnected = self._on_disconnected
        self._arm(self.timing.handshake_timeout_s, int(ResultCode.TIMEOUT),
                  "the handshake did not complete")
        connection.exchange_mtu(self.mtu, self._on_mtu)

    def _on_mtu(self, result: int | FwSimError) -> None:
        if isinstance(result, FwSimError):
            self._fail_all(int(ResultCode.IO), str(result))
            return
        assert self._connection is not None
        self._connection.subscribe(True, self._on_subscribed)

    def _on_subscribed(self, error: FwSimError | None) -> None:
        if error is not None:
            self._fail_all(int(ResultCode.IO), str(error))
            return
        self._channel = ClientControlChannel(self.secret, self._random.randbytes)
        self._write(self._channel.start())

    def _on_notification(self, _handle: int, data: bytes) -> None:
        channel = self._channel
        if channel is None:
            return
        try:
            received = channel.data_received(data)
        except FwSimError as error:
            self.tracer.emit("phone.ble.channel_error", error=str(error))
            self.close()
            return
        if received.outgoing:
            self._write(received.outgoing)
        if received.handshake_done:
            self._disarm()
            self._state = _SessionState.READY
            self.tracer.emit("phone.ble.handshake_done")
            self._flush()
        for reply in received.replies:
            pending = self._in_flight.pop(reply.request_id, None)
            if pending is None:
                self.tracer.emit("phone.ble.unexpected_reply", id=reply.request_id)
                continue
            if pending.timer is not None:
                pending.timer.cancel()
            pending.on_reply(reply.result, reply.payload)

    def _on_disconnected(self, reason: str) -> None:
        self.tracer.emit("phone.ble.disconnected", reason=reason)
        self._fail_all(int(ResultCode.IO), f"disconnected: {reason}")

    # -- requests and writes -----------------------------------------------------------------

    def _flush(self) -> None:
        channel = self._channel
        assert channel is not None
        while self._queued:
            pending = self._queued.popleft()
            request_id, frame = channel.request(pending.request_type, pending.payload)
            self._in_flight[request_id] = pending
            pending.timer = self.world.call_later(
                self.timing.request_timeout_s, self._request_timed_out, request_id,
                label="ble-phone-timeout")
            self._write(frame)

    def _request_timed_out(self, request_id: int) -> None:
        pending = self._in_flight.pop(request_id, None)
        if pending is not None:
            pending.on_reply(int(ResultCode.TIMEOUT), b"")

    def _write(self, data: bytes) -> None:
        connection = self._connection
        if connection is None:
            return
        self._writes.extend(split_packets(data, max_notification_payload(connection.mtu)))
        self._pump_writes()

    def _pump_writes(self) -> None:
        connection = self._connection
        if self._writing or not self._writes or connection is None or not connection.connected:
            return
        self._writing = True
        rx = characteristic_by_uuid(RX_UUID)
        assert rx is not None
        connection.write(rx.value_handle, self._writes.popleft(), with_response=True,
                         done=self._on_written)

    def _on_written(self, error: FwSimError | None) -> None:
        self._writing = False
        if error is not None:
            self.tracer.emit("phone.ble.write_failed", error=str(error))
            return
        self._pump_writes()

    # -- failure -----------------------------------------------------------------------------

    def _arm(self, seconds: float, result: int, reason: str) -> None:
        self._disarm()
        self._timer = self.world.call_later(seconds, self._fail_all, result, reason,
                                            label="ble-phone-timeout")

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _fail_all(self, result: int, reason: str) -> None:
        self._disarm()
        if self._scan is not None:
            self._scan.stop()
            self._scan = None
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.on_disconnected = None
            connection.on_notification = None
            if connection.connected:
                connection.disconnect()
        self._channel = None
        self._writes.clear()
        self._writing = False
        self._state = _SessionState.IDLE
        failed = list(self._in_flight.values()) + list(self._queued)
        self._in_flight.clear()
        self._queued.clear()
        if failed:
            self.tracer.emit("phone.ble.failed", result=result, reason=reason,
                             requests=len(failed))
        for pending in failed:
            if pending.timer is not None:
                pending.timer.cancel()
            pending.on_reply(result, b"")


def ble_provisioning(*, advertising: AdvertisingPolicy | str = AdvertisingPolicy.ALWAYS,
                     mobile_secret: str | None = None, central: str = "phone"
                     ) -> Callable[[BleDevice], BlePhone]:
    """A scenario ``provisioning`` factory: the phone reaches the device over BLE.

    The device gets a :class:`BlePeripheral` (advertising ``ALWAYS`` by default, since most
    scenarios provision a device that is online and not in listening mode) and the phone finds
    it by its advertised name and proves the mobile secret (the device's own unless given).
    """

    def factory(device: BleDevice) -> BlePhone:
        peripheral = attach_ble(device, advertising=advertising)
        return BlePhone(device.world, mobile_secret or device.mobile_secret,
                        name=peripheral.name, central=central)

    return factory
