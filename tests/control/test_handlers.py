"""Every handler round-trips through the dispatcher with Device OS's results and bytes."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from control_requests import RequestType as T
from control_requests import requests
from control_requests._pb import cloud_pb2, config_pb2, wifi_pb2
from firmware_sim.hal.dct import STARTUP_MODE_FLAG_OFFSET
from firmware_sim.kernel import World
from firmware_sim.system import Device
from firmware_sim.system.cloud import CloudState
from firmware_sim.system.control_services import DeviceControlServices
from firmware_sim.system.device import FirmwareOptions

from .conftest import make_device, send

OK, NOT_SUPPORTED, BAD_DATA, INVALID_STATE = 0, -120, -280, -210


def test_set_claim_code_bytes_match_particle_usb(p2: tuple) -> None:  # type: ignore[type-arg]
    world, device, _ = p2
    payload = bytes.fromhex("0a0b4d59434c41494d434f4445")
    assert requests.set_claim_code("MYCLAIMCODE").request.payload == payload
    assert send(world, device, 200, payload) == (OK, b"")
    assert device.claim.stored_code() == b"MYCLAIMCODE" + b"\x00" * 52
    device.claim.set_claim_code(None)
    assert send(world, device, 201) == (OK, bytes.fromhex("0801"))
    fresh_world, fresh, _ = make_device()
    assert send(fresh_world, fresh, 201) == (OK, b"")  # claimed=false: default omitted


def test_claim_code_truncation_and_empty(p2: tuple) -> None:  # type: ignore[type-arg]
    world, device, _ = p2
    code64 = "A" * 63 + "B"
    assert send(world, device, 200, requests.set_claim_code(code64).request.payload)[0] == OK
    assert device.claim.stored_code() == b"A" * 63
    code65 = "C" * 65  # exceeds nanopb's max_length 64: the device cannot decode it
    assert send(world, device, 200, requests.set_claim_code(code65).request.payload) == \
        (BAD_DATA, b"")
    assert device.claim.stored_code() == b"A" * 63
    assert send(world, device, 200, b"")[0] == OK  # empty code: "no claim code"
    assert device.claim.stored_code() == b"\x00" * 63 and device.claim.pending_code() is None


def test_identity_requests(p2: tuple) -> None:  # type: ignore[type-arg]
    world, device, _ = p2
    result, reply = send(world, device, T.DEVICE_ID)
    assert result == OK and config_pb2.GetDeviceIdReply.FromString(reply).id == \
        "e00fce68aabbccddeeff0011"
    result, reply = send(world, device, T.SERIAL_NUMBER)
    assert config_pb2.GetSerialNumberReply.FromString(reply).serial == "P046AB1234ABC12"
    result, reply = send(world, device, T.SYSTEM_VERSION)
    assert config_pb2.GetSystemVersionReply.FromString(reply).version == "6.2.0"
    assert send(world, device, T.ECHO, b"\x00\x01hello") == (OK, b"\x00\x01hello")
    assert send(world, device, T.NCP_FIRMWARE_VERSION)[0] == NOT_SUPPORTED
    aworld, argon, _ = make_device("argon")
    result, reply = send(aworld, argon, T.NCP_FIRMWARE_VERSION)
    assert result == OK and config_pb2.GetNcpFirmwareVersionReply.FromString(reply).version


@pytest.mark.parametrize("profile", ["p2", "argon", "photon"])
def test_system_capabilities_reply_is_empty(profile: str) -> None:
    """``getSystemCapabilities`` (system/src/control/config.cpp) encodes an empty reply: no
    flag (COMPRESSED_OTA went with ``HAL_PLATFORM_COMPRESSED_BINARIES``)."""
    world, device, _ = make_device(profile)
    assert send(world, device, T.GET_SYSTEM_CAPABILITIES) == (OK, b"")


def test_listening_mode_requests(p2: tuple) -> None:  # type: ignore[type-arg]
    world, device, _ = p2
    assert send(world, device, T.GET_DEVICE_MODE) == (OK, b"")  # NORMAL_MODE = 0
    assert send(world, device, T.START_LISTENING) == (OK, b"")
    assert device.listening.active
    assert send(world, device, T.START_LISTENING) == (OK, b"")  # already listening -> 0
    assert send(world, device, T.GET_DEVICE_MODE) == (OK, b"\x08\x01")
    assert send(world, device, T.STOP_LISTENING) == (OK, b"")
    assert send(world, device, T.STOP_LISTENING) == (OK, b"")  # always 0
    assert not device.listening.active


def test_setup_done_and_startup_mode(p2: tuple) -> None:  # type: ignore[type-arg]
    world, device, _ = p2
    before = device.dct.image()
    assert send(world, device, T.SET_DEVICE_SETUP_DONE,
                requests.set_device_setup_done(True).request.payload)[0] == OK
    assert send(world, device, T.SET_DEVICE_SETUP_DONE,
                requests.set_device_setup_done(False).request.payload)[0] == NOT_SUPPORTED
    assert device.dct.image() == before  # nothing written
    assert send(world, device, T.SET_STARTUP_MODE, b"\x08\x01")[0] == OK
    device.reset("user")
    world.run_for(2)
    assert device.listening.active  # booted into listening mode once


@pytest.mark.parametrize("stored", [b"\x00", b"\x01", b"\xff"])
def test_is_device_setup_done_is_always_done_whatever_the_dct_holds(stored: bytes) -> None:
    """Device OS 6 hard-codes ``done = true`` (config.cpp ``isDeviceSetupDone``): the DCT's
    setup_done byte is not read."""
    world, device, _ = make_device()
    device.dct.write_field("setup_done", stored)
    assert send(world, device, T.IS_DEVICE_SETUP_DONE) == (OK, b"\x08\x01")


def test_photon_has_no_setup_done_flag() -> None:
    """Device OS 2.3.1 builds SET/IS_DEVICE_SETUP_DONE only with HAL_PLATFORM_DCT_SETUP_DONE
    (the nRF52840 platforms): the Photon answers NOT_SUPPORTED to both."""
    world, device, _ = make_device("photon")
    assert send(world, device, T.IS_DEVICE_SETUP_DONE) == (NOT_SUPPORTED, b"")
    assert send(world, device, T.SET_DEVICE_SETUP_DONE,
                requests.set_device_setup_done(True).request.payload) == (NOT_SUPPORTED, b"")


def _startup_flag(device: Device) -> int:
    return device.dct.read(STARTUP_MODE_FLAG_OFFSET, 1)[0]


@settings(max_examples=25, deadline=None)
@given(mode=st.integers(min_value=0, max_value=255))  # what the device's 1-byte enum holds
def test_set_startup_mode_sets_the_flag_for_listening_and_clears_it_otherwise(
        mode: int) -> None:
    """``setStartupMode``: LISTENING sets SYSTEM_FLAG_STARTUP_LISTEN_MODE; every other mode
    (NORMAL or a number the enum lacks) takes the default branch, clears the flag, answers 0."""
    world, device, _ = _IDLE_DEVICE
    send(world, device, T.SET_STARTUP_MODE, b"\x08\x01")
    assert _startup_flag(device) == 1
    payload = config_pb2.SetStartupModeRequest(mode=mode).SerializeToString()  # type: ignore[arg-type]
    assert send(world, device, T.SET_STARTUP_MODE, payload) == (OK, b"")
    assert _startup_flag(device) == (1 if mode == 1 else 0)


def test_reset_family_acts_1000_ms_after_the_reply() -> None:
    for request_type, check in ((T.RESET, "user"), (T.SAFE_MODE, "safe_mode"),
                                (T.FACTORY_RESET, "factory_reset")):
        world, device, _ = make_device()
        out: list[tuple[int, bytes]] = []
        handle = device.control.submit("usb", request_type, b"",
                                       lambda r, d, out=out: out.append((r, d)))
        world.run_for(0.5)
        assert out == [(OK, b"")]
        world.run_for(5)
        assert world.trace.count("device.reset") == 0, "must wait for the reply's delivery"
        delivered_at = world.now
        handle.reply_delivered()
        world.run_for(0.999)
        assert world.trace.count("device.reset") == 0
        world.run_for(0.002)
        reset = world.trace.first("device.reset")
        assert reset is not None and reset.get("reason") == check
        assert abs(reset.t_us / 1e6 - (delivered_at + 1.0)) < 1e-6
        world.run_for(2)
        assert device.running and (device.safe_mode is (request_type is T.SAFE_MODE))
        if request_type is T.FACTORY_RESET:
            assert len(device.credentials) == 0


def test_a_power_cycle_ends_what_the_last_boot_was_still_to_do() -> None:
    """The dispatcher serves one boot: a power loss between the RESET reply and its action
    drops the action (RAM is gone), and a request the old boot had not handled yet is dropped
    (the host times out) rather than run on the new boot."""
    world, device, _ = make_device()
    out: list[tuple[int, bytes]] = []
    old = device.control
    handle = old.submit("usb", T.RESET, b"", lambda r, d: out.append((r, d)))
    world.run_for(0.1)
    handle.reply_delivered()
    world.run_for(0.5)
    device.power_off()
    device.power_on()
    assert world.run_until(lambda: device.cloud_connected, 60)
    world.run_for(3)
    assert out == [(OK, b"")] and world.trace.count("device.reset") == 0
    assert [b.get("reset_reason") for b in world.trace.find("device.boot")] == [
        "power_down", "power_down"]
    late: list[tuple[int, bytes]] = []
    old.submit("usb", T.SET_CLAIM_CODE, b"", lambda r, d: late.append((r, d)))
    world.run_for(1)
    assert late == [] and world.trace.count("control.dropped") == 1
    assert device.control is not old  # the new boot answers through its own dispatcher
    assert send(world, device, T.IS_CLAIMED)[0] == OK


def test_dfu_mode_stops_the_device() -> None:
    world, device, _ = make_device()
    assert send(world, device, T.DFU_MODE) == (OK, b"")
    world.run_for(1.5)
    assert device.state.value == "dfu" and not device.cloud_connected


def test_cloud_requests(p2: tuple) -> None:  # type: ignore[type-arg]
    world, device, _ = p2
    result, reply = send(world, device, T.CLOUD_GET_CONNECTION_STATUS)
    assert cloud_pb2.GetConnectionStatusReply.FromString(reply).status == 2
    assert send(world, device, T.CLOUD_DISCONNECT) == (OK, b"")
    assert device.cloud.state is CloudState.DISCONNECTED
    assert send(world, device, T.CLOUD_GET_CONNECTION_STATUS) == (OK, b"")
    assert send(world, device, T.CLOUD_CONNECT) == (OK, b"")
    result, reply = send(world, device, T.CLOUD_GET_CONNECTION_STATUS)
    assert result == OK
    assert cloud_pb2.GetConnectionStatusReply.FromString(reply).status == 1
    assert world.run_until(lambda: device.cloud_connected, timeout=30)


def test_wifi_requests(p2: tuple) -> None:  # type: ignore[type-arg]
    world, device, _ = p2
    result, reply = send(world, device, T.WIFI_SCAN_NETWORKS)
    scanned = wifi_pb2.ScanNetworksReply.FromString(reply).networks
    assert [(n.ssid, n.rssi, n.channel) for n in scanned] == [
        ("NewNet", -45, 11), ("HomeNet", -60, 1), ("Cafe", -80, 6)]
    assert scanned[0].bssid == bytes.fromhex("aabbccddee02") and scanned[0].security == 3
    result, reply = send(world, device, T.WIFI_GET_CURRENT_NETWORK)
    current = wifi_pb2.GetCurrentNetworkReply.FromString(reply)
    assert (current.ssid, current.channel, current.rssi) == ("HomeNet", 1, -60)
    # particle-cli's JoinNewNetworkRequest
    payload = requests.join_new_network("NewNet", "new-pass-22", 3).request.payload
    start = world.now
    assert send(world, device, T.WIFI_JOIN_NEW_NETWORK, payload) == (OK, b"")
    assert world.now - start >= 2.5  # completes when the join did
    assert world.trace.count("system_event", event="network_credentials", param=1) == 1
    result, reply = send(world, device, T.WIFI_GET_KNOWN_NETWORKS)
    assert result == OK
    known = wifi_pb2.GetKnownNetworksReply.FromString(reply).networks
    assert [(n.ssid, n.credentials_type) for n in known] == [("HomeNet", 1), ("NewNet", 1)]
    wrong = requests.join_new_network("NewNet2", "x").request.payload
    assert send(world, device, T.WIFI_JOIN_NEW_NETWORK, wrong)[0] == -170  # NOT_FOUND
    assert [c.ssid for c in device.credentials.all()] == ["HomeNet", "NewNet"]
    assert send(world, device, T.WIFI_REMOVE_KNOWN_NETWORK,
                requests.remove_known_network("HomeNet").request.payload) == (OK, b"")
    assert send(world, device, T.WIFI_JOIN_KNOWN_NETWORK,
                requests.join_known_network("NewNet").request.payload) == (OK, b"")
    assert send(world, device, T.WIFI_SET_NETWORK_CREDENTIALS, requests.set_network_credentials(
        "Cafe", None, 0).request.payload) == (OK, b"")
    assert send(world, device, T.WIFI_CLEAR_KNOWN_NETWORKS) == (OK, b"")
    assert len(device.credentials) == 0
    assert world.trace.count("system_event", event="network_credentials", param=2) == 1


@pytest.mark.parametrize("ssid, password", [("HomeNet", "bad-pass-77"), ("Nowhere", "x")])
def test_a_failed_join_of_a_connected_device_goes_back_to_its_known_network(
        p2: tuple, ssid: str, password: str) -> None:  # type: ignore[type-arg]
    """``joinNewNetwork`` restores the old credentials and, as the device had been connected,
    leaves the network up: the device reconnects with what it knew (QA: it stayed offline)."""
    world, device, _ = p2
    payload = requests.join_new_network(ssid, password).request.payload
    assert send(world, device, T.WIFI_JOIN_NEW_NETWORK, payload)[0] == -170  # NOT_FOUND
    assert [(c.ssid, c.password) for c in device.credentials.all()] == [
        ("HomeNet", "home-pass-1")]
    assert world.run_until(lambda: device.cloud_connected, 30)
    assert device.network.current is not None and device.network.current.ssid == "HomeNet"


def test_a_failed_join_of_a_device_that_was_offline_leaves_the_network_down() -> None:
    world, device, _ = make_device(connected=False)
    device.network.disconnect()
    world.run_for(1)
    payload = requests.join_new_network("Nowhere", "x").request.payload
    assert send(world, device, T.WIFI_JOIN_NEW_NETWORK, payload)[0] == -170
    world.run_for(30)
    assert device.network.state.value == "on" and not device.cloud_connected


def test_join_with_unsupported_credentials_type(p2: tuple) -> None:  # type: ignore[type-arg]
    world, device, _ = p2
    msg = wifi_pb2.JoinNewNetworkRequest(ssid="NewNet")
    msg.credentials.type = 7  # type: ignore[assignment]
    assert send(world, device, T.WIFI_JOIN_NEW_NETWORK, msg.SerializeToString())[0] == \
        NOT_SUPPORTED


def test_current_network_when_disconnected() -> None:
    world, device, _ = make_device(connected=False)
    assert send(world, device, T.WIFI_GET_CURRENT_NETWORK)[0] == INVALID_STATE


def test_p2_class_not_supported_requests(p2: tuple) -> None:  # type: ignore[type-arg]
    world, device, _ = p2
    for request_type in (T.SET_SECURITY_KEY, T.GET_SECURITY_KEY, T.SET_SOFTAP_SSID):
        assert send(world, device, request_type)[0] == NOT_SUPPORTED


def test_photon_supports_softap_ssid_but_not_wifi_new() -> None:
    world, device, _ = make_device("photon")
    assert send(world, device, T.SET_SOFTAP_SSID,
                requests.set_softap_ssid("Acme").request.payload) == (OK, b"")
    assert device.config.ssid_prefix() == "Acme"
    assert send(world, device, T.WIFI_SCAN_NETWORKS)[0] == NOT_SUPPORTED


def test_diagnostic_info_and_nyan(p2: tuple) -> None:  # type: ignore[type-arg]
    world, device, _ = p2
    uptime = device.uptime_ms() // 1000
    # system_format_diag_data's JSON: a flat object, sources in id order (sys:uptime 6,
    # net:stat 8 CONNECTED=4, cloud:stat 10 CONNECTED=2, sys:protected 60), integers only
    assert send(world, device, T.DIAGNOSTIC_INFO) == (
        OK, b'{"sys:uptime":%d,"net:stat":4,"cloud:stat":2,"sys:protected":0}' % uptime)
    assert send(world, device, T.DIAGNOSTIC_INFO, b"\x01")[0] == NOT_SUPPORTED
    assert send(world, device, T.START_NYAN_SIGNAL) == (OK, b"")
    assert send(world, device, T.STOP_NYAN_SIGNAL) == (OK, b"")
    assert world.trace.count("led.nyan") == 2


#: ``NetworkDiagnostics::Status`` (system/src/system_network_diagnostics.h) per fwsim NetState
NET_STAT = {"off": 0, "on": 2, "connecting": 3, "connected": 4, "disconnecting": 5}
#: ``CloudDiagnostics::Status`` (system/src/system_cloud_internal.h) per fwsim CloudState
CLOUD_STAT = {"disconnected": 0, "socket_connecting": 1, "handshaking": 1,
              "handshake_pending": 1, "connected": 2}


def test_diagnostic_sources_follow_the_device_through_a_boot() -> None:
    world, device, _ = make_device(connected=False)
    seen: set[tuple[int, int]] = set()
    while not device.cloud_connected:
        assert world.now < 60, "never connected"
        result, reply = send(world, device, T.DIAGNOSTIC_INFO)
        data = json.loads(reply)
        assert result == OK and list(data) == ["sys:uptime", "net:stat", "cloud:stat",
                                               "sys:protected"]
        assert all(type(value) is int for value in data.values())
        assert data["net:stat"] == NET_STAT[device.network.state.value]
        assert data["cloud:stat"] == CLOUD_STAT[device.cloud.state.value]
        assert data["sys:uptime"] == device.uptime_ms() // 1000
        seen.add((data["net:stat"], data["cloud:stat"]))
        world.run_for(0.25)
    assert {(0, 0), (3, 0), (4, 1)} <= seen  # radio off, joining, the cloud handshake
    assert json.loads(send(world, device, T.DIAGNOSTIC_INFO)[1])["cloud:stat"] == 2


def test_sys_protected_reports_the_security_mode() -> None:
    _, device, _ = make_device(options=FirmwareOptions(device_protected=True))
    data = json.loads(DeviceControlServices(device).diagnostics())
    assert data["sys:protected"] == 1  # MODULE_INFO_SECURITY_MODE_PROTECTED


def test_photon_diagnostics_have_no_protected_state_source() -> None:
    """Device OS 2.3.1 predates device protection (6.0.0) and its ``sys:protected`` source."""
    world, device, _ = make_device("photon")
    result, reply = send(world, device, T.DIAGNOSTIC_INFO)
    assert result == OK and list(json.loads(reply)) == ["sys:uptime", "net:stat", "cloud:stat"]


def test_features_and_protected_state(p2: tuple) -> None:  # type: ignore[type-arg]
    world, device, _ = p2
    assert send(world, device, T.SET_FEATURE, b"\x08\x01\x10\x01") == (OK, b"")
    assert send(world, device, T.GET_FEATURE, b"\x08\x01") == (OK, b"\x08\x01")
    assert send(world, device, T.GET_PROTECTED_STATE) == (OK, b"")


@settings(max_examples=25, deadline=None)
@given(feature=st.integers(min_value=0, max_value=255).filter(lambda f: f != 1),
       enabled=st.booleans())
def test_features_other_than_ethernet_detection_are_not_supported(
        feature: int, enabled: bool) -> None:
    """``setFeature`` / ``getFeature`` (config.cpp): any feature but ETHERNET_DETECTION takes
    the default branch, NOT_SUPPORTED, for both; nothing is written."""
    world, device, _ = _IDLE_DEVICE
    before = device.dct.image()
    set_payload = config_pb2.SetFeatureRequest(
        feature=feature, enabled=enabled).SerializeToString()  # type: ignore[arg-type]
    get_payload = config_pb2.GetFeatureRequest(feature=feature).SerializeToString()  # type: ignore[arg-type]
    assert send(world, device, T.SET_FEATURE, set_payload) == (NOT_SUPPORTED, b"")
    assert send(world, device, T.GET_FEATURE, get_payload) == (NOT_SUPPORTED, b"")
    assert device.dct.image() == before


def _world_device(profile: str = "p2") -> tuple[World, Device]:
    world, device, _ = make_device(profile)
    return world, device


SERVER_SETTINGS = (
    (T.SET_SERVER_ADDRESS, config_pb2.SetServerAddressRequest(
        protocol=2, address="cloud.local", port=5699).SerializeToString()),
    (T.GET_SERVER_ADDRESS, b"\x08\x02"),
    (T.SET_SERVER_PROTOCOL, b"\x08\x02"),
    (T.GET_SERVER_PROTOCOL, b""),
)


@pytest.mark.parametrize("profile", ["p2", "photon2", "argon"])
def test_device_os_6_does_not_support_the_server_settings(profile: str) -> None:
    """config.cpp's handleSet/GetServerAddressRequest and handleSet/GetServerProtocolRequest
    return SYSTEM_ERROR_NOT_SUPPORTED unconditionally in Device OS 6.2."""
    world, device, _ = make_device(profile)
    for request_type, payload in SERVER_SETTINGS:
        assert send(world, device, request_type, payload) == (NOT_SUPPORTED, b"")


def test_photon_server_address_and_protocol_requests() -> None:
    """Device OS 2.3.1 implements the four outside the nRF52840: the Photon answers them."""
    world, device, _ = make_device("photon")
    set_address = config_pb2.SetServerAddressRequest(protocol=1, address="cloud.local", port=5699)
    assert send(world, device, T.SET_SERVER_ADDRESS, set_address.SerializeToString()) == (OK, b"")
    result, reply = send(world, device, T.GET_SERVER_ADDRESS, b"\x08\x01")
    assert result == OK
    got = config_pb2.GetServerAddressReply.FromString(reply)
    assert (got.address, got.port) == ("cloud.local", 5699)
    bad = config_pb2.SetServerAddressRequest(protocol=7, address="x", port=1)
    assert send(world, device, T.SET_SERVER_ADDRESS, bad.SerializeToString())[0] == -270
    assert send(world, device, T.GET_SERVER_PROTOCOL) == (OK, b"\x08\x01")  # TCP_PROTOCOL
    assert send(world, device, T.SET_SERVER_PROTOCOL, b"\x08\x01") == (OK, b"")
    assert send(world, device, T.SET_SERVER_PROTOCOL, b"\x08\x02")[0] == NOT_SUPPORTED


def test_set_protected_state_is_not_simulated(p2: tuple) -> None:  # type: ignore[type-arg]
    world, device, _ = p2
    assert send(world, device, T.SET_PROTECTED_STATE, b"\x08\x01")[0] == NOT_SUPPORTED


def test_a_claim_code_starting_with_0xff_is_stored_raw_and_never_published() -> None:
    """Issue 15 item 2: nanopb hands the string's bytes over unchanged (no UTF-8 repair), so a
    code whose first byte is 0xFF lands in the DCT as 0xFF, and Device OS does not publish a
    code starting with 0xFF."""
    world, device, cloud = make_device()
    assert send(world, device, 200, b"\x0a\x04\xffABC") == (OK, b"")
    assert device.claim.stored_code() == b"\xffABC" + b"\x00" * 59
    device.power_cycle()  # the next connection is a full handshake
    assert world.run_until(lambda: device.cloud_connected, timeout=60)
    world.run_for(5)
    assert not cloud.bus.find("spark/device/claim/code")
    assert not any("claim/code" in line for line in device.log_lines())


def test_a_claim_code_that_is_not_utf8_is_published_byte_for_byte() -> None:
    world, device, _cloud = make_device()
    code = b"A\xff\xfeB" + b"C" * 59
    assert send(world, device, 200, b"\x0a\x3f" + code) == (OK, b"")
    assert device.claim.stored_code() == code
    device.power_cycle()
    assert world.run_until(lambda: device.cloud_connected, timeout=60)
    sent = [r for r in world.trace.find("event", node="cloud")
            if r.get("name") == "spark/device/claim/code"]
    assert len(sent) == 1 and sent[0].get("size") == 63
    line = next(line for line in device.log_lines() if "claim/code event" in line)
    assert line.endswith("for code A\\xff\\xfeB" + "C" * 59)  # shown escaped


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=64).filter(lambda b: b"\x00" not in b))
def test_claim_code_bytes_reach_the_dct_unchanged(code: bytes) -> None:
    world, device, _ = _IDLE_DEVICE
    result, _ = send(world, device, 200, b"\x0a" + bytes([len(code)]) + code)
    assert result == OK
    assert device.claim.stored_code() == code[:63].ljust(63, b"\x00")


_IDLE_DEVICE = make_device(connected=False)
