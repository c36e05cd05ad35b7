"""Shared set-up of the USB tests: a booted simulated device and a fake dispatcher."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from cloud_sim import Cloud
from firmware_sim.kernel import World
from firmware_sim.system import AccessPoint, Device, WifiCredentials, radio_environment
from firmware_sim.system.radio import WifiSecurity

DEVICE_ID = "e00fce68aabbccddeeff0011"


def make_device(profile: str = "p2", *, connected: bool = False, wifi: bool = True,
                seed: int = 0) -> tuple[World, Device, Cloud]:
    world = World(seed)
    radio = radio_environment(world)
    radio.add(AccessPoint("HomeNet", "home-pass-1", channel=1, rssi=-60))
    radio.add(AccessPoint("NewNet", "new-pass-22", security=WifiSecurity.WPA2_PSK, channel=11,
                          rssi=-45))
    cloud = Cloud(world)
    creds = [WifiCredentials("HomeNet", "home-pass-1")] if wifi else []
    device = Device(world, "dev", profile=profile, device_id=DEVICE_ID,
                    serial_number="P046AB1234ABC12", mobile_secret="ABCDEFGHJKLMNPQ",
                    wifi=creds)
    device.attach_cloud(cloud.connector())
    device.power_on()
    if connected:
        assert world.run_until(lambda: device.cloud_connected, timeout=60)
    else:
        world.run_for(0.1)
    return world, device, cloud


@pytest.fixture
def p2() -> tuple[World, Device, Cloud]:
    return make_device("p2")


@dataclass
class FakeRequest:
    channel: str
    type: int
    payload: bytes
    on_complete: Callable[[int, bytes], None]
    cancelled: bool = False
    delivered: int = 0

    def cancel(self) -> None:
        self.cancelled = True
        self.on_complete(-140, b"")

    def reply_delivered(self) -> None:
        self.delivered += 1

    def complete(self, result: int = 0, reply: bytes = b"") -> None:
        self.on_complete(result, reply)


@dataclass
class FakeDispatcher:
    """Records submitted requests; tests complete them by hand."""

    requests: list[FakeRequest] = field(default_factory=list)

    def submit(self, channel: str, request_type: int, payload: bytes,
               on_complete: Callable[[int, bytes], None]) -> FakeRequest:
        request = FakeRequest(channel, request_type, payload, on_complete)
        self.requests.append(request)
        return request
