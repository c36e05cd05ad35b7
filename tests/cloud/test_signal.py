"""Signaling a device (``PUT /v1/devices/:id`` with ``signal``: particle-cli ``nyan``,
particle-api-js ``signalDevice``): the cloud's ``PUT s`` with its start/stop byte, the device's
piggybacked 2.04 and its rainbow LED, who may, and the errors."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud_sim.http.client import AsgiApiClient
from cloud_sim.model import DeviceRecord, Principal
from firmware_sim.communication import wire
from firmware_sim.communication.wire import CoapMessage, CoapType
from firmware_sim.testbed import Testbed, TestbedSpec, provisioned
from firmware_sim.testbed.clouds.particle import ParticlePlug


@dataclass
class Bench:
    bed: Testbed
    plug: ParticlePlug
    api: AsgiApiClient
    device_id: str
    tokens: dict[str, str]

    def nyan(self) -> list[bool]:
        return [r.fields["on"] for r in self.bed.world.trace.records if r.kind == "led.nyan"]


@pytest.fixture(scope="module")
def bench() -> Iterator[Bench]:
    with Testbed(TestbedSpec(seed=41, devices=provisioned("lamp"), timing="fast")) as bed:
        plug = bed.cloud
        assert isinstance(plug, ParticlePlug)
        cloud = plug.cloud
        owner, other, team = (cloud.create_user(f"{n}@x.io", "pw") for n in ("o", "x", "t"))
        product = cloud.create_product(77, "lamps", team={team.id})
        device_id = bed.devices["lamp"].device_id
        cloud.store.put_device(DeviceRecord(device_id, 32, product.id,
                                            Principal.user(owner.id)))
        bed.power_on()
        assert bed.run_until(lambda: bed.devices["lamp"].cloud_connected, 30)
        tokens = {name: cloud.issue_tokens(Principal.user(user.id), "particle").access.token
                  for name, user in (("owner", owner), ("other", other), ("team", team))}
        with plug.api() as api:
            yield Bench(bed, plug, api, device_id, tokens)


def test_signal_starts_and_stops_the_rainbow(bench: Bench) -> None:
    path = f"/v1/devices/{bench.device_id}"
    before = len(bench.nyan())
    for value, on in (("1", True), (0, False), (1, True), ("0", False)):
        if isinstance(value, str):  # particle-cli sends a form, particle-api-js JSON
            status, body = bench.api.request("PUT", path, token=bench.tokens["owner"],
                                             form={"signal": value})
        else:
            status, body = bench.api.request("PUT", path, token=bench.tokens["owner"],
                                             json={"signal": value})
        assert (status, body) == (200, {"id": bench.device_id, "connected": True,
                                        "signaling": on})
        bench.bed.run_for(1)
    assert bench.nyan()[before:] == [True, False, True, False]
    records = bench.bed.world.trace.records
    sent = [r for r in records if r.kind == "signal.to_device"]
    assert [r.fields["on"] for r in sent][-4:] == [True, False, True, False]
    assert not [r for r in records if r.kind == "signal.timeout"]  # every one acknowledged
    # the product's team may signal too; a stranger may not
    assert bench.api.request("PUT", path, token=bench.tokens["team"],
                             json={"signal": "1"})[0] == 200
    assert bench.api.request("PUT", path, token=bench.tokens["other"],
                             json={"signal": "1"})[0] == 403


def test_the_device_acknowledges_with_2_04_and_ignores_a_duplicate(bench: Bench) -> None:
    """The wire, below the REST route: the ACK's code and token, a retransmission."""
    endpoint = bench.plug.cloud.endpoint
    session = endpoint.session_for_device(bench.device_id)
    assert session is not None
    acks: list[CoapMessage] = []
    original = endpoint._on_ack

    def spy(session_: object, message: CoapMessage) -> None:
        acks.append(message)
        original(session_, message)  # type: ignore[arg-type]

    bench.bed.run_for(1)  # what earlier tests sent has arrived
    endpoint._on_ack = spy  # type: ignore[method-assign]
    try:
        before = len(bench.nyan())
        assert endpoint.send_signal(bench.device_id, True)
        bench.bed.run_for(1)
        ack = acks[-1]
        assert (ack.mtype, ack.code, len(ack.token)) == (CoapType.ACK, wire.CHANGED, 1)
        assert bench.nyan()[before:] == [True]
        # the same message again (a retransmission whose ACK was lost): ACKed, not acted on
        mid = session.exchange.allocate_mid()
        repeat = CoapMessage(CoapType.CON, wire.PUT, mid, b"\x07", (wire.URI_SIGNAL, "\x00"))
        session.exchange.send(repeat)
        session.exchange.send(repeat)
        bench.bed.run_for(1)
    finally:
        endpoint._on_ack = original  # type: ignore[method-assign]
    assert [a.mid for a in acks[-2:]] == [mid, mid]
    assert bench.nyan()[before:] == [True, False]


@pytest.mark.parametrize("value", ["2", "on", "-1", "1.5", "x"])
def test_a_bad_signal_is_a_400(bench: Bench, value: str) -> None:
    status, body = bench.api.request("PUT", f"/v1/devices/{bench.device_id}",
                                     token=bench.tokens["owner"], form={"signal": value})
    assert status == 400 and body["error"] == "signal must be 1 (start) or 0 (stop)"


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
# (no NaN or infinity: httpx will not encode them; test_bad_input.py sends them as raw JSON)
@given(value=st.one_of(st.none(), st.booleans(), st.integers(),
                       st.floats(allow_nan=False, allow_infinity=False),
                       st.text(max_size=8), st.lists(st.integers(), max_size=2),
                       st.dictionaries(st.text(max_size=2), st.integers(), max_size=2)))
def test_no_signal_value_makes_a_server_error(bench: Bench, value: object) -> None:
    status, _ = bench.api.request("PUT", f"/v1/devices/{bench.device_id}",
                                  token=bench.tokens["owner"], json={"signal": value})
    assert status in (200, 400)


def test_a_device_without_a_session_is_a_404(bench: Bench) -> None:
    offline = "e00f" + "ab" * 10
    user = bench.plug.cloud.store.find_user("o@x.io")
    assert user is not None
    owner = Principal.user(user.id)
    bench.plug.cloud.store.put_device(DeviceRecord(offline, 32, None, owner))
    status, body = bench.api.request("PUT", f"/v1/devices/{offline}",
                                     token=bench.tokens["owner"], json={"signal": "1"})
    assert (status, body["error"]) == (404, "Device is not connected")
