"""One test per rule of docs/claiming.md (the test name starts with the rule id)."""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloud_sim import Cloud, EndpointOptions, Principal
from cloud_sim.claims import (
    BASE64_ALPHABET,
    CLAIM_CODE_LENGTH,
    ApiClaimOutcome,
    ApiClaimPolicy,
    ClaimOutcome,
    TransferDecision,
    decide_api_claim,
    decide_claim_code,
    decide_transfer,
    generate_claim_code,
    is_well_formed,
    issue_claim_code,
    redeem_claim_code,
)
from cloud_sim.http.client import AsgiApiClient
from cloud_sim.model import ClaimCode, DeviceRecord, Transfer, TransferStatus
from cloud_sim.store import MemoryStore
from firmware_sim.kernel import World
from firmware_sim.system import AccessPoint, Device, WifiCredentials, radio_environment

from .conftest import DEVICE, FREE_DEVICE, OTHER_DEVICE, SLUG, Tokens

ALICE = Principal.customer("alice")
BOB = Principal.customer("bob")
DEV = Principal.user("dev")
OTHER = Principal.user("other")
HOUR_US = 3_600_000_000


def code_for(creator: Principal, product_id: int | None, *, expires_us: int = HOUR_US,
             consumed: bool = False) -> ClaimCode:
    code = generate_claim_code(random.Random(7))
    return ClaimCode(code, creator, product_id, 0, expires_us, 5 if consumed else None)


# -- claim codes ---------------------------------------------------------------------------------


@given(st.randoms(use_true_random=False))
def test_C1_claim_codes_are_63_base64_characters(rng: random.Random) -> None:
    code = generate_claim_code(rng)
    assert len(code) == CLAIM_CODE_LENGTH == 63
    assert set(code) <= BASE64_ALPHABET and is_well_formed(code)


def test_C2_codes_are_bound_to_their_creator(api: AsgiApiClient, tokens: Tokens,
                                             cloud: Cloud) -> None:
    status, body = api.request("POST", "/v1/device_claims", token=tokens.other, json={})
    assert status == 200 and body["device_ids"] == [OTHER_DEVICE]
    user_code = cloud.store.get_claim_code(body["claim_code"])
    assert user_code is not None and user_code.product_id is None
    assert str(user_code.creator).startswith("user:")
    status, body = api.request("POST", f"/v1/products/{SLUG}/device_claims", token=tokens.b,
                               json={"iccid": "8901"})
    customer_code = cloud.store.get_claim_code(body["claim_code"])
    assert status == 200 and body["device_ids"] == []
    assert customer_code is not None and customer_code.product_id == 4242
    assert customer_code.creator.is_customer
    # only a customer of that product may create product codes
    for token in (tokens.dev, tokens.c):
        status, body = api.request("POST", f"/v1/products/{SLUG}/device_claims", token=token)
        assert status == 403 and body["error"] == "Permission Denied"
    # a customer on the user endpoint: bound to the customer and its product (choice)
    status, body = api.request("POST", "/v1/device_claims", token=tokens.a, json=[1, 2])
    via_user_endpoint = cloud.store.get_claim_code(body["claim_code"])
    assert status == 200 and body["device_ids"] == [DEVICE]
    assert via_user_endpoint is not None and via_user_endpoint.product_id == 4242


def test_C3_codes_expire_after_their_time_to_live() -> None:
    device = DeviceRecord("d" * 24)
    claim = code_for(BOB, None, expires_us=HOUR_US)
    assert decide_claim_code(claim, claim.code, device, None, HOUR_US) is ClaimOutcome.CLAIMED
    assert decide_claim_code(claim, claim.code, device, None, HOUR_US + 1) is \
        ClaimOutcome.EXPIRED
    store = MemoryStore()
    issued = issue_claim_code(store, random.Random(1), BOB, None, now_us=0, ttl_s=10)
    assert issued.expires_us == 10_000_000
    assert store.delete_expired_claim_codes(10_000_001) == 1


def test_C4_codes_are_single_use() -> None:
    store = MemoryStore()
    claim = issue_claim_code(store, random.Random(1), BOB, None, now_us=0)
    first = redeem_claim_code(store, "a" * 24, claim.code, 1)
    again = redeem_claim_code(store, "a" * 24, claim.code, 2)
    other = redeem_claim_code(store, "b" * 24, claim.code, 3)
    assert first.outcome is ClaimOutcome.CLAIMED
    assert again.outcome is other.outcome is ClaimOutcome.ALREADY_USED
    stored = store.get_claim_code(claim.code)
    assert stored is not None and stored.consumed_by == "a" * 24


@pytest.mark.parametrize("code", ["", "short", "A" * 62, "A" * 64, "A" * 62 + "-",
                                  "A" * 62 + "é", "A" * 62 + "\x00", " " * 63])
def test_C5_malformed_codes_from_devices_are_refused(code: str) -> None:
    store = MemoryStore()
    result = redeem_claim_code(store, "a" * 24, code, 0)
    assert result.outcome is ClaimOutcome.MALFORMED_CODE
    assert store.get_device("a" * 24) is None


def test_C6_unknown_codes_are_refused() -> None:
    store = MemoryStore()
    result = redeem_claim_code(store, "a" * 24, generate_claim_code(random.Random(3)), 0)
    assert result.outcome is ClaimOutcome.UNKNOWN_CODE


def test_C7_customer_codes_move_devices_within_their_product() -> None:
    claim = code_for(BOB, 4242)
    in_product = DeviceRecord("d" * 24, product_id=4242, owner=ALICE)
    no_product = DeviceRecord("d" * 24, owner=OTHER)
    other_product = DeviceRecord("d" * 24, product_id=7)
    assert decide_claim_code(claim, claim.code, in_product, None, 0) is ClaimOutcome.CLAIMED
    assert decide_claim_code(claim, claim.code, no_product, None, 0) is ClaimOutcome.CLAIMED
    assert decide_claim_code(claim, claim.code, other_product, {"x"}, 0) is \
        ClaimOutcome.OTHER_PRODUCT
    store = MemoryStore()
    store.put_device(no_product)
    store.add_claim_code(claim)
    result = redeem_claim_code(store, no_product.id, claim.code, 0)
    assert (result.previous_owner, result.new_owner, result.product_id) == (OTHER, BOB, 4242)
    moved = store.get_device(no_product.id)
    assert moved is not None and (moved.owner, moved.product_id) == (BOB, 4242)


def test_C8_user_codes_take_product_devices_only_for_the_team() -> None:
    claim = code_for(DEV, None)
    loose = DeviceRecord("d" * 24, owner=ALICE)
    product_device = DeviceRecord("d" * 24, product_id=4242, owner=ALICE)
    assert decide_claim_code(claim, claim.code, loose, None, 0) is ClaimOutcome.CLAIMED
    assert decide_claim_code(claim, claim.code, product_device, {"dev"}, 0) is \
        ClaimOutcome.CLAIMED
    assert decide_claim_code(claim, claim.code, product_device, {"someone"}, 0) is \
        ClaimOutcome.PRODUCT_DEVICE
    assert decide_claim_code(claim, claim.code, product_device, None, 0) is \
        ClaimOutcome.PRODUCT_DEVICE


def _device_with_code(cloud: Cloud, world: World, code: str) -> Device:
    radio_environment(world).add(AccessPoint("HomeNet", "home-pass-1"))
    device = Device(world, "dev", wifi=[WifiCredentials("HomeNet", "home-pass-1")])
    device.attach_cloud(cloud.connector())
    device.claim.set_claim_code(code.encode())
    return device


def test_C9_codes_are_redeemed_after_a_full_handshake_not_a_resume() -> None:
    world = World(3)
    cloud = Cloud(world)
    device = _device_with_code(cloud, world, generate_claim_code(random.Random(1)))
    device.power_on()
    assert world.run_until(lambda: device.cloud_connected, timeout=30)
    world.run_for(10)
    redeems = world.trace.find("claim.redeem", node="cloud")
    assert [r.get("outcome") for r in redeems] == ["unknown_code"]
    # a code set now is not sent on the resumed session
    code = cloud.create_claim_code(BOB, None).code
    device.claim.set_claim_code(code.encode())
    device.reset("user")
    world.run_for(30)
    assert device.cloud.handshakes == {"full": 0, "resumed": 1}
    assert len(world.trace.find("claim.redeem", node="cloud")) == 1
    sent_at = world.trace.find("event", node="cloud", name="spark/device/claim/code")
    redeemed_at = world.trace.find("claim.redeem", node="cloud")
    assert redeemed_at[0].t_us - sent_at[0].t_us == 2_250_000


def test_C10_the_cloud_confirms_a_successful_claim_and_the_device_clears_its_code() -> None:
    world = World(4)
    cloud = Cloud(world)
    code = cloud.create_claim_code(BOB, None).code
    device = _device_with_code(cloud, world, code)
    device.power_on()
    world.run_for(30)
    confirms = cloud.bus.find("spark/device/claim/confirm", device.device_id)
    assert [(e.data, e.direction) for e in confirms] == [("", "device")]
    assert device.claim.pending_code() is None and cloud.owner_of(device.device_id) == BOB
    # a refused code: no confirm, the device keeps it
    world2 = World(4)
    cloud2 = Cloud(world2)
    bad = generate_claim_code(random.Random(9))
    device2 = _device_with_code(cloud2, world2, bad)
    device2.power_on()
    world2.run_for(30)
    assert cloud2.bus.find("spark/device/claim/confirm") == []
    assert device2.claim.pending_code() == bad
    # ... unless the cloud is configured to confirm refusals too
    world3 = World(4)
    cloud3 = Cloud(world3, options=EndpointOptions(confirm_on_refusal=True))
    device3 = _device_with_code(cloud3, world3, bad)
    device3.power_on()
    world3.run_for(30)
    assert device3.claim.pending_code() is None and cloud3.owner_of(device3.device_id) is None


# -- the claim API -------------------------------------------------------------------------------


def test_A1_unknown_or_malformed_ids_are_not_found(api: AsgiApiClient, tokens: Tokens) -> None:
    for device_id in ("e00fce68aabbccddeeff9999", "nothex", "E00F", "x" * 64):
        status, body = api.request("POST", "/v1/devices", token=tokens.dev,
                                   json={"id": device_id})
        assert (status, body) == (404, {"ok": False, "error": "device not found",
                                        "errors": ["device not found"]})


def test_A2_claiming_your_own_device_again_is_ok(api: AsgiApiClient, tokens: Tokens) -> None:
    status, body = api.request("POST", "/v1/devices", token=tokens.a, json={"id": DEVICE})
    assert status == 200 and body["ok"] is True and body["customer_id"]
    assert decide_api_claim(DeviceRecord("d", owner=DEV), DEV, caller_product_id=None,
                            request_transfer=True) is ApiClaimOutcome.ALREADY_YOURS


def test_A3_a_device_owned_by_someone_else_is_refused(api: AsgiApiClient,
                                                      tokens: Tokens) -> None:
    status, body = api.request("POST", "/v1/devices", token=tokens.dev,
                               form={"id": OTHER_DEVICE})
    assert status == 403
    assert body == {"ok": False, "errors": [
        "That belongs to someone else. To request a transfer add ?request_transfer=true to "
        "the URL."]}
    status, body = api.request("POST", "/v1/devices", token=tokens.b,
                               json={"id": DEVICE, "request_transfer": False})
    assert (status, body) == (403, {"ok": False, "errors": ["That belongs to someone else."]})


def test_A4_unclaimed_developer_devices_must_be_online(cloud: Cloud, api: AsgiApiClient,
                                                       tokens: Tokens) -> None:
    offline = DeviceRecord("d" * 24)
    assert decide_api_claim(offline, DEV, caller_product_id=None, request_transfer=False) is \
        ApiClaimOutcome.NOT_FOUND
    assert decide_api_claim(offline, DEV, caller_product_id=None, request_transfer=False,
                            policy=ApiClaimPolicy(require_online=False)) is \
        ApiClaimOutcome.CLAIMED
    assert decide_api_claim(replace(offline, online=True), ALICE, caller_product_id=4242,
                            request_transfer=False) is ApiClaimOutcome.NOT_FOUND
    status, body = api.request("POST", "/v1/devices", token=tokens.dev,
                               json={"id": FREE_DEVICE})
    assert status == 200 and body["user_id"] and body["connected"] is True
    assert cloud.owner_of(FREE_DEVICE) is not None


def test_A5_the_team_claims_unclaimed_product_devices_even_offline(
        cloud: Cloud, api: AsgiApiClient, tokens: Tokens) -> None:
    status, _ = api.request("DELETE", f"/v1/products/{SLUG}/devices/{DEVICE}/owner",
                            token=tokens.dev)
    assert status == 200
    status, _ = api.request("POST", "/v1/devices", token=tokens.c, json={"id": DEVICE})
    assert status == 404  # a customer of another product
    status, body = api.request("POST", "/v1/devices", token=tokens.dev, json={"id": DEVICE})
    assert status == 200 and body["product_id"] == 4242 and body["connected"] is False
    device = cloud.device(DEVICE)
    assert device is not None and not device.online and device.owner is not None
    assert decide_api_claim(DeviceRecord("d", product_id=7), OTHER, caller_product_id=None,
                            request_transfer=False, caller_on_team=True) is \
        ApiClaimOutcome.CLAIMED


def test_A9_a_customer_claims_a_product_device_only_while_it_is_online(
        cloud: Cloud, api: AsgiApiClient, tokens: Tokens) -> None:
    """Finding 8: a customer claimed an *offline* product device (the spec, cloud.md A3:
    customer claims need the device online)."""
    assert api.request("DELETE", f"/v1/products/{SLUG}/devices/{DEVICE}/owner",
                       token=tokens.dev)[0] == 200
    status, body = api.request("POST", "/v1/devices", token=tokens.b, json={"id": DEVICE})
    assert (status, body["error"]) == (404, "device not found")
    assert cloud.owner_of(DEVICE) is None
    device = cloud.device(DEVICE)
    assert device is not None
    cloud.store.put_device(replace(device, online=True))
    status, body = api.request("POST", "/v1/devices", token=tokens.b, json={"id": DEVICE})
    assert status == 200 and body["customer_id"] and body["connected"] is True
    offline = DeviceRecord("d", product_id=4242)
    assert decide_api_claim(offline, BOB, caller_product_id=4242, request_transfer=False,
                            policy=ApiClaimPolicy(customer_requires_online=False)) is \
        ApiClaimOutcome.CLAIMED


def test_A10_only_the_product_team_claims_an_unclaimed_product_device(
        cloud: Cloud, api: AsgiApiClient, tokens: Tokens) -> None:
    """Finding 8: any developer, not only the product's team, claimed an unclaimed product
    device."""
    assert api.request("DELETE", f"/v1/products/{SLUG}/devices/{DEVICE}/owner",
                       token=tokens.dev)[0] == 200
    device = cloud.device(DEVICE)
    assert device is not None
    cloud.store.put_device(replace(device, online=True))  # online does not change it
    for outsider in (tokens.other, tokens.third):
        status, body = api.request("POST", "/v1/devices", token=outsider, json={"id": DEVICE})
        assert (status, body["error"]) == (404, "device not found")
    assert cloud.owner_of(DEVICE) is None
    unclaimed = DeviceRecord("d", product_id=4242, online=True)
    assert decide_api_claim(unclaimed, OTHER, caller_product_id=None,
                            request_transfer=False) is ApiClaimOutcome.NOT_FOUND
    assert decide_api_claim(unclaimed, OTHER, caller_product_id=None, request_transfer=False,
                            policy=ApiClaimPolicy(product_team_only=False)) is \
        ApiClaimOutcome.CLAIMED


def test_A6_developers_request_transfers_by_email(cloud: Cloud, api: AsgiApiClient,
                                                  tokens: Tokens) -> None:
    status, body = api.request("POST", "/v1/devices", token=tokens.third,
                               json={"id": OTHER_DEVICE, "request_transfer": True})
    assert status == 200 and body["ok"] is True and len(body["transfer_id"]) == 24
    again = api.request("POST", "/v1/devices?request_transfer=true", token=tokens.third,
                        form={"id": OTHER_DEVICE})
    assert again == (200, body)
    _, outbox = api.request("GET", "/fwsim/outbox")
    [email] = outbox["emails"]
    assert email["to"] == "other@dev.io" and email["kind"] == "transfer_request"
    transfer = cloud.store.get_transfer(body["transfer_id"])
    assert transfer is not None and len(transfer.approval_token) == 40
    assert email["actions"]["approve"] == (f"/fwsim/transfers/{body['transfer_id']}/approve"
                                           f"?token={transfer.approval_token}")
    other = cloud.store.find_user("other@dev.io")
    assert other is not None and cloud.owner_of(OTHER_DEVICE) == Principal.user(other.id)


def test_A7_customers_cannot_transfer(api: AsgiApiClient, tokens: Tokens) -> None:
    status, body = api.request("POST", "/v1/devices", token=tokens.b,
                               json={"id": DEVICE, "request_transfer": True})
    assert status == 403 and body["errors"][0].startswith("That belongs to someone else.")
    status, body = api.request("POST", "/v1/devices", token=tokens.dev,
                               json={"id": DEVICE, "request_transfer": True})
    assert status == 403 and "developer accounts" in body["errors"][0]
    assert decide_api_claim(DeviceRecord("d", owner=OTHER), ALICE, caller_product_id=1,
                            request_transfer=True) is ApiClaimOutcome.TRANSFER_NOT_ALLOWED


def test_A8_concurrent_claims_have_one_winner() -> None:
    """Serialized decisions: the store sees one claim at a time (the HTTP-level race is in
    test_server.py)."""
    store = MemoryStore()
    store.put_device(DeviceRecord("d" * 24, online=True))
    callers = [Principal.user(f"u{i}") for i in range(10)]
    from cloud_sim import ownership

    outcomes = [ownership.api_claim(store, random.Random(i), caller, "d" * 24, False, 0).outcome
                for i, caller in enumerate(callers)]
    assert outcomes.count(ApiClaimOutcome.CLAIMED) == 1
    assert outcomes.count(ApiClaimOutcome.BELONGS_TO_SOMEONE_ELSE) == 9


# -- transfers -----------------------------------------------------------------------------------


def _transfer(api: AsgiApiClient, tokens: Tokens) -> str:
    _, body = api.request("POST", "/v1/devices", token=tokens.third,
                          json={"id": OTHER_DEVICE, "request_transfer": True})
    return str(body["transfer_id"])


def _answer(api: AsgiApiClient, transfer_id: str, answer: str) -> tuple[int, Any]:
    """Follow the link of the owner's email (it carries the approval token)."""
    _, outbox = api.request("GET", "/fwsim/outbox")
    [link] = [e["actions"][answer] for e in outbox["emails"] if e["ref"] == transfer_id
              and e["kind"] == "transfer_request"]
    return api.request("POST", link, json={})


def test_T1_approving_moves_the_device(cloud: Cloud, api: AsgiApiClient,
                                       tokens: Tokens) -> None:
    transfer_id = _transfer(api, tokens)
    status, body = _answer(api, transfer_id, "approve")
    assert status == 200 and body["decision"] == "approved"
    third = cloud.store.find_user("third@dev.io")
    assert third is not None and cloud.owner_of(OTHER_DEVICE) == Principal.user(third.id)
    _, outbox = api.request("GET", "/fwsim/outbox")
    assert [(e["to"], e["subject"]) for e in outbox["emails"]][-1] == (
        "third@dev.io", "Device transfer approved")


def test_T2_denying_changes_nothing(cloud: Cloud, api: AsgiApiClient, tokens: Tokens) -> None:
    before = cloud.owner_of(OTHER_DEVICE)
    transfer_id = _transfer(api, tokens)
    status, body = _answer(api, transfer_id, "deny")
    assert status == 200 and body["decision"] == "denied"
    assert cloud.owner_of(OTHER_DEVICE) == before
    _, outbox = api.request("GET", "/fwsim/outbox")
    assert outbox["emails"][-1]["subject"] == "Device transfer denied"


def test_T3_a_device_that_changed_hands_voids_the_transfer(cloud: Cloud, api: AsgiApiClient,
                                                           tokens: Tokens) -> None:
    transfer_id = _transfer(api, tokens)
    assert api.request("DELETE", f"/v1/devices/{OTHER_DEVICE}", token=tokens.other)[0] == 200
    status, body = _answer(api, transfer_id, "approve")
    assert status == 200 and body["decision"] == "void" and cloud.owner_of(OTHER_DEVICE) is None
    transfer = Transfer("t", "d", DEV, OTHER, TransferStatus.PENDING, 0)
    assert decide_transfer(transfer, DeviceRecord("d", owner=ALICE), True) is \
        TransferDecision.VOID


def test_T4_a_transfer_is_answered_once(cloud: Cloud, api: AsgiApiClient,
                                        tokens: Tokens) -> None:
    transfer_id = _transfer(api, tokens)
    _answer(api, transfer_id, "deny")
    status, body = _answer(api, transfer_id, "approve")
    assert status == 200 and body["decision"] == "already_decided"
    assert body["transfer"]["status"] == "denied"
    assert api.request("POST", "/fwsim/transfers/nope/approve", json={})[0] == 404


def test_T5_only_the_emailed_link_answers_a_transfer(cloud: Cloud, api: AsgiApiClient,
                                                     tokens: Tokens) -> None:
    """Finding 3: the requester approved its own transfer (it knows the transfer id)."""
    before = cloud.owner_of(OTHER_DEVICE)
    _, body = api.request("POST", "/v1/devices", token=tokens.third,
                          json={"id": OTHER_DEVICE, "request_transfer": True})
    transfer_id = body["transfer_id"]  # the requester knows the id, not the email's token
    for path in (f"/fwsim/transfers/{transfer_id}/approve",
                 f"/fwsim/transfers/{transfer_id}/approve?token=" + "0" * 40):
        status, answer = api.request("POST", path, json={})
        assert status == 403 and answer["error"] == "Forbidden", answer
    status, answer = api.request("POST", f"/fwsim/transfers/{transfer_id}/approve",
                                 json={"token": "f" * 40})
    assert status == 403
    assert cloud.owner_of(OTHER_DEVICE) == before
    transfer = cloud.store.get_transfer(transfer_id)
    assert transfer is not None and transfer.status.value == "pending"


# -- between customers ---------------------------------------------------------------------------


def test_M1_customers_swap_devices_only_by_claim_code(cloud: Cloud, api: AsgiApiClient,
                                                      tokens: Tokens) -> None:
    assert api.request("POST", "/v1/devices", token=tokens.b, json={"id": DEVICE})[0] == 403
    assert api.request("POST", "/v1/devices", token=tokens.b,
                       json={"id": DEVICE, "request_transfer": True})[0] == 403
    _, body = api.request("POST", f"/v1/products/{SLUG}/device_claims", token=tokens.b)
    result = redeem_claim_code(cloud.store, DEVICE, body["claim_code"], cloud.unix_us)
    assert result.outcome is ClaimOutcome.CLAIMED
    _, mine = api.request("GET", "/v1/devices", token=tokens.b)
    _, theirs = api.request("GET", "/v1/devices", token=tokens.a)
    assert [d["id"] for d in mine] == [DEVICE] and theirs == []


# -- releasing and seeing ------------------------------------------------------------------------


def test_U1_only_the_owner_unclaims(cloud: Cloud, api: AsgiApiClient, tokens: Tokens) -> None:
    denied = api.request("DELETE", f"/v1/devices/{DEVICE}", token=tokens.b)
    unknown = api.request("DELETE", "/v1/devices/e00fce68aabbccddeeff9999", token=tokens.b)
    assert denied == unknown and denied[0] == 403
    assert api.request("DELETE", f"/v1/devices/{DEVICE}", token=tokens.a) == (200, {"ok": True})
    assert cloud.owner_of(DEVICE) is None


def test_U2_the_team_unclaims_a_product_device(cloud: Cloud, api: AsgiApiClient,
                                               tokens: Tokens) -> None:
    assert api.request("DELETE", f"/v1/products/{SLUG}/devices/{DEVICE}/owner",
                       token=tokens.other)[0] == 403
    assert api.request("DELETE", f"/v1/products/4242/devices/{DEVICE}/owner",
                       token=tokens.dev) == (200, {"ok": True})
    device = cloud.device(DEVICE)
    assert device is not None and device.owner is None and device.product_id == 4242


def test_U3_removing_from_the_product_releases_customer_owners(cloud: Cloud, api: AsgiApiClient,
                                                               tokens: Tokens) -> None:
    assert api.request("DELETE", f"/v1/products/{SLUG}/devices/{DEVICE}", token=tokens.dev,
                       json={}) == (204, None)
    device = cloud.device(DEVICE)
    assert device is not None and device.owner is None and device.product_id is None
    assert api.request("DELETE", f"/v1/products/{SLUG}/devices/{DEVICE}",
                       token=tokens.dev)[0] == 404


def test_U4_deleting_a_customer_revokes_everything(cloud: Cloud, api: AsgiApiClient,
                                                   tokens: Tokens) -> None:
    _, body = api.request("POST", "/v1/device_claims", token=tokens.a)
    status, _ = api.request("DELETE", f"/v1/products/{SLUG}/customers/a@cust.io",
                            token=tokens.dev)
    assert status == 200
    assert api.request("GET", "/v1/devices", token=tokens.a)[0] == 401
    assert cloud.store.get_claim_code(body["claim_code"]) is None
    assert cloud.owner_of(DEVICE) is None


def test_V1_devices_are_visible_to_their_owner_and_the_product_team(
        api: AsgiApiClient, tokens: Tokens) -> None:
    assert api.request("GET", f"/v1/devices/{DEVICE}", token=tokens.a)[0] == 200
    assert api.request("GET", f"/v1/devices/{DEVICE}", token=tokens.dev)[0] == 200
    refused = api.request("GET", f"/v1/devices/{DEVICE}", token=tokens.b)
    unknown = api.request("GET", "/v1/devices/e00fce68aabbccddeeff9999", token=tokens.b)
    assert refused == unknown
    assert refused[0] == 403 and refused[1]["error"] == "Permission Denied"
    assert "I didn't recognize that device name or ID" in refused[1]["info"]
    _, listed = api.request("GET", "/v1/devices", token=tokens.a)
    assert [d["id"] for d in listed] == [DEVICE]


def test_every_rule_of_the_docs_has_its_test() -> None:
    import re
    from pathlib import Path

    docs = (Path(__file__).resolve().parents[2] / "docs" / "claiming.md").read_text()
    rules = re.findall(r"^\| ([A-Z][0-9]+) \|", docs, flags=re.MULTILINE)
    tests = {name.split("_")[1] for name in globals() if name.startswith("test_")}
    assert len(rules) == 31 and len(set(rules)) == 31
    assert set(rules) <= tests, sorted(set(rules) - tests)
