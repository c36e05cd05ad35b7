"""NETWORK_GET_INTERFACE_LIST (400) and NETWORK_GET_INTERFACE (401): Device OS's interface list
of a Wi-Fi platform (``lo0`` at index 1, the station ``wl3`` at index 4), the station's flags as
the radio and the association change, and the serial console's MAC being the same address."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from control_requests import NetworkInterface, requests
from control_requests import RequestType as T
from control_requests._pb import network_pb2
from firmware_sim.kernel import World
from firmware_sim.system import Device, radio_environment
from transports.serial.device_port import DeviceConsoleServices

from .conftest import make_device, send

OK, NOT_SUPPORTED, BAD_DATA = 0, -120, -280
UP, BROADCAST, LOOPBACK, LOWER_UP, MULTICAST, NOND6 = 0x01, 0x02, 0x08, 0x40, 0x8000, 0x10000
IFXF_DHCP = 0x10000


def interface(world: World, device: Device, index: int) -> tuple[int, NetworkInterface | None]:
    call = requests.get_interface(index)
    result, reply = send(world, device, T.NETWORK_GET_INTERFACE, call.request.payload)
    return result, call.parse(reply) if result == OK else None


@pytest.mark.parametrize("profile", ["p2", "photon2", "argon"])
def test_the_list_is_the_loopback_and_the_wifi_station(profile: str) -> None:
    world, device, _ = make_device(profile)
    call = requests.get_interface_list()
    result, reply = send(world, device, T.NETWORK_GET_INTERFACE_LIST)
    assert result == OK
    assert [(e.index, e.name, e.type) for e in call.parse(reply)] == [
        (1, "lo0", network_pb2.LOOPBACK), (4, "wl3", network_pb2.WIFI)]


def test_a_connected_station_is_up_with_a_leased_address(p2: tuple) -> None:  # type: ignore[type-arg]
    world, device, _ = p2
    result, wl3 = interface(world, device, 4)
    assert result == OK and wl3 is not None
    assert (wl3.name, wl3.type, wl3.mtu) == ("wl3", network_pb2.WIFI, 1500)
    assert wl3.flags == UP | BROADCAST | LOWER_UP | MULTICAST | NOND6
    assert wl3.ext_flags == IFXF_DHCP
    (address, prefix), = wl3.ipv4
    assert prefix == 24 and ipaddress.IPv4Address(address) in ipaddress.ip_network(
        "192.168.0.0/16")
    (local, local_prefix), = wl3.ipv6
    assert local_prefix == 64 and ipaddress.IPv6Address(local).is_link_local
    # EUI-64 from the MAC: the MAC's bytes with ff:fe in the middle, the U/L bit flipped
    mac = wl3.hw_address
    assert len(mac) == 6 and mac[0] & 0x01 == 0 and mac[0] & 0x02 == 0x02
    assert local[8:] == bytes([mac[0] ^ 0x02]) + mac[1:3] + b"\xff\xfe" + mac[3:]


def test_the_console_mac_is_the_station_hardware_address(p2: tuple) -> None:  # type: ignore[type-arg]
    world, device, _ = p2
    _, wl3 = interface(world, device, 4)
    assert wl3 is not None
    assert DeviceConsoleServices(device).mac_address() == wl3.hw_address  # type: ignore[arg-type]


def test_the_loopback(p2: tuple) -> None:  # type: ignore[type-arg]
    world, device, _ = p2
    result, lo0 = interface(world, device, 1)
    assert result == OK and lo0 is not None
    assert (lo0.name, lo0.type, lo0.flags, lo0.ext_flags, lo0.hw_address) == (
        "lo0", network_pb2.LOOPBACK, UP | LOWER_UP | LOOPBACK, 0, b"")
    assert lo0.ipv4 == ((bytes([127, 0, 0, 1]), 8),)
    assert lo0.ipv6 == ((bytes(15) + b"\x01", 128),)


def test_station_flags_follow_the_radio_and_the_access_point() -> None:
    world, device, _ = make_device("p2")
    radio_environment(world).remove("HomeNet")  # the access point is gone: radio on, no link
    world.run_for(1)
    _, wl3 = interface(world, device, 4)
    assert wl3 is not None
    assert wl3.flags == UP | BROADCAST | MULTICAST | NOND6
    assert (wl3.ext_flags, wl3.ipv4, wl3.ipv6) == (0, (), ())
    device.network.power_off()
    world.run_for(1)
    _, wl3 = interface(world, device, 4)
    assert wl3 is not None and wl3.flags == BROADCAST | MULTICAST | NOND6
    assert wl3.hw_address  # the MAC stays


def test_an_idle_station_still_sends_both_address_configs() -> None:
    """nanopb on the device encodes both config submessages even when they hold no address."""
    world, device, _ = make_device("p2")
    device.network.power_off()
    world.run_for(1)
    result, reply = send(world, device, T.NETWORK_GET_INTERFACE,
                         requests.get_interface(4).request.payload)
    assert result == OK
    message = network_pb2.GetInterfaceReply.FromString(reply)
    assert message.interface.HasField("ipv4_config") and message.interface.HasField(
        "ipv6_config")


def test_the_address_is_the_same_every_run_and_differs_between_devices() -> None:
    first = interface(*make_device("p2", seed=1)[:2], 4)[1]
    again = interface(*make_device("p2", seed=7)[:2], 4)[1]
    assert first is not None and first == again
    other = Device(World(0), "other", profile="p2", device_id="e00fce68aabbccddeeff0022")
    assert DeviceConsoleServices(other).mac_address() != first.hw_address  # type: ignore[arg-type]


@settings(max_examples=40, deadline=None)
@given(index=st.integers(min_value=0, max_value=2**32 - 1))
def test_an_index_with_no_interface_fails_with_minus_one(index: int) -> None:
    world, device, _ = make_device("p2", connected=False)
    result, found = interface(world, device, index)
    if index in (1, 4):
        assert result == OK and found is not None and found.index == index
    else:
        assert (result, found) == (-1, None)  # if_get_by_index's own -1, passed on


@settings(max_examples=40, deadline=None)
@given(payload=st.binary(max_size=40))
def test_any_payload_gets_an_answer(payload: bytes) -> None:
    world, device, _ = make_device("p2", connected=False)
    result, reply = send(world, device, T.NETWORK_GET_INTERFACE, payload)
    assert result in (OK, -1, BAD_DATA)
    if result == OK:
        network_pb2.GetInterfaceReply.FromString(reply)
    # the list request is empty: its payload is never looked at
    assert send(world, device, T.NETWORK_GET_INTERFACE_LIST, payload)[0] == OK


def test_the_photon_has_no_interface_api() -> None:
    world, device, _ = make_device("photon")
    assert send(world, device, T.NETWORK_GET_INTERFACE_LIST) == (NOT_SUPPORTED, b"")
    assert send(world, device, T.NETWORK_GET_INTERFACE,
                requests.get_interface(4).request.payload) == (NOT_SUPPORTED, b"")
