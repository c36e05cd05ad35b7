"""bleak backend classes over a bumble central: bleak code through a real ATT stack.

How it works
------------
:class:`BumbleCentral` owns a bumble ``Device`` used as a central (scanner and GATT client)
on some controller: a virtual one on an in-process ``LocalLink`` (:meth:`on_link`) or any HCI
transport (:meth:`open`, e.g. ``tcp-client:127.0.0.1:PORT`` to the controller ``fwsim serve
--ble bumble:tcp-server:127.0.0.1:PORT`` exposes). Like :class:`~.bleak_backend.SimulatedBle`
it hands out bleak backend classes bound to it (``scanner_backend``, ``client_backend``), so
:class:`~.client.ProvisioningClient` and any bleak code run unchanged over real HCI, L2CAP and
ATT. ``connect`` exchanges the MTU (247 by default) and discovers services, characteristics
and descriptors; handles are the peripheral's real ones. ATT errors become
:class:`bleak.exc.BleakGATTProtocolError`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any, ClassVar

from bleak.args import SizedBuffer
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, AdvertisementDataCallback, BaseBleakScanner
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakDeviceNotFoundError, BleakError, BleakGATTProtocolError
from bumble import att, core, hci
from bumble.device import Advertisement, Connection, Device, Peer
from bumble.link import LocalLink
from bumble.transport.common import Transport

from .advertising import AdvertisingError, parse_advertisement, uuid_from_le_bytes
from .bumble_peripheral import hci_device, local_device
from .gatt import DEVICE_MAX_MTU, CharProps, max_notification_payload
from .peripheral import static_address

__all__ = ["BumbleBleakClient", "BumbleBleakScanner", "BumbleCentral"]


def _uuid_text(uuid: core.UUID) -> str:
    return uuid_from_le_bytes(uuid.to_bytes(force_128=True))


def _address_text(address: hci.Address) -> str:
    text = str(address)
    return text[:-2] if text.endswith("/P") else text


class BumbleCentral:
    """A bumble central and the bleak backend classes that use it."""

    def __init__(self, device: Device, *, transport: Transport | None = None,
                 mtu: int = DEVICE_MAX_MTU) -> None:
        self.device = device
        self.transport = transport
        self.mtu = mtu
        self.scanner_backend: type[BumbleBleakScanner] = type(
            "BumbleBleakScanner", (BumbleBleakScanner,), {"central": self})
        self.client_backend: type[BumbleBleakClient] = type(
            "BumbleBleakClient", (BumbleBleakClient,), {"central": self})

    @classmethod
    async def on_link(cls, link: LocalLink, *, name: str = "fwsim-central",
                      address: str | None = None, mtu: int = DEVICE_MAX_MTU) -> BumbleCentral:
        """A central on an in-process virtual controller."""
        device = local_device(link, name=name, address=address or static_address(name))
        await device.power_on()
        return cls(device, mtu=mtu)

    @classmethod
    async def open(cls, spec: str, *, name: str = "fwsim-central",
                   address: str | None = None, mtu: int = DEVICE_MAX_MTU) -> BumbleCentral:
        """A central over the HCI transport ``spec``."""
        device, transport = await hci_device(spec, name=name,
                                             address=address or static_address(name))
        await device.power_on()
        return cls(device, transport=transport, mtu=mtu)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.device.power_off(), 2.0)
        if self.transport is not None:
            await self.transport.close()


def _bound(cls: type[Any]) -> BumbleCentral:
    central = getattr(cls, "central", None)
    if not isinstance(central, BumbleCentral):
        raise BleakError("use BumbleCentral(...).scanner_backend / .client_backend")
    return central


def _bleak_error(error: BaseException) -> BleakError:
    if isinstance(error, att.ATT_Error):
        return BleakGATTProtocolError(int(error.error_code))
    return BleakError(f"{type(error).__name__}: {error}")


class BumbleBleakScanner(BaseBleakScanner):
    """Scans through the bumble central's controller."""

    central: ClassVar[BumbleCentral | None] = None

    def __init__(self, detection_callback: AdvertisementDataCallback | None,
                 service_uuids: list[str] | None, scanning_mode: str = "active", *,
                 bluez: Any = None, cb: Any = None, **kwargs: Any) -> None:
        super().__init__(detection_callback, service_uuids)
        self._central = _bound(type(self))
        self._active = scanning_mode != "passive"
        self._scanning = False

    async def start(self) -> None:
        self.seen_devices = {}
        device = self._central.device
        device.on("advertisement", self._on_advertisement)
        await device.start_scanning(active=self._active, filter_duplicates=False)
        self._scanning = True

    async def stop(self) -> None:
        device = self._central.device
        device.remove_listener("advertisement", self._on_advertisement)
        if self._scanning:
            self._scanning = False
            with contextlib.suppress(Exception):
                await device.stop_scanning()

    def _on_advertisement(self, advertisement: Advertisement) -> None:
        try:
            parsed = parse_advertisement(bytes(advertisement.data))
        except AdvertisingError:
            return
        if not self.is_allowed_uuid(parsed.service_uuids):
            return
        address = _address_text(advertisement.address)
        data = AdvertisementData(
            local_name=parsed.local_name, manufacturer_data=dict(parsed.manufacturer_data),
            service_data={}, service_uuids=list(parsed.service_uuids), tx_power=None,
            rssi=int(advertisement.rssi), platform_data=(advertisement,))
        ble_device = self.create_or_update_device(address, address, parsed.local_name,
                                                  advertisement, data)
        self.call_detection_callbacks(ble_device, data)


class BumbleBleakClient(BaseBleakClient):
    """A GATT client through the bumble central."""

    central: ClassVar[BumbleCentral | None] = None

    def __init__(self, address_or_ble_device: BLEDevice | str, *,
                 disconnected_callback: Callable[[], None] | None = None,
                 services: Any = None, timeout: float = 10.0, bluez: Any = None,
                 winrt: Any = None, **kwargs: Any) -> None:
        super().__init__(address_or_ble_device, disconnected_callback=disconnected_callback,
                         timeout=timeout, **kwargs)
        self._central = _bound(type(self))
        self._connection: Connection | None = None
        self._peer: Peer | None = None
        self._closing = False
        self._subscriptions: dict[int, Callable[[bytes], None]] = {}

    @property
    def mtu_size(self) -> int:
        return int(self._connection.att_mtu) if self._connection is not None else 23

    @property
    def is_connected(self) -> bool:
        return self._connection is not None

    async def connect(self, pair: bool, **kwargs: Any) -> None:
        if self._connection is not None:
            return
        device = self._central.device
        try:
            connection = await device.connect(hci.Address(self.address), timeout=self._timeout)
        except (core.TimeoutError, TimeoutError) as error:
            raise TimeoutError(f"connect to {self.address} timed out") from error
        except Exception as error:
            raise BleakDeviceNotFoundError(self.address, str(error)) from error
        self._connection = connection
        self._closing = False
        connection.on("disconnection", self._on_disconnection)
        peer = Peer(connection)
        self._peer = peer
        try:
            await peer.request_mtu(self._central.mtu)
            self.services = await self._discover(peer)
        except Exception as error:
            await self.disconnect()
            raise _bleak_error(error) from error

    async def _discover(self, peer: Peer) -> BleakGATTServiceCollection:
        collection = BleakGATTServiceCollection()
        for service in await peer.discover_services():
            bleak_service = BleakGATTService(service, service.handle, _uuid_text(service.uuid))
            collection.add_service(bleak_service)
            for characteristic in await service.discover_characteristics():
                properties = CharProps(int(characteristic.properties) & int(
                    CharProps.READ | CharProps.WRITE | CharProps.WRITE_WITHOUT_RESPONSE
                    | CharProps.NOTIFY))
                bleak_characteristic = BleakGATTCharacteristic(
                    characteristic, characteristic.handle, _uuid_text(characteristic.uuid),
                    properties.bleak_names(),  # type: ignore[arg-type]
                    lambda: max_notification_payload(self.mtu_size), bleak_service)
                collection.add_characteristic(bleak_characteristic)
                for descriptor in await characteristic.discover_descriptors():
                    collection.add_descriptor(BleakGATTDescriptor(
                        descriptor, descriptor.handle, _uuid_text(descriptor.type),
                        bleak_characteristic))
        return collection

    async def disconnect(self) -> None:
        connection = self._connection
        if connection is None:
            return
        self._closing = True
        with contextlib.suppress(Exception):
            await connection.disconnect()
        self._connection = None

    def _on_disconnection(self, _reason: int) -> None:
        self._connection = None
        if not self._closing and self._disconnected_callback is not None:
            self._disconnected_callback()

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        """Not needed by the control channel (EC-JPAKE brings its own security)."""

    async def unpair(self) -> None:
        """Not needed (see :meth:`pair`)."""

    async def read_gatt_char(self, characteristic: BleakGATTCharacteristic, *,
                             use_cached: bool = False, **kwargs: Any) -> bytearray:
        return bytearray(await self._guard(characteristic.obj.read_value()))

    async def read_gatt_descriptor(self, descriptor: BleakGATTDescriptor, *,
                                   use_cached: bool = False, **kwargs: Any) -> bytearray:
        return bytearray(await self._guard(descriptor.obj.read_value()))

    async def write_gatt_char(self, characteristic: BleakGATTCharacteristic, data: SizedBuffer,
                              response: bool) -> None:
        await self._guard(characteristic.obj.write_value(bytes(data), with_response=response))

    async def write_gatt_descriptor(self, descriptor: BleakGATTDescriptor,
                                    data: SizedBuffer) -> None:
        await self._guard(descriptor.obj.write_value(bytes(data), with_response=True))

    async def start_notify(self, characteristic: BleakGATTCharacteristic,
                           callback: NotifyCallback, **kwargs: Any) -> None:
        def subscriber(value: bytes) -> None:
            callback(bytearray(value))

        self._subscriptions[characteristic.handle] = subscriber
        await self._guard(characteristic.obj.subscribe(subscriber))

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        subscriber = self._subscriptions.pop(characteristic.handle, None)
        await self._guard(characteristic.obj.unsubscribe(subscriber))

    async def _guard(self, operation: Any) -> Any:
        if self._connection is None:
            operation.close()
            raise BleakError("Not connected")
        try:
            return await operation
        except BleakError:
            raise
        except Exception as error:
            raise _bleak_error(error) from error
