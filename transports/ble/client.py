"""``ProvisioningClient``: what a setup app's BLE layer does, over any bleak client.

How it works
------------
The client drives an ordinary :class:`bleak.BleakClient`; whether that reaches a simulated
device on the virtual air (:class:`~.bleak_backend.SimulatedBle`), a simulated device behind a
real host stack (bumble, :mod:`~.bumble_link`) or a real Particle device through the
operating system depends only on the bleak backend. Opening a session:

1. connect (if not yet connected), read the version characteristic (must be ``0x02``);
2. enable TX notifications;
3. run the EC-JPAKE handshake with the mobile secret through a
   :class:`~.client_channel.ClientControlChannel` (round one out; device round one and two
   in; round two and the confirmation out; the device's confirmation in).

Then :meth:`send_request` seals each control request and writes it to RX in packets of at most
ATT_MTU - 3 bytes (one frame at a time, under a lock), and waits for the reply with the same
id. Every typed helper of :class:`~control_requests.client.ControlClient`
(``join_new_network``, ``set_claim_code``, ``is_claimed`` ...) works on top of it.

Waiting: with ``bridge`` (a simulated world) timeouts are virtual seconds and waiting lets the
world run; without, they are wall-clock seconds (``asyncio.wait_for``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from bleak import BleakClient, BleakScanner
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, BaseBleakScanner
from bleak.exc import BleakError

from control_requests.client import ControlClient
from firmware_sim.kernel.errors import FwSimError, PeerProtocolError, TransportLost, UsageError

from .advertising import PARTICLE_COMPANY_ID
from .bridge import WorldBridge
from .client_channel import ClientChannelState, ClientControlChannel
from .framing import split_packets
from .gatt import PROTOCOL_VERSION, RX_UUID, SERVICE_UUID, TX_UUID, VERSION_UUID

__all__ = ["FoundDevice", "ProvisioningClient", "ProvisioningError", "scan_for_devices"]

T = TypeVar("T")


class ProvisioningError(FwSimError):
    """The BLE session with the device failed (handshake, protocol, connection)."""


@dataclass(frozen=True)
class FoundDevice:
    """A Particle device seen advertising its control service."""

    address: str
    name: str | None
    rssi: int
    platform_id: int | None
    setup_code: str | None
    ble_device: BLEDevice

    def describe(self) -> str:
        platform = f"platform {self.platform_id}" if self.platform_id is not None else "platform ?"
        return (f"{self.address}  {self.name or '(no name)'}  rssi {self.rssi}  {platform}  "
                f"setup code {self.setup_code or '?'}")


def _found(device: BLEDevice, advertisement: AdvertisementData) -> FoundDevice | None:
    particle = advertisement.manufacturer_data.get(PARTICLE_COMPANY_ID)
    advertises_service = SERVICE_UUID in [u.lower() for u in advertisement.service_uuids]
    if particle is None and not advertises_service:
        return None
    platform_id = int.from_bytes(particle[:2], "little") if particle and len(particle) >= 2 \
        else None
    setup_code = particle[2:8].decode("ascii", "replace") if particle and len(particle) >= 8 \
        else None
    return FoundDevice(device.address, advertisement.local_name or device.name,
                       advertisement.rssi, platform_id, setup_code, device)


async def scan_for_devices(timeout_s: float = 2.0, *,
                           backend: type[BaseBleakScanner] | None = None,
                           bridge: WorldBridge | None = None,
                           **scanner_kwargs: Any) -> list[FoundDevice]:
    """Scan for ``timeout_s`` and return the Particle devices in BLE setup.

    A device counts when it advertises the control service UUID (scan response) or Particle's
    company id in its manufacturer data (some virtual controllers drop scan responses).
    With ``bridge`` the scan lasts ``timeout_s`` virtual seconds.
    """
    found: dict[str, FoundDevice] = {}

    def detected(device: BLEDevice, advertisement: AdvertisementData) -> None:
        entry = _found(device, advertisement)
        if entry is not None:
            found[entry.address] = entry

    scanner = BleakScanner(detected, backend=backend, **scanner_kwargs)
    async with scanner:
        if bridge is not None:
            await bridge.sleep(timeout_s)
        else:
            await asyncio.sleep(timeout_s)
    return sorted(found.values(), key=lambda entry: (entry.name or "", entry.address))


class ProvisioningClient(ControlClient):
    """Control requests over Particle's BLE channel, through a :class:`BleakClient`."""

    def __init__(self, client: BleakClient, mobile_secret: str | bytes, *,
                 bridge: WorldBridge | None = None,
                 randbytes: Callable[[int], bytes] = os.urandom,
                 handshake_timeout_s: float = 20.0, request_timeout_s: float = 60.0,
                 write_with_response: bool = True) -> None:
        if not mobile_secret:
            raise UsageError("the mobile secret is empty")
        self.client = client
        self.mobile_secret = mobile_secret
        self.bridge = bridge
        self.randbytes = randbytes
        self.handshake_timeout_s = handshake_timeout_s
        self.request_timeout_s = request_timeout_s
        self.write_with_response = write_with_response
        self._channel: ClientControlChannel | None = None
        self._handshake_done: asyncio.Future[None] | None = None
        self._pending: dict[int, asyncio.Future[tuple[int, bytes]]] = {}
        self._write_lock = asyncio.Lock()
        self._background: set[asyncio.Task[None]] = set()
        self._failure: BaseException | None = None
        #: Called with a short text at each step (the CLI prints them).
        self.on_step: Callable[[str], None] | None = None

    @classmethod
    def for_address(cls, address_or_device: BLEDevice | str, mobile_secret: str | bytes, *,
                    backend: type[BaseBleakClient] | None = None,
                    bridge: WorldBridge | None = None, connect_timeout_s: float = 10.0,
                    **kwargs: Any) -> ProvisioningClient:
        """Build the :class:`BleakClient` too (and notice unsolicited disconnections)."""
        holder: list[ProvisioningClient] = []

        def disconnected(_client: BleakClient) -> None:
            if holder:
                holder[0]._connection_lost("the device disconnected")

        bleak_client = BleakClient(address_or_device, disconnected, timeout=connect_timeout_s,
                                   backend=backend)
        provisioning = cls(bleak_client, mobile_secret, bridge=bridge, **kwargs)
        holder.append(provisioning)
        return provisioning

    # -- session -----------------------------------------------------------------------------

    async def __aenter__(self) -> ProvisioningClient:
        await self.open()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    @property
    def ready(self) -> bool:
        return self._channel is not None and self._channel.state is ClientChannelState.READY

    async def open(self) -> None:
        """Connect (if needed), check the protocol version, subscribe, handshake."""
        self._failure = None
        if not self.client.is_connected:
            self._step(f"connecting to {self.client.address}")
            await self.client.connect()
        self._step(f"connected, ATT MTU {self.client.mtu_size}")
        version = bytes(await self.client.read_gatt_char(VERSION_UUID))
        if version != bytes([PROTOCOL_VERSION]):
            raise ProvisioningError(f"unsupported control protocol version {version.hex()} "
                                    f"(expected {PROTOCOL_VERSION:02x})")
        self._step(f"protocol version {version[0]}")
        await self.client.start_notify(TX_UUID, self._on_tx)
        self._step("notifications enabled")
        await self.handshake()

    async def handshake(self) -> None:
        """Run EC-JPAKE and key confirmation with the mobile secret."""
        loop = asyncio.get_running_loop()
        self._channel = ClientControlChannel(self.mobile_secret, self.randbytes)
        self._handshake_done = loop.create_future()
        self._step("handshake: sending round one")
        await self._write(self._channel.start())
        await self._wait(self._handshake_done, self.handshake_timeout_s, "the BLE handshake")
        self._step("handshake done")

    async def close(self) -> None:
        if self._background:  # let writes in flight finish rather than cut a stack mid-request
            await asyncio.wait(list(self._background), timeout=1.0)
        for task in list(self._background):
            task.cancel()
        self._fail_pending(TransportLost("the session was closed"))
        with contextlib.suppress(BleakError, FwSimError, TimeoutError):
            if self.client.is_connected:
                await self.client.disconnect()
        self._channel = None

    # -- ControlClient -----------------------------------------------------------------------

    async def send_request(self, request_type: int, payload: bytes) -> tuple[int, bytes]:
        channel = self._channel
        if channel is None or channel.state is not ClientChannelState.READY:
            raise ProvisioningError("no BLE session: open() the client first")
        self._raise_failure()
        request_id, frame = channel.request(request_type, payload)
        future: asyncio.Future[tuple[int, bytes]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            await self._write(frame)
            return await self._wait(future, self.request_timeout_s,
                                    f"control request {request_type} (id {request_id})")
        finally:
            self._pending.pop(request_id, None)

    # -- data path ---------------------------------------------------------------------------

    async def _write(self, data: bytes) -> None:
        async with self._write_lock:
            self._raise_failure()
            size = max(1, self.client.mtu_size - 3)
            for packet in split_packets(data, size):
                await self.client.write_gatt_char(RX_UUID, packet,
                                                  response=self.write_with_response)

    def _on_tx(self, _characteristic: BleakGATTCharacteristic, data: bytearray) -> None:
        channel = self._channel
        if channel is None or channel.state is ClientChannelState.FAILED:
            return
        try:
            received = channel.data_received(bytes(data))
        except PeerProtocolError as error:
            self._fail(ProvisioningError(f"bad data from the device: {error}"))
            return
        if received.outgoing:
            self._spawn(self._write(received.outgoing))
        if received.handshake_done and self._handshake_done is not None:
            if not self._handshake_done.done():
                self._handshake_done.set_result(None)
            if self.bridge is not None:
                self.bridge.touch()
        for reply in received.replies:
            future = self._pending.get(reply.request_id)
            if future is not None and not future.done():
                future.set_result((reply.result, reply.payload))
                if self.bridge is not None:
                    self.bridge.touch()

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._background.add(task)

        def finished(done: asyncio.Task[None]) -> None:
            self._background.discard(done)
            if not done.cancelled() and done.exception() is not None:
                error = done.exception()
                assert error is not None
                self._fail(ProvisioningError(f"write to the device failed: {error}"))

        task.add_done_callback(finished)

    async def _wait(self, future: asyncio.Future[T], timeout_s: float, what: str) -> T:
        try:
            if self.bridge is not None:
                return await self.bridge.wait(future, timeout_s, what)
            return await asyncio.wait_for(future, timeout_s)
        except TimeoutError:
            if not self.client.is_connected:
                raise ProvisioningError(f"{what}: the device disconnected") from None
            raise ProvisioningError(f"{what} timed out after {timeout_s:g} s") from None

    # -- failures ----------------------------------------------------------------------------

    def _connection_lost(self, reason: str) -> None:
        if not self.ready and self._channel is not None:
            reason += " during the handshake (wrong mobile secret?)"
        self._fail(ProvisioningError(reason))

    def _fail(self, error: BaseException) -> None:
        self._failure = error
        if self._handshake_done is not None and not self._handshake_done.done():
            self._handshake_done.set_exception(error)
            self._handshake_done.exception()  # mark retrieved: the waiter may be gone
        self._fail_pending(error)
        if self.bridge is not None:
            self.bridge.touch()

    def _fail_pending(self, error: BaseException) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(error)
                future.exception()

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise ProvisioningError(str(self._failure))

    def _step(self, text: str) -> None:
        if self.on_step is not None:
            self.on_step(text)
