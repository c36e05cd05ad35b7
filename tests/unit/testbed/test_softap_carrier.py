"""The ``softap`` carrier: a phone provisioning a Photon over its SoftAP, on virtual time.

The claim code and the Wi-Fi credentials go through the device's SoftAP commands (as
@particle/softap-setup sends them), land in the DCT and the credential store, the device joins,
does a full handshake and sends the code; the bad cases answer Device OS result codes or the
device's own ``r``.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from firmware_sim.kernel.errors import ConfigurationError, ResultCode
from firmware_sim.system.device import Device
from firmware_sim.system.network import WifiCredentials
from firmware_sim.system.radio import AccessPoint, WifiSecurity
from firmware_sim.testbed import (
    CARRIERS,
    CloudSpec,
    DeviceSpec,
    Phone,
    SoftApPhoneOptions,
    SoftApProvisioning,
    Testbed,
    TestbedSpec,
    carrier,
)
from firmware_sim.testbed.clouds.particle import ParticlePlug
from transports.softap.keys import (
    ERR_RSA_INVALID_PADDING,
    ERR_RSA_OUTPUT_TOO_LARGE,
    ERR_RSA_PRIVATE_FAILED_BAD_INPUT,
)

OWNER = "me@example.com"
HOME = WifiCredentials("HomeNet", "home-pass-1")


def photon(seed: int = 3, *, wifi: tuple[WifiCredentials, ...] = ()) -> tuple[Testbed, Device]:
    """A Photon in the testbed; without Wi-Fi credentials it boots into listening mode."""
    bed = Testbed(TestbedSpec(seed=seed, cloud=CloudSpec("particle")))
    device = bed.add_device(DeviceSpec("ph", profile="photon", wifi=wifi, timing="fast"))
    device.power_on()
    bed.run_for(2)
    return bed, device


def particle(bed: Testbed) -> ParticlePlug:
    assert isinstance(bed.cloud, ParticlePlug)
    return bed.cloud


def run_steps(bed: Testbed, phone: Phone, seconds: float = 90) -> list[tuple[str, int]]:
    phone.run()
    assert bed.world.run_until(lambda: phone.finished, seconds), phone.results
    return phone.results


def test_the_carriers_are_registered() -> None:
    assert CARRIERS["softap"].endswith(":SoftApProvisioning")
    _bed, device = photon()
    tcp, http = carrier("softap")(device), carrier("softap-http")(device)
    assert isinstance(tcp, SoftApProvisioning) and tcp.options.protocol == "tcp"
    assert isinstance(http, SoftApProvisioning) and http.options.protocol == "http"


@pytest.mark.parametrize("name", ["softap", "softap-http"])
def test_claim_code_and_wifi_land_in_the_dct_and_the_code_is_delivered(name: str) -> None:
    bed, device = photon()
    cloud = particle(bed)
    code = cloud.create_claim_code(cloud.user(OWNER))
    assert device.listening.active and not device.credentials.all()
    provisioning = carrier(name)(device)
    phone = Phone(bed.world, provisioning, think_time_s=0.5)
    phone.set_claim_code(code).run()
    assert bed.world.run_until(lambda: phone.finished, 5)
    assert phone.results == [("set_claim_code", 0)]
    assert device.dct.read_field("claim_code")[:63] == code.encode()
    assert device.claim.pending_code() == code

    phone = Phone(bed.world, provisioning, think_time_s=0.5)  # the same app, a second screen
    phone.join_new_network("HomeNet", "home-pass-1")
    assert run_steps(bed, phone) == [("join_new_network HomeNet", 0)]
    stored = device.credentials.get("HomeNet")
    assert stored is not None and stored.password == "home-pass-1"
    assert stored.security is WifiSecurity.WPA2_PSK
    assert not device.listening.active and device.network.ready

    assert bed.world.run_until(lambda: cloud.owner_of(device.device_id) is not None, 60)
    assert cloud.owner_of(device.device_id) == cloud.user(OWNER)
    trace = bed.world.trace
    assert trace.count("handshake.full", node="ph") == 1
    assert trace.count("handshake.resumed", node="ph") == 0
    full = trace.first("handshake.full", node="ph")
    assert full is not None and full.fields["claim_code_pending"] is True
    assert any(f"Send spark/device/claim/code event for code {code}" in line
               for line in device.log_lines())
    # the cloud's confirmation clears the code
    assert bed.world.run_until(lambda: device.claim.pending_code() is None, 10)
    # what softap-setup sends, in its order: the warm-up, then one connection per command
    assert [r.fields["name"] for r in trace.find("softap.command")] == [
        "device-id", "set", "scan-ap", "public-key", "configure-ap", "connect-ap"]
    configure = trace.first("softap.command", name="configure-ap")
    assert configure is not None
    assert configure.fields["protocol"] == ("http" if name == "softap-http" else "tcp")
    joined = trace.first("softap_phone.device_joined")
    assert joined is not None and joined.fields["ssid"] == "HomeNet"


def test_not_listening_the_phone_cannot_reach_the_access_point() -> None:
    bed, device = photon(wifi=(HOME,))
    assert bed.world.run_until(lambda: device.cloud_connected, 30)
    assert not device.listening.active
    phone = Phone(bed.world, carrier("softap")(device), think_time_s=0.5)
    phone.set_claim_code("c" * 63).join_new_network("HomeNet", "home-pass-1").stop_listening()
    invalid = int(ResultCode.INVALID_STATE)
    assert run_steps(bed, phone) == [("set_claim_code", invalid),
                                     ("join_new_network HomeNet", invalid),
                                     ("stop_listening", invalid)]
    assert device.claim.pending_code() is None
    assert bed.world.trace.count("softap.command") == 0
    unreachable = bed.world.trace.find("softap_phone.unreachable")
    assert [r.fields["step"] for r in unreachable] == [
        "set_claim_code", "join_new_network", "stop_listening"]
    assert "not in listening mode" in unreachable[0].fields["reason"]


def test_a_phone_cannot_start_listening_mode() -> None:
    bed, device = photon(wifi=(HOME,))
    phone = Phone(bed.world, carrier("softap")(device), think_time_s=0.5)
    assert run_steps(bed, phone.start_listening()) == [
        ("start_listening", int(ResultCode.NOT_SUPPORTED))]
    assert not device.listening.active


def test_a_wrong_password_is_accepted_by_the_softap_and_the_join_times_out() -> None:
    bed, device = photon()
    cloud = particle(bed)
    provisioning = SoftApProvisioning(device, SoftApPhoneOptions(join_timeout_s=20))
    phone = Phone(bed.world, provisioning, think_time_s=0.5)
    phone.set_claim_code(cloud.create_claim_code(cloud.user(OWNER)))
    phone.join_new_network("HomeNet", "not-the-password")
    assert run_steps(bed, phone) == [("set_claim_code", 0),
                                     ("join_new_network HomeNet", int(ResultCode.TIMEOUT))]
    trace = bed.world.trace
    # the device stored what it was given (it cannot check a WPA2 password in SoftAP mode)...
    assert trace.count("softap.credentials_stored", ssid="HomeNet") == 1
    # ...and only finds out when it joins
    failed = trace.first("network.join_failed")
    assert failed is not None and failed.fields["reason"] == "authentication failed"
    timeout = trace.first("softap_phone.join_timeout")
    assert timeout is not None and timeout.fields["after_s"] == 20
    assert not device.cloud_connected and trace.count("claim.redeem") == 0
    assert cloud.owner_of(device.device_id) is None


def test_online_over_another_known_network_counts_as_joined() -> None:
    """The setup app asks the cloud whether the device came online, not which network it used:
    a device that knows HomeNet, given a wrong password for OtherNet, is online over HomeNet."""
    bed = Testbed(TestbedSpec(seed=3, cloud=CloudSpec("particle"), access_points=(
        AccessPoint("HomeNet", "home-pass-1"), AccessPoint("OtherNet", "other-pass-1"))))
    device = bed.add_device(DeviceSpec("ph", profile="photon", wifi=(HOME,), timing="fast"))
    device.power_on()
    assert bed.world.run_until(lambda: device.cloud_connected, 30)
    device.listening.enter()
    bed.run_for(2)
    phone = Phone(bed.world, SoftApProvisioning(device), think_time_s=0.5)
    phone.join_new_network("OtherNet", "not-the-password")
    assert run_steps(bed, phone) == [("join_new_network OtherNet", 0)]
    joined = bed.world.trace.first("softap_phone.device_joined")
    assert joined is not None
    assert (joined.fields["ssid"], joined.fields["network"], joined.fields["cloud"]) == (
        "OtherNet", "HomeNet", True)


def test_the_devices_own_result_codes_come_back() -> None:
    bed, device = photon()
    phone = Phone(bed.world, carrier("softap")(device), think_time_s=0.5)
    phone.join_new_network("HomeNet", "short")          # WPA2 passphrase under 8 bytes
    phone.join_new_network("Elsewhere", "long-enough")  # not in range: no cipher (-2)
    phone.set_claim_code("")                            # set with an empty value
    assert run_steps(bed, phone) == [("join_new_network HomeNet", -4),
                                     ("join_new_network Elsewhere", -2),
                                     ("set_claim_code", -1)]
    assert not device.credentials.all() and device.listening.active
    failed = bed.world.trace.find("softap_phone.failed")
    assert [(r.fields["command"], r.fields["result"]) for r in failed] == [
        ("configure-ap", -4), ("configure-ap", -2), ("set", -1)]


def test_stop_listening_is_connect_ap() -> None:
    bed, device = photon()
    device.credentials.set(HOME)
    phone = Phone(bed.world, carrier("softap")(device), think_time_s=0.5)
    assert run_steps(bed, phone.stop_listening()) == [("stop_listening", 0)]
    assert bed.world.trace.count("softap.command", name="connect-ap") == 1
    assert bed.world.run_until(lambda: device.cloud_connected, 30)
    assert not device.listening.active


def test_the_softap_going_down_mid_command_is_an_io_error() -> None:
    bed, device = photon()
    phone = Phone(bed.world, carrier("softap")(device), think_time_s=0.5)
    phone.join_new_network("HomeNet", "home-pass-1").run()
    bed.world.run_for(0.5)  # the scan takes a second: the device leaves listening mode first
    assert bed.world.trace.count("softap.command", name="scan-ap") == 1
    device.listening.exit()
    assert bed.world.run_until(lambda: phone.finished, 5)
    assert phone.results == [("join_new_network HomeNet", int(ResultCode.IO))]
    assert bed.world.trace.count("softap.command", name="configure-ap") == 0


def test_only_a_photon_has_a_softap() -> None:
    bed = Testbed(TestbedSpec(seed=0))
    p2 = bed.add_device(DeviceSpec("p2", profile="p2"))
    with pytest.raises(ConfigurationError, match="p2 has no SoftAP"):
        carrier("softap")(p2)
    with pytest.raises(ConfigurationError, match="'tcp' or 'http'"):
        SoftApPhoneOptions(protocol="udp")


def test_same_seed_same_trace() -> None:
    """The password's RSA padding is random, yet nothing of it reaches the trace."""
    def run() -> list[str]:
        bed, device = photon(seed=5)
        cloud = particle(bed)
        phone = Phone(bed.world, carrier("softap")(device), think_time_s=0.5)
        phone.set_claim_code(cloud.create_claim_code(cloud.user(OWNER)))
        run_steps(bed, phone.join_new_network("HomeNet", "home-pass-1"))
        bed.run_for(20)
        return [record.to_json() for record in bed.world.trace.records]

    first = run()
    assert first == run()
    assert any('"claim.redeem"' in line for line in first)


#: the device's own answers, its RSA decryption's mbedTLS codes (a password longer than one RSA
#: block is sent in several blocks, as node-rsa does, and the device cannot decrypt it) and the
#: phone's timeout
KNOWN_RESULTS = {0, -1, -2, -3, -4, ERR_RSA_INVALID_PADDING, ERR_RSA_OUTPUT_TOO_LARGE,
                 ERR_RSA_PRIVATE_FAILED_BAD_INPUT, int(ResultCode.TIMEOUT)}
#: any code point, lone surrogates included (written as U+FFFD, as a JavaScript app's Buffer does)
ANY_TEXT = st.characters(blacklist_categories=())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ssid=st.text(ANY_TEXT, max_size=40), password=st.text(ANY_TEXT, max_size=70),
       code=st.text(ANY_TEXT, max_size=80))
@example(ssid="HomeNet", password="\U00010000" * 40, code="")  # 160 bytes: two RSA blocks
@example(ssid="Home\ud800", password="pass\udfffword", code="\ud800")
def test_any_input_gets_a_result_never_an_exception(ssid: str, password: str,
                                                     code: str) -> None:
    bed, device = photon(seed=1)
    provisioning = SoftApProvisioning(device, SoftApPhoneOptions(join_timeout_s=5))
    phone = Phone(bed.world, provisioning, think_time_s=0.1)
    phone.set_claim_code(code).join_new_network(ssid, password)
    results = dict(run_steps(bed, phone, 30))
    set_result = results["set_claim_code"]
    join_result = results[f"join_new_network {ssid}"]
    assert set_result in (0, -1), set_result
    assert join_result in KNOWN_RESULTS, join_result
    # nothing is stored unless the device said yes
    if join_result not in (0, int(ResultCode.TIMEOUT)):
        assert not device.credentials.all()
    if set_result != 0:
        assert device.claim.pending_code() is None
