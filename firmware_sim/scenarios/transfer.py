"""Scenario ``product-customer-transfer``: the whole forum thread, from the cloud's side too.

Customer A owns a device of product ``acme-sensors``. Customer B's ``claimDevice`` is refused
with 403 "That belongs to someone else." (and a customer cannot request a transfer). B's app
gets a product claim code, and the phone sets it on the device over the control-request channel
(what BLE or USB carry) together with new Wi-Fi credentials, while the device keeps its cloud
session. The device reconnects, *resumes* its session and does not send the code (the Device OS
behaviour of the thread). The firmware's workaround then publishes ``spark/device/session/end``;
the cloud drops the session, the device's next message gets a RST, the device does a full
handshake and sends the code; the cloud consumes it, confirms with
``spark/device/claim/confirm``, the device clears it, and B owns the device - still in the same
product.

The script (:class:`TransferScript`) only talks to the cloud through the REST API, so the same
script runs two ways:

* in process (``fwsim scenario run product-customer-transfer``): one World on virtual time; the
  API is the real FastAPI app called through its ASGI stack; the device link is in-process;
* across processes (``fwsim device run --scenario product-customer-transfer --cloud coap://...
  --api http://...``): the cloud is ``fwsim cloud serve`` in another process; this process runs
  the device in real time (optionally sped up), over CoAP/UDP, and calls the API over HTTP.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from ..apps import SessionEndWorkaround
from ..kernel.world import World
from ..services.log import log_lines
from ..system.device import Device
from ..system.network import WifiCredentials
from ..system.radio import AccessPoint
from ..testbed import (
    ApiClient,
    CloudSpec,
    DeviceSpec,
    LinkSpec,
    Phone,
    Provisioning,
    ProvisioningFactory,
    Testbed,
    TestbedSpec,
)
from ..testbed.clouds.particle import claim_code_well_formed, enrol_remote, remote_api
from .base import Check, default_provisioning, particle

NAME = "product-customer-transfer"
DEVICE_ID = "e00fce68aabbccddeeff0011"
PRODUCT_ID = 4242
PRODUCT_SLUG = "acme-sensors"
CLIENT_ID, CLIENT_SECRET = "acme-sensors-app", "acme-app-secret"
DEVELOPER = "dev@acme.example"
CUSTOMER_A = "alice@example.com"
CUSTOMER_B = "bob@example.com"
HOME = AccessPoint("HomeNet", "home-pass-1", rssi=-62, channel=1)
NEW = AccessPoint("BobNet", "bob-pass-22", rssi=-48, channel=11)
BELONGS = "That belongs to someone else."
VERDICT = ("THREAD REPRODUCED: B's claimDevice refused (403), B's product claim code set on the "
           "device was not sent on the resumed session, the session/end workaround forced a "
           "full handshake, the code was consumed and confirmed, and B owns the device")

#: virtual seconds of the script's steps
AT_CLAIM_ATTEMPT_S = 8.0
AT_PHONE_S = 20.0
TIMEOUT_S = 300.0
SETTLE_S = 3.0

SEED: dict[str, Any] = {
    "users": [{"username": DEVELOPER, "password": "dev-password"}],
    "products": [{"id": PRODUCT_ID, "slug": PRODUCT_SLUG, "name": "Acme Sensors",
                  "team": [DEVELOPER], "client": {"id": CLIENT_ID, "secret": CLIENT_SECRET}}],
    "customers": [{"product": PRODUCT_SLUG, "email": CUSTOMER_A, "password": "alice-pw"},
                  {"product": PRODUCT_SLUG, "email": CUSTOMER_B, "password": "bob-pw"}],
    "devices": [{"id": DEVICE_ID, "product": PRODUCT_SLUG, "owner": f"customer:{CUSTOMER_A}",
                 "platform_id": 32}],
}


def stage(*, link: LinkSpec | None = None, with_cloud: bool = True) -> TestbedSpec:
    """HomeNet and BobNet in range, A's P2 running the session/end workaround, the cloud."""
    device = DeviceSpec("p2", profile="p2", device_id=DEVICE_ID,
                        serial_number="P046AB1234ABC12", mobile_secret="ABCDEFGHJKLMNPQ",
                        firmware=SessionEndWorkaround,
                        wifi=(WifiCredentials(HOME.ssid, HOME.password),), link=link)
    return TestbedSpec(access_points=(HOME, NEW),
                       cloud=CloudSpec("particle") if with_cloud else None, devices=(device,))


@dataclass
class _Seen:
    """What the script observed through the API."""

    seed_status: int = 0
    b_token: str | None = None
    a_token: str | None = None
    dev_token: str | None = None
    claim_attempt: tuple[int, Any] = (0, None)
    transfer_attempt: tuple[int, Any] = (0, None)
    claim_code: str | None = None
    connected_when_code_set: bool = False
    code_set_at_us: int | None = None
    notes: list[str] = field(default_factory=list)


class TransferScript:
    """The steps of the thread against a cloud reachable through ``api``."""

    def __init__(self, world: World, device: Device, api: ApiClient,
                 provisioning: Provisioning) -> None:
        self.world = world
        self.device = device
        self.api = api
        self.provisioning = provisioning
        self.tracer = world.trace.bind("app-server", "scenario")
        self.seen = _Seen()
        self.phone = Phone(world, provisioning)

    # -- the steps -----------------------------------------------------------------------------

    def seed(self) -> None:
        status, body = self.api.request("POST", "/fwsim/seed", json=SEED)
        self.seen.seed_status = status
        if status == 200:
            self.seen.a_token = body["customers"][CUSTOMER_A]["access_token"]
            self.seen.dev_token = body["users"][DEVELOPER]["access_token"]
        # B's app backend gets B a token as the product's OAuth client (two-legged).
        status, body = self.api.request("POST", "/oauth/token", form={
            "grant_type": "client_credentials", "scope": f"customer={CUSTOMER_B}",
            "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
        if status == 200:
            self.seen.b_token = body["access_token"]
        self.tracer.emit("seeded", seed_status=self.seen.seed_status,
                         b_token=self.seen.b_token is not None)

    def schedule(self) -> None:
        call_later = self.world.scheduler.call_later
        call_later(AT_CLAIM_ATTEMPT_S, self._claim_attempts, label="app-server")
        call_later(AT_PHONE_S - 2.0, self._get_claim_code, label="app-server")

    def _claim_attempts(self) -> None:
        token = self.seen.b_token
        self.seen.claim_attempt = self.api.request(
            "POST", "/v1/devices", token=token, json={"id": DEVICE_ID, "request_transfer": False})
        self.tracer.emit("claim_device", status=self.seen.claim_attempt[0],
                         body=self.seen.claim_attempt[1])
        self.seen.transfer_attempt = self.api.request(
            "POST", "/v1/devices", token=token, json={"id": DEVICE_ID, "request_transfer": True})
        self.tracer.emit("claim_device", request_transfer=True,
                         status=self.seen.transfer_attempt[0], body=self.seen.transfer_attempt[1])

    def _get_claim_code(self) -> None:
        status, body = self.api.request("POST", f"/v1/products/{PRODUCT_SLUG}/device_claims",
                                        token=self.seen.b_token, json={})
        code = body.get("claim_code") if status == 200 and isinstance(body, dict) else None
        self.seen.claim_code = code if isinstance(code, str) else None
        self.tracer.emit("claim_code", status=status, code=self.seen.claim_code)
        if self.seen.claim_code is None:
            return
        self.world.scheduler.call_later(2.0, self._phone, label="phone")

    def _phone(self) -> None:
        self.seen.connected_when_code_set = self.device.cloud_connected
        self.seen.code_set_at_us = self.world.clock.now_us
        assert self.seen.claim_code is not None
        self.phone.set_claim_code(self.seen.claim_code).join_new_network(
            NEW.ssid, NEW.password or "")
        self.phone.run()

    def finished(self) -> bool:
        return (self.phone.finished and self.seen.claim_code is not None
                and self.device.claim.pending_code() is None)

    # -- the verdict ---------------------------------------------------------------------------

    def _device_times(self, kind: str, **fields: Any) -> list[int]:
        return [r.t_us for r in self.world.trace.find(kind, node=self.device.name, **fields)]

    def _log_times(self, text: str) -> list[int]:
        return [r.t_us for r in self.world.trace.find("log", node=self.device.name)
                if text in str(r.fields.get("message", ""))]

    def checks(self) -> list[Check]:
        seen, api = self.seen, self.api
        claim_status, claim_body = seen.claim_attempt
        transfer_status, transfer_body = seen.transfer_attempt
        set_at = seen.code_set_at_us if seen.code_set_at_us is not None else 2**62
        session_end = self._device_times("publish.sent", name="spark/device/session/end")
        end_at = session_end[0] if session_end else 2**62
        resumed = [t for t in self._device_times("handshake.resumed") if set_at < t < end_at]
        sent = self._log_times("Send spark/device/claim/code event")
        phone_results = dict(self.phone.results)
        codes = api.request("GET", "/fwsim/claim_codes")[1] or {}
        claim: dict[str, Any] = next((c for c in codes.get("claim_codes", [])
                                      if c.get("claim_code") == seen.claim_code), {})
        events = api.request("GET", "/fwsim/events")[1] or {}
        confirmed = any(e.get("name") == "spark/device/claim/confirm"
                        and e.get("coreid") == DEVICE_ID and e.get("direction") == "device"
                        for e in events.get("events", []))
        b_devices = api.request("GET", "/v1/devices", token=seen.b_token)[1]
        a_devices = api.request("GET", "/v1/devices", token=seen.a_token)[1]
        product_view = api.request("GET", f"/v1/products/{PRODUCT_SLUG}/devices/{DEVICE_ID}",
                                   token=seen.dev_token)[1] or {}
        return [
            Check("the cloud was seeded: product acme-sensors, customers A and B, A owns the "
                  "device", seen.seed_status == 200 and seen.b_token is not None),
            Check("customer B's claimDevice was refused: 403 'That belongs to someone else.'",
                  claim_status == 403 and _errors(claim_body) == [BELONGS]),
            Check("customer B could not request a transfer (403)",
                  transfer_status == 403 and any(BELONGS in e for e in _errors(transfer_body))),
            Check("B got a product claim code (63 base64 characters)",
                  seen.claim_code is not None and claim_code_well_formed(seen.claim_code)),
            Check("the phone set the code over the control channel while the device kept its "
                  "cloud session", seen.connected_when_code_set
                  and phone_results.get("set_claim_code") == 0),
            Check("the reconnection resumed the session and did not send the code (the bug)",
                  bool(resumed) and not any(set_at < t < end_at for t in sent)),
            Check("the workaround published spark/device/session/end, the cloud answered with "
                  "RST and the device did a full handshake",
                  bool(session_end) and bool(self._log_times(
                      "Received RST message; discarding session"))
                  and self.device.cloud.handshakes["full"] >= 1
                  and any(t > end_at for t in self._device_times("handshake.full"))),
            Check("the code was sent after that full handshake",
                  any(t > end_at for t in sent)),
            Check("the cloud consumed the code (single use) and sent "
                  "spark/device/claim/confirm", claim.get("status") == "consumed"
                  and claim.get("consumed_by") == DEVICE_ID and confirmed),
            Check("the device cleared the code (first byte NUL) and is marked claimed",
                  self.device.claim.pending_code() is None
                  and self.device.claim.stored_code()[0] == 0
                  and self.device.claim.is_device_claimed()),
            Check("B owns the device now; A's device list no longer has it",
                  _ids(b_devices) == [DEVICE_ID] and DEVICE_ID not in _ids(a_devices)),
            Check("the device stayed in product acme-sensors, owned by B",
                  product_view.get("product_id") == PRODUCT_ID
                  and product_view.get("owner") == CUSTOMER_B),
        ]


def _errors(body: Any) -> list[str]:
    errors = body.get("errors") if isinstance(body, dict) else None
    return [e for e in errors if isinstance(e, str)] if isinstance(errors, list) else []


def _ids(body: Any) -> list[str]:
    if not isinstance(body, list):
        return []
    return [str(d.get("id")) for d in body if isinstance(d, dict)]


# -- in process ----------------------------------------------------------------------------------


def run_in_process(testbed: Testbed, factory: ProvisioningFactory) -> tuple[list[Check], str]:
    """The runner of the catalog entry: one World, virtual time."""
    device = testbed.device
    with particle(testbed).api() as api:
        script = TransferScript(testbed.world, device, api, factory(device))
        script.seed()
        device.power_on()
        script.schedule()
        testbed.run_until(script.finished, timeout=TIMEOUT_S)
        testbed.run_for(SETTLE_S)
        checks = script.checks()
    return checks, VERDICT


# -- across processes ----------------------------------------------------------------------------


@dataclass
class RemoteResult:
    passed: bool
    verdict: str
    checks: list[Check]
    world: World
    device: Device
    wall_seconds: float

    @property
    def timeline(self) -> list[str]:
        return log_lines(self.world.trace.records, self.device.name)


async def run_remote(api_url: str, cloud_url: str, *, seed: int = 0, speed: float = 10.0,
                     timeout_s: float = 120.0, timing: str | None = None,
                     provisioning: ProvisioningFactory | None = None,
                     admin_token: str | None = None) -> RemoteResult:
    """Run the script against a cloud in another process: HTTP API + CoAP/UDP device link
    (``admin_token``: the cloud's ``/fwsim`` token, for seeding and the checks).

    The real-time driver starts after the (blocking) seeding requests, so virtual time does not
    jump by how long they took."""
    from dataclasses import replace

    started = time.monotonic()
    spec = replace(stage(link=LinkSpec(cloud_url=cloud_url), with_cloud=False), seed=seed)
    testbed = Testbed(spec if timing is None else replace(spec, timing=timing))
    world = testbed.world
    world.trace.emit("world", "scenario", "scenario.start", name=NAME, api=api_url,
                     cloud=cloud_url)
    device = testbed.device
    with remote_api(api_url, admin_token=admin_token) as api:
        enrol_remote(api, device)  # the cloud learns the device's key, the device the cloud's
        script = TransferScript(world, device, api, (provisioning or default_provisioning)(device))
        script.seed()
        driver = testbed.driver(speed)
        device.power_on()
        script.schedule()
        task = asyncio.create_task(driver.run())
        try:
            deadline = time.monotonic() + timeout_s
            while not script.finished() and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            await asyncio.sleep(SETTLE_S / speed)
        finally:
            driver.stop()
            await task
        checks = script.checks()
        device.power_off()  # closes its UDP socket
    passed = all(c.ok for c in checks)
    world.trace.emit("world", "scenario", "scenario.verdict", name=NAME, passed=passed,
                     failed=[c.description for c in checks if not c.ok])
    return RemoteResult(passed, VERDICT if passed else "FAILED: see the checks", checks, world,
                        device, time.monotonic() - started)
