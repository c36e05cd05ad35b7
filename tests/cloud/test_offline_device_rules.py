"""A device the cloud shows offline, after QA of ``fwsim up`` (findings 3 and 4 of the stream
round).

3. The dashboard's function call and variable read (``ParticlePlug.call_function`` /
   ``get_variable``) still sent into the session the cloud keeps of a device it shows offline,
   while the REST routes answered 408 at once. Now the device endpoint holds the one rule
   (``DeviceEndpoint.is_online``) and every caller gets ``offline`` at once.
4. A device marked offline (no message for ``offline_after_s``) that kept talking on the same
   session stayed offline until a new handshake or resume. Now any message on its confirmed
   session brings it back online with the ``spark/status`` ``online`` event of a connect.

The device here keeps its 25 s keepalive while the cloud marks it offline after 10 s of silence:
each keepalive ping finds it offline.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from cloud_sim.device_endpoint import CallResult
from cloud_sim.events import CloudEvent
from cloud_sim.http.client import AsgiApiClient
from cloud_sim.model import DeviceRecord, Principal
from cloud_sim.runtime import NullRuntime
from firmware_sim.system.app import Firmware, Particle
from firmware_sim.testbed import Testbed, TestbedSpec, provisioned
from firmware_sim.testbed.clouds.particle import ParticlePlug, ParticleSettings
from firmware_sim.testbed.spec import CloudSpec

from .conftest import Lamp

QUIET_AFTER_S = 10.0


@dataclass
class Talker:
    bed: Testbed
    plug: ParticlePlug
    api: AsgiApiClient
    device_id: str
    token: str
    statuses: list[CloudEvent]

    def count(self, kind: str) -> int:
        return sum(1 for record in self.bed.world.trace.records if record.kind == kind)

    def online(self) -> bool:
        record = self.plug.cloud.store.get_device(self.device_id)
        return record is not None and record.online

    def run_until_marked_offline(self) -> None:
        marked = self.count("device.offline")
        assert self.bed.run_until(lambda: self.count("device.offline") > marked, 40)
        assert not self.online()

    def call(self) -> CallResult:
        return asyncio.run(self.plug.call_function(self.device_id, "brightness", "abcd",
                                                   NullRuntime()))

    def read(self) -> CallResult:
        return asyncio.run(self.plug.get_variable(self.device_id, "label", NullRuntime()))


@pytest.fixture(scope="module")
def talker() -> Iterator[Talker]:
    spec = TestbedSpec(seed=44, devices=provisioned("lamp", firmware=Lamp), timing="fast",
                       cloud=CloudSpec(settings=ParticleSettings(offline_after_s=QUIET_AFTER_S)))
    with Testbed(spec) as bed:
        plug = bed.cloud
        assert isinstance(plug, ParticlePlug)
        cloud = plug.cloud
        owner = cloud.create_user("o@x.io", "pw")
        device_id = bed.devices["lamp"].device_id
        cloud.store.put_device(DeviceRecord(device_id, 32, None, Principal.user(owner.id)))
        statuses: list[CloudEvent] = []
        plug.subscribe_events(lambda event: statuses.append(event)
                              if event.name == "spark/status" else None)
        bed.power_on()
        assert bed.run_until(lambda: cloud.endpoint.interface_of(device_id) is not None, 30)
        token = cloud.issue_tokens(Principal.user(owner.id), "particle").access.token
        with plug.api() as api:
            yield Talker(bed, plug, api, device_id, token, statuses)


def test_a_call_or_read_of_an_offline_device_is_not_sent_on_its_kept_session(
        talker: Talker) -> None:
    talker.run_until_marked_offline()
    session = talker.plug.cloud.endpoint.session_for_device(talker.device_id)
    assert session is not None and session.reply is not None  # kept, and could be sent on
    sent = talker.count("function.to_device"), talker.count("variable.to_device")
    started_us = talker.bed.world.clock.now_us

    # the dashboard's way (the plug) and the REST API's answer alike, at once
    assert talker.call() == CallResult("offline")  # before: sent, then "timeout" after 20 s
    assert talker.read() == CallResult("offline")
    path = f"/v1/devices/{talker.device_id}"
    assert talker.api.request("POST", f"{path}/brightness", token=talker.token,
                              json={"arg": "abcd"}) == (408, {"ok": False, "error": "Timed out."})
    assert talker.api.request("GET", f"{path}/label", token=talker.token)[0] == 408
    assert (talker.count("function.to_device"), talker.count("variable.to_device")) == sent
    assert talker.bed.world.clock.now_us == started_us
    offline = [r for r in talker.bed.world.trace.records if r.kind == "function.undeliverable"]
    assert offline and offline[-1].fields.get("reason") == "offline"


def test_a_device_that_talks_on_its_session_is_online_again(talker: Talker) -> None:
    endpoint = talker.plug.cloud.endpoint
    talker.run_until_marked_offline()
    session = endpoint.session_for_device(talker.device_id)
    assert session is not None
    handshakes, resumes = session.full_handshakes, session.resumes
    before = len(talker.statuses)
    assert talker.statuses[-1].data == "offline"

    # its next keepalive ping, on the same session: online again (before: offline for good)
    assert talker.bed.run_until(talker.online, 30)
    assert endpoint.session_for_device(talker.device_id) is session
    assert (session.full_handshakes, session.resumes) == (handshakes, resumes)
    assert [event.data for event in talker.statuses[before:]] == ["online"]
    assert talker.statuses[-1].device_id == talker.device_id
    assert talker.count("device.online") >= 1
    listed = talker.api.request("GET", f"/v1/devices/{talker.device_id}", token=talker.token)
    assert listed[0] == 200 and listed[1]["online"] is True

    # and calls reach it again, through the plug and the REST API
    assert talker.call() == CallResult("ok", 4)
    assert talker.read() == CallResult("ok", "kitchen")
    assert talker.api.request("POST", f"/v1/devices/{talker.device_id}/brightness",
                              token=talker.token, json={"arg": "ab"})[1]["return_value"] == 2


def test_every_quiet_spell_and_every_return_is_announced_once(talker: Talker) -> None:
    before = len(talker.statuses)
    for _ in range(2):
        talker.run_until_marked_offline()
        assert talker.bed.run_until(talker.online, 30)
    assert [event.data for event in talker.statuses[before:]] == ["offline", "online"] * 2


class Quiet(Firmware):
    """A function whose handler drops the connection: its call is never answered."""

    def setup(self, particle: Particle) -> None:
        particle.function("quiet", lambda argument: particle.disconnect() or 0)


def test_a_stopping_server_answers_the_calls_still_waiting() -> None:
    """QA: Ctrl-C while a call waited for its device printed uvicorn's 'Cancel 1 running
    task(s)' and a CancelledError traceback. ``abandon_calls`` (run by the server's stop)
    answers every waiting call ``timeout`` at once."""
    spec = TestbedSpec(seed=4, devices=tuple(provisioned("q", firmware=Quiet)), timing="fast")
    with Testbed(spec) as bed:
        plug = bed.cloud
        assert isinstance(plug, ParticlePlug)
        endpoint = plug.cloud.endpoint
        device = bed.devices["q"]
        bed.power_on()
        assert bed.run_until(lambda: device.cloud_connected, 30)
        results: list[CallResult] = []
        endpoint.call_function(device.device_id, "quiet", "", results.append)
        bed.run_for(2)
        assert results == []  # waiting (20 s call timeout)
        assert endpoint.abandon_calls() == 1
        assert results == [CallResult("timeout")]
        bed.run_for(30)
        assert results == [CallResult("timeout")]  # the timer was cancelled: answered once
        assert endpoint.abandon_calls() == 0
