"""The seams between transports and devices: ``transports.device_surface``, the testbed's
adapters (``surface_for``), and the edge services' contract (``transports.edge_api``)."""

from __future__ import annotations

import argparse
import importlib

import grimp
import pytest

from firmware_sim.kernel.errors import UsageError
from firmware_sim.kernel.world import World
from firmware_sim.system.device import Device
from firmware_sim.system.radio import WifiSecurity
from firmware_sim.testbed.adapters import DctKeyStore, surface_for
from transports.edge_api import EdgeHandle, port_arg
from transports.serial import attach_console
from transports.softap import softap_for
from transports.usb import attach_usb

EDGE_MODULES = ["transports.softap.edge", "transports.usb.edge", "transports.serial.edge",
                "transports.ble.edge"]


def _device(profile: str = "p2") -> Device:
    return Device(World(0), "dev", profile=profile)


def test_one_surface_per_device_and_transports_attach_once_per_device() -> None:
    device = _device()
    surface = surface_for(device)
    assert surface_for(device) is surface
    assert attach_usb(device) is attach_usb(surface)
    assert attach_console(surface) is attach_console(device)
    device.power_on()
    device.world.run_for(1)
    assert device.world.trace.count("usb.attached", node="dev") == 1


def test_the_surface_is_the_device_for_what_it_has() -> None:
    device = _device()
    surface = surface_for(device)
    assert (surface.name, surface.device_id, surface.serial_number, surface.mobile_secret,
            surface.setup_code) == (device.name, device.device_id, device.serial_number,
                                    device.mobile_secret, device.setup_code)
    assert surface.profile is device.profile and surface.world is device.world
    device.power_on()
    device.world.run_for(1)
    assert surface.running and surface.listening is device.listening
    assert surface.control is device.control  # looked up at use time: rebuilt at every boot
    device.reset("user")
    device.world.run_for(1)
    assert surface.control is device.control and surface.listening is device.listening


def test_ble_prov_mode_is_a_system_event_of_the_device() -> None:
    device = _device()
    device.power_on()
    device.world.run_for(1)
    surface_for(device).notify_ble_prov_mode(3)
    events = device.world.trace.find("system_event", node="dev")
    assert events[-1].fields["event"] == "ble_prov_mode"
    assert events[-1].fields["param_name"] == "handshake_done"


def test_softap_storage_goes_to_the_dct_and_the_credential_store() -> None:
    device = _device("photon")
    surface = surface_for(device)
    assert surface.ssid_prefix() is None
    surface.set_ssid_prefix("Kitchen")
    assert device.config.ssid_prefix() == "Kitchen" == surface.ssid_prefix()
    assert surface.store_wifi_credentials("Net", "password-1", WifiSecurity.WPA2_PSK) == 0
    assert surface.wifi_credential_count() == 1 == len(device.credentials)
    stored = device.credentials.get("Net")
    assert stored is not None and stored.security is WifiSecurity.WPA2_PSK
    # as the SoftAP HAL: no network_credentials system event
    assert not [r for r in device.world.trace.find("system_event", node="dev")
                if r.fields["event"] == "network_credentials"]
    surface.write_device_public_key(b"\x30\x81")
    assert device.dct.read_field("device_public_key")[:3] == b"\x30\x81\xff"
    assert surface.device_public_key() == device.dct.read_field("device_public_key")


def test_a_key_write_must_fit_its_dct_field() -> None:
    keys = DctKeyStore(_device().dct)
    with pytest.raises(UsageError, match="device_public_key"):
        keys.write_device_public_key(bytes(385))
    with pytest.raises(UsageError, match="device_private_key"):
        keys.write_device_private_key(bytes(1217))


def test_a_softap_attaches_once_per_device_name() -> None:
    device = _device("photon")
    assert softap_for(surface_for(device)) is softap_for(surface_for(device))


def test_edge_services_share_one_parser_and_are_off_by_default() -> None:
    parser = argparse.ArgumentParser()
    modules = [importlib.import_module(name) for name in EDGE_MODULES]
    for module in modules:
        assert isinstance(module.NAME, str) and module.NAME
        module.add_arguments(parser)  # no option clashes between services
    args = parser.parse_args([])
    assert [module.enabled(args) for module in modules] == [False] * len(modules)
    assert EdgeHandle().lines == [] and EdgeHandle().stop is None


def test_edge_services_import_only_the_edge_api_their_transport_and_the_kernel() -> None:
    graph = grimp.build_graph("transports", "firmware_sim", "control_requests", "cloud_sim",
                              cache_dir=None)
    for name in EDGE_MODULES:
        package = name.rsplit(".", 1)[0]
        project = {imported for imported in graph.find_modules_directly_imported_by(name)
                   if imported.split(".")[0] in ("transports", "firmware_sim",
                                                 "control_requests", "cloud_sim")}
        outside = {imported for imported in project
                   if not imported.startswith((package + ".", "firmware_sim.kernel"))
                   and imported not in ("transports.edge_api", "transports.device_surface")}
        assert outside == set(), (name, outside)


@pytest.mark.parametrize(("text", "port"), [("0", 0), ("5609", 5609), ("65535", 65535)])
def test_port_arg_accepts_ports(text: str, port: int) -> None:
    assert port_arg(text) == port


@pytest.mark.parametrize("text", ["-1", "65536", "http", ""])
def test_port_arg_refuses_the_rest_in_one_line(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="port"):
        port_arg(text)
