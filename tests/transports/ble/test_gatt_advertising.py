"""GATT table, advertising bytes, names and advertising policy (device-os.md §5)."""

from __future__ import annotations

import struct

import pytest

from firmware_sim.kernel.errors import ConfigurationError
from transports.ble.advertising import (
    PARTICLE_COMPANY_ID,
    AdvertisingError,
    build_advertising,
    device_name,
    parse_ad_structures,
    parse_advertisement,
    uuid_to_le_bytes,
)
from transports.ble.gatt import (
    PROTOCOL_VERSION,
    RX_UUID,
    SERVICE_UUID,
    TX_UUID,
    VERSION_UUID,
    AttError,
    AttErrorCode,
    CharProps,
    negotiate_mtu,
)

from .conftest import CCCD, RX, TX, VERSION, make_rig


def test_uuids_and_properties_match_device_os() -> None:
    assert SERVICE_UUID == "6fa90001-5c4e-48a8-94f4-8030546f36fc"
    assert VERSION_UUID == "6fa90002-5c4e-48a8-94f4-8030546f36fc"
    assert TX_UUID == "6fa90003-5c4e-48a8-94f4-8030546f36fc"
    assert RX_UUID == "6fa90004-5c4e-48a8-94f4-8030546f36fc"
    # Device OS keeps them little-endian in the source.
    assert uuid_to_le_bytes(SERVICE_UUID) == bytes.fromhex("fc366f543080f494a8484e5c0100a96f")
    assert PROTOCOL_VERSION == 0x02
    assert VERSION.properties == CharProps.READ
    assert TX.properties == CharProps.NOTIFY and TX.cccd_handle is not None
    assert RX.properties == CharProps.WRITE | CharProps.WRITE_WITHOUT_RESPONSE


def test_mtu_negotiation_is_bounded_23_to_247() -> None:
    assert negotiate_mtu(517) == 247
    assert negotiate_mtu(185) == 185
    assert negotiate_mtu(10) == 23


def test_advertising_bytes_of_a_p2() -> None:
    payload = build_advertising("P2-4ABC12", 32, "4ABC12", SERVICE_UUID)
    assert payload.advertising_data == (
        bytes([2, 0x01, 0x06])
        + bytes([10, 0x09]) + b"P2-4ABC12"
        + bytes([11, 0xFF]) + struct.pack("<HH", 0x0662, 32) + b"4ABC12")
    assert payload.scan_response == bytes([17, 0x07]) + uuid_to_le_bytes(SERVICE_UUID)
    parsed = parse_advertisement(payload.advertising_data, payload.scan_response)
    assert parsed.local_name == "P2-4ABC12"
    assert parsed.manufacturer_data == {PARTICLE_COMPANY_ID: b"\x20\x004ABC12"}
    assert (parsed.platform_id, parsed.setup_code) == (32, "4ABC12")
    assert parsed.service_uuids == [SERVICE_UUID]
    assert len(payload.advertising_data) <= 31


def test_a_name_too_long_for_31_bytes_moves_manufacturer_data_to_the_scan_response() -> None:
    payload = build_advertising("Photon 2-4ABC12", 32, "4ABC12", SERVICE_UUID)
    assert len(payload.advertising_data) <= 31 and len(payload.scan_response) <= 31
    parsed = parse_advertisement(payload.advertising_data, payload.scan_response)
    assert parsed.local_name == "Photon 2-4ABC12" and parsed.setup_code == "4ABC12"


@pytest.mark.parametrize(("series", "expected"), [
    ("P2", "P2-ABC123"), ("Photon 2", "Photon 2-ABC123"), ("Argon", "Argon-ABC123"),
    ("argon", "Argon-ABC123")])
def test_device_name_is_series_dash_setup_code(series: str, expected: str) -> None:
    assert device_name(series, "ABC123") == expected


def test_device_name_from_the_dct_wins_when_printable() -> None:
    assert device_name("P2", "ABC123", "MyThing") == "MyThing"
    assert device_name("P2", "ABC123", "bad\x01name") == "P2-ABC123"


def test_malformed_advertising_data_is_a_clear_error() -> None:
    with pytest.raises(AdvertisingError, match="announces 9 bytes"):
        parse_ad_structures(bytes([9, 0x09]) + b"P2")
    assert parse_ad_structures(b"\x02\x01\x06\x00\xff\xff") == [(0x01, b"\x06")]


@pytest.mark.parametrize(("profile", "name"), [("p2", "P2-4ABC12"),
                                                ("photon2", "Photon 2-4ABC12"),
                                                ("argon", "Argon-4ABC12")])
def test_peripheral_advertises_per_profile(profile: str, name: str) -> None:
    rig = make_rig(profile=profile)
    assert rig.peripheral.name == name
    reports = rig.air.current_reports()
    assert [r.parsed.local_name for r in reports] == [name]
    assert reports[0].parsed.platform_id == rig.device.profile.platform_id


def test_setup_code_and_name_follow_the_dct() -> None:
    rig = make_rig()
    rig.device.config.set_device_code("ZZ9ZZ9")
    assert rig.peripheral.name == "P2-ZZ9ZZ9"
    rig.device.config.set_ssid_prefix("Kitchen")
    assert rig.peripheral.name == "Kitchen"
    assert rig.air.current_reports()[0].parsed.setup_code == "ZZ9ZZ9"


def test_photon_has_no_ble() -> None:
    with pytest.raises(ConfigurationError, match="no BLE"):
        make_rig(profile="photon")


def test_listening_policy_advertises_only_in_listening_mode() -> None:
    rig = make_rig(wifi=True)  # has credentials: boots online, not listening
    assert not rig.device.listening.active and not rig.peripheral.advertising
    rig.device.listening.enter()
    assert rig.peripheral.advertising
    rig.device.listening.exit()
    assert not rig.peripheral.advertising


def test_always_policy_and_one_central_at_a_time() -> None:
    rig = make_rig(wifi=True, advertising="always")
    assert rig.peripheral.advertising
    first = rig.central("one")
    first.connect()
    assert not rig.peripheral.advertising  # connected: no longer connectable
    with pytest.raises(Exception, match="not connectable"):
        rig.central("two").connect()
    first.disconnect()
    rig.run(0.1)
    assert rig.peripheral.advertising


def test_scan_reports_a_device_that_starts_advertising_later() -> None:
    rig = make_rig(wifi=True)
    seen: list[str | None] = []
    rig.air.start_scan(lambda report: seen.append(report.parsed.local_name))
    rig.run(1.0)
    assert seen == []
    rig.device.listening.enter()
    rig.run(1.0)
    assert seen == ["P2-4ABC12"]


def test_att_rules_of_the_gatt_table() -> None:
    rig = make_rig()
    central = rig.central()
    central.connect()
    assert central.read(VERSION.value_handle) == bytes([PROTOCOL_VERSION])
    assert central.read(CCCD) == b"\x00\x00"
    for handle, code in ((RX.value_handle, AttErrorCode.READ_NOT_PERMITTED),
                         (TX.value_handle, AttErrorCode.READ_NOT_PERMITTED),
                         (0x0999, AttErrorCode.INVALID_HANDLE)):
        error = central.read(handle)
        assert isinstance(error, AttError) and error.code is code
    for handle, data, code in (
            (VERSION.value_handle, b"\x03", AttErrorCode.WRITE_NOT_PERMITTED),
            (TX.value_handle, b"x", AttErrorCode.WRITE_NOT_PERMITTED),
            (CCCD, b"\x01", AttErrorCode.INVALID_ATTRIBUTE_VALUE_LENGTH),
            (RX.value_handle, bytes(245), AttErrorCode.INVALID_ATTRIBUTE_VALUE_LENGTH),
            (0x0999, b"x", AttErrorCode.INVALID_HANDLE)):
        error = central.write(handle, data)
        assert isinstance(error, AttError) and error.code is code, (handle, error)
    central.subscribe()
    assert central.read(CCCD) == b"\x01\x00"
    assert central.disconnected is None  # ATT errors never drop the link
