"""The GATT profile of Particle's BLE control channel (device-os.md §5).

How it works: the device exposes one primary service with three characteristics:

* version (read) whose value is the single byte ``PROTOCOL_VERSION = 0x02``;
* TX ("send", device -> phone, notify) with its CCCD; the device notifies only after the phone
  wrote ``01 00`` to the CCCD;
* RX ("recv", phone -> device, write and write-without-response).

The attribute handles below are fwsim's (a real device lays its table out after the GAP and
GATT services, so its handles differ; clients discover them). The notification payload is at
most ATT_MTU - 3 bytes; the ATT MTU starts at 23 and the device accepts up to 247.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, IntEnum, IntFlag
from typing import Final

from firmware_sim.kernel.errors import FwSimError

__all__ = [
    "ATT_DEFAULT_MTU",
    "ATT_NOTIFICATION_OVERHEAD",
    "CCCD_UUID",
    "CHARACTERISTICS",
    "DEVICE_MAX_MTU",
    "MAX_ATTRIBUTE_VALUE_SIZE",
    "PROTOCOL_VERSION",
    "RX_UUID",
    "SERVICE_HANDLE",
    "SERVICE_UUID",
    "TX_UUID",
    "VERSION_UUID",
    "AttError",
    "AttErrorCode",
    "CharProps",
    "CharRole",
    "CharacteristicInfo",
    "cccd_value",
    "characteristic_by_handle",
    "characteristic_by_uuid",
    "max_notification_payload",
    "negotiate_mtu",
    "role_of_handle",
]

#: Standard (big-endian, printed) form, lower case as bleak normalises UUID strings.
SERVICE_UUID: Final = "6fa90001-5c4e-48a8-94f4-8030546f36fc"
VERSION_UUID: Final = "6fa90002-5c4e-48a8-94f4-8030546f36fc"
TX_UUID: Final = "6fa90003-5c4e-48a8-94f4-8030546f36fc"
RX_UUID: Final = "6fa90004-5c4e-48a8-94f4-8030546f36fc"
#: Client Characteristic Configuration descriptor (0x2902).
CCCD_UUID: Final = "00002902-0000-1000-8000-00805f9b34fb"

#: ``PROTOCOL_VERSION`` of ``ble_control_request_channel.cpp``.
PROTOCOL_VERSION: Final = 0x02
#: ATT default MTU (the notification payload starts at 20 bytes).
ATT_DEFAULT_MTU: Final = 23
#: The largest ATT MTU the device negotiates (244-byte notifications).
DEVICE_MAX_MTU: Final = 247
#: Opcode (1) + handle (2) in a notification or a write command.
ATT_NOTIFICATION_OVERHEAD: Final = 3
#: ``BLE_MAX_ATTR_VALUE_PACKET_SIZE``: the longest value the RX characteristic accepts.
MAX_ATTRIBUTE_VALUE_SIZE: Final = DEVICE_MAX_MTU - ATT_NOTIFICATION_OVERHEAD


class CharProps(IntFlag):
    """GATT characteristic properties (Core spec Vol 3 Part G 3.3.1.1)."""

    READ = 0x02
    WRITE_WITHOUT_RESPONSE = 0x04
    WRITE = 0x08
    NOTIFY = 0x10

    def bleak_names(self) -> list[str]:
        names = {
            CharProps.READ: "read",
            CharProps.WRITE_WITHOUT_RESPONSE: "write-without-response",
            CharProps.WRITE: "write",
            CharProps.NOTIFY: "notify",
        }
        return [name for flag, name in names.items() if self & flag]


class CharRole(Enum):
    VERSION = "version"
    TX = "tx"
    TX_CCCD = "tx-cccd"
    RX = "rx"


@dataclass(frozen=True, slots=True)
class CharacteristicInfo:
    role: CharRole
    uuid: str
    properties: CharProps
    declaration_handle: int
    value_handle: int
    cccd_handle: int | None = None


#: The service declaration's handle; the characteristics follow it.
SERVICE_HANDLE: Final = 0x0010
CHARACTERISTICS: Final = (
    CharacteristicInfo(CharRole.VERSION, VERSION_UUID, CharProps.READ, 0x0011, 0x0012),
    CharacteristicInfo(CharRole.TX, TX_UUID, CharProps.NOTIFY, 0x0013, 0x0014, 0x0015),
    CharacteristicInfo(
        CharRole.RX, RX_UUID, CharProps.WRITE | CharProps.WRITE_WITHOUT_RESPONSE, 0x0016, 0x0017
    ),
)
_BY_UUID = {info.uuid: info for info in CHARACTERISTICS}
_BY_HANDLE = {info.value_handle: info for info in CHARACTERISTICS}
_ROLE_BY_HANDLE = {info.value_handle: info.role for info in CHARACTERISTICS} | {
    info.cccd_handle: CharRole.TX_CCCD for info in CHARACTERISTICS if info.cccd_handle
}


class AttErrorCode(IntEnum):
    """ATT error codes (Core spec Vol 3 Part F 3.4.1.1) that the model produces."""

    INVALID_HANDLE = 0x01
    READ_NOT_PERMITTED = 0x02
    WRITE_NOT_PERMITTED = 0x03
    REQUEST_NOT_SUPPORTED = 0x06
    INVALID_ATTRIBUTE_VALUE_LENGTH = 0x0D
    UNLIKELY_ERROR = 0x0E


class AttError(FwSimError):
    """The peripheral answered an ATT request with an Error Response."""

    def __init__(self, code: AttErrorCode, handle: int = 0, message: str = "") -> None:
        self.code = code
        self.handle = handle
        detail = f": {message}" if message else ""
        super().__init__(f"ATT error {code.name} (0x{int(code):02X}) on handle 0x{handle:04X}"
                         f"{detail}")


def characteristic_by_uuid(uuid: str) -> CharacteristicInfo | None:
    return _BY_UUID.get(uuid.lower())


def characteristic_by_handle(handle: int) -> CharacteristicInfo | None:
    return _BY_HANDLE.get(handle)


def role_of_handle(handle: int) -> CharRole:
    """The role of a value or CCCD handle; :class:`AttError` INVALID_HANDLE otherwise."""
    role = _ROLE_BY_HANDLE.get(handle)
    if role is None:
        raise AttError(AttErrorCode.INVALID_HANDLE, handle)
    return role


def negotiate_mtu(client_mtu: int, server_mtu: int = DEVICE_MAX_MTU) -> int:
    """ATT Exchange MTU: the smaller of both sides, never below 23."""
    return max(ATT_DEFAULT_MTU, min(int(client_mtu), int(server_mtu)))


def max_notification_payload(mtu: int) -> int:
    return mtu - ATT_NOTIFICATION_OVERHEAD


def cccd_value(notify: bool) -> bytes:
    return b"\x01\x00" if notify else b"\x00\x00"
