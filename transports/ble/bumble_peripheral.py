"""A simulated device as a peripheral on a real BLE host stack (bumble; extra ``[bumble]``).

How it works
------------
:class:`BumblePeripheral` puts a :class:`~.peripheral.BlePeripheral` behind a bumble
``Device``: bumble's GATT server holds the control service (version, TX with its CCCD, RX),
bumble advertises the device's advertising data and scan response, and bumble's ATT / L2CAP /
HCI layers talk to whatever controller the device's host is attached to:

* in-process: a virtual controller on a ``bumble.link.LocalLink`` (:func:`local_device`),
  next to other virtual controllers (a bumble central in the same process, or controllers
  served on TCP for other processes: :func:`serve_controllers`);
* any bumble HCI transport (:func:`hci_device`): ``tcp-client:HOST:PORT`` to a
  ``python -m bumble.apps.controllers`` process, ``android-netsim`` (the Android emulator's
  virtual radio), ``usb:0`` (a real dongle), ``vhci`` ...

bumble events are fed into the world through a :class:`~.bridge.WorldBridge` (connection,
MTU update, CCCD subscription, RX writes); the device's notifications come back from world
callbacks and are sent by one task per connection, in order. ATT errors raised by the model
(oversize RX value) are answered as ATT Error Responses.

bumble 0.0.236's virtual controller sends the *advertising data* again as the scan response
(the real scan response never reaches a scanner). :class:`ScanResponseController` fixes that
on the receiving side by looking the advertiser up on the link; fwsim uses it for every
virtual controller it creates. Controllers in other programs (``bumble.apps.controllers``)
keep the quirk: a scanner there does not see the service UUID, only the name and the
manufacturer data.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

from bumble import att, hci
from bumble.controller import Controller
from bumble.device import Connection, Device
from bumble.gatt import Characteristic, CharacteristicValue, Service
from bumble.host import Host
from bumble.link import LocalLink
from bumble.transport import open_transport
from bumble.transport.common import AsyncPipeSink, Transport

from .advertising import AdvertisingPayload
from .bridge import WorldBridge
from .gatt import (
    RX_UUID,
    SERVICE_UUID,
    TX_UUID,
    VERSION_UUID,
    AttError,
    CharRole,
    cccd_value,
)
from .peripheral import BlePeripheral
from .tcp_listener import open_tcp_server_transport

__all__ = [
    "BumblePeripheral",
    "ScanResponseController",
    "hci_device",
    "local_device",
    "serve_controllers",
]

T = TypeVar("T")
#: Advertising interval used on bumble (ms); bumble's default is about a second.
ADVERTISING_INTERVAL_MS = 100.0
_TCP_SERVER = "tcp-server:"


class ScanResponseController(Controller):
    """A bumble virtual controller whose scan reports carry the real scan response."""

    def send_hci_packet(self, packet: hci.HCI_Packet) -> None:
        if isinstance(packet, hci.HCI_LE_Advertising_Report_Event |
                      hci.HCI_LE_Extended_Advertising_Report_Event):
            packet = self._with_scan_responses(packet)
        super().send_hci_packet(packet)

    def _with_scan_responses(self, packet: Any) -> Any:
        legacy = isinstance(packet, hci.HCI_LE_Advertising_Report_Event)
        scan_response_type = (hci.HCI_LE_Advertising_Report_Event.EventType.SCAN_RSP if legacy
                              else hci.HCI_LE_Extended_Advertising_Report_Event.EventType
                              .SCAN_RESPONSE)
        reports = []
        changed = False
        for report in packet.reports:
            if report.event_type == scan_response_type:
                data = self._scan_response_of(report.address)
                if data is not None:
                    report = dataclasses.replace(report, data=data)
                    changed = True
            reports.append(report)
        if not changed:
            return packet
        return type(packet)(reports)

    def _scan_response_of(self, address: hci.Address) -> bytes | None:
        link = self.link
        advertiser = link.find_le_controller(address) if link is not None else None
        if advertiser is None:
            return None
        for advertising_set in advertiser.advertising_sets.values():
            if advertising_set.enabled and advertising_set.random_address == address:
                return bytes(advertising_set.scan_response_data)
        legacy = advertiser.le_legacy_advertiser
        if legacy.enabled:
            return bytes(legacy.scan_response_data)
        return None


def local_device(link: LocalLink, *, name: str, address: str) -> Device:
    """A bumble host + virtual controller on ``link`` (same process)."""
    controller = ScanResponseController(name, link=link, public_address=address)
    return Device(name=name, address=hci.Address(address),
                  host=Host(controller, AsyncPipeSink(controller)))


async def hci_device(spec: str, *, name: str, address: str) -> tuple[Device, Transport]:
    """A bumble host over the HCI transport ``spec`` (``tcp-client:127.0.0.1:19001`` ...)."""
    transport = await open_transport(spec)
    device = Device.with_hci(name, hci.Address(address), transport.source, transport.sink)
    return device, transport


async def serve_controllers(link: LocalLink, specs: list[str]) -> list[Transport]:
    """Attach one virtual controller per transport ``spec`` to ``link`` for external hosts.

    ``tcp-server:127.0.0.1:PORT`` lets another process (bumble's tools, ``fwsim ble scan
    --hci tcp-client:127.0.0.1:PORT``) act as a central on the same virtual radio.
    """
    transports: list[Transport] = []
    for index, spec in enumerate(specs):
        # fwsim's own listener for tcp-server: one host at a time, no traceback per failing
        # accept at the open-file limit (tcp_listener)
        transport = (await open_tcp_server_transport(spec[len(_TCP_SERVER):])
                     if spec.startswith(_TCP_SERVER) else await open_transport(spec))
        transports.append(transport)
        ScanResponseController(f"fwsim-ext{index}", host_source=transport.source,
                               host_sink=transport.sink, link=link)
    return transports


class _BumbleLink:
    """``PeripheralLink`` over one bumble connection."""

    def __init__(self, adapter: BumblePeripheral, connection: Connection) -> None:
        self._adapter = adapter
        self.connection = connection
        self.peer_address = str(connection.peer_address)
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._sender = asyncio.get_running_loop().create_task(self._send_all())
        self._closing = False

    def notify(self, data: bytes) -> None:
        if not self._closing:
            self._queue.put_nowait(bytes(data))

    def disconnect(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._adapter.spawn(self._disconnect())

    async def _disconnect(self) -> None:
        with contextlib.suppress(Exception):
            await self.connection.disconnect()

    def stop(self) -> None:
        self._closing = True
        self._queue.put_nowait(None)

    async def _send_all(self) -> None:
        while True:
            data = await self._queue.get()
            if data is None:
                return
            try:
                await self._adapter.device.notify_subscriber(self.connection,
                                                             self._adapter.tx, data)
            except Exception:  # the connection went away under us
                return


class BumblePeripheral:
    """Serves one :class:`BlePeripheral` through a bumble ``Device``."""

    def __init__(self, peripheral: BlePeripheral, device: Device, bridge: WorldBridge, *,
                 advertising_interval_ms: float = ADVERTISING_INTERVAL_MS) -> None:
        self.peripheral = peripheral
        self.device = device
        self.bridge = bridge
        self.advertising_interval_ms = advertising_interval_ms
        self._links: dict[int, _BumbleLink] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._advertised: AdvertisingPayload | None = None
        self._advertising_dirty = asyncio.Event()
        self._advertiser: asyncio.Task[None] | None = None
        self._stopping = False
        self.version: Characteristic[bytes] = Characteristic(
            VERSION_UUID.upper(), Characteristic.Properties.READ, Characteristic.READABLE,
            CharacteristicValue(read=lambda connection: self._read(connection, CharRole.VERSION)))
        self.tx: Characteristic[bytes] = Characteristic(
            TX_UUID.upper(), Characteristic.Properties.NOTIFY, Characteristic.READABLE, b"")
        self.rx: Characteristic[bytes] = Characteristic(
            RX_UUID.upper(),
            Characteristic.Properties.WRITE | Characteristic.Properties.WRITE_WITHOUT_RESPONSE,
            Characteristic.WRITEABLE, CharacteristicValue(write=self._on_rx_write))
        self.tx.on("subscription", self._on_subscription)

    async def start(self) -> None:
        device = self.device
        device.gatt_server.max_mtu = self.peripheral.max_mtu
        device.add_service(Service(SERVICE_UUID.upper(), [self.version, self.tx, self.rx]))
        device.on("connection", self._on_connection)
        await device.power_on()
        self._advertiser = asyncio.get_running_loop().create_task(self._advertise())
        self.peripheral.add_observer(self)
        self.advertising_changed(self.peripheral)

    async def stop(self) -> None:
        """Stop advertising, drop the connections, power the bumble device off.

        Nothing is cancelled in the middle of an HCI command (bumble's host would then get an
        answer nobody waits for and stall): the advertiser finishes its current command and
        the disconnections are awaited.
        """
        self.peripheral.remove_observer(self)
        self._stopping = True
        self._advertising_dirty.set()
        if self._advertiser is not None:
            await self._advertiser
        for link in list(self._links.values()):
            link.stop()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(link.connection.disconnect(), 2.0)
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=2.0)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.device.stop_advertising(), 2.0)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.device.power_off(), 2.0)

    def spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- world side --------------------------------------------------------------------------

    def _in_world(self, action: Callable[[], T]) -> T:
        self.bridge.enter()
        try:
            return action()
        finally:
            self.bridge.leave()

    def advertising_changed(self, peripheral: BlePeripheral) -> None:
        self._advertising_dirty.set()

    async def _advertise(self) -> None:
        while True:
            await self._advertising_dirty.wait()
            self._advertising_dirty.clear()
            if self._stopping:
                return
            wanted = self.peripheral.advertisement()
            if wanted == self._advertised:
                continue
            if wanted is None:
                with contextlib.suppress(Exception):
                    await self.device.stop_advertising()
            else:
                await self.device.start_advertising(
                    advertising_data=wanted.advertising_data,
                    scan_response_data=wanted.scan_response,
                    advertising_interval_min=self.advertising_interval_ms,
                    advertising_interval_max=self.advertising_interval_ms)
            self._advertised = wanted

    # -- bumble events -----------------------------------------------------------------------

    def _on_connection(self, connection: Connection) -> None:
        link = _BumbleLink(self, connection)
        self._links[connection.handle] = link
        self._advertised = None  # the controller stopped advertising when connected
        connection.on("disconnection", lambda _reason: self._on_disconnection(link))
        connection.on("connection_att_mtu_update",
                      lambda: self._in_world(
                          lambda: self.peripheral.exchange_mtu(link, connection.att_mtu)))
        if not self._in_world(lambda: self.peripheral.connect(link)):
            link.disconnect()

    def _on_disconnection(self, link: _BumbleLink) -> None:
        self._links.pop(link.connection.handle, None)
        link.stop()
        self._in_world(lambda: self.peripheral.disconnect(link))
        self._advertising_dirty.set()

    def _link_of(self, connection: Any) -> _BumbleLink | None:
        handle = getattr(connection, "handle", None)
        return self._links.get(handle) if handle is not None else None

    def _on_subscription(self, connection: Any, notify: bool, _indicate: bool) -> None:
        link = self._link_of(connection)
        if link is not None:
            self._in_world(lambda: self.peripheral.write(link, CharRole.TX_CCCD,
                                                         cccd_value(notify), with_response=True))

    def _on_rx_write(self, connection: Any, value: bytes) -> None:
        link = self._link_of(connection)
        if link is None:
            return
        try:
            self._in_world(lambda: self.peripheral.write(link, CharRole.RX, bytes(value),
                                                         with_response=True))
        except AttError as error:
            raise att.ATT_Error(int(error.code), error.handle, str(error)) from None

    def _read(self, connection: Any, role: CharRole) -> bytes:
        link = self._link_of(connection)
        if link is None:
            raise att.ATT_Error(int(att.ErrorCode.UNLIKELY_ERROR))
        try:
            return self._in_world(lambda: self.peripheral.read(link, role))
        except AttError as error:
            raise att.ATT_Error(int(error.code), error.handle, str(error)) from None
