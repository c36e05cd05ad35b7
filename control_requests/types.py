"""Control request type numbers and the small enums that travel inside control requests.

``RequestType`` mirrors Device OS's ``ctrl_request_type`` (``system/inc/system_control.h``) and
adds the numbers that only Particle's .proto files know (spec: device-os.md §3). Every member
has a ``DosStatus``: handled by Device OS 6.2, present in its enum but commented out, or
protobuf-only. ``dos_status()`` / ``DOS_6_2_UNIMPLEMENTED`` are the machine-readable form.

Result codes are ``firmware_sim.kernel.errors.ResultCode``; the protobuf ``particle.ctrl.
ResultCode`` enum (its entries carry the ``system_error_t`` value in an ``int_value`` option)
is translated by ``result_code_from_protobuf``, which reads the enum's custom options with
``read_option`` (also used by the codec and ``nanopb_rules``).

Import layering inside the package (no cycles): ``types`` imports only the kernel's errors and
the generated ``_pb`` modules; ``errors`` builds on ``types``, ``nanopb_rules`` on both, and the
codec, requests, client, dispatcher and handlers on those.
"""

from __future__ import annotations

from enum import Enum, IntEnum
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from firmware_sim.kernel.errors import ResultCode, UsageError

from ._pb import common_pb2, extensions_pb2


class RequestType(IntEnum):
    """Device OS control request numbers (``CTRL_REQUEST_<name>``)."""

    INVALID = 0
    ECHO = 1
    APP_CUSTOM = 10
    DEVICE_ID = 20
    SERIAL_NUMBER = 21
    SYSTEM_VERSION = 30
    NCP_FIRMWARE_VERSION = 31
    GET_SYSTEM_CAPABILITIES = 32
    SET_FEATURE = 33
    GET_FEATURE = 34
    RESET = 40
    FACTORY_RESET = 41
    DFU_MODE = 50
    SAFE_MODE = 60
    START_LISTENING = 70
    STOP_LISTENING = 71
    GET_DEVICE_MODE = 72
    SET_DEVICE_SETUP_DONE = 73
    IS_DEVICE_SETUP_DONE = 74
    SET_STARTUP_MODE = 75
    GET_PROTECTED_STATE = 76
    SET_PROTECTED_STATE = 77
    LOG_CONFIG = 80
    GET_MODULE_INFO = 90
    GET_ASSET_INFO = 91
    DIAGNOSTIC_INFO = 100
    # Gen 2 Wi-Fi API (commented out in DOS 6.2).
    WIFI_SET_ANTENNA = 110
    WIFI_GET_ANTENNA = 111
    WIFI_SCAN = 112
    WIFI_SET_CREDENTIALS = 113
    WIFI_GET_CREDENTIALS = 114
    WIFI_CLEAR_CREDENTIALS = 115
    # Old network API (commented out in DOS 6.2).
    NETWORK_SET_CONFIGURATION = 120
    NETWORK_GET_CONFIGURATION = 121
    NETWORK_GET_STATUS = 122
    SET_CLAIM_CODE = 200
    IS_CLAIMED = 201
    SET_SECURITY_KEY = 210
    GET_SECURITY_KEY = 211
    SET_SERVER_ADDRESS = 220
    GET_SERVER_ADDRESS = 221
    SET_SERVER_PROTOCOL = 222
    GET_SERVER_PROTOCOL = 223
    START_NYAN_SIGNAL = 230
    STOP_NYAN_SIGNAL = 231
    SET_SOFTAP_SSID = 240
    START_FIRMWARE_UPDATE = 250
    FINISH_FIRMWARE_UPDATE = 251
    CANCEL_FIRMWARE_UPDATE = 252
    FIRMWARE_UPDATE_DATA = 253
    # Storage API (commented out in DOS 6.2).
    DESCRIBE_STORAGE = 260
    READ_SECTION_DATA = 261
    WRITE_SECTION_DATA = 262
    CLEAR_SECTION_DATA = 263
    GET_SECTION_DATA_SIZE = 264
    CLOUD_GET_CONNECTION_STATUS = 300
    CLOUD_CONNECT = 301
    CLOUD_DISCONNECT = 302
    NETWORK_GET_INTERFACE_LIST = 400
    NETWORK_GET_INTERFACE = 401
    # Stored interface configuration (protobuf only).
    NETWORK_GET_INTERFACE_STORED_CONFIGURATION = 402
    NETWORK_SET_INTERFACE_STORED_CONFIGURATION = 403
    NETWORK_DELETE_INTERFACE_STORED_CONFIGURATION = 404
    WIFI_JOIN_NEW_NETWORK = 500
    WIFI_JOIN_KNOWN_NETWORK = 501
    WIFI_GET_KNOWN_NETWORKS = 502
    WIFI_REMOVE_KNOWN_NETWORK = 503
    WIFI_CLEAR_KNOWN_NETWORKS = 504
    WIFI_GET_CURRENT_NETWORK = 505
    WIFI_SCAN_NETWORKS = 506
    WIFI_SET_NETWORK_CREDENTIALS = 507
    CELLULAR_SET_ACCESS_POINT = 550
    CELLULAR_GET_ACCESS_POINT = 551
    CELLULAR_SET_ACTIVE_SIM = 552
    CELLULAR_GET_ACTIVE_SIM = 553
    CELLULAR_GET_ICCID = 554
    # Environment variables (protobuf only).
    ENV_GET = 600
    ENV_CLEAR = 601
    # Thread mesh (commented out in DOS 6.2).
    MESH_AUTH = 1001
    MESH_CREATE_NETWORK = 1002
    MESH_START_COMMISSIONER = 1003
    MESH_STOP_COMMISSIONER = 1004
    MESH_PREPARE_JOINER = 1005
    MESH_ADD_JOINER = 1006
    MESH_REMOVE_JOINER = 1007
    MESH_JOIN_NETWORK = 1008
    MESH_LEAVE_NETWORK = 1009
    MESH_GET_NETWORK_INFO = 1010
    MESH_SCAN_NETWORKS = 1011
    MESH_GET_NETWORK_DIAGNOSTICS = 1012
    # Log handlers (protobuf only).
    ADD_LOG_HANDLER = 1100
    REMOVE_LOG_HANDLER = 1101
    GET_LOG_HANDLERS = 1102


class DosStatus(Enum):
    """How Device OS 6.2 knows a request type."""

    #: In ``ctrl_request_type`` and handled by ``system_control_internal.cpp``.
    IMPLEMENTED = "implemented"
    #: In ``ctrl_request_type`` but commented out: DOS answers NOT_SUPPORTED (or the app does).
    COMMENTED_OUT = "commented-out"
    #: Only in Particle's .proto files (device-os-protobuf 2.9.0), not in DOS 6.2 at all.
    PROTOBUF_ONLY = "protobuf-only"


def _span(first: RequestType, last: RequestType) -> frozenset[RequestType]:
    return frozenset(t for t in RequestType if first <= t <= last)


#: Types DOS 6.2 declares but has commented out (spec: device-os.md §3).
COMMENTED_OUT_IN_DOS_6_2: frozenset[RequestType] = (
    _span(RequestType.WIFI_SET_ANTENNA, RequestType.WIFI_CLEAR_CREDENTIALS)
    | _span(RequestType.NETWORK_SET_CONFIGURATION, RequestType.NETWORK_GET_STATUS)
    | _span(RequestType.DESCRIBE_STORAGE, RequestType.GET_SECTION_DATA_SIZE)
    | _span(RequestType.MESH_AUTH, RequestType.MESH_GET_NETWORK_DIAGNOSTICS)
)

#: Types only Particle's .proto files define (spec: device-os.md §3).
PROTOBUF_ONLY_TYPES: frozenset[RequestType] = (
    _span(
        RequestType.NETWORK_GET_INTERFACE_STORED_CONFIGURATION,
        RequestType.NETWORK_DELETE_INTERFACE_STORED_CONFIGURATION,
    )
    | _span(RequestType.ENV_GET, RequestType.ENV_CLEAR)
    | _span(RequestType.ADD_LOG_HANDLER, RequestType.GET_LOG_HANDLERS)
)

#: Every type DOS 6.2 does not implement itself (answers NOT_SUPPORTED unless the app does).
DOS_6_2_UNIMPLEMENTED: frozenset[RequestType] = COMMENTED_OUT_IN_DOS_6_2 | PROTOBUF_ONLY_TYPES


def dos_status(request_type: RequestType) -> DosStatus:
    """Return how Device OS 6.2 knows ``request_type``."""
    if request_type in COMMENTED_OUT_IN_DOS_6_2:
        return DosStatus.COMMENTED_OUT
    if request_type in PROTOBUF_ONLY_TYPES:
        return DosStatus.PROTOBUF_ONLY
    return DosStatus.IMPLEMENTED


def parse_request_type(value: int | str) -> RequestType:
    """Accept a number or a name (``"SET_CLAIM_CODE"``, ``"set-claim-code"``, ``"200"``)."""
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("-").isdigit():
            return parse_request_type(int(text))
        key = text.upper().replace("-", "_")
        key = key.removeprefix("CTRL_REQUEST_")
        try:
            return RequestType[key]
        except KeyError:
            raise UsageError(f"unknown control request type name: {value!r}") from None
    try:
        return RequestType(value)
    except ValueError:
        raise UsageError(f"unknown control request type number: {value}") from None


class DeviceMode(IntEnum):
    """``particle.ctrl.DeviceMode`` (GET_DEVICE_MODE, SET_STARTUP_MODE)."""

    NORMAL = 0
    LISTENING = 1


class CloudConnectionStatus(IntEnum):
    """``particle.ctrl.cloud.ConnectionStatus`` (CLOUD_GET_CONNECTION_STATUS)."""

    DISCONNECTED = 0
    CONNECTING = 1
    CONNECTED = 2
    DISCONNECTING = 3


class WifiSecurity(IntEnum):
    """``particle.ctrl.wifi.Security`` (values of Device OS's ``WifiSecurity``)."""

    NO_SECURITY = 0
    WEP = 1
    WPA_PSK = 2
    WPA2_PSK = 3
    WPA_WPA2_PSK = 4
    WPA3_PSK = 5
    WPA2_WPA3_PSK = 6


class WifiCredentialsType(IntEnum):
    """``particle.ctrl.wifi.CredentialsType``."""

    NO_CREDENTIALS = 0
    PASSWORD = 1


class InterfaceType(IntEnum):
    """``particle.ctrl.InterfaceType`` (what ``ifaceTypeFromName`` gives a name's kind)."""

    INVALID_INTERFACE_TYPE = 0
    LOOPBACK = 0x01
    THREAD = 0x02
    ETHERNET = 0x04
    WIFI = 0x08
    PPP = 0x10


class FirmwareModuleType(IntEnum):
    """``particle.cloud.FirmwareModuleType`` (the module info and the describe)."""

    INVALID_MODULE = 0
    RESOURCE_MODULE = 1
    BOOTLOADER_MODULE = 2
    MONO_FIRMWARE_MODULE = 3
    SYSTEM_PART_MODULE = 4
    USER_PART_MODULE = 5
    SETTINGS_MODULE = 6
    NCP_FIRMWARE_MODULE = 7
    RADIO_STACK_MODULE = 8
    ASSET_MODULE = 9


class SystemCapability(IntEnum):
    """Bits of ``GetSystemCapabilitiesReply.flags``."""

    COMPRESSED_OTA = 0x01


def read_option(options: Message, extension: FieldDescriptor) -> Any:
    """Value of a custom option (an extension of ``*Options``), or ``None`` if unset.

    grpcio-tools' .pyi stubs type extensions as plain ``FieldDescriptor``s, hence ``Any``.
    """
    untyped: Any = options
    if not untyped.HasExtension(extension):
        return None
    return untyped.Extensions[extension]


def result_code_from_protobuf(value: int) -> ResultCode:
    """Map a ``particle.ctrl.ResultCode`` enum number to the ``system_error_t`` it stands for.

    The mapping is read from the ``int_value`` option of the generated enum, so it cannot drift
    from ``proto/common.proto``. Unknown numbers raise ``UsageError``.
    """
    enum = common_pb2.DESCRIPTOR.enum_types_by_name["ResultCode"]
    entry = enum.values_by_number.get(value)
    if entry is None:
        raise UsageError(f"unknown particle.ctrl.ResultCode number: {value}")
    return ResultCode(read_option(entry.GetOptions(), extensions_pb2.int_value))


__all__ = [
    "COMMENTED_OUT_IN_DOS_6_2",
    "DOS_6_2_UNIMPLEMENTED",
    "PROTOBUF_ONLY_TYPES",
    "CloudConnectionStatus",
    "DeviceMode",
    "DosStatus",
    "FirmwareModuleType",
    "InterfaceType",
    "RequestType",
    "ResultCode",
    "SystemCapability",
    "WifiCredentialsType",
    "WifiSecurity",
    "dos_status",
    "parse_request_type",
    "read_option",
    "result_code_from_protobuf",
]
