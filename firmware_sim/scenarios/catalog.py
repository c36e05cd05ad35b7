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
from dataclasses import dataclass, field
from pathlib import Path

from cloud_sim import Cloud, Principal

from ..kernel.errors import UsageError
from ..kernel.trace import JsonlSink
from ..kernel.world import World
from ..services.log import log_lines
from ..system.app import Firmware
from ..system.device import Device, FirmwareOptions
from ..system.network import WifiCredentials
from ..system.radio import AccessPoint, radio_environment
from .apps import ClearSessionOnNewCredentials, SessionEndTooEarly, SessionEndWorkaround
from .phone import DirectProvisioning, Phone, Provisioning

HOME = AccessPoint("HomeNet", "home-pass-1", rssi=-62, channel=1)
NEW = AccessPoint("NewNet", "new-pass-22", rssi=-48, channel=11)
NEW_OWNER = Principal.user("new-owner@example.com")
SCENARIO_SECONDS = 180.0

ProvisioningFactory = Callable[[Device], Provisioning]


@dataclass
class Check:
    description: str
    ok: bool


@dataclass
class ScenarioResult:
    name: str
    seed: int
    passed: bool
    verdict: str
    world: World
    device: Device
    cloud: Cloud
    checks: list[Check] = field(default_factory=list)

    @property
    def timeline(self) -> list[str]:
        return log_lines(self.world.trace.records, self.device.name)

    @property
    def simulated_seconds(self) -> float:
        return self.world.now


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    runner: Callable[[World, ProvisioningFactory], tuple[Device, Cloud, list[Check], str]]

    def run(self, seed: int = 0, *, trace_path: str | Path | None = None,
            provisioning: ProvisioningFactory | None = None) -> ScenarioResult:
        sinks = [JsonlSink(trace_path)] if trace_path is not None else []
        world = World(seed, sinks=sinks)
        world.trace.emit("world", "scenario", "scenario.start", name=self.name)
        try:
            device, cloud, checks, verdict = self.runner(world,
                                                         provisioning or default_provisioning)
            passed = all(check.ok for check in checks)
            world.trace.emit("world", "scenario", "scenario.verdict", name=self.name,
                             passed=passed, verdict=verdict,
                             failed=[c.description for c in checks if not c.ok])
        finally:
            world.trace.close()
        return ScenarioResult(self.name, world.seed, passed, verdict, world, device, cloud,
                              checks)


def default_provisioning(device: Device) -> Provisioning:
    from .control_provisioning import ControlRequestProvisioning

    return ControlRequestProvisioning(device)


# -- shared set-up -------------------------------------------------------------------------------


def _stage(world: World, *, firmware: type[Firmware] | None = None,
           options: FirmwareOptions | None = None, provisioned: bool = True
           ) -> tuple[Device, Cloud]:
    radio = radio_environment(world)
    radio.add(HOME)
    radio.add(NEW)
    cloud = Cloud(world)
    wifi = [WifiCredentials(HOME.ssid, HOME.password)] if provisioned else []
    device = Device(world, "p2", profile="p2", device_id="e00fce68aabbccddeeff0011",
                    serial_number="P046AB1234ABC12", mobile_secret="ABCDEFGHJKLMNPQ",
                    firmware=firmware, options=options, wifi=wifi)
    device.attach_cloud(cloud.connector())
    return device, cloud


@dataclass
class Provisioned:
    code: str
    phone: Phone

    def check(self) -> Check:
        return Check("every provisioning request answered 0 (" + ", ".join(
            f"{step}={result}" for step, result in self.phone.results) + ")",
            self.phone.finished and all(result == 0 for _, result in self.phone.results))


def _provision(world: World, device: Device, cloud: Cloud, factory: ProvisioningFactory, *,
               at_s: float, listening: bool = False) -> Provisioned:
    """The phone sets a new owner's claim code and joins NewNet at ``at_s``."""
    code = cloud.create_claim_code(NEW_OWNER, ttl_s=3600).code
    phone = Phone(world, factory(device))
    phone.set_claim_code(code).join_new_network(NEW.ssid, NEW.password or "")
    if listening:
        phone.stop_listening()
    phone.run(start_in_s=at_s)
    return Provisioned(code, phone)


def _play(world: World, factory: ProvisioningFactory, *,
          firmware: type[Firmware] | None = None, options: FirmwareOptions | None = None,
          provisioned: bool = True) -> tuple[Device, Cloud, Provisioned]:
    """Boot the stage, let the phone provision the device, run the scenario's time.

    A provisioned device is set up over its control channel 20 s after boot, while connected;
    a new device (no credentials) in listening mode 10 s after boot."""
    device, cloud = _stage(world, firmware=firmware, options=options, provisioned=provisioned)
    device.power_on()
    steps = _provision(world, device, cloud, factory, at_s=20.0 if provisioned else 10.0,
                       listening=not provisioned)
    world.run_for(SCENARIO_SECONDS)
    return device, cloud, steps


def _claim_sent(device: Device) -> bool:
    return any("Send spark/device/claim/code event" in line for line in device.log_lines())


def _claimed_by_new_owner(cloud: Cloud, device: Device) -> bool:
    return cloud.owner_of(device.device_id) == NEW_OWNER


def _delivered_checks(device: Device, cloud: Cloud, provisioned: Provisioned) -> list[Check]:
    code = provisioned.code
    return [
        provisioned.check(),
        Check("spark/device/claim/code was published", _claim_sent(device)),
        Check("the cloud consumed the code and made the new owner the owner",
              _claimed_by_new_owner(cloud, device)),
        Check("the device cleared the code (first byte NUL)",
              device.claim.stored_code()[0] == 0 and device.claim.pending_code() is None),
        Check("the device is marked claimed (DCT byte '1')", device.claim.is_device_claimed()),
        Check("the code is single use (consumed in the cloud)",
              bool((c := cloud.store.get_claim_code(code)) and c.consumed)),
    ]


def _not_delivered_checks(device: Device, cloud: Cloud, provisioned: Provisioned
                          ) -> list[Check]:
    code = provisioned.code
    return [
        provisioned.check(),
        Check("the reconnection resumed the session", device.cloud.handshakes["resumed"] >= 1),
        Check("only the first boot did a full handshake", device.cloud.handshakes["full"] == 1),
        Check("spark/device/claim/code was never published", not _claim_sent(device)),
        Check("the device still holds the code", device.claim.pending_code() == code),
        Check("the cloud owner did not change", not _claimed_by_new_owner(cloud, device)),
    ]


# -- the scenarios -------------------------------------------------------------------------------


def _fresh_claim(world: World, factory: ProvisioningFactory
                 ) -> tuple[Device, Cloud, list[Check], str]:
    device, cloud, provisioned = _play(world, factory, provisioned=False)
    checks = [Check("the device booted into listening mode (no credentials)",
                    world.trace.count("listening.enter", node=device.name) >= 1),
              Check("the first connection was a full handshake",
                    device.cloud.handshakes["full"] == 1),
              *_delivered_checks(device, cloud, provisioned)]
    return device, cloud, checks, (
        "claim code delivered on the first full handshake, confirmed by the cloud, cleared "
        "locally; device claimed by the new owner")


def _resume_bug(world: World, factory: ProvisioningFactory
                ) -> tuple[Device, Cloud, list[Check], str]:
    device, cloud, provisioned = _play(world, factory)
    return device, cloud, _not_delivered_checks(device, cloud, provisioned), (
        "BUG REPRODUCED: the claim code was stored while a session was persisted; the device "
        "resumed that session and never published spark/device/claim/code")


def _session_end_workaround(world: World, factory: ProvisioningFactory
                            ) -> tuple[Device, Cloud, list[Check], str]:
    device, cloud, provisioned = _play(world, factory, firmware=SessionEndWorkaround)
    app = device.firmware
    checks = [Check("the app published spark/device/session/end while connected",
                    isinstance(app, SessionEndWorkaround) and app.stage == "session-end-sent"),
              Check("the cloud discarded the session (RST)",
                    any("Received RST message; discarding session" in line
                        for line in device.log_lines())),
              Check("the next connection was a full handshake",
                    device.cloud.handshakes["full"] == 2),
              *_delivered_checks(device, cloud, provisioned)]
    return device, cloud, checks, (
        "WORKAROUND WORKS: session/end published after a reconnect; the cloud reset the "
        "session, the next connection was a full handshake and the claim code was delivered")


def _session_end_too_early(world: World, factory: ProvisioningFactory
                           ) -> tuple[Device, Cloud, list[Check], str]:
    device, cloud, provisioned = _play(world, factory, firmware=SessionEndTooEarly)
    lost = world.trace.find("publish.lost", node=device.name, name="spark/device/session/end")
    checks = [Check("spark/device/session/end was published during the reconnection and lost",
                    bool(lost) and lost[0].get("reason") == "handshake in progress"),
              *_not_delivered_checks(device, cloud, provisioned)]
    return device, cloud, checks, (
        "BUG PERSISTS: session/end was published while the device was reconnecting and was "
        "lost; the session resumed and the claim code was never sent")


def _clear_session(world: World, factory: ProvisioningFactory
                   ) -> tuple[Device, Cloud, list[Check], str]:
    device, cloud, provisioned = _play(world, factory, firmware=ClearSessionOnNewCredentials)
    checks = [Check("the app cleared the session on disconnect",
                    any("Clearing session data" in line for line in device.log_lines())),
              Check("the next connection was a full handshake",
                    device.cloud.handshakes["full"] == 2),
              *_delivered_checks(device, cloud, provisioned)]
    return device, cloud, checks, (
        "DOCUMENTED PATH WORKS: disconnect with clearSession(true), reconnect with a full "
        "handshake, claim code delivered and cleared")


def _fixed_firmware(world: World, factory: ProvisioningFactory
                    ) -> tuple[Device, Cloud, list[Check], str]:
    device, cloud, provisioned = _play(
        world, factory, options=FirmwareOptions(send_claim_code_on_resume=True))
    checks = [Check("the reconnection resumed the session",
                    device.cloud.handshakes["resumed"] >= 1),
              Check("no second full handshake was needed", device.cloud.handshakes["full"] == 1),
              *_delivered_checks(device, cloud, provisioned)]
    return device, cloud, checks, (
        "FIXED FIRMWARE: the claim code was published on the resumed session and delivered")


def _product_customer_transfer(world: World, factory: ProvisioningFactory
                                ) -> tuple[Device, Cloud, list[Check], str]:
    from .transfer import run_in_process  # transfer.py imports this module

    return run_in_process(world, factory)


SCENARIOS: dict[str, Scenario] = {s.name: s for s in (
    Scenario("fresh-claim", "new device: claim code set in listening mode, sent on the first "
             "full handshake, confirmed, cleared, claimed", _fresh_claim),
    Scenario("resume-bug", "code set while a session is persisted: the reconnect resumes and "
             "the code is never sent", _resume_bug),
    Scenario("session-end-workaround", "forum workaround: disconnect, reconnect, publish "
             "spark/device/session/end; the next connection is full and sends the code",
             _session_end_workaround),
    Scenario("session-end-too-early", "session/end published while reconnecting is lost; the "
             "bug persists", _session_end_too_early),
    Scenario("clear-session", "documented path: disconnect with clearSession(true); the next "
             "connection is full and sends the code", _clear_session),
    Scenario("fixed-firmware", "firmware option send_claim_code_on_resume: the code is sent on "
             "the resumed session", _fixed_firmware),
    Scenario("product-customer-transfer", "customer B takes customer A's product device: "
             "claimDevice refused (403), product claim code set over the control channel, not "
             "sent on resume, session/end workaround, consumed, B owns it",
             _product_customer_transfer),
)}


def get_scenario(name: str) -> Scenario:
    try:
        return SCENARIOS[name]
    except KeyError:
        known = ", ".join(SCENARIOS)
        raise UsageError(f"unknown scenario {name!r} (known: {known})") from None


__all__ = ["SCENARIOS", "Check", "DirectProvisioning", "Scenario", "ScenarioResult",
           "get_scenario"]
