"""Device behaviour on virtual time: sessions, reboots, publishing rules, system events."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from cloud_sim import Cloud, EndpointOptions, Principal
from firmware_sim.hal import ClaimCodeHal, Dct, MemoryDctBackend
from firmware_sim.kernel import World
from firmware_sim.services.log import DeviceLog
from firmware_sim.system import (
    AccessPoint,
    ClaimCodeRules,
    CloudStatus,
    Device,
    Firmware,
    FirmwareOptions,
    NetworkStatus,
    Particle,
    SystemEvent,
    WifiCredentials,
    radio_environment,
)
from firmware_sim.system.cloud import CloudState

HOME = AccessPoint("HomeNet", "home-pass-1")


def make(seed: int = 0, *, options: FirmwareOptions | None = None,
         endpoint: EndpointOptions | None = None, firmware: type[Firmware] | None = None,
         loss: float = 0.0) -> tuple[World, Device, Cloud]:
    world = World(seed)
    radio_environment(world).add(HOME)
    cloud = Cloud(world, options=endpoint)
    device = Device(world, "dev", wifi=[WifiCredentials("HomeNet", "home-pass-1")],
                    options=options, firmware=firmware)
    device.attach_cloud(cloud.connector(loss=loss))
    return world, device, cloud


def connect(world: World, device: Device, timeout: float = 60) -> None:
    assert world.run_until(lambda: device.cloud_connected, timeout=timeout)


def test_system_events_of_a_first_connection_in_device_os_order() -> None:
    seen: list[tuple[str, int]] = []

    class Recorder(Firmware):
        def setup(self, particle: Particle) -> None:
            particle.on_system_event(SystemEvent.NETWORK_STATUS | SystemEvent.CLOUD_STATUS,
                                     lambda e, p: seen.append((e.name or "", p)))

    world, device, _ = make(firmware=Recorder)
    device.power_on()
    connect(world, device)
    world.run_for(1)
    assert seen == [("NETWORK_STATUS", NetworkStatus.POWERING_ON), ("NETWORK_STATUS", 5),
                    ("NETWORK_STATUS", 6), ("NETWORK_STATUS", 7), ("CLOUD_STATUS", 1),
                    ("CLOUD_STATUS", 2), ("CLOUD_STATUS", 8)]
    seen.clear()
    device.cloud_disconnect()
    world.run_for(1)
    assert seen == [("CLOUD_STATUS", CloudStatus.DISCONNECTING), ("CLOUD_STATUS", 0)]


def test_software_reset_resumes_but_power_cycle_does_a_full_handshake() -> None:
    world, device, cloud = make()
    device.power_on()
    connect(world, device)
    device.reset("user")
    world.run_for(30)
    assert device.cloud.handshakes == {"full": 0, "resumed": 1}  # counters are per boot
    code = cloud.create_claim_code(Principal.user("u")).code
    device.claim.set_claim_code(code)
    device.reset("user")
    world.run_for(30)
    assert device.cloud.handshakes == {"full": 0, "resumed": 1}
    assert device.claim.pending_code() == code  # resumed: not sent
    # "powering up the P2 this morning sent the claim code"
    device.power_cycle()
    world.run_for(30)
    assert device.cloud.handshakes == {"full": 1, "resumed": 0}
    assert device.claim.pending_code() is None and device.claim.is_device_claimed()
    assert cloud.owner_of(device.device_id) == Principal.user("u")


def test_a_session_of_other_keys_is_not_resumed() -> None:
    """``compute_checksum``: the persisted session carries a checksum of the server key and the
    device key; after either changes, the next connection is a full handshake."""
    world, device, _ = make()
    device.power_on()
    connect(world, device)
    device.reset("user")
    world.run_for(30)
    assert device.cloud.handshakes == {"full": 0, "resumed": 1}
    other = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    device.server_config.set_public_key(other)  # another cloud's key
    device.reset("user")
    world.run_for(30)
    assert device.cloud.handshakes == {"full": 1, "resumed": 0}


def test_last_reset_is_published_once_per_boot_with_the_reason() -> None:
    world, device, cloud = make()
    device.power_on()
    connect(world, device)
    device.cloud_disconnect()
    device.cloud_connect()
    connect(world, device)
    device.reset("user")
    world.run_for(20)
    events = [e.data for e in cloud.bus.find("spark/device/last_reset")]
    assert events == ["power_down", "user"]
    assert len(cloud.bus.find("particle/device/updates/enabled")) == 3  # every handshake


def test_unanswered_resumes_expire_after_three_uses() -> None:
    world, device, cloud = make(endpoint=EndpointOptions(unknown_session_reply="ignore"))
    device.power_on()
    connect(world, device)
    cloud.endpoint.forget_session(device.device_id)
    device.cloud_disconnect()
    device.cloud_connect()
    connect(world, device, timeout=900)
    lines = device.log_lines()
    resumes = [line for line in lines if "Skipping HELLO message" in line]
    assert len(resumes) == 3
    assert any("[comm.dtls] WARN: session has expired after 3 uses" in line for line in lines)
    assert device.cloud.handshakes["full"] == 2
    assert lines.index(next(x for x in lines if "expired after 3 uses" in x)) < \
        max(i for i, x in enumerate(lines) if "Sending HELLO message" in x)


def test_rst_discards_the_session_and_the_next_connect_is_full() -> None:
    world, device, cloud = make()
    device.power_on()
    connect(world, device)
    cloud.endpoint.forget_session(device.device_id)
    device.cloud_disconnect()
    device.cloud_connect()
    connect(world, device)
    lines = device.log_lines()
    assert any("Received RST message; discarding session" in line for line in lines)
    assert device.cloud.handshakes["full"] == 2


def test_cloud_session_expiry_forces_a_full_handshake() -> None:
    world, device, _ = make(endpoint=EndpointOptions(session_max_age_s=100))
    device.power_on()
    connect(world, device)
    world.run_for(200)  # keepalive pings hit an expired session
    assert device.cloud.handshakes["full"] >= 2


def test_publish_rules() -> None:
    world, device, cloud = make()
    device.power_on()
    world.run_for(0.1)
    assert device.particle.publish("early", "x") is False
    lost = world.trace.find("publish.lost", name="early")
    assert lost and lost[0].get("reason") == "cloud not connected"
    connect(world, device)
    assert device.particle.publish("hello", "world", private=False) is True
    world.run_for(1)
    event = cloud.bus.find("hello")[0]
    assert (event.data, event.public, event.device_id) == ("world", True, device.device_id)
    assert device.particle.publish("x" * 65, "") is False
    assert device.particle.publish("big", "y" * 1025) is False


def test_codes_starting_with_nul_or_0xff_are_never_sent() -> None:
    world, device, cloud = make()
    device.claim.set_claim_code(b"\xff" + b"A" * 62)
    device.power_on()
    connect(world, device)
    world.run_for(5)
    assert not cloud.bus.find("spark/device/claim/code")
    assert not any("claim/code" in line for line in device.log_lines())


@pytest.mark.parametrize(("resumed", "on_resume", "published"), [
    (False, False, True), (True, False, False), (True, True, True), (False, True, True)])
def test_claim_code_publish_rule(resumed: bool, on_resume: bool, published: bool) -> None:
    world = World(0)
    hal = ClaimCodeHal(Dct(MemoryDctBackend()))
    rules = ClaimCodeRules(hal, DeviceLog(world.trace.bind("d", "log"), lambda: 0),
                           send_on_resume=on_resume)
    sent: list[tuple[str, bytes]] = []
    assert not rules.code_pending
    assert not rules.after_handshake(resumed=resumed, publish=lambda n, d: sent.append((n, d)))
    hal.set_claim_code("CODE")
    assert rules.code_pending
    assert rules.after_handshake(resumed=resumed,
                                 publish=lambda n, d: sent.append((n, d))) is published
    assert sent == ([("spark/device/claim/code", b"CODE")] if published else [])
    assert rules.code_pending  # publishing does not clear; only the cloud's answer does
    assert not rules.cloud_event("spark/device/claimed")
    assert rules.cloud_event("spark/device/claim/confirm")
    assert not rules.code_pending and hal.is_device_claimed()


def test_any_spark_device_claim_event_clears_the_code() -> None:
    world, device, cloud = make()
    device.power_on()
    connect(world, device)
    device.claim.set_claim_code("X" * 63)
    assert cloud.endpoint.send_event(device.device_id, "spark/device/claim/whatever", b"ignored")
    world.run_for(2)
    assert device.claim.pending_code() is None and device.claim.is_device_claimed()
    assert device.log_lines()[-1].endswith(
        "[system] TRACE: Claim code received by the cloud and cleared locally.")


def test_a_changed_app_state_turns_a_resume_into_a_full_handshake() -> None:
    world, device, cloud = make()
    device.power_on()
    connect(world, device)
    code = cloud.create_claim_code(Principal.user("u")).code
    device.claim.set_claim_code(code)
    device.profile = device.profile.with_overrides(system_module_version=6300)  # "OTA update"
    device.reset("update")
    world.run_for(30)
    lines = device.log_lines()
    assert any("restored session from persisted session data" in line for line in lines)
    assert device.cloud.handshakes == {"full": 1, "resumed": 0}
    assert device.claim.is_device_claimed()


def test_lossy_link_still_connects_deterministically() -> None:
    def run(seed: int) -> list[str]:
        world, device, _ = make(seed, loss=0.3)
        device.power_on()
        world.run_for(300)
        assert device.cloud_connected
        return [r.to_json() for r in world.trace.records]

    assert run(4) == run(4)


def test_listening_mode_pauses_the_cloud() -> None:
    world, device, _ = make()
    device.power_on()
    connect(world, device)
    device.listening.enter()
    world.run_for(1)
    assert device.cloud.state is CloudState.DISCONNECTED
    assert world.trace.count("system_event", event="setup_begin") == 1
    world.run_for(60)
    assert not device.cloud_connected
    device.listening.exit()
    connect(world, device)
    assert world.trace.count("system_event", event="setup_end") == 1


def test_device_without_credentials_boots_into_listening_mode() -> None:
    world = World(0)
    device = Device(world, "bare")
    device.power_on()
    world.run_for(5)
    assert device.listening.active


def test_file_backed_device_keeps_identity_dct_and_credentials(tmp_path) -> None:  # type: ignore[no-untyped-def]
    world = World(0)
    first = Device(world, "a", storage_dir=tmp_path,
                   wifi=[WifiCredentials("HomeNet", "home-pass-1")])
    first.claim.set_claim_code("Z" * 63)
    identity = (first.device_id, first.mobile_secret)
    world2 = World(1)
    again = Device(world2, "b", storage_dir=tmp_path)
    assert (again.device_id, again.mobile_secret) == identity
    assert again.claim.pending_code() == "Z" * 63
    assert [c.ssid for c in again.credentials.all()] == ["HomeNet"]


def test_photon_over_tcp_never_resumes_and_always_sends_the_claim_code() -> None:
    world = World(0)
    radio_environment(world).add(HOME)
    cloud = Cloud(world)
    photon = Device(world, "photon", profile="photon",
                    wifi=[WifiCredentials("HomeNet", "home-pass-1")])
    photon.attach_cloud(cloud.connector())
    photon.power_on()
    connect(world, photon)
    code = cloud.create_claim_code(Principal.user("u")).code
    photon.claim.set_claim_code(code)
    photon.reset("user")  # a Photon resumes nothing, even after a soft reset
    world.run_for(30)
    lines = photon.log_lines()
    assert not any("Skipping HELLO" in line for line in lines)
    assert sum("Sending HELLO message" in line for line in lines) == 2
    assert any("Starting handshake: presense_announce=1" in line for line in lines)
    assert photon.claim.is_device_claimed() and cloud.owner_of(photon.device_id) is not None


def test_leaving_listening_mode_reconnects_or_listens_again() -> None:
    world = World(0)
    radio_environment(world).add(HOME)
    cloud = Cloud(world)
    device = Device(world, "dev")
    device.attach_cloud(cloud.connector())
    device.power_on()
    world.run_for(2)
    assert device.listening.active
    device.listening.exit()  # no credentials: straight back to listening mode
    world.run_for(1)
    assert device.listening.active
    assert world.trace.count("listening.no_credentials") == 1
    device.credentials.set(WifiCredentials("HomeNet", "home-pass-1"))
    device.listening.exit()
    connect(world, device)


def test_resume_logs_describe_and_subscriptions_then_the_protocol_skips_them() -> None:
    """Issue 15 item 1: ``sendApplicationDescription`` logs both lines on every handshake; on a
    resumed session whose cloud already has them the protocol logs ``Checksum has not
    changed`` and sends nothing."""
    world, device, _cloud = make()
    device.power_on()
    connect(world, device)
    subscriptions_before = world.trace.count("subscription")
    describes_before = [r for r in world.trace.find("coap.send", node="dev")
                        if r.get("what") == "application describe"]
    device.reset("user")
    world.run_for(20)
    lines = device.log_lines()
    start = next(i for i, line in enumerate(lines) if "Skipping HELLO message" in line)
    assert [line[11:] for line in lines[start:start + 7]] == [
        "[comm.protocol.handshake] INFO: Skipping HELLO message",
        "[system] INFO: cloud connected from existing session.",
        "[system] INFO: Send spark/device/last_reset event",
        "[system] INFO: Sending application DESCRIBE",
        "[comm.protocol] INFO: Checksum has not changed; not sending application DESCRIBE",
        "[system] INFO: Sending subscriptions",
        "[comm.protocol] INFO: Checksum has not changed; not sending subscriptions",
    ]
    assert world.trace.count("subscription") == subscriptions_before
    assert [r for r in world.trace.find("coap.send", node="dev")
            if r.get("what") == "application describe"] == describes_before


def test_full_handshake_sends_the_system_subscriptions_to_the_cloud() -> None:
    """Issue 15 item 4: ``registerSystemSubscriptions`` subscribes to ``particle`` and
    ``spark``; the full handshake sends them (GET ``e/<prefix>``) before the app's."""

    class Subscriber(Firmware):
        def setup(self, particle: Particle) -> None:
            particle.subscribe("my/app", lambda name, data: None)

    world, device, _cloud = make(firmware=Subscriber)
    device.power_on()
    connect(world, device)
    assert [r.get("prefix") for r in world.trace.find("subscription")] == [
        "particle", "spark", "my/app"]
    lines = [line[11:] for line in device.log_lines()]
    i = lines.index("[system] INFO: Sending subscriptions")
    assert lines[i + 1] == "[comm.protocol] INFO: Sending subscriptions"


def test_a_refused_subscription_is_sent_again_on_the_next_resume() -> None:
    """The checksum is kept only once every subscription is acknowledged with success."""
    world, device, _cloud = make()
    device.power_on()
    connect(world, device)
    data = device.session.load()
    assert data is not None and data.subscriptions_crc != 0 and data.describe_crc != 0
    device.session.update_subscriptions_crc(0)  # as if one subscription had been refused
    device.reset("user")
    world.run_for(20)
    assert world.trace.count("subscription") == 4  # particle, spark; then both again
    assert "[comm.protocol] INFO: Checksum has not changed; not sending application DESCRIBE" \
        in [line[11:] for line in device.log_lines()]


def test_a_failed_handshake_is_logged_at_warn() -> None:
    """Issue 15 item 5: ``WARN("Cloud handshake failed, code=%d")`` (system_task.cpp)."""
    world, device, cloud = make(endpoint=EndpointOptions(unknown_session_reply="rst"))
    device.power_on()
    connect(world, device)
    cloud.endpoint.forget_session(device.device_id)
    device.cloud_disconnect()
    device.cloud_connect()
    connect(world, device)
    lines = [line[11:] for line in device.log_lines()]
    # the RST answers the resume's ping after begin() returned: the handshake messages are
    # pending, the communication loop fails, handle_cloud_connection reports MESSAGE_TIMEOUT
    rst = lines.index("[comm.coap] WARN: Received RST message; discarding session")
    assert lines[rst + 1] == "[system] WARN: Cloud handshake failed, code=10"
    assert not any("] ERROR: Cloud handshake failed" in line for line in lines)


@pytest.mark.parametrize("action", ["safe mode", "dfu", "network", "reboot"])
def test_spark_device_reset_actions(action: str) -> None:
    """Issue 15 item 3: ``spark/device/reset`` with ``safe mode`` enters safe mode, ``dfu``
    DFU mode, ``network`` resets the network interfaces (WARN ``Received a command to reset
    the network``), ``reboot`` resets (``systemEventHandler``)."""
    from firmware_sim.system.device import DeviceState

    world, device, cloud = make()
    device.power_on()
    connect(world, device)
    assert cloud.endpoint.send_event(device.device_id, "spark/device/reset", action.encode())
    world.run_for(0.5)
    if action == "safe mode":
        connect(world, device)
        assert device.safe_mode and device.boot_count == 2
        assert device.cloud.inputs.reset_reason == "safe_mode"
        world.run_for(2)
        assert cloud.bus.find("spark/device/safemode")
    elif action == "dfu":
        world.run_for(1)
        assert device.state is DeviceState.DFU and device.boot_count == 1
    elif action == "network":
        assert device.boot_count == 1
        assert [line[11:] for line in device.log_lines()[-3:]] == [
            "[system] WARN: Received a command to reset the network",
            "[system] INFO: Cloud: disconnecting", "[system] INFO: Cloud: disconnected"]
        statuses = [r.get("param_name") for r in world.trace.find("system_event", node="dev")
                    if r.get("event") == "network_status"]
        assert statuses[-3:] == ["disconnecting", "disconnected", "connecting"]
        connect(world, device)
        assert device.cloud.handshakes["resumed"] == 1  # same boot: the session resumes
    else:
        connect(world, device)
        assert device.boot_count == 2 and device.cloud.inputs.reset_reason == "user"
        assert not device.safe_mode
