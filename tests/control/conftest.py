from __future__ import annotations

from collections.abc import Callable

import pytest

from cloud_sim import Cloud
from firmware_sim.kernel import World
from firmware_sim.system import AccessPoint, Device, WifiCredentials, radio_environment
from firmware_sim.system.radio import WifiSecurity

Send = Callable[..., tuple[int, bytes]]


def make_device(profile: str = "p2", *, connected: bool = True, seed: int = 0,
                **kwargs: object) -> tuple[World, Device, Cloud]:
    world = World(seed)
    radio = radio_environment(world)
    radio.add(AccessPoint("HomeNet", "home-pass-1", channel=1, rssi=-60,
                          bssid=bytes.fromhex("aabbccddee01")))
    radio.add(AccessPoint("NewNet", "new-pass-22", security=WifiSecurity.WPA2_PSK, channel=11,
                          rssi=-45, bssid=bytes.fromhex("aabbccddee02")))
    radio.add(AccessPoint("Cafe", security=WifiSecurity.NO_SECURITY, channel=6, rssi=-80))
    cloud = Cloud(world)
    device = Device(world, "dev", profile=profile, device_id="e00fce68aabbccddeeff0011",
                    serial_number="P046AB1234ABC12",
                    wifi=[WifiCredentials("HomeNet", "home-pass-1")], **kwargs)  # type: ignore[arg-type]
    device.attach_cloud(cloud.connector())
    device.power_on()
    if connected:
        assert world.run_until(lambda: device.cloud_connected, timeout=60)
    else:
        world.run_for(0.1)
    return world, device, cloud


def send(world: World, device: Device, request_type: int, payload: bytes = b"",
         channel: str = "usb", timeout: float = 60) -> tuple[int, bytes]:
    out: list[tuple[int, bytes]] = []
    handle = device.control.submit(channel, request_type, payload,
                                   lambda result, reply: out.append((result, reply)))
    assert world.run_until(lambda: bool(out), timeout=timeout), "request never completed"
    handle.reply_delivered()
    return out[0]


@pytest.fixture
def p2() -> tuple[World, Device, Cloud]:
    return make_device("p2")
