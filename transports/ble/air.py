"""A virtual BLE radio ("air") inside a World: scanning, connections, ATT operations.

How it works
------------
``BleAir.of(world)`` is the world's one radio medium (kept in ``world.shared``). Peripherals
(:class:`~.peripheral.BlePeripheral`) register with :meth:`BleAir.add_peripheral`; centrals
(phones, the bleak backend) use :meth:`start_scan` and :meth:`connect`. Everything happens on
the world clock, so runs are deterministic:

* a scan reports every advertising peripheral ``advertising_interval_s`` after it starts, and
  again whenever a peripheral's advertisement changes (it starts advertising, its name
  changes); the report carries the advertisement current at delivery time;
* a connection is set up ``connect_s`` after the request, if the peripheral is still
  connectable (advertising, no other central);
* on a connection, each direction is a FIFO of ATT packets, each delivered ``latency_s``
  after it was sent (one scheduler entry per packet takes the queue's head, so order is kept
  even for packets due at the same instant). Requests (MTU exchange, read, write with
  response) are answered through the opposite FIFO, so a response takes a round trip. Writes
  without response and notifications are one-way;
* either side may disconnect: its own side learns at once, the other side ``latency_s``
  later; packets still in flight are lost and the central's pending requests fail with
  :class:`~firmware_sim.kernel.errors.TransportLost`.

The central API is callback based (``done(result)`` where a result may be an exception
object), so it works for world-clock code (the scenario phone) and, through a bridge, for
asyncio code (the bleak backend).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from firmware_sim.kernel.errors import FwSimError, TransportLost, UsageError
from firmware_sim.kernel.world import World

from .advertising import ParsedAdvertisement, parse_advertisement
from .gatt import (
    ATT_DEFAULT_MTU,
    CHARACTERISTICS,
    AttError,
    CharacteristicInfo,
    CharRole,
    max_notification_payload,
    role_of_handle,
)
from .peripheral import BlePeripheral, static_address

__all__ = [
    "AdvertisementReport",
    "AirScan",
    "AirTiming",
    "BleAir",
    "CentralConnection",
    "ConnectAttempt",
]

_SHARED_KEY: Final = "ble-air"

NotificationHandler = Callable[[int, bytes], None]
DisconnectHandler = Callable[[str], None]


@dataclass(frozen=True)
class AirTiming:
    #: One-way delay of an ATT packet (about one 7.5 ms connection interval).
    latency_s: float = 0.0075
    #: Delay before a scanner sees an advertisement.
    advertising_interval_s: float = 0.1
    #: Connection set-up time.
    connect_s: float = 0.03
    #: RSSI reported for every advertisement.
    rssi: int = -50


@dataclass(frozen=True)
class AdvertisementReport:
    """One advertisement as a central's scanner sees it."""

    address: str
    rssi: int
    advertising_data: bytes
    scan_response: bytes

    @property
    def parsed(self) -> ParsedAdvertisement:
        return parse_advertisement(self.advertising_data, self.scan_response)


class AirScan:
    """An active scan; ``stop()`` ends it."""

    def __init__(self, air: BleAir, on_report: Callable[[AdvertisementReport], None]) -> None:
        self._air = air
        self.on_report = on_report
        self.active = True

    def stop(self) -> None:
        if self.active:
            self.active = False
            self._air._scans.remove(self)


class ConnectAttempt:
    """A pending connection; ``cancel()`` abandons it."""

    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class _PeripheralEnd:
    """The device's end of an :class:`_AirLink` (a ``PeripheralLink``)."""

    def __init__(self, link: _AirLink) -> None:
        self._link = link

    @property
    def peer_address(self) -> str:
        return self._link.central.central_address

    @property
    def mtu(self) -> int:
        return self._link.mtu

    def notify(self, data: bytes) -> None:
        link = self._link
        if not link.open:
            return
        limit = max_notification_payload(link.mtu)
        if len(data) > limit:
            raise UsageError(f"a notification carries at most {limit} bytes at MTU {link.mtu}")
        payload = bytes(data)
        link.to_central(lambda: link.central._notification(link.tx_handle, payload))

    def disconnect(self) -> None:
        self._link.close(by_central=False, reason="terminated by the peripheral")


class CentralConnection:
    """The central's end of a connection (callback API)."""

    def __init__(self, link: _AirLink, central_address: str) -> None:
        self._link = link
        self.central_address = central_address
        self.on_notification: NotificationHandler | None = None
        self.on_disconnected: DisconnectHandler | None = None
        self._pending: list[Callable[[FwSimError], None]] = []
        self.disconnect_reason: str | None = None

    @property
    def address(self) -> str:
        """The peripheral's address."""
        return self._link.peripheral.address

    @property
    def connected(self) -> bool:
        return self._link.open

    @property
    def mtu(self) -> int:
        return self._link.mtu

    @staticmethod
    def characteristics() -> tuple[CharacteristicInfo, ...]:
        """The discovered GATT table (fwsim's handles)."""
        return CHARACTERISTICS

    # -- requests ----------------------------------------------------------------------------

    def exchange_mtu(self, client_mtu: int, done: Callable[[int | FwSimError], None]) -> None:
        link = self._link

        def at_peripheral() -> None:
            mtu = link.peripheral.exchange_mtu(link.peripheral_end, client_mtu)
            link.mtu = mtu
            self._respond(done, mtu)

        self._request(done, at_peripheral)

    def read(self, handle: int, done: Callable[[bytes | FwSimError], None]) -> None:
        link = self._link

        def at_peripheral() -> None:
            try:
                value: bytes | FwSimError = link.peripheral.read(
                    link.peripheral_end, role_of_handle(handle))
            except AttError as error:
                value = error
            self._respond(done, value)

        self._request(done, at_peripheral)

    def write(self, handle: int, data: bytes, *, with_response: bool,
              done: Callable[[FwSimError | None], None] | None = None) -> None:
        """Write a value; ``done(None)`` on success, ``done(error)`` otherwise.

        Without response, ``done`` runs at once: the packet is only queued, and an ATT error at
        the peripheral is not reported (as on a real stack).
        """
        link = self._link
        payload = bytes(data)
        if not with_response and len(payload) > max_notification_payload(link.mtu):
            raise UsageError(f"a write without response carries at most "
                             f"{max_notification_payload(link.mtu)} bytes at MTU {link.mtu}")

        def at_peripheral() -> None:
            error: FwSimError | None = None
            try:
                link.peripheral.write(link.peripheral_end, role_of_handle(handle), payload,
                                      with_response=with_response)
            except AttError as exc:
                error = exc
            if with_response and done is not None:
                self._respond(done, error)

        if not with_response:
            if not link.open:
                raise TransportLost("not connected")
            link.to_peripheral(at_peripheral)
            if done is not None:
                done(None)
            return
        if done is None:
            raise UsageError("a write with response needs a done callback")
        self._request(done, at_peripheral)

    def subscribe(self, notify: bool, done: Callable[[FwSimError | None], None]) -> None:
        """Write the TX CCCD."""
        tx = next(info for info in CHARACTERISTICS if info.role is CharRole.TX)
        assert tx.cccd_handle is not None
        self.write(tx.cccd_handle, b"\x01\x00" if notify else b"\x00\x00", with_response=True,
                   done=done)

    def disconnect(self) -> None:
        self._link.close(by_central=True, reason="terminated by the central")

    # -- plumbing ----------------------------------------------------------------------------

    def _request(self, done: Callable[..., None], at_peripheral: Callable[[], None]) -> None:
        if not self._link.open:
            done(TransportLost(f"not connected to {self.address}"))
            return
        self._pending.append(done)
        self._link.to_peripheral(at_peripheral)

    def _respond(self, done: Callable[..., None], value: object) -> None:
        def at_central() -> None:
            if done in self._pending:
                self._pending.remove(done)
                done(value)

        self._link.to_central(at_central)

    def _notification(self, handle: int, data: bytes) -> None:
        if self.on_notification is not None:
            self.on_notification(handle, data)

    def _closed(self, reason: str) -> None:
        self.disconnect_reason = reason
        pending, self._pending = self._pending, []
        for done in pending:
            done(TransportLost(f"disconnected from {self.address}: {reason}"))
        if self.on_disconnected is not None:
            self.on_disconnected(reason)


class _AirLink:
    def __init__(self, air: BleAir, peripheral: BlePeripheral, central_address: str) -> None:
        self.air = air
        self.peripheral = peripheral
        self.mtu = ATT_DEFAULT_MTU
        self.open = True
        self.peripheral_end = _PeripheralEnd(self)
        self.central = CentralConnection(self, central_address)
        self.tx_handle = next(i.value_handle for i in CHARACTERISTICS if i.role is CharRole.TX)
        self._to_peripheral: deque[Callable[[], None]] = deque()
        self._to_central: deque[Callable[[], None]] = deque()

    def to_peripheral(self, action: Callable[[], None]) -> None:
        self._send(self._to_peripheral, action)

    def to_central(self, action: Callable[[], None]) -> None:
        self._send(self._to_central, action)

    def _send(self, queue: deque[Callable[[], None]], action: Callable[[], None]) -> None:
        if not self.open:
            return
        queue.append(action)
        self.air.world.scheduler.call_later(self.air.timing.latency_s, self._deliver, queue,
                                            label="ble-air")

    def _deliver(self, queue: deque[Callable[[], None]]) -> None:
        if queue and self.open:
            queue.popleft()()

    def close(self, *, by_central: bool, reason: str) -> None:
        if not self.open:
            return
        self.open = False
        self._to_peripheral.clear()
        self._to_central.clear()
        scheduler = self.air.world.scheduler
        latency = self.air.timing.latency_s
        self.air.world.trace.emit("air", "ble", "ble.disconnect",
                                  peripheral=self.peripheral.address,
                                  central=self.central.central_address, reason=reason)
        scheduler.call_later(latency if by_central else 0.0, self.peripheral.disconnect,
                             self.peripheral_end, label="ble-air-disconnect")
        scheduler.call_later(0.0 if by_central else latency, self.central._closed, reason,
                             label="ble-air-disconnect")


class BleAir:
    """The radio medium of one world."""

    def __init__(self, world: World, timing: AirTiming | None = None) -> None:
        self.world = world
        self.timing = timing or AirTiming()
        self._peripherals: dict[str, BlePeripheral] = {}
        self._scans: list[AirScan] = []

    @classmethod
    def of(cls, world: World, timing: AirTiming | None = None) -> BleAir:
        """The world's air, created on first use."""
        air = world.shared.get(_SHARED_KEY)
        if air is None:
            air = cls(world, timing)
            world.shared[_SHARED_KEY] = air
        assert isinstance(air, BleAir)
        return air

    # -- peripherals -------------------------------------------------------------------------

    def add_peripheral(self, peripheral: BlePeripheral) -> BlePeripheral:
        known = self._peripherals.get(peripheral.address)
        if known is not None and known is not peripheral:
            raise UsageError(f"another peripheral already uses address {peripheral.address}")
        self._peripherals[peripheral.address] = peripheral
        peripheral.add_observer(self)
        self.advertising_changed(peripheral)
        return peripheral

    def remove_peripheral(self, peripheral: BlePeripheral) -> None:
        peripheral.remove_observer(self)
        self._peripherals.pop(peripheral.address, None)

    @property
    def peripherals(self) -> list[BlePeripheral]:
        return list(self._peripherals.values())

    def advertising_changed(self, peripheral: BlePeripheral) -> None:
        if peripheral.advertising:
            for scan in list(self._scans):
                self._schedule_report(scan, peripheral)

    def current_reports(self) -> list[AdvertisementReport]:
        """What a scan would report right now (no virtual time passes)."""
        reports = [self._report(p) for p in self._peripherals.values()]
        return [report for report in reports if report is not None]

    # -- centrals ----------------------------------------------------------------------------

    def start_scan(self, on_report: Callable[[AdvertisementReport], None]) -> AirScan:
        scan = AirScan(self, on_report)
        self._scans.append(scan)
        for peripheral in self._peripherals.values():
            if peripheral.advertising:
                self._schedule_report(scan, peripheral)
        return scan

    def connect(self, address: str, *, central: str = "central",
                on_connected: Callable[[CentralConnection], None],
                on_failed: Callable[[FwSimError], None]) -> ConnectAttempt:
        """Connect to the peripheral at ``address`` (``connect_s`` later)."""
        attempt = ConnectAttempt()
        central_address = static_address(f"central:{central}")

        def establish() -> None:
            if attempt.cancelled:
                return
            peripheral = self._peripherals.get(address.upper())
            if peripheral is None:
                on_failed(TransportLost(f"no BLE peripheral at {address}"))
                return
            if not peripheral.advertising:
                on_failed(TransportLost(f"{address} is not connectable (not advertising)"))
                return
            link = _AirLink(self, peripheral, central_address)
            if not peripheral.connect(link.peripheral_end):
                link.open = False
                on_failed(TransportLost(f"{address} refused the connection"))
                return
            self.world.trace.emit("air", "ble", "ble.connect", peripheral=peripheral.address,
                                  central=central_address)
            on_connected(link.central)

        self.world.scheduler.call_later(self.timing.connect_s, establish, label="ble-connect")
        return attempt

    # -- internals ---------------------------------------------------------------------------

    def _report(self, peripheral: BlePeripheral) -> AdvertisementReport | None:
        payload = peripheral.advertisement()
        if payload is None:
            return None
        return AdvertisementReport(peripheral.address, self.timing.rssi,
                                   payload.advertising_data, payload.scan_response)

    def _schedule_report(self, scan: AirScan, peripheral: BlePeripheral) -> None:
        def deliver() -> None:
            if not scan.active:
                return
            report = self._report(peripheral)
            if report is not None:
                scan.on_report(report)

        self.world.scheduler.call_later(self.timing.advertising_interval_s, deliver,
                                        label="ble-scan-report")
