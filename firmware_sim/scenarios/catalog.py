"""The claim-code scenarios: each a reproducible run with a Device OS timeline and a verdict.

Common stage (all but ``fresh-claim``): a P2 with credentials for ``HomeNet`` boots, connects
with a full handshake and persists its session. Twenty seconds later a phone, over the control
channel the device keeps open while connected, sets a claim code made by the cloud for a new
owner and joins the device to ``NewNet``. Joining drops the network and the cloud connection;
once ``NewNet`` is up the device reconnects - and what happens to the claim code then is what
each scenario is about.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..apps import ClearSessionOnNewCredentials, SessionEndTooEarly, SessionEndWorkaround
from ..kernel.errors import UsageError
from ..system.device import Device, FirmwareOptions
from ..system.network import WifiCredentials
from ..system.radio import AccessPoint
from ..testbed import CloudSpec, DeviceSpec, Phone, ProvisioningFactory, Testbed, TestbedSpec
from . import transfer
from .base import Check, Scenario, ScenarioResult, default_provisioning, particle
from .thingsboard import TB_SCENARIOS, TbScenario

HOME = AccessPoint("HomeNet", "home-pass-1", rssi=-62, channel=1)
NEW = AccessPoint("NewNet", "new-pass-22", rssi=-48, channel=11)
NEW_OWNER_EMAIL = "new-owner@example.com"
SCENARIO_SECONDS = 180.0
P2_ID = "e00fce68aabbccddeeff0011"
P2_SERIAL = "P046AB1234ABC12"
P2_SECRET = "ABCDEFGHJKLMNPQ"


# -- shared set-up -------------------------------------------------------------------------------


def p2_stage(*, firmware: Callable[[], object] | None = None,
             options: FirmwareOptions | None = None, provisioned: bool = True) -> TestbedSpec:
    """HomeNet and NewNet in range, the Particle cloud, one P2 named ``p2`` that knows HomeNet
    (or nothing: it boots into listening mode)."""
    wifi = (WifiCredentials(HOME.ssid, HOME.password),) if provisioned else ()
    device = DeviceSpec("p2", profile="p2", device_id=P2_ID, serial_number=P2_SERIAL,
                        mobile_secret=P2_SECRET, firmware=firmware,  # type: ignore[arg-type]
                        options=options, wifi=wifi)
    return TestbedSpec(access_points=(HOME, NEW), cloud=CloudSpec("particle"),
                       devices=(device,))


@dataclass
class Provisioned:
    code: str
    phone: Phone

    def check(self) -> Check:
        return Check("every provisioning request answered 0 (" + ", ".join(
            f"{step}={result}" for step, result in self.phone.results) + ")", self.phone.all_ok)


def _provision(testbed: Testbed, factory: ProvisioningFactory, *, at_s: float,
               listening: bool = False) -> Provisioned:
    """The phone sets a new owner's claim code and joins NewNet at ``at_s``."""
    cloud = particle(testbed)
    code = cloud.create_claim_code(cloud.user(NEW_OWNER_EMAIL), ttl_s=3600)
    phone = Phone(testbed.world, factory(testbed.device))
    phone.set_claim_code(code).join_new_network(NEW.ssid, NEW.password or "")
    if listening:
        phone.stop_listening()
    phone.run(start_in_s=at_s)
    return Provisioned(code, phone)


def _play(testbed: Testbed, factory: ProvisioningFactory, *,
          provisioned: bool = True) -> Provisioned:
    """Boot the stage, let the phone provision the device, run the scenario's time.

    A provisioned device is set up over its control channel 20 s after boot, while connected;
    a new device (no credentials) in listening mode 10 s after boot."""
    testbed.power_on()
    steps = _provision(testbed, factory, at_s=20.0 if provisioned else 10.0,
                       listening=not provisioned)
    testbed.run_for(SCENARIO_SECONDS)
    return steps


def _claim_sent(device: Device) -> bool:
    return any("Send spark/device/claim/code event" in line for line in device.log_lines())


def _claimed_by_new_owner(testbed: Testbed) -> bool:
    cloud = particle(testbed)
    return cloud.owner_of(testbed.device.device_id) == cloud.user(NEW_OWNER_EMAIL)


def _delivered_checks(testbed: Testbed, provisioned: Provisioned) -> list[Check]:
    device = testbed.device
    return [
        provisioned.check(),
        Check("spark/device/claim/code was published", _claim_sent(device)),
        Check("the cloud consumed the code and made the new owner the owner",
              _claimed_by_new_owner(testbed)),
        Check("the device cleared the code (first byte NUL)",
              device.claim.stored_code()[0] == 0 and device.claim.pending_code() is None),
        Check("the device is marked claimed (DCT byte '1')", device.claim.is_device_claimed()),
        Check("the code is single use (consumed in the cloud)",
              particle(testbed).claim_code_consumed(provisioned.code)),
    ]


def _not_delivered_checks(testbed: Testbed, provisioned: Provisioned) -> list[Check]:
    device = testbed.device
    return [
        provisioned.check(),
        Check("the reconnection resumed the session", device.cloud.handshakes["resumed"] >= 1),
        Check("only the first boot did a full handshake", device.cloud.handshakes["full"] == 1),
        Check("spark/device/claim/code was never published", not _claim_sent(device)),
        Check("the device still holds the code", device.claim.pending_code() == provisioned.code),
        Check("the cloud owner did not change", not _claimed_by_new_owner(testbed)),
    ]


# -- the scenarios -------------------------------------------------------------------------------


def _fresh_claim(testbed: Testbed, factory: ProvisioningFactory) -> tuple[list[Check], str]:
    provisioned = _play(testbed, factory, provisioned=False)
    device = testbed.device
    checks = [Check("the device booted into listening mode (no credentials)",
                    testbed.world.trace.count("listening.enter", node=device.name) >= 1),
              Check("exactly one full handshake",
                    device.cloud.handshakes["full"] == 1),
              *_delivered_checks(testbed, provisioned)]
    return checks, ("claim code delivered on the first full handshake, confirmed by the cloud, "
                    "cleared locally; device claimed by the new owner")


def _resume_bug(testbed: Testbed, factory: ProvisioningFactory) -> tuple[list[Check], str]:
    provisioned = _play(testbed, factory)
    return _not_delivered_checks(testbed, provisioned), (
        "BUG REPRODUCED: the claim code was stored while a session was persisted; the device "
        "resumed that session and never published spark/device/claim/code")


def _session_end_workaround(testbed: Testbed, factory: ProvisioningFactory
                            ) -> tuple[list[Check], str]:
    provisioned = _play(testbed, factory)
    device = testbed.device
    app = device.firmware
    checks = [Check("the app published spark/device/session/end while connected",
                    isinstance(app, SessionEndWorkaround) and app.stage == "session-end-sent"),
              Check("the cloud discarded the session (RST)",
                    any("Received RST message; discarding session" in line
                        for line in device.log_lines())),
              Check("the next connection was a full handshake",
                    device.cloud.handshakes["full"] == 2),
              *_delivered_checks(testbed, provisioned)]
    return checks, (
        "WORKAROUND WORKS: session/end published after a reconnect; the cloud reset the "
        "session, the next connection was a full handshake and the claim code was delivered")


def _session_end_too_early(testbed: Testbed, factory: ProvisioningFactory
                           ) -> tuple[list[Check], str]:
    provisioned = _play(testbed, factory)
    device = testbed.device
    lost = testbed.world.trace.find("publish.lost", node=device.name,
                                    name="spark/device/session/end")
    checks = [Check("spark/device/session/end was published during the reconnection and lost",
                    bool(lost) and lost[0].get("reason") == "handshake in progress"),
              *_not_delivered_checks(testbed, provisioned)]
    return checks, (
        "BUG PERSISTS: session/end was published while the device was reconnecting and was "
        "lost; the session resumed and the claim code was never sent")


def _clear_session(testbed: Testbed, factory: ProvisioningFactory) -> tuple[list[Check], str]:
    provisioned = _play(testbed, factory)
    device = testbed.device
    checks = [Check("the app cleared the session on disconnect",
                    any("Clearing session data" in line for line in device.log_lines())),
              Check("the next connection was a full handshake",
                    device.cloud.handshakes["full"] == 2),
              *_delivered_checks(testbed, provisioned)]
    return checks, (
        "DOCUMENTED PATH WORKS: disconnect with clearSession(true), reconnect with a full "
        "handshake, claim code delivered and cleared")


def _fixed_firmware(testbed: Testbed, factory: ProvisioningFactory) -> tuple[list[Check], str]:
    provisioned = _play(testbed, factory)
    device = testbed.device
    checks = [Check("the reconnection resumed the session",
                    device.cloud.handshakes["resumed"] >= 1),
              Check("no second full handshake was needed", device.cloud.handshakes["full"] == 1),
              *_delivered_checks(testbed, provisioned)]
    return checks, (
        "FIXED FIRMWARE: the claim code was published on the resumed session and delivered")


SCENARIOS: dict[str, Scenario] = {s.name: s for s in (
    Scenario("fresh-claim", "new device: claim code set in listening mode, sent on the first "
             "full handshake, confirmed, cleared, claimed",
             lambda: p2_stage(provisioned=False), _fresh_claim),
    Scenario("resume-bug", "code set while a session is persisted: the reconnect resumes and "
             "the code is never sent", p2_stage, _resume_bug),
    Scenario("session-end-workaround", "forum workaround: disconnect, reconnect, publish "
             "spark/device/session/end; the next connection is full and sends the code",
             lambda: p2_stage(firmware=SessionEndWorkaround), _session_end_workaround),
    Scenario("session-end-too-early", "session/end published while reconnecting is lost; the "
             "bug persists", lambda: p2_stage(firmware=SessionEndTooEarly),
             _session_end_too_early),
    Scenario("clear-session", "documented path: disconnect with clearSession(true); the next "
             "connection is full and sends the code",
             lambda: p2_stage(firmware=ClearSessionOnNewCredentials), _clear_session),
    Scenario("fixed-firmware", "firmware option send_claim_code_on_resume: the code is sent on "
             "the resumed session",
             lambda: p2_stage(options=FirmwareOptions(send_claim_code_on_resume=True)),
             _fixed_firmware),
    Scenario("product-customer-transfer", "customer B takes customer A's product device: "
             "claimDevice refused (403), product claim code set over the control channel, not "
             "sent on resume, session/end workaround, consumed, B owns it",
             transfer.stage, transfer.run_in_process),
)}


#: every story, both clouds: the Particle catalog then the ThingsBoard scenarios
CATALOG: dict[str, Scenario | TbScenario] = {**SCENARIOS, **TB_SCENARIOS}


def get_story(name: str) -> Scenario | TbScenario:
    """Any scenario of :data:`CATALOG` by name (one-line error listing them otherwise)."""
    try:
        return CATALOG[name]
    except KeyError:
        known = ", ".join(CATALOG)
        raise UsageError(f"unknown scenario {name!r} (known: {known})") from None


def get_scenario(name: str) -> Scenario:
    try:
        return SCENARIOS[name]
    except KeyError:
        known = ", ".join(SCENARIOS)
        raise UsageError(f"unknown scenario {name!r} (known: {known})") from None


__all__ = ["CATALOG", "HOME", "NEW", "NEW_OWNER_EMAIL", "SCENARIOS", "Check", "Provisioned",
           "Scenario", "ScenarioResult", "default_provisioning", "get_scenario", "get_story",
           "p2_stage", "particle"]
