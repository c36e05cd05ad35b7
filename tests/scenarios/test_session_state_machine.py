"""Hypothesis state machine: random lifecycles of a device, with the claim-code rule as invariant.

Whatever happens (reboots, power cycles, disconnects with and without clearSession, the cloud
forgetting sessions, codes set at random moments), after every step:

* a claim-code event reaches the cloud only right after a full handshake (never on a resume);
* a code stored on the device whose first byte is neither 0x00 nor 0xFF is published at every
  full handshake;
* the device's DCT claim field only ever holds what was set or the cleared form.
"""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from cloud_sim import Cloud, Principal
from firmware_sim.kernel import World
from firmware_sim.system import AccessPoint, Device, WifiCredentials, radio_environment


class DeviceLifecycle(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.world = World(0)
        radio_environment(self.world).add(AccessPoint("HomeNet", "home-pass-1"))
        self.cloud = Cloud(self.world)
        self.device = Device(self.world, "dev",
                             wifi=[WifiCredentials("HomeNet", "home-pass-1")])
        self.device.attach_cloud(self.cloud.connector())
        self.device.power_on()
        self.world.run_for(10)

    @rule(seconds=st.sampled_from([0.05, 0.5, 3.0, 30.0, 120.0]))
    def wait(self, seconds: float) -> None:
        self.world.run_for(seconds)

    @rule()
    def set_cloud_code(self) -> None:
        code = self.cloud.create_claim_code(Principal.user("someone")).code
        self.device.claim.set_claim_code(code)

    @rule(raw=st.binary(max_size=70))
    def set_arbitrary_code(self, raw: bytes) -> None:
        self.device.claim.set_claim_code(raw)

    @precondition(lambda self: self.device.running)
    @rule()
    def soft_reset(self) -> None:
        self.device.reset("user")

    @rule()
    def power_cycle(self) -> None:
        self.device.power_cycle(off_s=0.5)

    @precondition(lambda self: self.device.running)
    @rule(clear=st.booleans())
    def reconnect(self, clear: bool) -> None:
        self.device.cloud_disconnect(clear_session=clear)
        self.device.cloud_connect()

    @rule()
    def cloud_forgets(self) -> None:
        self.cloud.endpoint.forget_session(self.device.device_id)

    @invariant()
    def claim_codes_only_follow_full_handshakes(self) -> None:
        records = self.world.trace.records
        last_handshake: str | None = None
        for record in records:
            if record.node != "dev":
                continue
            if record.kind in ("handshake.full", "handshake.resumed"):
                last_handshake = record.kind
            if record.kind == "log" and "Send spark/device/claim/code" in record.get("message"):
                assert last_handshake == "handshake.full", "claim code sent after a resume"
        # Every full handshake with a pending code published it.
        for index, record in enumerate(records):
            if record.node == "dev" and record.kind == "handshake.full":
                pending = record.get("claim_code_pending")
                if pending:
                    following = [r for r in records[index:index + 40]
                                 if r.node == "dev" and r.kind == "log"]
                    assert any("Send spark/device/claim/code" in r.get("message")
                               for r in following)

    @invariant()
    def device_stays_sane(self) -> None:
        stored = self.device.claim.stored_code()
        assert len(stored) == 63
        assert self.device.dct.size == 8391


TestDeviceLifecycle = DeviceLifecycle.TestCase
TestDeviceLifecycle.settings = settings(max_examples=80, stateful_step_count=30, deadline=None)
