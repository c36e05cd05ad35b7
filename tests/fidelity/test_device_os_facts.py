"""Issue 15: the Device OS facts that were missing (now implemented) and those that were
implemented but never asserted - one test per fact, each against the spec's value or order."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from cloud_sim import Cloud, EndpointOptions, Principal
from firmware_sim.communication import wire
from firmware_sim.communication.protocol import ProtocolResult
from firmware_sim.kernel import World
from firmware_sim.system import (
    AccessPoint,
    CloudStatus,
    Device,
    Firmware,
    FirmwareOptions,
    Particle,
    SystemEvent,
    SystemMode,
    WifiCredentials,
    radio_environment,
)
from firmware_sim.system.cloud import CLEAR_SESSION, reset_reason_event_data
from firmware_sim.system.device import RESET_REASONS
from firmware_sim.system.server_config import (
    DEFAULT_SERVER_PUBLIC_KEY,
    ServerMovedRequest,
    ServerSettings,
    encode_server_moved,
    server_moved_digest_input,
)


def make(seed: int = 0, *, options: FirmwareOptions | None = None,
         firmware: type[Firmware] | None = None, endpoint: EndpointOptions | None = None,
         timing: str = "fast") -> tuple[World, Device, Cloud]:
    world = World(seed)
    radio_environment(world).add(AccessPoint("HomeNet", "home-pass-1"))
    cloud = Cloud(world, options=endpoint)
    opts = options or FirmwareOptions()
    from dataclasses import replace

    device = Device(world, "dev", wifi=[WifiCredentials("HomeNet", "home-pass-1")],
                    options=replace(opts, timing=timing), firmware=firmware)
    device.attach_cloud(cloud.connector())
    return world, device, cloud


def connected(seed: int = 0, **kwargs: object) -> tuple[World, Device, Cloud]:
    world, device, cloud = make(seed, **kwargs)  # type: ignore[arg-type]
    device.power_on()
    assert world.run_until(lambda: device.cloud_connected, timeout=60)
    return world, device, cloud


def lines(device: Device) -> list[str]:
    return [line[11:] for line in device.log_lines()]


def sent(world: World, what: str) -> list[int]:
    return [r.get("mid") for r in world.trace.find("coap.send", node="dev")
            if r.get("what") == what]


# -- missing items, now implemented ----------------------------------------------------------


def test_key_restore_event_restores_the_server_settings_and_resets() -> None:
    world, device, cloud = connected()
    device.server_config.update(_other_settings())  # a server that is not the default
    assert cloud.endpoint.send_event(device.device_id, "spark/device/key/restore", b"")
    assert world.run_until(lambda: device.cloud_connected and device.boot_count == 2, 60)
    text = lines(device)
    assert "[system] WARN: Received key restore event" in text
    assert "[system] INFO: Updating UDP server settings" in text
    assert '[system] INFO: Address: "$id.udp.particle.io"; port: 5684' in text
    settings = device.server_config.settings()
    assert settings is not None and settings.public_key == DEFAULT_SERVER_PUBLIC_KEY
    assert [e.data for e in cloud.bus.find("spark/device/last_reset")][-1] == "config_update"


def _other_settings() -> ServerSettings:
    key = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return ServerSettings("10.0.0.9", 5685, key)


def test_updates_forced_and_pending_events() -> None:
    seen: list[int] = []

    class Watcher(Firmware):
        def setup(self, particle: Particle) -> None:
            particle.on_system_event(SystemEvent.FIRMWARE_UPDATE_STATUS,
                                     lambda event, param: seen.append(param))

    world, device, cloud = connected(firmware=Watcher)
    forced = [e.data for e in cloud.bus.find("particle/device/updates/forced")]
    assert forced == ["false"]
    # strncmp over the received lengths: "t" is a prefix of "true"; "pend" selects pending
    cloud.endpoint.send_event(device.device_id, "particle/device/updates/forced", b"t")
    cloud.endpoint.send_event(device.device_id, "particle/device/updates/pend", b"true")
    world.run_for(2)
    assert device.updates_forced is True and device.updates_pending is True
    cloud.endpoint.send_event(device.device_id, "particle/device/updates/pending", b"false")
    world.run_for(2)
    assert seen == [2, 1]  # PENDING, then NOT_AVAILABLE: firmware_update_status on change
    device.cloud_disconnect()
    device.cloud_connect()
    assert world.run_until(lambda: device.cloud_connected, 60)
    assert [e.data for e in cloud.bus.find("particle/device/updates/forced")][-1] == "true"


def test_time_request_on_resume_only_when_the_time_is_unknown() -> None:
    world, device, _ = connected()
    assert len(sent(world, "time request")) == 1  # the full handshake asks
    device.reset("user")
    assert world.run_until(lambda: device.cloud_connected and device.boot_count == 2, 60)
    assert len(sent(world, "time request")) == 1  # resumed, RTC valid: no request
    device.retained.rtc_valid = False  # an RTC that lost its time, never synced this boot
    device.reset("user")
    assert world.run_until(lambda: device.cloud_connected and device.boot_count == 3, 60)
    assert device.cloud.handshakes == {"full": 0, "resumed": 1}
    assert len(sent(world, "time request")) == 2


def test_panic_reset_info_names_the_panic() -> None:
    world, device, cloud = connected()
    device.panic(1)  # HardFault
    assert world.run_until(lambda: device.cloud_connected and device.boot_count == 2, 60)
    assert [e.data for e in cloud.bus.find("spark/device/last_reset")] == [
        "power_down", "panic, hard_fault"]
    assert reset_reason_event_data("panic", 2) == "panic, 2"  # NMIFault has no name
    assert reset_reason_event_data("panic", 13) == "panic, stack_overflow"


def test_application_describe_is_gated_by_system_mode_and_setup_done() -> None:
    """``system_mode() != AUTOMATIC || APPLICATION_SETUP_DONE``: safe mode (AUTOMATIC, no
    application) sends neither the application DESCRIBE nor the subscriptions."""
    world, device, _ = connected()
    device.reset("safe_mode", safe_mode=True)
    assert world.run_until(lambda: device.cloud_connected and device.boot_count == 2, 60)
    after = lines(device)[lines(device).index("[system] INFO: cloud connected from existing "
                                              "session."):]
    assert "[system] INFO: Sending application DESCRIBE" not in after
    world2, device2, _ = make(1, options=FirmwareOptions(system_mode=SystemMode.SEMI_AUTOMATIC))
    device2.power_on()
    world2.run_for(10)
    assert not device2.cloud_connected  # SEMI_AUTOMATIC: the application connects
    device2.cloud_connect()
    assert world2.run_until(lambda: device2.cloud_connected, 60)
    assert "[system] INFO: Sending application DESCRIBE" in lines(device2)


def test_corrupted_server_settings_are_restored_and_reported_as_key_errors() -> None:
    world, device, cloud = make()
    field = device.dct.read_field  # the key lives at alt_server_public_key
    from firmware_sim.hal.dct import FIELDS

    device.dct.write(FIELDS["alt_server_public_key"].offset, b"\x30\x05garbage")
    assert field("alt_server_public_key")[:2] == b"\x30\x05"
    device.power_on()
    assert world.run_until(lambda: device.cloud_connected, 60)
    text = lines(device)
    assert "[system] ERROR: Server settings are invalid, restoring defaults" in text
    assert "[system] INFO: Send event spark/device/key/error=10" in text
    assert [e.data for e in cloud.bus.find("spark/device/key/error")] == ["10"]
    assert device.server_config.validate()
    device.reset("user")  # settings are valid again: no key error on the next boot
    assert world.run_until(lambda: device.cloud_connected and device.boot_count == 2, 60)
    assert len(cloud.bus.find("spark/device/key/error")) == 1


def test_key_change_message_discards_the_session() -> None:
    world, device, _ = connected()
    session = device.session.load()
    assert session is not None
    key_change = wire.CoapMessage(wire.CoapType.CON, wire.PUT, 0x8100, b"",
                                  (wire.URI_KEY_CHANGE, "\x01"))
    device.cloud.protocol.datagram_received(
        wire.encode_app_data(session.session_id, key_change.encode()))
    world.run_for(30)
    assert "[comm.protocol] WARN: Received a key change message; discarding session" in \
        lines(device)
    assert device.cloud.handshakes["full"] == 2  # the next connection is a full handshake
    harmless = wire.CoapMessage(wire.CoapType.CON, wire.PUT, 0x8101, b"", (wire.URI_KEY_CHANGE,))
    session = device.session.load()
    assert session is not None
    device.cloud.protocol.datagram_received(
        wire.encode_app_data(session.session_id, harmless.encode()))
    world.run_for(5)
    assert device.cloud.handshakes["full"] == 2 and device.cloud_connected


def test_clear_session_option_flag() -> None:
    """``SPARK_CLOUD_DISCONNECT_OPTION_CLEAR_SESSION = 0x04``; while disconnected the session
    is cleared at once (``spark_cloud_disconnect``), while connected during the disconnect."""
    assert CLEAR_SESSION == 0x04
    world, device, _ = connected()
    device.spark_cloud_disconnect(0)
    world.run_for(1)
    assert device.session.load() is not None  # no flag: the session stays
    device.spark_cloud_disconnect(CLEAR_SESSION)  # already disconnected: cleared at once
    assert device.session.load() is None
    assert lines(device)[-1] == "[system] INFO: Clearing session data"
    device.cloud_connect()
    assert world.run_until(lambda: device.cloud_connected, 60)
    before = lines(device)
    device.spark_cloud_disconnect(CLEAR_SESSION)  # connected: cleared while disconnecting
    after = lines(device)[len(before):]
    assert after[:3] == ["[system] INFO: Cloud: disconnecting",
                         "[system] INFO: Clearing session data",
                         "[system] INFO: Cloud: disconnected"]


def test_server_moved_clears_the_session_and_resets() -> None:
    signer = ec.generate_private_key(ec.SECP256R1())
    trusted = signer.public_key().public_bytes(serialization.Encoding.DER,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    world, device, _ = connected(options=FirmwareOptions(server_moved_key=trusted))
    request = ServerMovedRequest("moved.example.com", 0, DEFAULT_SERVER_PUBLIC_KEY, b"")
    signature = signer.sign(server_moved_digest_input(request), ec.ECDSA(hashes.SHA256()))
    payload = encode_server_moved(ServerMovedRequest(request.address, 0, request.public_key,
                                                     signature))

    def deliver(mid: int, body: bytes) -> None:
        session = device.session.load()
        assert session is not None
        message = wire.CoapMessage(wire.CoapType.CON, wire.POST, mid, b"\x07",
                                   (wire.URI_SERVER_MOVED,), body)
        device.cloud.protocol.datagram_received(
            wire.encode_app_data(session.session_id, message.encode()))

    deliver(0x8200, payload[:-3] + b"xyz")  # a bad signature: refused, nothing else happens
    world.run_for(1)
    assert world.trace.count("server_moved.rejected") == 1 and device.boot_count == 1
    deliver(0x8201, payload)
    world.run_for(0.5)
    text = lines(device)
    assert text.count("[comm.protocol] WARN: Received a ServerMoved request") == 2
    assert "[system] INFO: Clearing session data" in text
    assert '[system] INFO: Address: "moved.example.com"; port: 5684' in text
    world.run_for(5)
    assert device.boot_count == 2 and device.cloud.inputs.reset_reason == "config_update"
    settings = device.server_config.settings()
    assert settings is not None and settings.address == "moved.example.com"


# -- implemented but not asserted ----------------------------------------------------------


def test_protocol_result_values() -> None:
    assert ProtocolResult.SESSION_RESUMED == 13
    assert ProtocolResult.IO_ERROR_DISCARD_SESSION == 21
    assert ProtocolResult.NO_ERROR == 0


def test_order_inside_the_full_handshake_branch() -> None:
    """``cloud_status`` handshake -> claim-code publish -> (presence, TCP only) -> time
    request, then last_reset and the update flags."""
    world, device, cloud = make()
    device.claim.set_claim_code(cloud.create_claim_code(Principal.user("u")).code)
    device.power_on()
    assert world.run_until(lambda: device.cloud_connected, 60)
    kinds = [(r.kind, r.get("param_name") or r.get("what")) for r in world.trace.records
             if r.node == "dev" and (r.kind == "coap.send" or (
                 r.kind == "system_event" and r.get("event") == "cloud_status"))]
    start = kinds.index(("system_event", "handshake"))
    assert kinds[start:start + 5] == [
        ("system_event", "handshake"), ("coap.send", "event spark/device/claim/code"),
        ("coap.send", "time request"), ("coap.send", "event spark/device/last_reset"),
        ("coap.send", "event particle/device/updates/enabled")]


def test_handshake_completed_only_after_the_hello_ack_and_all_processed_before_connected() -> None:
    """``Protocol::begin``: ``Handshake completed`` once the HELLO (sent synchronously) is
    acknowledged, then ``Spark_Handshake`` publishes; ``clientMessagesProcessed`` logs ``All
    handshake messages have been processed`` when the last of them is acknowledged, right
    before ``Cloud connected`` - on a full handshake and on a resume."""
    world, device, cloud = make()
    device.claim.set_claim_code(cloud.create_claim_code(Principal.user("u")).code)
    device.power_on()
    assert world.run_until(lambda: device.cloud_connected, 60)
    order = [(r.kind, r.get("what") or r.get("message")) for r in world.trace.records
             if r.node == "dev" and r.kind in ("coap.send", "coap.acked", "log")]
    hello_acked = order.index(("coap.acked", "hello"))
    assert order[hello_acked - 1] == ("coap.send", "hello")  # nothing sent meanwhile
    assert order[hello_acked + 1] == ("log", "Handshake completed")
    assert order.index(("coap.send", "event spark/device/claim/code")) > hello_acked
    for boot in (1, 2):
        text = lines(device)
        connected_at = len(text) - 1 - text[::-1].index("[system] INFO: Cloud connected")
        assert text[connected_at - 1] == (
            "[system] INFO: All handshake messages have been processed")
        assert text.count("[system] INFO: All handshake messages have been processed") == boot
        if boot == 1:
            device.reset("user")
            assert world.run_until(
                lambda: device.cloud_connected and device.boot_count == 2, 60)
    assert "[comm.protocol.handshake] INFO: Skipping HELLO message" in lines(device)


def test_claim_code_event_is_private_with_ttl_60() -> None:
    world, device, cloud = make()
    device.claim.set_claim_code(cloud.create_claim_code(Principal.user("u")).code)
    device.power_on()
    assert world.run_until(lambda: device.claim.is_device_claimed(), 60)
    [event] = cloud.bus.find("spark/device/claim/code")
    assert event.public is False and event.ttl == 60
    message = wire.CoapMessage(wire.CoapType.CON, wire.POST, 1, b"",
                               wire.event_uri("spark/device/claim/code", True), b"x")
    assert message.uri_path[0] == "E" and ord("E") == 0x45


def test_cloud_status_order_of_a_resume_and_disconnecting_only_when_connected() -> None:
    seen: list[int] = []

    class Recorder(Firmware):
        def setup(self, particle: Particle) -> None:
            particle.on_system_event(SystemEvent.CLOUD_STATUS, lambda e, p: seen.append(p))

    world, device, _ = connected(firmware=Recorder)
    world.run_for(1)
    assert seen == [CloudStatus.CONNECTING, CloudStatus.HANDSHAKE, CloudStatus.CONNECTED]
    seen.clear()
    device.reset("user")
    assert world.run_until(lambda: device.cloud_connected and device.boot_count == 2, 60)
    world.run_for(1)
    assert seen == [CloudStatus.CONNECTING, CloudStatus.SESSION_RESUME, CloudStatus.CONNECTED]
    assert (CloudStatus.CONNECTING, CloudStatus.SESSION_RESUME, CloudStatus.CONNECTED) == (1, 3, 8)
    seen.clear()
    radio_environment(world).remove("HomeNet")  # drops while connected
    world.run_for(1)
    assert seen == [CloudStatus.DISCONNECTING, CloudStatus.DISCONNECTED]
    seen.clear()
    radio_environment(world).add(AccessPoint("HomeNet", "home-pass-1"))
    world.run_for(0.5)
    device.cloud_disconnect()  # still connecting: no DISCONNECTING
    world.run_for(1)
    assert CloudStatus.DISCONNECTING not in seen


def test_network_credentials_added_after_set_network_credentials() -> None:
    from control_requests import requests

    seen: list[int] = []

    class Recorder(Firmware):
        def setup(self, particle: Particle) -> None:
            particle.on_system_event(SystemEvent.NETWORK_CREDENTIALS,
                                     lambda e, p: seen.append(p))

    world, device, _ = connected(firmware=Recorder)
    out: list[tuple[int, bytes]] = []
    call = requests.set_network_credentials("Other", "pw-12345")
    device.control.submit("usb", call.request.type, call.request.payload,
                          lambda result, reply: out.append((result, reply)))
    world.run_for(1)
    assert call.request.type == 507 and out == [(0, b"")] and seen == [1]  # added


def test_system_event_bits() -> None:
    expected = {"SETUP_BEGIN": 1, "SETUP_UPDATE": 2, "SETUP_END": 3, "NETWORK_CREDENTIALS": 4,
                "NETWORK_STATUS": 5, "CLOUD_STATUS": 6, "BUTTON_STATUS": 7,
                "FIRMWARE_UPDATE": 8, "FIRMWARE_UPDATE_PENDING": 9, "RESET_PENDING": 10,
                "RESET": 11, "BUTTON_CLICK": 12, "BUTTON_FINAL_CLICK": 13, "TIME_CHANGED": 14,
                "LOW_BATTERY": 15, "BATTERY_STATE": 16, "POWER_SOURCE": 17, "OUT_OF_MEMORY": 18,
                "BLE_PROV_MODE": 19, "FIRMWARE_UPDATE_STATUS": 20, "AUX_POWER_STATE": 21}
    assert {e.name: e.value.bit_length() - 1 for e in SystemEvent} == expected
    from firmware_sim.system import ALL_EVENTS

    assert ALL_EVENTS == 0xFFFFFFFFFFFFFFFF


def test_safe_mode_publishes_spark_device_safemode_after_every_handshake() -> None:
    world, device, cloud = connected()
    assert not cloud.bus.find("spark/device/safemode")
    device.reset("safe_mode", safe_mode=True)
    assert world.run_until(lambda: device.cloud_connected and device.boot_count == 2, 60)
    device.cloud_disconnect()
    device.cloud_connect()
    assert world.run_until(lambda: device.cloud_connected, 60)
    events = cloud.bus.find("spark/device/safemode")
    assert [e.data for e in events] == ["", ""] and all(not e.public for e in events)


def test_every_reset_reason_string() -> None:
    assert RESET_REASONS == (
        "unknown", "pin_reset", "power_management", "power_down", "power_brownout", "watchdog",
        "update", "update_error", "update_timeout", "factory_reset", "safe_mode", "dfu_mode",
        "panic", "user", "config_update")
    world, device, cloud = connected()
    for boot, reason in enumerate(("watchdog", "update_timeout", "config_update"), start=2):
        device.reset(reason)
        assert world.run_until(lambda: device.cloud_connected and device.boot_count == boot,  # noqa: B023
                               60)
        assert device.cloud.inputs.reset_reason == reason
        world.run_for(1)
    assert [e.data for e in cloud.bus.find("spark/device/last_reset")] == [
        "power_down", "watchdog", "update_timeout", "config_update"]
    with pytest.raises(Exception, match="unknown reset reason"):
        device.reset("meltdown")


def test_forced_system_describe_after_hello_and_ping_after_skipping_hello_on_the_wire() -> None:
    world, device, cloud = make()
    wire_log: list[wire.CoapMessage] = []
    original = cloud.endpoint.datagram_received

    def spy(address, data, reply):  # type: ignore[no-untyped-def]
        record = wire.decode_record(data)
        if record.type is wire.RecordType.APPLICATION_DATA:
            wire_log.append(wire.CoapMessage.decode(record.body))
        return original(address, data, reply)

    cloud.endpoint.datagram_received = spy  # type: ignore[method-assign]
    device.power_on()
    assert world.run_until(lambda: device.cloud_connected, 60)
    requests_ = [m for m in wire_log if m.mtype is wire.CoapType.CON]
    assert [(m.code, m.uri_path[:1]) for m in requests_[:2]] == [
        (wire.POST, ("h",)), (wire.POST, ("d",))]  # HELLO then the system DESCRIBE
    assert b'"m"' in requests_[1].payload  # the system describe (modules)
    wire_log.clear()
    device.reset("user")
    assert world.run_until(lambda: device.cloud_connected and device.boot_count == 2, 60)
    first = next(m for m in wire_log if m.mtype is wire.CoapType.CON)
    assert first.code == wire.EMPTY and first.uri_path == ()  # the ping of Skipping HELLO


def test_sessions_are_renegotiated_after_three_days() -> None:
    from firmware_sim.communication import ProtocolOptions

    # a keepalive of 50 minutes keeps three simulated days cheap; the lifetime is the cloud's
    world, device, cloud = connected(endpoint=EndpointOptions(), options=FirmwareOptions(
        protocol=ProtocolOptions(keepalive_s=3000.0)))
    assert cloud.endpoint.options.session_max_age_s == 3 * 24 * 3600
    world.run_for(3 * 24 * 3600 - 3600)
    assert device.cloud.handshakes["full"] == 1
    world.run_for(2 * 3600)
    assert device.cloud.handshakes["full"] == 2  # the expired session got a RST


def test_the_system_error_table() -> None:
    from firmware_sim.kernel.errors import RESULT_CODE_RANGES, ResultCode

    assert {code.name: code.value for code in ResultCode} == {
        "NONE": 0, "UNKNOWN": -100, "BUSY": -110, "NOT_SUPPORTED": -120, "NOT_ALLOWED": -130,
        "CANCELLED": -140, "ABORTED": -150, "TIMEOUT": -160, "NOT_FOUND": -170,
        "ALREADY_EXISTS": -180, "TOO_LARGE": -190, "NOT_ENOUGH_DATA": -191,
        "LIMIT_EXCEEDED": -200, "END_OF_STREAM": -201, "INVALID_STATE": -210,
        "FLASH_IO": -219, "IO": -220, "WOULD_BLOCK": -221, "NETWORK": -230, "PROTOCOL": -240,
        "INTERNAL": -250, "NO_MEMORY": -260, "INVALID_ARGUMENT": -270, "BAD_DATA": -280,
        "ENCODING_FAILED": -281, "OUT_OF_RANGE": -290, "DEPRECATED": -300, "PROTECTED": -1801,
        "KEY_MISMATCH": -1802, "INVALID_SIGNATURE": -1803}
    assert RESULT_CODE_RANGES == {"COAP": (-1199, -1000), "OTA": (-1399, -1300),
                                  "FILESYSTEM": (-1912, -1900), "LEDGER": (-2011, -2000)}


def test_every_usb_pid() -> None:
    from firmware_sim.profiles import PROFILES
    from transports.usb.platforms import PARTICLE_VID, PLATFORMS

    table = {p.name: (p.platform_id, p.usb_pid, p.dfu_pid) for p in PLATFORMS}
    assert PARTICLE_VID == 0x2B04
    assert table == {
        "photon": (6, 0xC006, 0xD006), "p1": (8, 0xC008, 0xD008),
        "electron": (10, 0xC00A, 0xD00A), "argon": (12, 0xC00C, 0xD00C),
        "boron": (13, 0xC00D, 0xD00D), "esomx": (15, 0xC00F, 0xD00F),
        "asom": (22, 0xC016, 0xD016), "bsom": (23, 0xC017, 0xD017),
        "b5som": (25, 0xC019, 0xD019), "tracker": (26, 0xC01A, 0xD01A),
        "trackerm": (28, 0xC01C, 0xD01C), "p2": (32, 0xC020, 0xD020),
        "msom": (35, 0xC023, 0xD023), "tachyon": (42, 0xC02A, 0)}
    for profile in PROFILES.values():  # the simulated platforms agree with the table
        usb = table["p2" if profile.name == "photon2" else profile.name]
        assert (profile.platform_id, profile.usb_pid, profile.dfu_pid) == usb


def test_softap_tcp_port_5609() -> None:
    from transports.softap.client import DEFAULT_PORTS

    assert DEFAULT_PORTS == {"tcp": 5609, "http": 80}
