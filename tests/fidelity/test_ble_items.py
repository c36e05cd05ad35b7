"""Issue 15, BLE: the Android client's 10,240-byte frame cap, the FEATURE_DISABLE_LISTENING_MODE
rules (listening mode refused, the BLE channel not initialised at start-up except in safe
mode) and the provisioning-mode service-UUID override (allowed only with that feature)."""

from __future__ import annotations

import pytest

from control_requests import requests
from control_requests.types import RequestType
from firmware_sim.kernel.errors import PeerProtocolError, UsageError
from firmware_sim.system.features import Feature
from tests.transports.ble.conftest import SECRET, make_rig
from transports.ble.advertising import parse_advertisement
from transports.ble.channel_crypto import ChannelSession
from transports.ble.client_channel import CLIENT_MAX_FRAME_SIZE, ClientControlChannel
from transports.ble.ecjpake import EcJpakeRole
from transports.ble.gatt import SERVICE_UUID
from transports.ble.peripheral import NOT_ALLOWED

CUSTOM_UUID = "12345678-1234-5678-1234-56789abcdef0"


def test_android_client_caps_frames_at_10240_bytes() -> None:
    rig = make_rig()
    central = rig.central()
    assert central.open_session()
    channel = central.channel
    assert channel is not None and channel.max_frame_size == CLIENT_MAX_FRAME_SIZE == 10240
    assert len(channel.request(RequestType.ECHO, bytes(10240 - 16))[1]) == 10240  # fits
    with pytest.raises(UsageError, match="10240-byte cap"):
        channel.request(RequestType.ECHO, bytes(10240 - 15))
    # a reply announcing more than the cap fails the channel (TOO_LARGE)
    session = ChannelSession(bytes(32), EcJpakeRole.SERVER)
    reader = ClientControlChannel(SECRET)
    reader.session = ChannelSession(bytes(32), EcJpakeRole.CLIENT)
    reader.state = reader.state.READY
    big = session.seal_reply(1, 0, bytes(10240 - 15))  # 2 + 6 + payload + 8 = 10241 bytes
    with pytest.raises(PeerProtocolError, match="TOO_LARGE"):
        reader.data_received(big)
    assert reader.state.value == "failed"


def test_disable_listening_mode_feature() -> None:
    rig = make_rig(boot=False)
    device = rig.device
    assert device.features.get(Feature.DISABLE_LISTENING_MODE) is False  # erased DCT
    assert device.set_feature(Feature.DISABLE_LISTENING_MODE, True) == 0
    assert device.dct.read_field("feature_flags") == bytes([0xFF & ~0x08, 0xFF, 0xFF, 0xFF])
    device.power_on()
    rig.run(2)
    # no credentials, yet no listening mode; and the BLE control channel is not initialised
    assert not device.listening.active
    assert rig.world.trace.count("listening.not_allowed") == 1
    assert rig.peripheral.channel is None and not rig.peripheral.advertising
    assert rig.world.trace.count("ble.channel_not_initialised") == 1
    out: list[tuple[int, bytes]] = []
    call = requests.start_listening()
    device.control.submit("usb", call.request.type, b"", lambda r, p: out.append((r, p)))
    rig.run(0.1)
    assert out == [(-130, b"")]  # START_LISTENING: NOT_ALLOWED
    # safe mode: listening allowed and the channel initialised
    device.reset("safe_mode", safe_mode=True)
    rig.run(2)
    assert device.safe_mode and device.listening.active and rig.peripheral.channel is not None


def test_setting_the_feature_while_listening_leaves_listening_mode() -> None:
    rig = make_rig()
    device = rig.device
    assert device.listening.active  # no credentials: listening
    device.particle.enable_feature(Feature.DISABLE_LISTENING_MODE)
    assert not device.listening.active
    device.particle.disable_feature(Feature.DISABLE_LISTENING_MODE)
    assert device.listening.enter()


def test_provisioning_mode_and_its_custom_service_uuid_need_the_feature() -> None:
    rig = make_rig(wifi=True)
    peripheral = rig.peripheral
    assert peripheral.set_custom_service_uuid(CUSTOM_UUID) == NOT_ALLOWED
    assert peripheral.set_provisioning_mode(True) == NOT_ALLOWED
    rig.device.set_feature(Feature.DISABLE_LISTENING_MODE, True)
    rig.device.reset("user")
    rig.run(2)
    assert peripheral.channel is None  # the feature: not initialised at start-up
    assert peripheral.set_custom_service_uuid(CUSTOM_UUID) == 0
    assert peripheral.set_provisioning_mode(True) == 0
    advert = peripheral.advertisement()
    assert advert is not None
    parsed = parse_advertisement(advert.advertising_data, advert.scan_response)
    assert parsed.service_uuids == [CUSTOM_UUID]
    central = rig.central()
    assert central.open_session()  # the channel works in provisioning mode
    assert central.request(RequestType.ECHO, b"prov") == (0, b"prov")
    central.disconnect()
    rig.device.reset("user")  # RAM: the override and provisioning mode end with the boot
    rig.run(2)
    assert peripheral.service_uuid == SERVICE_UUID and not peripheral.provisioning
