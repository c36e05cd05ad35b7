"""Dispatch order and error results (device-os.md §3 "Dispatch semantics")."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from control_requests import RequestType as T
from control_requests.dispatcher import AppRequest, FilterAction
from control_requests.types import DOS_6_2_UNIMPLEMENTED
from firmware_sim.system import FirmwareOptions

from .conftest import make_device, send

NOT_SUPPORTED, NOT_ALLOWED, CANCELLED, BAD_DATA, PROTECTED = -120, -130, -140, -280, -1801


def test_unknown_and_app_custom_types_without_an_app_handler(p2: tuple) -> None:  # type: ignore[type-arg]
    world, device, _ = p2
    for request_type in (T.APP_CUSTOM, 9999, 0xFFFF, T.WIFI_SCAN, T.MESH_AUTH, T.ENV_GET):
        assert send(world, device, request_type) == (NOT_SUPPORTED, b"")


def test_unknown_types_go_to_the_app_handler(p2: tuple) -> None:  # type: ignore[type-arg]
    world, device, _ = p2
    seen: list[tuple[str, int, bytes]] = []

    def app(request: AppRequest) -> None:
        seen.append((request.channel, request.type, request.payload))
        request.reply(0, b"app:" + request.payload)

    device.control.set_app_handler(app)
    assert send(world, device, T.APP_CUSTOM, b"x", channel="ble") == (0, b"app:x")
    assert send(world, device, 4321, b"y") == (0, b"app:y")
    assert send(world, device, T.WIFI_SET_CREDENTIALS, b"z") == (0, b"app:z")  # commented out
    assert send(world, device, T.DEVICE_ID)[0] == 0  # known types never reach the app
    assert seen == [("ble", 10, b"x"), ("usb", 4321, b"y"), ("usb", 113, b"z")]


def test_filter_denies_with_not_allowed(p2: tuple) -> None:  # type: ignore[type-arg]
    world, device, _ = p2
    device.control.set_request_filter(
        lambda channel, t: FilterAction.DENY if (channel, t) == ("usb", 200)
        else FilterAction.ACCEPT)
    before = device.claim.stored_code()
    assert send(world, device, 200, b"\x0a\x01A") == (NOT_ALLOWED, b"")
    assert device.claim.stored_code() == before
    assert send(world, device, 200, b"\x0a\x01A", channel="ble")[0] == 0


def test_protected_device_checks_before_the_filter() -> None:
    world, device, _ = make_device(options=FirmwareOptions(device_protected=True))
    device.control.set_request_filter(lambda channel, t: FilterAction.DENY)
    assert send(world, device, T.SET_CLAIM_CODE, b"\x0a\x01A") == (PROTECTED, b"")
    assert send(world, device, T.GET_PROTECTED_STATE) == (NOT_ALLOWED, b"")
    device.control.set_request_filter(None)
    assert send(world, device, T.GET_PROTECTED_STATE) == (0, b"\x08\x01")


#: ``security_mode_check_control_request`` (services/src/security_mode.cpp): over USB (every
#: channel that is not BLE) and BLE ...
PROTECTED_ALLOWED = {T.SET_PROTECTED_STATE, T.GET_PROTECTED_STATE, T.DEVICE_ID, T.APP_CUSTOM}
#: ... and over BLE only
PROTECTED_ALLOWED_BLE = {T.WIFI_SCAN_NETWORKS, T.WIFI_JOIN_NEW_NETWORK,
                         T.WIFI_CLEAR_KNOWN_NETWORKS}


@pytest.mark.parametrize("channel", ["usb", "ble", "direct", "control", "steering"])
def test_protected_device_allow_list_per_transport(channel: str) -> None:
    """Device OS's allow-list, by carrier: BLE adds the Wi-Fi provisioning requests; every
    other channel (the in-process ones too) counts as USB, as Device OS counts every channel
    that is not its BLE channel."""
    world, device, _ = make_device(options=FirmwareOptions(device_protected=True))
    allowed = PROTECTED_ALLOWED | (PROTECTED_ALLOWED_BLE if channel == "ble" else set())
    for request_type in T:
        result, _ = send(world, device, request_type, channel=channel)
        assert (result == PROTECTED) is (request_type not in allowed), (request_type, result)
    assert send(world, device, T.DEVICE_ID, channel=channel)[0] == 0
    assert send(world, device, T.GET_PROTECTED_STATE, channel=channel) == (0, b"\x08\x01")


def test_protected_device_passes_app_custom_to_the_app_but_not_unknown_types() -> None:
    world, device, _ = make_device(options=FirmwareOptions(device_protected=True))
    seen: list[int] = []

    def app(request: AppRequest) -> None:
        seen.append(request.type)
        request.reply(0, b"ok")

    device.control.set_app_handler(app)
    for channel in ("usb", "ble"):
        assert send(world, device, T.APP_CUSTOM, b"x", channel=channel) == (0, b"ok")
        assert send(world, device, 4321, b"y", channel=channel) == (PROTECTED, b"")
    assert seen == [10, 10]


def test_protected_device_provisions_wifi_over_ble_only() -> None:
    world, device, _ = make_device(options=FirmwareOptions(device_protected=True))
    assert send(world, device, T.WIFI_CLEAR_KNOWN_NETWORKS) == (PROTECTED, b"")
    assert len(device.credentials) == 1
    assert send(world, device, T.WIFI_CLEAR_KNOWN_NETWORKS, channel="ble") == (0, b"")
    assert len(device.credentials) == 0


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(number=st.integers(min_value=0, max_value=0xFFFF).filter(
    lambda n: n not in {int(t) for t in PROTECTED_ALLOWED | PROTECTED_ALLOWED_BLE}),
    channel=st.sampled_from(["usb", "ble", "direct"]))
def test_protected_device_refuses_every_other_number(number: int, channel: str) -> None:
    world, device, _ = _PROTECTED_DEVICE
    assert send(world, device, number, b"\x00", channel=channel) == (PROTECTED, b"")


_PROTECTED_DEVICE = make_device(connected=False, options=FirmwareOptions(device_protected=True))


def test_undecodable_payload_is_bad_data(p2: tuple) -> None:  # type: ignore[type-arg]
    world, device, _ = p2
    assert send(world, device, T.SET_CLAIM_CODE, b"\x0a\xff") == (BAD_DATA, b"")
    assert send(world, device, T.WIFI_JOIN_NEW_NETWORK, b"\x12\x07abcdefg") == (BAD_DATA, b"")


def test_cancel_completes_with_cancelled_and_ignores_late_results(p2: tuple) -> None:  # type: ignore[type-arg]
    world, device, _ = p2
    out: list[tuple[int, bytes]] = []
    from control_requests import requests

    payload = requests.join_new_network("NewNet", "new-pass-22").request.payload
    handle = device.control.submit("usb", T.WIFI_JOIN_NEW_NETWORK, payload,
                                   lambda r, d: out.append((r, d)))
    world.run_for(0.5)
    handle.cancel()
    world.run_for(10)
    assert out == [(CANCELLED, b"")]
    assert world.trace.count("control.late_completion") == 1


TYPES = sorted({int(t) for t in T} | {2, 11, 999, 4242, 0xFFFF})


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(request_type=st.sampled_from(TYPES), payload=st.binary(max_size=96))
def test_arbitrary_bytes_give_a_defined_result_and_never_touch_the_dct_elsewhere(
        request_type: int, payload: bytes) -> None:
    world, device, _ = _shared()
    before = device.dct.image()
    before_claim = device.claim.stored_code()
    result, _ = send(world, device, request_type, payload, timeout=120)
    assert isinstance(result, int) and -2100 <= result <= 0
    world.run_for(2)  # let post-reply actions (reset, DFU...) happen inside this example
    after = device.dct.image()
    if request_type not in (T.SET_CLAIM_CODE, T.SET_STARTUP_MODE, T.SET_FEATURE,
                            T.SET_SOFTAP_SSID):
        assert after == before, f"type {request_type} changed the DCT"
    elif request_type != T.SET_CLAIM_CODE:
        assert device.claim.stored_code() == before_claim
    if request_type in DOS_6_2_UNIMPLEMENTED:
        assert result == NOT_SUPPORTED
    # keep the shared device usable for the next example
    if not device.running or device.listening.active:
        _SHARED.clear()


_SHARED: list[tuple] = []  # type: ignore[type-arg]


def _shared() -> tuple:  # type: ignore[type-arg]
    if not _SHARED:
        _SHARED.append(make_device())
    return _SHARED[0]


@pytest.mark.parametrize("request_type", [T.RESET, T.FACTORY_RESET, T.DFU_MODE, T.SAFE_MODE,
                                          T.IS_CLAIMED, T.DEVICE_ID, T.START_LISTENING])
def test_requests_without_fields_ignore_garbage_payloads(request_type: int) -> None:
    world, device, _ = make_device()
    assert send(world, device, request_type, b"\xff\x00garbage")[0] == 0


def test_a_request_cancelled_before_it_ran_still_acts(p2: tuple) -> None:  # type: ignore[type-arg]
    world, device, _ = p2
    out: list[tuple[int, bytes]] = []
    handle = device.control.submit("usb", T.SET_CLAIM_CODE, b"\x0a\x03XYZ",
                                   lambda r, d: out.append((r, d)))
    handle.cancel()
    world.run_for(1)
    assert out == [(CANCELLED, b"")]
    assert device.claim.pending_code() == "XYZ"
