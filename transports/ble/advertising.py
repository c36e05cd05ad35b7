"""Advertising data of a Particle device in BLE setup (device-os.md §5).

How it works: the advertising packet holds three AD structures (each ``length, type, data``):
flags ``0x06`` (LE general discoverable, no BR/EDR), the complete local name and manufacturer
data ``0662`` (Particle's company id, little-endian) + platform id (u16 LE) + the 6-character
setup code. The scan response holds the 128-bit service UUID (little-endian bytes).

The name is ``<PRODUCT_SERIES>-<setup code>`` (``P2-ABC123``) unless the DCT's ``ssid_prefix``
field (Device OS calls it the device name) holds a printable name, which is then used as is.

A legacy advertising packet holds 31 bytes. ``Photon 2-ABC123`` does not fit with flags and
manufacturer data (32 bytes); fwsim then moves the manufacturer data to the scan response
(UNVERIFIED, see docs/ble.md) so the name stays complete.
"""

from __future__ import annotations

import struct
import uuid as uuid_module
from dataclasses import dataclass, field
from typing import Final

from firmware_sim.kernel.errors import PeerProtocolError, UsageError

__all__ = [
    "AD_COMPLETE_128_BIT_UUIDS",
    "AD_COMPLETE_LOCAL_NAME",
    "AD_FLAGS",
    "AD_MANUFACTURER_DATA",
    "FLAGS_LE_GENERAL_NO_BREDR",
    "MAX_LEGACY_ADV_SIZE",
    "PARTICLE_COMPANY_ID",
    "AdvertisingError",
    "AdvertisingPayload",
    "ParsedAdvertisement",
    "build_advertising",
    "device_name",
    "parse_ad_structures",
    "parse_advertisement",
    "uuid_from_le_bytes",
    "uuid_to_le_bytes",
]

AD_FLAGS: Final = 0x01
AD_INCOMPLETE_16_BIT_UUIDS: Final = 0x02
AD_COMPLETE_16_BIT_UUIDS: Final = 0x03
AD_INCOMPLETE_128_BIT_UUIDS: Final = 0x06
AD_COMPLETE_128_BIT_UUIDS: Final = 0x07
AD_SHORTENED_LOCAL_NAME: Final = 0x08
AD_COMPLETE_LOCAL_NAME: Final = 0x09
AD_MANUFACTURER_DATA: Final = 0xFF
FLAGS_LE_GENERAL_NO_BREDR: Final = 0x06
#: ``PARTICLE_COMPANY_ID``.
PARTICLE_COMPANY_ID: Final = 0x0662
MAX_LEGACY_ADV_SIZE: Final = 31
_SETUP_CODE_SIZE: Final = 6
_DEVICE_NAME_MAX: Final = 25  # DCT_SSID_PREFIX_SIZE - 1 (first byte is the length)
_BASE_UUID_SUFFIX: Final = "-0000-1000-8000-00805f9b34fb"


class AdvertisingError(PeerProtocolError):
    """Malformed advertising data."""


def _printable(text: str) -> bool:
    return bool(text) and all(0x20 <= ord(c) <= 0x7E for c in text)


def device_name(series: str, setup_code: str, dct_name: str | None = None) -> str:
    """``get_device_name``: the DCT name when set and printable, else ``<series>-<code>``."""
    if dct_name is not None and _printable(dct_name) and len(dct_name) <= _DEVICE_NAME_MAX:
        return dct_name
    prefix = series[: _DEVICE_NAME_MAX - _SETUP_CODE_SIZE - 1]
    prefix = prefix[:1].upper() + prefix[1:]
    return f"{prefix}-{setup_code}"


def uuid_to_le_bytes(text: str) -> bytes:
    return uuid_module.UUID(text).bytes[::-1]


def uuid_from_le_bytes(raw: bytes) -> str:
    return str(uuid_module.UUID(bytes=bytes(raw[::-1])))


def _ad(ad_type: int, data: bytes) -> bytes:
    if len(data) > 254:
        raise UsageError("an AD structure holds at most 254 bytes of data")
    return bytes([len(data) + 1, ad_type]) + data


@dataclass(frozen=True, slots=True)
class AdvertisingPayload:
    """What the peripheral broadcasts: the advertising packet and the scan response."""

    advertising_data: bytes
    scan_response: bytes


def build_advertising(name: str, platform_id: int, setup_code: str,
                      service_uuid: str) -> AdvertisingPayload:
    """The advertising packet and scan response of a device in BLE setup."""
    code = setup_code.encode("ascii", "replace")[:_SETUP_CODE_SIZE].ljust(_SETUP_CODE_SIZE, b"X")
    flags = _ad(AD_FLAGS, bytes([FLAGS_LE_GENERAL_NO_BREDR]))
    local_name = _ad(AD_COMPLETE_LOCAL_NAME, name.encode("utf-8"))
    manufacturer = _ad(AD_MANUFACTURER_DATA,
                       struct.pack("<HH", PARTICLE_COMPANY_ID, platform_id & 0xFFFF) + code)
    service = _ad(AD_COMPLETE_128_BIT_UUIDS, uuid_to_le_bytes(service_uuid))
    advertising = flags + local_name + manufacturer
    scan_response = service
    if len(advertising) > MAX_LEGACY_ADV_SIZE:
        advertising = flags + local_name
        scan_response = service + manufacturer
    if len(advertising) > MAX_LEGACY_ADV_SIZE:
        raise UsageError(f"device name {name!r} does not fit a legacy advertising packet")
    return AdvertisingPayload(advertising, scan_response)


def parse_ad_structures(data: bytes) -> list[tuple[int, bytes]]:
    """Split advertising data into ``(type, data)``; a zero length ends the significant part."""
    structures: list[tuple[int, bytes]] = []
    offset = 0
    raw = bytes(data)
    while offset < len(raw):
        length = raw[offset]
        if length == 0:
            break
        if offset + 1 + length > len(raw):
            raise AdvertisingError(
                f"AD structure at offset {offset} announces {length} bytes but only "
                f"{len(raw) - offset - 1} follow")
        structures.append((raw[offset + 1], raw[offset + 2: offset + 1 + length]))
        offset += 1 + length
    return structures


@dataclass
class ParsedAdvertisement:
    """Advertising data and scan response merged, as a scanner reports them."""

    local_name: str | None = None
    manufacturer_data: dict[int, bytes] = field(default_factory=dict)
    service_uuids: list[str] = field(default_factory=list)
    flags: int | None = None

    @property
    def is_particle(self) -> bool:
        return PARTICLE_COMPANY_ID in self.manufacturer_data

    @property
    def platform_id(self) -> int | None:
        data = self.manufacturer_data.get(PARTICLE_COMPANY_ID)
        if data is None or len(data) < 2:
            return None
        return int(struct.unpack_from("<H", data)[0])

    @property
    def setup_code(self) -> str | None:
        data = self.manufacturer_data.get(PARTICLE_COMPANY_ID)
        if data is None or len(data) < 2 + _SETUP_CODE_SIZE:
            return None
        return data[2:2 + _SETUP_CODE_SIZE].decode("ascii", "replace")


def _uuid16(raw: bytes) -> str:
    return f"0000{int.from_bytes(raw, 'little'):04x}{_BASE_UUID_SUFFIX}"


def parse_advertisement(*packets: bytes) -> ParsedAdvertisement:
    """Merge the AD structures of the advertising packet and the scan response."""
    parsed = ParsedAdvertisement()
    for packet in packets:
        for ad_type, data in parse_ad_structures(packet):
            if ad_type == AD_FLAGS and data:
                parsed.flags = data[0]
            elif ad_type in (AD_COMPLETE_LOCAL_NAME, AD_SHORTENED_LOCAL_NAME):
                if ad_type == AD_COMPLETE_LOCAL_NAME or parsed.local_name is None:
                    parsed.local_name = data.decode("utf-8", "replace")
            elif ad_type == AD_MANUFACTURER_DATA and len(data) >= 2:
                company = int.from_bytes(data[:2], "little")
                parsed.manufacturer_data[company] = bytes(data[2:])
            elif ad_type in (AD_COMPLETE_128_BIT_UUIDS, AD_INCOMPLETE_128_BIT_UUIDS):
                for start in range(0, len(data) - 15, 16):
                    _append_once(parsed.service_uuids, uuid_from_le_bytes(data[start:start + 16]))
            elif ad_type in (AD_COMPLETE_16_BIT_UUIDS, AD_INCOMPLETE_16_BIT_UUIDS):
                for start in range(0, len(data) - 1, 2):
                    _append_once(parsed.service_uuids, _uuid16(data[start:start + 2]))
    return parsed


def _append_once(items: list[str], item: str) -> None:
    if item not in items:
        items.append(item)
