"""RequestType numbers and statuses against the spec table (device-os.md §3)."""

from __future__ import annotations

import pytest

from control_requests._pb import (
    cloud_pb2,
    common_pb2,
    config_pb2,
    describe_pb2,
    network_pb2,
    wifi_pb2,
)
from control_requests.types import (
    COMMENTED_OUT_IN_DOS_6_2,
    DOS_6_2_UNIMPLEMENTED,
    PROTOBUF_ONLY_TYPES,
    CloudConnectionStatus,
    DeviceMode,
    DosStatus,
    FirmwareModuleType,
    InterfaceType,
    RequestType,
    SystemCapability,
    WifiCredentialsType,
    WifiSecurity,
    dos_status,
    parse_request_type,
    result_code_from_protobuf,
)
from firmware_sim.kernel.errors import ResultCode, UsageError

# The request-type table of device-os.md §3, verbatim.
SPEC_TABLE = {
    "INVALID": 0, "ECHO": 1, "APP_CUSTOM": 10, "DEVICE_ID": 20, "SERIAL_NUMBER": 21,
    "SYSTEM_VERSION": 30, "NCP_FIRMWARE_VERSION": 31, "GET_SYSTEM_CAPABILITIES": 32,
    "SET_FEATURE": 33, "GET_FEATURE": 34, "RESET": 40, "FACTORY_RESET": 41, "DFU_MODE": 50,
    "SAFE_MODE": 60, "START_LISTENING": 70, "STOP_LISTENING": 71, "GET_DEVICE_MODE": 72,
    "SET_DEVICE_SETUP_DONE": 73, "IS_DEVICE_SETUP_DONE": 74, "SET_STARTUP_MODE": 75,
    "GET_PROTECTED_STATE": 76, "SET_PROTECTED_STATE": 77, "LOG_CONFIG": 80,
    "GET_MODULE_INFO": 90, "GET_ASSET_INFO": 91, "DIAGNOSTIC_INFO": 100,
    "SET_CLAIM_CODE": 200, "IS_CLAIMED": 201, "SET_SECURITY_KEY": 210, "GET_SECURITY_KEY": 211,
    "SET_SERVER_ADDRESS": 220, "GET_SERVER_ADDRESS": 221, "SET_SERVER_PROTOCOL": 222,
    "GET_SERVER_PROTOCOL": 223, "START_NYAN_SIGNAL": 230, "STOP_NYAN_SIGNAL": 231,
    "SET_SOFTAP_SSID": 240, "START_FIRMWARE_UPDATE": 250, "FINISH_FIRMWARE_UPDATE": 251,
    "CANCEL_FIRMWARE_UPDATE": 252, "FIRMWARE_UPDATE_DATA": 253,
    "CLOUD_GET_CONNECTION_STATUS": 300, "CLOUD_CONNECT": 301, "CLOUD_DISCONNECT": 302,
    "NETWORK_GET_INTERFACE_LIST": 400, "NETWORK_GET_INTERFACE": 401,
    "WIFI_JOIN_NEW_NETWORK": 500, "WIFI_JOIN_KNOWN_NETWORK": 501,
    "WIFI_GET_KNOWN_NETWORKS": 502, "WIFI_REMOVE_KNOWN_NETWORK": 503,
    "WIFI_CLEAR_KNOWN_NETWORKS": 504, "WIFI_GET_CURRENT_NETWORK": 505,
    "WIFI_SCAN_NETWORKS": 506, "WIFI_SET_NETWORK_CREDENTIALS": 507,
    "CELLULAR_SET_ACCESS_POINT": 550, "CELLULAR_GET_ACCESS_POINT": 551,
    "CELLULAR_SET_ACTIVE_SIM": 552, "CELLULAR_GET_ACTIVE_SIM": 553, "CELLULAR_GET_ICCID": 554,
}  # fmt: skip

SPEC_COMMENTED_OUT = {
    "WIFI_SET_ANTENNA": 110, "WIFI_GET_ANTENNA": 111, "WIFI_SCAN": 112,
    "WIFI_SET_CREDENTIALS": 113, "WIFI_GET_CREDENTIALS": 114, "WIFI_CLEAR_CREDENTIALS": 115,
    "NETWORK_SET_CONFIGURATION": 120, "NETWORK_GET_CONFIGURATION": 121,
    "NETWORK_GET_STATUS": 122,
}  # fmt: skip


@pytest.mark.parametrize(("name", "value"), sorted(SPEC_TABLE.items()))
def test_implemented_types_match_spec(name: str, value: int) -> None:
    assert RequestType[name] == value
    assert dos_status(RequestType[name]) is DosStatus.IMPLEMENTED


@pytest.mark.parametrize(("name", "value"), sorted(SPEC_COMMENTED_OUT.items()))
def test_named_commented_out_types(name: str, value: int) -> None:
    assert RequestType[name] == value
    assert dos_status(RequestType[name]) is DosStatus.COMMENTED_OUT


def test_commented_out_ranges() -> None:
    numbers = {int(t) for t in COMMENTED_OUT_IN_DOS_6_2}
    expected = (
        set(range(110, 116)) | set(range(120, 123)) | set(range(260, 265))
        | set(range(1001, 1013))
    )  # fmt: skip
    assert numbers == expected


def test_protobuf_only_types() -> None:
    assert {int(t) for t in PROTOBUF_ONLY_TYPES} == {402, 403, 404, 600, 601, 1100, 1101, 1102}
    assert all(dos_status(t) is DosStatus.PROTOBUF_ONLY for t in PROTOBUF_ONLY_TYPES)
    assert DOS_6_2_UNIMPLEMENTED == COMMENTED_OUT_IN_DOS_6_2 | PROTOBUF_ONLY_TYPES
    assert not COMMENTED_OUT_IN_DOS_6_2 & PROTOBUF_ONLY_TYPES


def test_every_member_is_accounted_for() -> None:
    known = set(SPEC_TABLE.values()) | {int(t) for t in DOS_6_2_UNIMPLEMENTED}
    assert {int(t) for t in RequestType} == known


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("SET_CLAIM_CODE", RequestType.SET_CLAIM_CODE),
        ("set-claim-code", RequestType.SET_CLAIM_CODE),
        ("CTRL_REQUEST_IS_CLAIMED", RequestType.IS_CLAIMED),
        ("200", RequestType.SET_CLAIM_CODE),
        (506, RequestType.WIFI_SCAN_NETWORKS),
    ],
)
def test_parse_request_type(text: int | str, expected: RequestType) -> None:
    assert parse_request_type(text) is expected


@pytest.mark.parametrize("bad", ["NOPE", "", "9999", 9999, -1])
def test_parse_request_type_rejects_unknown(bad: int | str) -> None:
    with pytest.raises(UsageError):
        parse_request_type(bad)


def test_protobuf_result_codes_map_to_system_errors() -> None:
    # device-os.md §3: PB ResultCode name = int_value.
    expected = {
        "OK": ResultCode.NONE,
        "NOT_ALLOWED": ResultCode.NOT_ALLOWED,
        "TIMEOUT": ResultCode.TIMEOUT,
        "NOT_FOUND": ResultCode.NOT_FOUND,
        "ALREADY_EXIST": ResultCode.ALREADY_EXISTS,
        "INVALID_STATE": ResultCode.INVALID_STATE,
        "NO_MEMORY": ResultCode.NO_MEMORY,
        "INVALID_PARAM": ResultCode.INVALID_ARGUMENT,
    }
    for name, code in expected.items():
        assert result_code_from_protobuf(common_pb2.ResultCode.Value(name)) == code
    assert [int(c) for c in expected.values()] == [0, -130, -160, -170, -180, -210, -260, -270]
    with pytest.raises(UsageError):
        result_code_from_protobuf(99)


@pytest.mark.parametrize(
    ("python_enum", "proto_enum", "rename"),
    [
        (DeviceMode, config_pb2.DeviceMode, lambda name: f"{name}_MODE"),
        (CloudConnectionStatus, cloud_pb2.ConnectionStatus, str),
        (WifiSecurity, wifi_pb2.Security, str),
        (WifiCredentialsType, wifi_pb2.CredentialsType, str),
        (InterfaceType, network_pb2.InterfaceType, str),
        (FirmwareModuleType, describe_pb2.FirmwareModuleType, str),
    ],
)
def test_python_enums_mirror_proto_enums(python_enum, proto_enum, rename) -> None:  # type: ignore[no-untyped-def]
    assert {rename(m.name): int(m) for m in python_enum} == dict(proto_enum.items())


def test_system_capability_flag() -> None:
    assert SystemCapability.COMPRESSED_OTA == config_pb2.COMPRESSED_OTA == 1
