"""Fixtures for the BLE tests: a P2 on the virtual air and a raw central on the world clock."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from cloud_sim import Cloud
from firmware_sim.kernel.errors import FwSimError
from firmware_sim.kernel.world import World
from firmware_sim.system.device import Device
from firmware_sim.system.radio import AccessPoint, radio_environment
from firmware_sim.testbed.adapters import surface_for
from transports.ble.air import BleAir, CentralConnection
from transports.ble.client_channel import ClientControlChannel
from transports.ble.framing import split_packets
from transports.ble.gatt import (
    CHARACTERISTICS,
    CharRole,
    max_notification_payload,
)
from transports.ble.peripheral import BlePeripheral
from transports.ble.provisioning import attach_ble

HOME = AccessPoint("HomeNet", "home-pass-1", rssi=-50, channel=6)
SECRET = "ABCDEFGHJKLMNPQ"
SERIAL = "P046AB1234ABC12"
DEVICE_ID = "e00fce68aabbccddeeff0011"

VERSION = next(c for c in CHARACTERISTICS if c.role is CharRole.VERSION)
TX = next(c for c in CHARACTERISTICS if c.role is CharRole.TX)
RX = next(c for c in CHARACTERISTICS if c.role is CharRole.RX)
assert TX.cccd_handle is not None
CCCD: int = TX.cccd_handle


@dataclass
class Rig:
    world: World
    device: Device
    cloud: Cloud
    peripheral: BlePeripheral
    air: BleAir

    def run(self, seconds: float) -> None:
        self.world.run_for(seconds)

    def central(self, name: str = "tester") -> RawCentral:
        return RawCentral(self, name)

    def logs(self, text: str) -> list[str]:
        return [line for line in self.device.log_lines() if text in line]

    def prov_events(self) -> list[str]:
        return [r.fields["param_name"] for r in self.world.trace.find("system_event",
                                                                       node=self.device.name)
                if r.fields["event"] == "ble_prov_mode"]


def make_rig(seed: int = 0, *, profile: str = "p2", advertising: str = "listening",
             wifi: bool = False, secret: str = SECRET, boot: bool = True) -> Rig:
    from firmware_sim.system.network import WifiCredentials

    world = World(seed)
    radio_environment(world).add(HOME)
    cloud = Cloud(world)
    device = Device(world, "p2", profile=profile, device_id=DEVICE_ID, serial_number=SERIAL,
                    mobile_secret=secret,
                    wifi=[WifiCredentials(HOME.ssid, HOME.password)] if wifi else None)
    device.attach_cloud(cloud.connector())
    peripheral = attach_ble(surface_for(device), advertising=advertising)
    if boot:
        device.power_on()
        world.run_for(1.0)
    return Rig(world, device, cloud, peripheral, BleAir.of(world))


@pytest.fixture
def rig() -> Rig:
    return make_rig()


@dataclass
class RawCentral:
    """A central driven step by step on the world clock (for byte-level tests)."""

    rig: Rig
    name: str
    connection: CentralConnection | None = None
    received: bytearray = field(default_factory=bytearray)
    packets: list[bytes] = field(default_factory=list)
    disconnected: str | None = None
    channel: ClientControlChannel | None = None
    replies: list[tuple[int, int, bytes]] = field(default_factory=list)

    # -- link ------------------------------------------------------------------------------

    def connect(self) -> CentralConnection:
        results: list[object] = []
        self.rig.air.connect(self.rig.peripheral.address, central=self.name,
                             on_connected=results.append, on_failed=results.append)
        assert self.rig.world.run_until(lambda: bool(results), 5.0)
        result = results[0]
        if isinstance(result, FwSimError):
            raise result
        assert isinstance(result, CentralConnection)
        self.connection = result
        result.on_notification = self._notified
        result.on_disconnected = self._gone
        return result

    def _notified(self, handle: int, data: bytes) -> None:
        assert handle == TX.value_handle
        self.packets.append(data)
        self.received += data
        if self.channel is not None and self.channel.state.value not in ("failed",):
            try:
                out = self.channel.data_received(data)
            except FwSimError:
                return
            if out.outgoing:
                self.write_stream(out.outgoing)
            for reply in out.replies:
                self.replies.append((reply.request_id, reply.result, reply.payload))

    def _gone(self, reason: str) -> None:
        self.disconnected = reason

    @property
    def conn(self) -> CentralConnection:
        assert self.connection is not None
        return self.connection

    def exchange_mtu(self, mtu: int) -> int:
        results: list[object] = []
        self.conn.exchange_mtu(mtu, results.append)
        assert self.rig.world.run_until(lambda: bool(results), 5.0)
        value = results[0]
        assert isinstance(value, int)
        return value

    def read(self, handle: int) -> bytes | FwSimError:
        results: list[bytes | FwSimError] = []
        self.conn.read(handle, results.append)
        assert self.rig.world.run_until(lambda: bool(results), 5.0)
        return results[0]

    def write(self, handle: int, data: bytes, *, response: bool = True) -> FwSimError | None:
        if not response:
            self.conn.write(handle, data, with_response=False)
            return None
        results: list[FwSimError | None] = []
        self.conn.write(handle, data, with_response=True, done=results.append)
        assert self.rig.world.run_until(lambda: bool(results), 5.0)
        return results[0]

    def subscribe(self, enabled: bool = True) -> None:
        assert self.write(CCCD, b"\x01\x00" if enabled else b"\x00\x00") is None

    def write_stream(self, data: bytes, *, response: bool = True) -> None:
        """RX writes of at most MTU - 3 bytes; with response they are sent one by one."""
        size = max_notification_payload(self.conn.mtu)
        if not response:
            for packet in split_packets(data, size):
                self.conn.write(RX.value_handle, packet, with_response=False)
            return
        pending = split_packets(data, size)

        def next_packet(error: FwSimError | None = None) -> None:
            if error is not None or not pending or not self.conn.connected:
                return
            self.conn.write(RX.value_handle, pending.pop(0), with_response=True,
                            done=next_packet)

        next_packet()

    # -- channel ---------------------------------------------------------------------------

    def open_session(self, secret: str = SECRET, *, mtu: int = 247) -> bool:
        """Connect, MTU, subscribe, handshake; True when the handshake completed."""
        self.connect()
        self.exchange_mtu(mtu)
        self.subscribe()
        return self.handshake(secret)

    def handshake(self, secret: str = SECRET) -> bool:
        self.channel = ClientControlChannel(secret, self.rig.world.rng_for(
            f"test-central:{self.name}").randbytes)
        self.write_stream(self.channel.start())
        channel = self.channel
        self.rig.world.run_until(
            lambda: channel.state.value in ("ready", "failed") or self.disconnected is not None,
            5.0)
        return channel.state.value == "ready"

    def request(self, request_type: int, payload: bytes = b"", *,
                timeout: float = 30.0) -> tuple[int, bytes] | None:
        assert self.channel is not None
        request_id, frame = self.channel.request(request_type, payload)
        self.write_stream(frame)
        found: list[tuple[int, bytes]] = []

        def done() -> bool:
            for rid, result, data in self.replies:
                if rid == request_id:
                    found.append((result, data))
                    return True
            return self.disconnected is not None

        self.rig.world.run_until(done, timeout)
        return found[0] if found else None

    def disconnect(self) -> None:
        self.conn.disconnect()
        self.rig.world.run_until(lambda: self.disconnected is not None, 1.0)
