"""SoftAP test fixtures: a Photon in listening mode, raw TCP/HTTP probes on virtual time."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from cloud_sim import Cloud
from firmware_sim.kernel.world import World
from firmware_sim.system.device import Device
from firmware_sim.system.radio import AccessPoint, WifiSecurity, radio_environment
from firmware_sim.testbed.adapters import surface_for
from transports.softap import SoftAp, SoftApOptions, encode_request, softap_for

HOME = AccessPoint("HomeNet", "home-pass-1", security=WifiSecurity.WPA2_PSK, rssi=-45, channel=6)
CAFE = AccessPoint("OpenCafe", None, security=WifiSecurity.NO_SECURITY, rssi=-70, channel=1)
OLD = AccessPoint("OldWep", "wep-key-12", security=WifiSecurity.WEP, rssi=-80, channel=11)
HIDDEN = AccessPoint("Hidden", "hidden-pass", rssi=-30, hidden=True)
DEVICE_ID = "e00fce68aabbccddeeff0011"


@dataclass
class Probe:
    """What one client connection saw."""

    output: bytearray = field(default_factory=bytearray)
    closed: bool = False

    def send(self, data: bytes) -> None:
        assert not self.closed, "the session wrote after closing"
        self.output += data

    def close(self) -> None:
        self.closed = True

    @property
    def text(self) -> str:
        return self.output.decode("utf-8", "replace")


@dataclass
class Photon:
    world: World
    device: Device
    cloud: Cloud
    softap: SoftAp

    def tcp(self, data: bytes, *, run_s: float = 2.0) -> Probe:
        """One TCP client that sends ``data`` and then waits ``run_s`` virtual seconds."""
        probe = Probe()
        session = self.softap.open_tcp(probe.send, probe.close)
        assert session is not None, "SoftAP is down"
        session.data_received(data)
        self.world.run_for(run_s)
        return probe

    def command(self, name: str, body: Any = None, *, run_s: float = 2.0) -> Probe:
        payload = None if body is None else (
            body if isinstance(body, bytes) else json.dumps(body).encode())
        return self.tcp(encode_request(name, payload), run_s=run_s)

    def reply(self, name: str, body: Any = None) -> Any:
        """The JSON reply of a TCP command (asserting the framing and the close)."""
        probe = self.command(name, body)
        assert probe.closed
        assert probe.output.startswith(b"\n\n"), probe.output
        return json.loads(probe.output[2:])

    def http(self, data: bytes, *, run_s: float = 2.0) -> Probe:
        probe = Probe()
        session = self.softap.open_http(probe.send, probe.close)
        assert session is not None, "SoftAP is down"
        session.data_received(data)
        self.world.run_for(run_s)
        return probe


def make_photon(seed: int = 0, *, options: SoftApOptions | None = None,
                aps: tuple[AccessPoint, ...] = (HOME, CAFE, OLD, HIDDEN),
                boot: bool = True, **device_kwargs: Any) -> Photon:
    world = World(seed)
    radio = radio_environment(world)
    for ap in aps:
        radio.add(ap)
    cloud = Cloud(world)
    device = Device(world, "photon", profile="photon", device_id=DEVICE_ID, **device_kwargs)
    device.attach_cloud(cloud.connector())
    softap = softap_for(surface_for(device), options)
    if boot:
        device.power_on()
        world.run_for(1.0)
    return Photon(world, device, cloud, softap)


@pytest.fixture
def photon() -> Photon:
    return make_photon()


@pytest.fixture
def photon_factory() -> Callable[..., Photon]:
    return make_photon
