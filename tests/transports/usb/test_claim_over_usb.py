"""A claim code set over USB, then the next cloud connection: sent on a full handshake, never on
a resumed session - the claim-code scenarios with their provisioning steps carried by the
in-process USB bus (particle-usb's pipeline) instead of bare control requests."""

from __future__ import annotations

import pytest

from cloud_sim import Cloud, Principal
from control_requests import requests
from firmware_sim.kernel import World
from firmware_sim.scenarios.catalog import SCENARIOS
from firmware_sim.system import AccessPoint, Device, WifiCredentials, radio_environment
from transports.usb import VirtualUsbHost
from transports.usb.provisioning import UsbProvisioning

OWNER = Principal.user("usb-owner@example.com")


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_catalog_scenarios_over_usb(name: str) -> None:
    result = SCENARIOS[name].run(7, provisioning=UsbProvisioning)
    failed = [check.description for check in result.checks if not check.ok]
    assert result.passed, failed
    assert result.world.trace.count("usb.init") >= 2  # the steps really went over USB
    assert result.world.trace.count("control.request", channel="usb") >= 2


def _claim_sent(device: Device) -> bool:
    return any("Send spark/device/claim/code event" in line for line in device.log_lines())


def _stage(provisioned: bool) -> tuple[World, Device, Cloud]:
    world = World(11)
    radio = radio_environment(world)
    radio.add(AccessPoint("HomeNet", "home-pass-1"))
    cloud = Cloud(world)
    wifi = [WifiCredentials("HomeNet", "home-pass-1")] if provisioned else []
    device = Device(world, "usbdev", profile="p2", wifi=wifi)
    device.attach_cloud(cloud.connector())
    device.power_on()
    return world, device, cloud


def test_code_set_over_usb_in_listening_mode_goes_out_with_the_first_full_handshake() -> None:
    world, device, cloud = _stage(provisioned=False)
    world.run_for(2)
    assert device.listening.active
    code = cloud.create_claim_code(OWNER, ttl_s=3600).code
    usb = VirtualUsbHost(world, device).open()
    usb.call(requests.set_claim_code(code))
    usb.call(requests.join_new_network("HomeNet", "home-pass-1"))
    usb.call(requests.stop_listening())
    assert world.run_until(lambda: cloud.owner_of(device.device_id) == OWNER, timeout=120)
    assert device.cloud.handshakes["full"] == 1 and _claim_sent(device)
    assert world.run_until(lambda: device.claim.pending_code() is None, timeout=30)
    assert device.claim.is_device_claimed()
    assert usb.call(requests.is_claimed()) is True


def test_code_set_over_usb_while_a_session_is_persisted_is_not_sent_on_resume() -> None:
    world, device, cloud = _stage(provisioned=True)
    assert world.run_until(lambda: device.cloud_connected, timeout=60)
    code = cloud.create_claim_code(OWNER, ttl_s=3600).code
    usb = VirtualUsbHost(world, device).open()
    usb.call(requests.set_claim_code(code))
    # reconnect: the cloud connection is dropped and comes back with the persisted session
    usb.call(requests.cloud_disconnect())
    world.run_for(2)
    usb.call(requests.cloud_connect())
    assert world.run_until(lambda: device.cloud.handshakes["resumed"] >= 1, timeout=60)
    world.run_for(30)
    assert device.cloud.handshakes["full"] == 1
    assert not _claim_sent(device)
    assert device.claim.pending_code() == code
    assert cloud.owner_of(device.device_id) != OWNER
    # a USB reset does not help either: the session survives a software reset
    boots = device.boot_count
    usb.call(requests.reset())
    assert world.run_until(lambda: device.boot_count > boots and device.cloud_connected,
                           timeout=60)
    world.run_for(30)
    assert device.cloud.handshakes["full"] == 0
    assert device.cloud.handshakes["resumed"] == 1 and not _claim_sent(device)
    assert device.claim.pending_code() == code


def test_usb_runs_are_deterministic() -> None:
    traces = []
    for _ in range(2):
        result = SCENARIOS["resume-bug"].run(5, provisioning=UsbProvisioning)
        traces.append([record.to_json() for record in result.world.trace.records])
    assert traces[0] == traces[1]
    assert any('"usb.init"' in line for line in traces[0])
