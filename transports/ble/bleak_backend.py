"""bleak backend classes over the virtual air, so bleak code drives simulated devices.

How it works
------------
bleak 3.x takes a custom backend *class* (``BleakScanner(backend=...)``,
``BleakClient(address, backend=...)``) and constructs it itself, so the classes must already
know which world to use. :class:`SimulatedBle` bundles a world's :class:`~.air.BleAir` with a
:class:`~.bridge.WorldBridge` and hands out bound subclasses::

    sim = SimulatedBle(world)                       # SteppingBridge: deterministic
    devices = await BleakScanner.discover(0.5, service_uuids=[SERVICE_UUID],
                                          backend=sim.scanner_backend)
    async with BleakClient(devices[0], backend=sim.client_backend) as client:
        await client.start_notify(TX_UUID, on_data)
        await client.write_gatt_char(RX_UUID, data, response=True)

:meth:`SimulatedBle.patch_bleak` makes them bleak's default backends, for code that does not
take a ``backend`` argument at all. Every operation goes through the bridge (``enter`` /
``leave`` around the call into the world; results come back as resolved futures), and every
timeout is virtual. ``connect`` also exchanges the ATT MTU (``mtu``, default 247), as the
operating systems' stacks do, and discovers the fixed GATT table. ATT errors become
:class:`bleak.exc.BleakGATTProtocolError`; a lost connection :class:`bleak.exc.BleakError`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import bleak
from bleak.args import SizedBuffer
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, AdvertisementDataCallback, BaseBleakScanner
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakDeviceNotFoundError, BleakError, BleakGATTProtocolError

from firmware_sim.kernel.errors import FwSimError
from firmware_sim.kernel.world import World

from .air import AdvertisementReport, AirScan, BleAir, CentralConnection
from .bridge import SteppingBridge, WorldBridge
from .gatt import (
    CCCD_UUID,
    CHARACTERISTICS,
    DEVICE_MAX_MTU,
    SERVICE_HANDLE,
    SERVICE_UUID,
    AttError,
    max_notification_payload,
)

__all__ = ["SimBleakClient", "SimBleakScanner", "SimulatedBle"]

class SimulatedBle:
    """A world's air plus a bridge, and the bleak backend classes bound to them."""

    def __init__(self, world: World, *, bridge: WorldBridge | None = None,
                 air: BleAir | None = None, central: str = "bleak",
                 mtu: int = DEVICE_MAX_MTU, timeout_s: float = 10.0) -> None:
        self.world = world
        self.air = air or BleAir.of(world)
        self.bridge = bridge or SteppingBridge(world)
        self.central = central
        self.mtu = mtu
        self.timeout_s = timeout_s
        self.scanner_backend: type[SimBleakScanner] = type(
            "FwsimBleakScanner", (SimBleakScanner,), {"sim": self})
        self.client_backend: type[SimBleakClient] = type(
            "FwsimBleakClient", (SimBleakClient,), {"sim": self})

    @contextlib.contextmanager
    def patch_bleak(self) -> Iterator[None]:
        """Make the simulated classes bleak's default backends inside the block."""
        module: Any = bleak
        names = ("get_platform_scanner_backend_type", "get_platform_client_backend_type")
        saved = [getattr(module, name) for name in names]
        scanner, client = self.scanner_backend, self.client_backend
        module.get_platform_scanner_backend_type = lambda: (scanner, scanner.__name__)
        module.get_platform_client_backend_type = lambda: (client, client.__name__)
        try:
            yield
        finally:
            for name, value in zip(names, saved, strict=True):
                setattr(module, name, value)

    async def run_for(self, seconds: float) -> None:
        """Let ``seconds`` of virtual time pass (the devices keep working)."""
        await self.bridge.sleep(seconds)

    # -- helpers for the backend classes -----------------------------------------------------

    async def call(self, start: Callable[[Callable[[Any], None]], object], what: str,
                   timeout_s: float | None = None) -> Any:
        """Run ``start(done)`` in the world and await what ``done`` receives."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.bridge.enter()
        try:
            start(lambda value: self.bridge.resolve(future, value))
        finally:
            self.bridge.leave()
        return await self.bridge.wait(future, timeout_s or self.timeout_s, what)


def _bind(cls: type[Any], explicit: SimulatedBle | None) -> SimulatedBle:
    sim = explicit if explicit is not None else getattr(cls, "sim", None)
    if not isinstance(sim, SimulatedBle):
        raise BleakError("no simulated world: use SimulatedBle(world).scanner_backend / "
                         ".client_backend, or pass fwsim=SimulatedBle(world)")
    return sim


def _bleak_error(error: BaseException) -> BaseException:
    if isinstance(error, AttError):
        return BleakGATTProtocolError(int(error.code))
    if isinstance(error, FwSimError):
        return BleakError(str(error))
    return error


class SimBleakScanner(BaseBleakScanner):
    """``BleakScanner(backend=sim.scanner_backend)``: scans the virtual air."""

    sim: ClassVar[SimulatedBle | None] = None

    def __init__(self, detection_callback: AdvertisementDataCallback | None,
                 service_uuids: list[str] | None, scanning_mode: str = "active", *,
                 bluez: Any = None, cb: Any = None, fwsim: SimulatedBle | None = None,
                 **kwargs: Any) -> None:
        super().__init__(detection_callback, service_uuids)
        self._sim = _bind(type(self), fwsim)
        self._scan: AirScan | None = None

    async def start(self) -> None:
        self.seen_devices = {}
        sim = self._sim
        sim.bridge.enter()
        try:
            if self._scan is None:
                self._scan = sim.air.start_scan(self._on_report)
        finally:
            sim.bridge.leave()

    async def stop(self) -> None:
        if self._scan is not None:
            self._scan.stop()
            self._scan = None

    def _on_report(self, report: AdvertisementReport) -> None:
        parsed = report.parsed
        if not self.is_allowed_uuid(parsed.service_uuids):
            return
        advertisement = AdvertisementData(
            local_name=parsed.local_name, manufacturer_data=dict(parsed.manufacturer_data),
            service_data={}, service_uuids=list(parsed.service_uuids), tx_power=None,
            rssi=report.rssi, platform_data=(report,))
        device = self.create_or_update_device(report.address, report.address,
                                              parsed.local_name, report, advertisement)
        self.call_detection_callbacks(device, advertisement)
        self._sim.bridge.touch()


class SimBleakClient(BaseBleakClient):
    """``BleakClient(address, backend=sim.client_backend)``: a central on the virtual air."""

    sim: ClassVar[SimulatedBle | None] = None

    def __init__(self, address_or_ble_device: BLEDevice | str, *,
                 disconnected_callback: Callable[[], None] | None = None,
                 services: Any = None, timeout: float = 10.0, bluez: Any = None,
                 winrt: Any = None, fwsim: SimulatedBle | None = None, **kwargs: Any) -> None:
        super().__init__(address_or_ble_device, disconnected_callback=disconnected_callback,
                         timeout=timeout, **kwargs)
        self._sim = _bind(type(self), fwsim)
        self._name = (address_or_ble_device.name if isinstance(address_or_ble_device, BLEDevice)
                      else None)
        self._connection: CentralConnection | None = None
        self._callbacks: dict[int, NotifyCallback] = {}
        self._closing = False

    # -- connection --------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._name or self.address

    @property
    def mtu_size(self) -> int:
        return self._connection.mtu if self._connection is not None else 23

    @property
    def is_connected(self) -> bool:
        return self._connection is not None and self._connection.connected

    async def connect(self, pair: bool, **kwargs: Any) -> None:
        if self.is_connected:
            return
        sim = self._sim
        try:
            connection: CentralConnection = await sim.call(
                lambda done: sim.air.connect(self.address, central=sim.central,
                                             on_connected=done, on_failed=done),
                f"connect to {self.address}", timeout_s=self._timeout)
        except FwSimError as error:
            raise BleakDeviceNotFoundError(self.address, str(error)) from None
        self._connection = connection
        self._closing = False
        connection.on_notification = self._on_notification
        connection.on_disconnected = self._on_disconnected
        await self._call(lambda done: connection.exchange_mtu(sim.mtu, done), "MTU exchange")
        self.services = self._discovered_services()

    async def disconnect(self) -> None:
        connection = self._connection
        if connection is None or not connection.connected:
            return
        self._closing = True
        sim = self._sim
        closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        connection.on_disconnected = lambda _reason: sim.bridge.resolve(closed, None)
        sim.bridge.enter()
        connection.disconnect()
        sim.bridge.leave()
        await sim.bridge.wait(closed, sim.timeout_s, "disconnect")

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        """Nothing to do: the control channel brings its own security (EC-JPAKE)."""

    async def unpair(self) -> None:
        """Nothing to do (see :meth:`pair`)."""

    # -- I/O ---------------------------------------------------------------------------------

    async def read_gatt_char(self, characteristic: BleakGATTCharacteristic, *,
                             use_cached: bool = False, **kwargs: Any) -> bytearray:
        connection = self._require()
        value = await self._call(lambda done: connection.read(characteristic.handle, done),
                                    f"read {characteristic.uuid}")
        return bytearray(value)

    async def read_gatt_descriptor(self, descriptor: BleakGATTDescriptor, *,
                                   use_cached: bool = False, **kwargs: Any) -> bytearray:
        connection = self._require()
        value = await self._call(lambda done: connection.read(descriptor.handle, done),
                                    "read descriptor")
        return bytearray(value)

    async def write_gatt_char(self, characteristic: BleakGATTCharacteristic, data: SizedBuffer,
                              response: bool) -> None:
        connection = self._require()
        payload = bytes(data)
        if not response:
            sim = self._sim
            sim.bridge.enter()
            try:
                connection.write(characteristic.handle, payload, with_response=False)
            except FwSimError as error:
                raise BleakError(str(error)) from None
            finally:
                sim.bridge.leave()
            return
        await self._call(
            lambda done: connection.write(characteristic.handle, payload, with_response=True,
                                          done=done), f"write {characteristic.uuid}")

    async def write_gatt_descriptor(self, descriptor: BleakGATTDescriptor,
                                    data: SizedBuffer) -> None:
        connection = self._require()
        payload = bytes(data)
        await self._call(
            lambda done: connection.write(descriptor.handle, payload, with_response=True,
                                          done=done), "write descriptor")

    async def start_notify(self, characteristic: BleakGATTCharacteristic,
                           callback: NotifyCallback, **kwargs: Any) -> None:
        connection = self._require()
        self._callbacks[characteristic.handle] = callback
        cccd = _cccd_handle(characteristic)
        await self._call(lambda done: connection.write(cccd, b"\x01\x00", with_response=True,
                                                          done=done), "enable notifications")

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        connection = self._require()
        cccd = _cccd_handle(characteristic)
        await self._call(lambda done: connection.write(cccd, b"\x00\x00", with_response=True,
                                                          done=done), "disable notifications")
        self._callbacks.pop(characteristic.handle, None)

    # -- internals ---------------------------------------------------------------------------

    def _require(self) -> CentralConnection:
        connection = self._connection
        if connection is None or not connection.connected:
            raise BleakError("Not connected")
        return connection

    async def _call(self, start: Callable[[Callable[[Any], None]], object], what: str,
                    timeout_s: float | None = None) -> Any:
        try:
            return await self._sim.call(start, what, timeout_s)
        except FwSimError as error:
            raise _bleak_error(error) from None


    def _on_notification(self, handle: int, data: bytes) -> None:
        callback = self._callbacks.get(handle)
        if callback is not None:
            callback(bytearray(data))
            self._sim.bridge.touch()

    def _on_disconnected(self, _reason: str) -> None:
        self._sim.bridge.touch()
        if not self._closing and self._disconnected_callback is not None:
            self._disconnected_callback()

    def _discovered_services(self) -> BleakGATTServiceCollection:
        collection = BleakGATTServiceCollection()
        service = BleakGATTService(None, SERVICE_HANDLE, SERVICE_UUID)
        collection.add_service(service)
        for info in CHARACTERISTICS:
            characteristic = BleakGATTCharacteristic(
                info, info.value_handle, info.uuid, info.properties.bleak_names(),  # type: ignore[arg-type]
                lambda: max_notification_payload(self.mtu_size), service)
            collection.add_characteristic(characteristic)
            if info.cccd_handle is not None:
                collection.add_descriptor(
                    BleakGATTDescriptor(None, info.cccd_handle, CCCD_UUID, characteristic))
        return collection


def _cccd_handle(characteristic: BleakGATTCharacteristic) -> int:
    for descriptor in characteristic.descriptors:
        if descriptor.uuid == CCCD_UUID:
            return descriptor.handle
    raise BleakError(f"characteristic {characteristic.uuid} does not notify")

