"""ControlClient and the request builders over a scripted in-memory transport."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from google.protobuf.message import Message

from control_requests import ControlClient, ControlRequestFailed, codec, requests
from control_requests._pb import cellular_pb2, cloud_pb2, config_pb2, wifi_pb2
from control_requests.types import (
    CloudConnectionStatus,
    DeviceMode,
    RequestType,
    WifiCredentialsType,
    WifiSecurity,
)
from firmware_sim.kernel.errors import DeviceOsError, ResultCode

Handler = Callable[[bytes], tuple[int, bytes]]


class ScriptedClient(ControlClient):
    """Answers each request type from a table; records what was sent."""

    def __init__(self, handlers: dict[int, Handler]) -> None:
        self.handlers = handlers
        self.sent: list[tuple[int, bytes]] = []

    async def send_request(self, request_type: int, payload: bytes) -> tuple[int, bytes]:
        self.sent.append((request_type, payload))
        handler = self.handlers.get(request_type)
        if handler is None:
            return ResultCode.NOT_SUPPORTED, b""
        return handler(payload)


def reply(message: Message) -> Handler:
    return lambda _payload: (0, codec.encode_reply(message))


def run(coroutine):  # type: ignore[no-untyped-def]
    return asyncio.run(coroutine)


def test_claim_code_round_trip() -> None:
    stored: list[bytes] = []

    def set_code(payload: bytes) -> tuple[int, bytes]:
        request = codec.decode_request(RequestType.SET_CLAIM_CODE, payload)
        assert isinstance(request, codec.device_class(config_pb2.SetClaimCodeRequest))
        stored.append(request.code)  # type: ignore[attr-defined]
        return 0, b""

    client = ScriptedClient({200: set_code, 201: reply(config_pb2.IsClaimedReply(claimed=True))})
    assert run(client.set_claim_code("MYCLAIMCODE")) is None
    assert run(client.is_claimed()) is True
    assert stored == [b"MYCLAIMCODE"]
    assert client.sent == [(200, bytes.fromhex("0a0b4d59434c41494d434f4445")), (201, b"")]


def test_failure_raises_control_request_failed() -> None:
    client = ScriptedClient({200: lambda _p: (ResultCode.BAD_DATA, b"")})
    with pytest.raises(ControlRequestFailed) as caught:
        run(client.set_claim_code("C" * 65))
    error = caught.value
    assert isinstance(error, DeviceOsError)
    assert error.code == -280 and error.request_type == 200
    assert "SET_CLAIM_CODE" in str(error) and "BAD_DATA" in str(error)
    with pytest.raises(ControlRequestFailed) as unknown:
        run(client.get_device_id())
    assert unknown.value.code == ResultCode.NOT_SUPPORTED


def test_identity_helpers() -> None:
    client = ScriptedClient(
        {
            20: reply(config_pb2.GetDeviceIdReply(id="0123456789abcdef01234567")),
            21: reply(config_pb2.GetSerialNumberReply(serial="P2ABCDEF12345678")),
            30: reply(config_pb2.GetSystemVersionReply(version="6.2.1")),
            31: reply(config_pb2.GetNcpFirmwareVersionReply(version="1.0", module_version=7)),
            32: reply(config_pb2.GetSystemCapabilitiesReply(flags=1)),
            1: lambda payload: (0, payload),
            100: lambda _p: (0, b"diag"),
        }
    )
    assert run(client.get_device_id()) == "0123456789abcdef01234567"
    assert run(client.get_serial_number()) == "P2ABCDEF12345678"
    assert run(client.get_system_version()) == "6.2.1"
    assert run(client.get_ncp_firmware_version()) == requests.NcpFirmwareVersion("1.0", 7)
    assert run(client.get_system_capabilities()) == 1
    assert run(client.echo(b"\x00hello")) == b"\x00hello"
    assert run(client.diagnostic_info()) == b"diag"
    assert client.sent[-1] == (100, b"")


def test_mode_and_cloud_helpers() -> None:
    client = ScriptedClient(
        {
            72: reply(config_pb2.GetDeviceModeReply(mode=config_pb2.LISTENING_MODE)),
            74: reply(config_pb2.IsDeviceSetupDoneReply(done=True)),
            76: reply(config_pb2.GetProtectedStateReply(state=True)),
            300: reply(cloud_pb2.GetConnectionStatusReply(status=cloud_pb2.CONNECTING)),
            **{t: (lambda _p: (0, b"")) for t in (40, 41, 50, 60, 70, 71, 73, 75, 301, 302)},
        }
    )
    assert run(client.get_device_mode()) is DeviceMode.LISTENING
    assert run(client.is_device_setup_done()) is True
    assert run(client.get_protected_state()) == requests.ProtectedState(True, False)
    assert run(client.cloud_connection_status()) is CloudConnectionStatus.CONNECTING
    for action in (
        client.reset(),
        client.factory_reset(),
        client.enter_dfu_mode(),
        client.enter_safe_mode(),
        client.start_listening(),
        client.stop_listening(),
        client.set_device_setup_done(),
        client.set_startup_mode(DeviceMode.LISTENING),
        client.cloud_connect(),
        client.cloud_disconnect(),
    ):
        assert run(action) is None
    sent = dict(client.sent)
    assert sent[73] == bytes.fromhex("0801") and sent[75] == bytes.fromhex("0801")
    assert all(sent[t] == b"" for t in (40, 41, 50, 60, 70, 71, 301, 302))


def test_unknown_enum_values_stay_integers() -> None:
    client = ScriptedClient({72: lambda _p: (0, bytes.fromhex("0809"))})
    assert run(client.get_device_mode()) == 9


def test_wifi_helpers() -> None:
    scan = wifi_pb2.ScanNetworksReply(
        networks=[
            wifi_pb2.ScanNetworksReply.Network(
                ssid="Home", bssid=bytes.fromhex("a0b1c2d3e4f5"), security=3, channel=6, rssi=-50
            ),
            wifi_pb2.ScanNetworksReply.Network(bssid=bytes(6), security=42, channel=11),
        ]
    )
    known = wifi_pb2.GetKnownNetworksReply(
        networks=[
            wifi_pb2.GetKnownNetworksReply.Network(ssid="Home", security=3, credentials_type=1)
        ]
    )
    current = wifi_pb2.GetCurrentNetworkReply(
        ssid="Home", bssid=bytes.fromhex("a0b1c2d3e4f5"), channel=6, rssi=-51
    )
    client = ScriptedClient(
        {
            506: reply(scan),
            502: reply(known),
            505: reply(current),
            **{t: (lambda _p: (0, b"")) for t in (500, 501, 503, 504, 507)},
        }
    )
    networks = run(client.scan_networks())
    assert networks[0] == requests.ScannedNetwork(
        "Home", bytes.fromhex("a0b1c2d3e4f5"), WifiSecurity.WPA2_PSK, 6, -50
    )
    assert networks[0].bssid_text == "a0:b1:c2:d3:e4:f5"
    assert networks[1].ssid == "" and networks[1].security == 42
    assert run(client.get_known_networks()) == [
        requests.KnownNetwork("Home", WifiSecurity.WPA2_PSK, WifiCredentialsType.PASSWORD)
    ]
    assert run(client.get_current_network()).bssid_text == "a0:b1:c2:d3:e4:f5"
    run(client.join_new_network("Home", "pw", WifiSecurity.WPA2_PSK, hidden=True))
    run(client.set_network_credentials("Open"))
    run(client.join_known_network("Home"))
    run(client.remove_known_network("Home"))
    run(client.clear_known_networks())
    sent = dict(client.sent)
    join = codec.decode_request(500, sent[500])
    assert join == codec.device_view(wifi_pb2.JoinNewNetworkRequest(
        ssid="Home",
        security=wifi_pb2.WPA2_PSK,
        credentials=wifi_pb2.Credentials(type=wifi_pb2.PASSWORD, password="pw"),
        hidden=True,
    ))
    assert codec.decode_request(507, sent[507]) == codec.device_view(
        wifi_pb2.SetNetworkCredentialsRequest(ssid="Open", security=wifi_pb2.NO_SECURITY))
    assert sent[501] == sent[503] == bytes.fromhex("0a04486f6d65")
    assert sent[504] == b""


def test_settings_helpers() -> None:
    client = ScriptedClient(
        {
            211: reply(config_pb2.GetSecurityKeyReply(data=b"DER")),
            221: reply(config_pb2.GetServerAddressReply(address="udp.example", port=5684)),
            554: reply(cellular_pb2.GetIccidReply(iccid="8934", imei="3569")),
            **{t: (lambda _p: (0, b"")) for t in (210, 220, 240, 230, 231)},
        }
    )
    assert run(client.get_security_key(1)) == b"DER"
    assert run(client.get_server_address()) == requests.ServerAddress("udp.example", 5684)
    assert run(client.get_iccid()) == requests.CellularIdentity("8934", "3569")
    run(client.set_security_key(4, b"key"))
    run(client.set_server_address("udp.example", 5684))
    run(client.set_softap_ssid("Photon", "ABC"))
    run(client.start_nyan_signal())
    run(client.stop_nyan_signal())
    sent = dict(client.sent)
    assert codec.decode_request(240, sent[240]) == codec.device_view(
        config_pb2.SetSoftApSsidRequest(prefix="Photon", suffix="ABC"))
    assert codec.decode_request(220, sent[220]) == codec.device_view(
        config_pb2.SetServerAddressRequest(protocol=config_pb2.UDP_PROTOCOL,
                                           address="udp.example", port=5684))


def test_send_raw_never_raises() -> None:
    client = ScriptedClient({})
    assert run(client.send_raw(9999, b"\xff")) == (ResultCode.NOT_SUPPORTED, b"")


def test_build_checks_message_class() -> None:
    assert requests.build(200, code="X") == requests.EncodedRequest(200, b"\x0a\x01X")
    message = config_pb2.SetClaimCodeRequest(code="X")
    assert requests.build(RequestType.SET_CLAIM_CODE, message).payload == b"\x0a\x01X"
    with pytest.raises(TypeError):
        requests.build(201, message)
    with pytest.raises(TypeError):
        requests.build(200, message, code="Y")


def test_call_result_accepts_any_pair() -> None:
    call = requests.get_device_id()
    assert call.request == requests.EncodedRequest(20, b"")
    assert call.result(requests.ControlReply(0, b"\x0a\x01a")) == "a"
    with pytest.raises(ControlRequestFailed):
        call.result((-130, b""))
    assert requests.raw(10, b"x").result((0, b"y")) == b"y"
    assert requests.app_custom(b"x").request == requests.EncodedRequest(10, b"x")
