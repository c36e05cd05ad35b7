"""ThingsBoard claiming scenarios: each a reproducible run with a timeline, checks and a verdict.

Every scenario describes its world as a :class:`~firmware_sim.testbed.TestbedSpec` with the
``thingsboard`` cloud (the emulated service with ThingsBoard's demo accounts; no access point,
no Particle device) and plays it on virtual time through the testbed: claim-button devices
linked to the service in process over MQTT (or HTTP/CoAP), virtual time passing, customer users
claiming - then it checks the outcome *and the reason* the service recorded. The timeline is the
trace of the service (``tb*`` layers) and of the devices (``button``, ``mqtt``).

:data:`TB_SCENARIOS` maps a name to a :class:`TbScenario`; ``run(seed, trace_path=None)``
returns a :class:`TbScenarioResult` (``passed``, ``verdict``, ``checks``, ``timeline``, the
testbed). A scenario that needs more than the base install (``tb-bodyless-post`` drives the REST
API, FastAPI) is *skipped* with a one-line hint when that is missing. The registry is kept apart
from the Particle catalog (``SCENARIOS``) until the two are merged.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..claim_button import ClaimButtonDevice, MqttDeviceClient
from ..kernel.errors import UsageError
from ..testbed import CloudSpec, Testbed, TestbedSpec
from ..testbed.clouds.thingsboard import (
    CLAIM_ATTRIBUTE_NAME,
    CLAIM_DATA_ATTRIBUTE_NAME,
    SERVER_SCOPE,
    ButtonConfig,
    ClaimOutcome,
    Reason,
    SecretMode,
    TbCloudSettings,
    ThingsBoardPlug,
    ThingsBoardSettings,
    User,
)
from .base import Check, StoryResult

TIMELINE_LAYERS = ("tb", "tb.mqtt", "button", "mqtt", "scenario")


@dataclass
class TbScenarioResult(StoryResult):
    """A ThingsBoard story's run: its timeline is the service's and the buttons' records."""

    @property
    def cloud(self) -> ThingsBoardPlug:
        return thingsboard(self.testbed)

    @property
    def header(self) -> str:
        """What the run was about, for the first line of a report."""
        return f"cloud thingsboard, {len(self.cloud.buttons)} claim button(s)"

    @property
    def timeline(self) -> list[str]:
        return [record.summary() for record in self.world.trace.records
                if record.layer in TIMELINE_LAYERS and not record.kind.endswith(".created")]


def thingsboard(testbed: Testbed) -> ThingsBoardPlug:
    """The testbed's ThingsBoard cloud (every scenario here has one)."""
    cloud = testbed.cloud
    if not isinstance(cloud, ThingsBoardPlug):
        raise UsageError("this scenario needs the thingsboard cloud")
    return cloud


class Stage:
    """What a scenario body gets: the testbed's world, the service, demo accounts, helpers."""

    def __init__(self, testbed: Testbed) -> None:
        self.testbed = testbed
        self.world = testbed.world
        self.tb = thingsboard(testbed)
        self.service = self.tb.service
        demo = self.tb.demo
        if demo is None:
            raise UsageError("ThingsBoard scenarios need the demo accounts")
        self.demo = demo
        self.checks: list[Check] = []

    def note(self, text: str) -> None:
        self.world.trace.emit("world", "scenario", "scenario.note", text=text)

    def customer(self, letter: str) -> User:
        return self.tb.customer_user(letter)

    def button(self, name: str, config: ButtonConfig | None = None, *,
               transport: str = "mqtt", gateway: bool = False) -> ClaimButtonDevice:
        return self.tb.add_button(name, config, transport=transport, gateway=gateway)

    def claim(self, letter: str, device: str, secret: str) -> ClaimOutcome:
        self.note(f"customer {letter} claims {device!r} with secret {secret!r}")
        return self.service.claim_device(self.tb.customer_user(letter), device, secret)

    def check(self, description: str, ok: bool) -> bool:
        self.checks.append(Check(description, bool(ok)))
        return bool(ok)

    def run(self, seconds: float) -> None:
        self.world.run_for(seconds)

    def attribute(self, device: str, key: str) -> Any:
        found = self.service.device_named(self.demo.tenant.id, device)
        attribute = self.service.store.get_attribute(found.id, SERVER_SCOPE, key)
        return None if attribute is None else attribute.value

    def customer_of(self, device: str) -> str | None:
        found = self.service.device_named(self.demo.tenant.id, device)
        if found.customer_id is None:
            return None
        customer = self.service.store.get_customer(found.customer_id)
        return customer.title if customer else None


Body = Callable[[Stage], str]


@dataclass(frozen=True)
class TbScenario:
    name: str
    summary: str
    body: Body
    settings: ThingsBoardSettings = field(default_factory=ThingsBoardSettings)
    #: modules beyond the base install the scenario needs (all in fwsim[thingsboard])
    needs: tuple[str, ...] = ()

    def stage(self) -> TestbedSpec:
        """The world before it is played: the thingsboard cloud with these settings."""
        return TestbedSpec(access_points=(), cloud=CloudSpec(
            "thingsboard", settings=TbCloudSettings(service=self.settings)))

    def missing(self) -> str | None:
        """A one-line hint when a module the scenario needs is not installed."""
        absent = [name for name in self.needs if importlib.util.find_spec(name) is None]
        if not absent:
            return None
        return f"needs {', '.join(absent)}: install fwsim[thingsboard]"

    def run(self, seed: int = 0, *, trace_path: str | Path | None = None) -> TbScenarioResult:
        testbed = Testbed(replace(self.stage(), seed=seed, trace_path=trace_path))
        world = testbed.world
        world.trace.emit("world", "scenario", "scenario.start", name=self.name)
        skipped = self.missing()
        checks: list[Check] = []
        try:
            if skipped is not None:
                passed, verdict = False, f"skipped: {skipped}"
                world.trace.emit("world", "scenario", "scenario.skipped", name=self.name,
                                 why=skipped)
            else:
                stage = Stage(testbed)
                verdict = self.body(stage)
                checks = stage.checks
                passed = all(check.ok for check in checks) and bool(checks)
                world.trace.emit("world", "scenario", "scenario.verdict", name=self.name,
                                 passed=passed, verdict=verdict)
        finally:
            testbed.close(power_off=False)
        return TbScenarioResult(self.name, world.seed, passed, verdict, testbed, checks,
                                skipped)


# -- the scenarios ------------------------------------------------------------------------------


def device_key(stage: Stage) -> str:
    button = stage.button("Thermostat A1", ButtonConfig(duration_ms=60_000))
    button.power_on()
    stage.run(5)
    outcome = stage.claim("A", "Thermostat A1", button.secret or "")
    stage.check("the device's claim info was acknowledged (PUBACK)", button.acked == 1)
    stage.check("customer A's claim with the displayed secret: SUCCESS",
                outcome.response.value == "SUCCESS")
    stage.check("the device is now Customer A's", stage.customer_of("Thermostat A1")
                == "Customer A")
    return "device-side key: the secret shown by the device claimed it for Customer A"


def server_key(stage: Stage) -> str:
    tenant = stage.demo.tenant.id
    device = stage.service.create_device(tenant, "LoRa Sensor 7")
    expires = stage.service.now_ms() + 3_600_000
    stage.note("tenant admin sets SERVER attribute claimingData (one JSON attribute)")
    stage.service.save_attributes(device, SERVER_SCOPE, {
        CLAIM_DATA_ATTRIBUTE_NAME: {"secretKey": "BOX-4711", "expirationTime": expires}})
    wrong = stage.claim("B", "LoRa Sensor 7", "BOX-0000")
    stage.check("a wrong key fails", wrong.response.value == "FAILURE"
                and wrong.reason is Reason.SECRET_MISMATCH)
    stage.check("...and does not delete the claimingData attribute",
                stage.attribute("LoRa Sensor 7", CLAIM_DATA_ATTRIBUTE_NAME) is not None)
    right = stage.claim("B", "LoRa Sensor 7", "BOX-4711")
    stage.check("the key from the box claims it: SUCCESS", right.response.value == "SUCCESS")
    stage.check("claimingData is deleted after the claim",
                stage.attribute("LoRa Sensor 7", CLAIM_DATA_ATTRIBUTE_NAME) is None)
    other = stage.service.create_device(tenant, "LoRa Sensor 8")
    stage.note("tenant admin sets secretKey and expirationTime as TWO attributes (a mistake)")
    stage.service.save_attributes(other, SERVER_SCOPE, {"secretKey": "BOX-4712",
                                                        "expirationTime": expires})
    split = stage.claim("B", "LoRa Sensor 8", "BOX-4712")
    stage.check("two separate attributes are not claim data: FAILURE, reason "
                "claiming_data_split", split.reason is Reason.CLAIMING_DATA_SPLIT)
    return "server-side key: claimingData (one JSON attribute) claims without a device message"


def empty_secret(stage: Stage) -> str:
    button = stage.button("Plug P1", ButtonConfig(secret=SecretMode.EMPTY, duration_ms=30_000))
    button.power_on()
    stage.run(20)
    outcome = stage.claim("C", "Plug P1", "")
    stage.check("claiming by name only, 20 s after the press: SUCCESS",
                outcome.response.value == "SUCCESS")
    return "empty secret: claimed by device name alone within the 30 s window"


def empty_secret_too_late(stage: Stage) -> str:
    button = stage.button("Plug P2", ButtonConfig(secret=SecretMode.EMPTY, duration_ms=30_000))
    button.power_on()
    stage.run(45)
    outcome = stage.claim("C", "Plug P2", "")
    stage.check("claiming 45 s after the press: FAILURE, reason expired",
                outcome.response.value == "FAILURE" and outcome.reason is Reason.EXPIRED)
    stage.check("the device still got its PUBACK: the failure is only visible on the server",
                button.acked == 1)
    return "empty secret too late: the 30 s window had closed (reason: expired)"


def duration_expiry(stage: Stage) -> str:
    button = stage.button("Meter M1", ButtonConfig(duration_ms=60_000))
    button.power_on()
    stage.run(90)
    late = stage.claim("A", "Meter M1", button.secret or "")
    stage.check("the right key 90 s into a 60 s window: FAILURE, reason expired",
                late.reason is Reason.EXPIRED and late.evicted)
    again = stage.claim("A", "Meter M1", button.secret or "")
    stage.check("retrying says why: the failed attempt evicted the claim data",
                again.reason is Reason.EVICTED_BY_FAILED_ATTEMPT)
    button.press_button()
    stage.run(2)
    fresh = stage.claim("A", "Meter M1", button.secret or "")
    stage.check("after a new press, the new secret claims it: SUCCESS",
                fresh.response.value == "SUCCESS")
    return "duration expiry: a claim after durationMs fails and evicts; a new press recovers"


def wrong_key_evicts(stage: Stage) -> str:
    button = stage.button("Gate G1", ButtonConfig(duration_ms=1, secret=SecretMode.FIXED,
                                                  fixed_secret="value"))
    button.power_on()
    stage.run(1)
    first = stage.claim("A", "Gate G1", "value")
    stage.check("durationMs:1 then a claim: FAILURE (as ThingsBoard's MqttClaimDeviceTest)",
                first.response.value == "FAILURE" and first.reason is Reason.EXPIRED)
    stage.note("the device sends its claim info again with durationMs 60000")
    button.config = ButtonConfig(duration_ms=60_000, secret=SecretMode.FIXED,
                                 fixed_secret="value")
    button.press_button()
    stage.run(1)
    wrong = stage.claim("A", "Gate G1", "valu3")
    stage.check("one wrong key: FAILURE, secret_mismatch, cache entry evicted",
                wrong.reason is Reason.SECRET_MISMATCH and wrong.evicted)
    right = stage.claim("A", "Gate G1", "value")
    stage.check("the right key right after: FAILURE, evicted_by_failed_attempt",
                right.response.value == "FAILURE"
                and right.reason is Reason.EVICTED_BY_FAILED_ATTEMPT)
    button.press_button()
    stage.run(1)
    final = stage.claim("A", "Gate G1", "value")
    stage.check("after the device sends again: SUCCESS", final.response.value == "SUCCESS")
    return "a wrong key evicts the cached claim data: the device must send it again"


def second_press_keeps_first(stage: Stage) -> str:
    button = stage.button("Lamp L1", ButtonConfig(duration_ms=120_000))
    button.power_on()
    stage.run(5)
    first_secret = button.secret or ""
    button.press_button()
    stage.run(5)
    second_secret = button.secret or ""
    history = [e.reason for e in stage.service.history(
        stage.service.device_named(stage.demo.tenant.id, "Lamp L1"))]
    stage.check("the second press was acknowledged but kept the first secret "
                "(putIfAbsent): reason kept_first_secret",
                button.acked == 2 and Reason.KEPT_FIRST_SECRET.value in history)
    outcome = stage.claim("B", "Lamp L1", second_secret)
    stage.check("claiming with the secret now on the display: FAILURE, secret_mismatch",
                outcome.reason is Reason.SECRET_MISMATCH and first_secret != second_secret)
    button.press_button()
    stage.run(5)
    retry = stage.claim("B", "Lamp L1", button.secret or "")
    stage.check("that failure evicted the first secret: the next press works, SUCCESS",
                retry.response.value == "SUCCESS")
    return "a second press does not replace the first secret while it is cached"


def reclaim_restores(stage: Stage) -> str:
    tenant = stage.demo.tenant.id
    device = stage.service.create_device(tenant, "Valve V1")
    token = stage.service.access_token_of(device)
    refused = stage.service.device_claim(token, b'{"secretKey":"k1","durationMs":60000}',
                                         transport="mqtt")
    history = stage.service.history(device)
    stage.check("without claimingAllowed the registration is refused "
                "(still acknowledged): claiming_not_allowed",
                refused.value == "accepted"
                and history[-1].reason == Reason.CLAIMING_NOT_ALLOWED.value)
    stage.service.save_attributes(device, SERVER_SCOPE, {CLAIM_ATTRIBUTE_NAME: True})
    stage.service.device_claim(token, b'{"secretKey":"k1","durationMs":60000}',
                               transport="mqtt")
    outcome = stage.claim("A", "Valve V1", "k1")
    stage.check("with claimingAllowed=true: SUCCESS", outcome.response.value == "SUCCESS")
    stage.check("claimingAllowed is deleted by the claim",
                stage.attribute("Valve V1", CLAIM_ATTRIBUTE_NAME) is None)
    stage.note("customer A reclaims (DELETE .../claim)")
    result = stage.service.reclaim_device(stage.customer("A"), "Valve V1")
    stage.check("reclaim unassigns the device", stage.customer_of("Valve V1") is None
                and result.reason is Reason.RECLAIMED)
    stage.check("...and restores claimingAllowed=true (allowClaimingByDefault=false)",
                stage.attribute("Valve V1", CLAIM_ATTRIBUTE_NAME) is True)
    return "reclaim with allowClaimingByDefault=false restores claimingAllowed=true"


def other_customer_claimed(stage: Stage) -> str:
    button = stage.button("Camera C1", ButtonConfig(duration_ms=60_000))
    button.power_on()
    stage.run(3)
    stage.claim("A", "Camera C1", button.secret or "")
    outcome = stage.claim("B", "Camera C1", button.secret or "")
    stage.check("customer B claiming Customer A's device: CLAIMED, already_claimed",
                outcome.response.value == "CLAIMED" and outcome.reason is Reason.ALREADY_CLAIMED)
    stage.check("the device stays Customer A's", stage.customer_of("Camera C1")
                == "Customer A")
    button.press_button()
    stage.run(3)
    history = stage.service.history(stage.service.device_named(stage.demo.tenant.id,
                                                               "Camera C1"))
    stage.check("a new press on an assigned device is refused: already_claimed",
                history[-1].reason == Reason.ALREADY_CLAIMED.value and button.acked == 2)
    return "a customer user of another customer gets CLAIMED for an assigned device"


def gateway_claim(stage: Stage) -> str:
    gateway = stage.service.create_device(stage.demo.tenant.id, "Gateway GW1", gateway=True)
    token = stage.service.access_token_of(gateway)
    stage.service.create_device(stage.demo.tenant.id, "Sensor S1")
    payload = json.dumps({"Sensor S1": {"secretKey": "s1", "durationMs": 60_000},
                          "Sensor S2": {"secretKey": "s2", "durationMs": 60_000},
                          "Bogus": "not an object"}).encode()
    client = MqttDeviceClient(stage.world, stage.world.trace.bind("Gateway GW1", "mqtt"),
                              token=token, client_id="gw1")
    acks: list[int] = []

    def publish() -> None:
        client.publish("v1/gateway/claim", payload, acks.append)

    client.on_connected = publish
    client.start(stage.tb.connect_mqtt())
    stage.run(2)
    stage.check("one gateway message, acknowledged", acks == [0])
    first = stage.claim("A", "Sensor S1", "s1")
    second = stage.claim("B", "Sensor S2", "s2")
    stage.check("both devices claimed (Sensor S2 created by the gateway message)",
                first.response.value == "SUCCESS" and second.response.value == "SUCCESS")
    return "gateway claiming: several devices in one v1/gateway/claim message"


def bodyless_post(stage: Stage) -> str:
    stage.service.create_device(stage.demo.tenant.id, "Door D1")
    tokens = stage.service.login("customerA@thingsboard.org", "customer")
    headers = {"X-Authorization": f"Bearer {tokens['token']}"}
    stage.note("customer A POSTs .../claim with no body at all")
    status, body = stage.tb.rest("POST", "/api/customer/device/Door D1/claim",
                                 headers=headers)
    stage.check("no body: 500 with ThingsBoard's error JSON (the NullPointerException)",
                status == 500 and json.loads(body).get("errorCode") == 2)
    stage.note("customer A POSTs {\"secretKey\": null} (what ThingsBoard's own tests send)")
    status, body = stage.tb.rest("POST", "/api/customer/device/Door D1/claim",
                                 headers={**headers, "Content-Type": "application/json"},
                                 body=b'{"secretKey":null}')
    stage.check('{"secretKey":null}: 400 "FAILURE" (no claim data), not a 500',
                status == 400 and json.loads(body) == "FAILURE")
    return "the body-less POST gives a 500; send {} or {\"secretKey\":null} instead"


def _scenario(name: str, summary: str, body: Body, *, needs: tuple[str, ...] = (),
              **settings: Any) -> TbScenario:
    return TbScenario(name, summary, body, ThingsBoardSettings(**settings), needs)


TB_SCENARIOS: dict[str, TbScenario] = {s.name: s for s in (
    _scenario("tb-device-key", "device-side key: the button's secret, claimed by a customer",
              device_key),
    _scenario("tb-server-key", "server-side claimingData key; two separate attributes fail",
              server_key),
    _scenario("tb-empty-secret", "empty secret: claim by name within the 30 s window",
              empty_secret),
    _scenario("tb-empty-secret-too-late", "empty secret: claiming after 30 s fails (expired)",
              empty_secret_too_late),
    _scenario("tb-duration-expiry", "a claim after durationMs fails and evicts the data",
              duration_expiry),
    _scenario("tb-wrong-key-evicts", "durationMs 1 then 60000; one wrong key evicts the cache",
              wrong_key_evicts),
    _scenario("tb-second-press", "a second press keeps the first secret (putIfAbsent)",
              second_press_keeps_first),
    _scenario("tb-reclaim-restores", "allowClaimingByDefault=false: reclaim restores "
              "claimingAllowed=true", reclaim_restores, allow_claiming_by_default=False),
    _scenario("tb-other-customer", "another customer's user claiming an assigned device: "
              "CLAIMED", other_customer_claimed),
    _scenario("tb-gateway-claim", "gateway claiming of several devices in one message",
              gateway_claim),
    _scenario("tb-bodyless-post", "POST .../claim without a body: 500", bodyless_post,
              needs=("fastapi",)),
)}


def get_tb_scenario(name: str) -> TbScenario:
    try:
        return TB_SCENARIOS[name]
    except KeyError:
        raise UsageError(f"unknown ThingsBoard scenario {name!r}; known: "
                         f"{', '.join(TB_SCENARIOS)}") from None


__all__ = ["TB_SCENARIOS", "Stage", "TbScenario", "TbScenarioResult", "get_tb_scenario",
           "thingsboard"]
