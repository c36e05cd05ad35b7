"""The host-side client against the edge service on real loopback sockets.

The world runs under the asyncio driver at 10x wall speed, so the Photon's network join, cloud
handshake and claim confirmation take a fraction of a second.
"""

from __future__ import annotations

import argparse
import asyncio
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import pytest

from cloud_sim import Cloud, Principal
from firmware_sim.kernel.errors import ConfigurationError
from firmware_sim.kernel.realtime import AsyncioDriver
from firmware_sim.kernel.world import World
from firmware_sim.system.device import Device
from firmware_sim.system.radio import radio_environment
from firmware_sim.testbed.adapters import surface_for
from tests.waiting import until
from transports.device_surface import DeviceSurface
from transports.softap import SoftApClient, SoftApCommandError, SoftApError, softap_for
from transports.softap import edge as softap_edge

from .conftest import CAFE, HOME

SPEED = 10.0


@dataclass
class Ctx:
    """The smallest ``transports.edge_api.EdgeContext``: a world under a real-time driver."""

    world: World
    driver: AsyncioDriver
    devices: Sequence[DeviceSurface]

    def sync(self) -> None:
        self.driver.sync()

    def wake(self) -> None:
        self.driver.wake()


def _args(**overrides: object) -> argparse.Namespace:
    values: dict[str, object] = {"softap_http": 0, "softap_tcp": 0,
                                 "softap_host": "127.0.0.1"}
    values.update(overrides)
    return argparse.Namespace(**values)


def run_with_edge(test: Callable[[Device, Cloud, dict[str, object]], Awaitable[None]], *,
                  profile: str = "photon", **arg_overrides: object) -> None:
    async def main() -> None:
        world = World(8)
        radio_environment(world).add(HOME)
        radio_environment(world).add(CAFE)
        cloud = Cloud(world)
        device = Device(world, "photon", profile=profile)
        device.attach_cloud(cloud.connector())
        driver = AsyncioDriver(world, speed=SPEED)
        ctx = Ctx(world, driver, [surface_for(device)])
        device.power_on()
        runner = asyncio.ensure_future(driver.run())
        try:
            handle = await softap_edge.start(ctx, _args(**arg_overrides))
            info: dict[str, object] = {"lines": handle.lines}
            for line in handle.lines:
                if match := re.match(r"softap (tcp|http): (?:http://)?[\d.]+:(\d+)", line):
                    info[match.group(1)] = int(match.group(2))
            try:
                assert await until(lambda: softap_for(surface_for(device)).active)
                await test(device, cloud, info)
            finally:
                assert handle.stop is not None
                await handle.stop()
        finally:
            driver.stop()
            await runner

    asyncio.run(main())


def test_edge_prints_ssid_and_ports() -> None:
    async def check(device: Device, cloud: Cloud, info: dict[str, object]) -> None:
        lines = info["lines"]
        assert isinstance(lines, list)
        code = device.config.device_code()
        assert lines[0] == f"softap: SSID Photon-{code} (up while the device is in listening mode)"
        assert lines[1] == f"softap tcp: 127.0.0.1:{info['tcp']}"
        assert lines[2] == f"softap http: http://127.0.0.1:{info['http']}/"
        assert len(lines) == 3  # claim codes are the composition side's (fwsim serve) business

    run_with_edge(check)


def test_the_edge_no_longer_issues_claim_codes() -> None:
    parser = argparse.ArgumentParser()
    softap_edge.add_arguments(parser)
    options = {option for action in parser._actions for option in action.option_strings}
    assert {"--softap-http", "--softap-tcp", "--softap-host"} <= options
    assert not any("claim" in option for option in options)


def test_edge_refuses_a_profile_without_softap() -> None:
    with pytest.raises(ConfigurationError, match="SoftAP"):
        run_with_edge(lambda *a: asyncio.sleep(0), profile="p2")


@pytest.mark.parametrize("protocol", ["tcp", "http"])
def test_client_full_setup_and_claim(protocol: str) -> None:
    async def flow(device: Device, cloud: Cloud, info: dict[str, object]) -> None:
        port = info[protocol]
        assert isinstance(port, int)
        client = SoftApClient("127.0.0.1", port, protocol=protocol, timeout_s=5)
        owner = Principal.user("phone@example.com")
        code = cloud.create_claim_code(owner).code
        assert await client.version() == 2
        assert (await client.device_info()).id == device.device_id
        assert not (await client.device_info()).claimed
        key = await client.public_key()
        assert key.key_size == 1024
        scans = await client.scan()
        assert [(s.ssid, s.security_name) for s in scans] == [("HomeNet", "wpa2_aes"),
                                                              ("OpenCafe", "none")]
        with pytest.raises(SoftApCommandError) as refused:
            await client.set("zz", "value")
        assert refused.value.result == -1
        await client.set_claim_code(code)
        with pytest.raises(SoftApCommandError) as bad:
            await client.configure("Elsewhere", "password-1")  # not in range
        assert bad.value.result == -2
        await client.configure("HomeNet", "home-pass-1", security="wpa2_aes", channel=6)
        assert (await client.send_command("set", {"k": "cc", "v": "x", "junk": "1"})) is None
        await client.connect(0)
        assert await until(lambda: device.claim.is_device_claimed())
        assert cloud.owner_of(device.device_id) == owner
        assert device.claim.pending_code() is None
        with pytest.raises(SoftApError):  # SoftAP is gone with listening mode
            await client.version()

    run_with_edge(flow)


def test_silent_socket_times_out_and_the_server_keeps_serving() -> None:
    async def flow(device: Device, cloud: Cloud, info: dict[str, object]) -> None:
        port = info["tcp"]
        assert isinstance(port, int)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        client = SoftApClient("127.0.0.1", port, timeout_s=5)
        assert await client.version() == 2
        # 10 virtual seconds at 10x: the silent socket is closed after about 1 s
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
        assert await client.version() == 2

    run_with_edge(flow)
