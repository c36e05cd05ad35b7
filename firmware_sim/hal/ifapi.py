"""The device's network interfaces, as Device OS's interface API (``ifapi``) reports them to
``NETWORK_GET_INTERFACE_LIST`` (400), ``NETWORK_GET_INTERFACE`` (401) and the listening-mode
console's ``m``.

How this works
--------------
Device OS numbers its LwIP interfaces in the order ``if_init_platform`` adds them, and an
interface's name is its two-letter kind followed by that number; the index the control requests
use is the number plus one (``hal/network/lwip/ifapi.cpp``). On the Wi-Fi platforms (P2 /
Photon 2 in ``hal/src/rtl872x/network/network.cpp``; the Argon's is laid out alike) LwIP adds the
loopback ``lo0`` first, ``th1`` (OpenThread, deprecated) and ``en2`` (the optional Ethernet
FeatherWing) keep their numbers reserved when absent, and the Wi-Fi station is ``wl3``: so the
list is ``lo0`` at index 1 and ``wl3`` at index 4. An index with no interface is refused with
-1, ``if_get_by_index``'s own return value, passed on as the request's result.

Flags are ``if_get_flags``'s mapping of the LwIP flags (``IFF_*`` of ``ifapi.h``): the station is
``BROADCAST | MULTICAST | NOND6`` always, ``UP`` while the radio is on and ``LOWER_UP`` while it
is associated; the loopback is ``UP | LOWER_UP | LOOPBACK`` (index 1 is always the loopback).
Extended flags carry ``IFXF_DHCP`` once DHCP ran (connected). The station's hardware address is
a locally administered unicast MAC fixed by the device id; the loopback has none.

Addresses (UNVERIFIED: the simulator has no IP stack, so they are plausible values, the same for
the same device and network every run): the loopback has 127.0.0.1/8 and ::1/128; the station,
while connected, an IPv4 address leased by the access point's DHCP server (``192.168.N.H/24``,
``N`` fixed by the SSID, ``H`` by the device id) and the IPv6 link-local address made from its
MAC (EUI-64, /64). MTUs: 1500 for the station, 0 for the loopback (LwIP's loopback sets none).
"""

from __future__ import annotations

import hashlib

from control_requests.services import NetworkInterface
from control_requests.types import InterfaceType

#: ``if_flags_t`` (Device OS ``hal/network/api/ifapi.h``)
IFF_UP = 0x01
IFF_BROADCAST = 0x02
IFF_LOOPBACK = 0x08
IFF_LOWER_UP = 0x40
IFF_MULTICAST = 0x8000
IFF_NOND6 = 0x10000
#: ``if_xflags_t``
IFXF_DHCP = 0x10000

LOOPBACK_INDEX = 1
STATION_INDEX = 4
STATION_MTU = 1500


def station_mac(device_id: str) -> bytes:
    """The Wi-Fi station's MAC: fixed by the device id (locally administered, unicast)."""
    digest = hashlib.sha256(f"fwsim-wifi-sta:{device_id}".encode()).digest()
    return bytes([(digest[0] | 0x02) & 0xFE]) + digest[1:6]


def station_ipv4(device_id: str, ssid: str) -> bytes:
    """The address the access point named ``ssid`` leases to the device (module header)."""
    subnet = hashlib.sha256(f"fwsim-subnet:{ssid}".encode()).digest()[0] % 254 + 1
    host = hashlib.sha256(f"fwsim-host:{device_id}".encode()).digest()[0] % 250 + 2
    return bytes([192, 168, subnet, host])


def link_local_ipv6(mac: bytes) -> bytes:
    """``fe80::/64`` with the modified EUI-64 interface identifier made from ``mac``."""
    eui = bytes([mac[0] ^ 0x02]) + mac[1:3] + b"\xff\xfe" + mac[3:6]
    return b"\xfe\x80" + bytes(6) + eui


def network_interfaces(device_id: str, *, radio_on: bool, ssid: str | None) -> list[
        NetworkInterface]:
    """The interfaces in ``if_get_list`` order; ``ssid``: the network the station is
    associated with and has an address on (None while it is not)."""
    loopback = NetworkInterface(
        index=LOOPBACK_INDEX, name="lo0", type=InterfaceType.LOOPBACK,
        flags=IFF_UP | IFF_LOWER_UP | IFF_LOOPBACK, ext_flags=0, mtu=0, hw_address=b"",
        ipv4=((bytes([127, 0, 0, 1]), 8),), ipv6=((bytes(15) + b"\x01", 128),))
    mac = station_mac(device_id)
    flags = IFF_BROADCAST | IFF_MULTICAST | IFF_NOND6
    if radio_on:
        flags |= IFF_UP
    ipv4: tuple[tuple[bytes, int], ...] = ()
    ipv6: tuple[tuple[bytes, int], ...] = ()
    ext_flags = 0
    if ssid is not None:
        flags |= IFF_UP | IFF_LOWER_UP
        ext_flags = IFXF_DHCP
        ipv4 = ((station_ipv4(device_id, ssid), 24),)
        ipv6 = ((link_local_ipv6(mac), 64),)
    station = NetworkInterface(
        index=STATION_INDEX, name="wl3", type=InterfaceType.WIFI, flags=flags, ext_flags=ext_flags,
        mtu=STATION_MTU, hw_address=mac, ipv4=ipv4, ipv6=ipv6)
    return [loopback, station]


__all__ = ["network_interfaces", "station_ipv4", "station_mac"]
