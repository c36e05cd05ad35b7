"""Every rule of cloud.md B3-B9, each in its own test, with the reason the service records."""

from __future__ import annotations

import pytest

from cloud_sim.thingsboard.claiming import Reason, secret_key_is_empty_or_equal
from cloud_sim.thingsboard.errors import TbError
from cloud_sim.thingsboard.model import (
    CLAIM_ATTRIBUTE_NAME,
    CLAIM_DATA_ATTRIBUTE_NAME,
    SERVER_SCOPE,
    ClaimResponse,
)

from .conftest import Tb, make_tb

CLAIM = b'{"secretKey":"abc","durationMs":60000}'


def attr(tb: Tb, device, key):  # type: ignore[no-untyped-def]
    found = tb.service.store.get_attribute(device.id, SERVER_SCOPE, key)
    return None if found is None else found.value


# -- B3 registerClaimingInfo ---------------------------------------------------------------------

def test_b3_expiry_is_now_plus_duration(tb: Tb) -> None:
    device = tb.device()
    tb.send(device, CLAIM)
    cached = tb.service.rules.cache.get(device.id)
    assert cached is not None and cached.expiration_time_ms == tb.service.now_ms() + 60_000


@pytest.mark.parametrize("duration", [0, -5])
def test_b3_zero_or_negative_duration_means_the_system_default(tb: Tb, duration: int) -> None:
    device = tb.device()
    tb.send(device, b'{"secretKey":"abc","durationMs":%d}' % duration)
    cached = tb.service.rules.cache.get(device.id)
    assert cached is not None
    assert cached.expiration_time_ms == tb.service.now_ms() + 86_400_000


def test_b3_missing_fields_mean_empty_secret_and_default_duration(tb: Tb) -> None:
    device = tb.device()
    tb.send(device, None)
    cached = tb.service.rules.cache.get(device.id)
    assert cached is not None and cached.secret_key == ""
    assert cached.expiration_time_ms == tb.service.now_ms() + 86_400_000


def test_b3_assigned_device_is_refused_with_default_allowance(tb: Tb) -> None:
    device = tb.device()
    tb.send(device, CLAIM)
    assert tb.service.claim_device(tb.a, device.name, "abc").response is ClaimResponse.SUCCESS
    tb.send(device, CLAIM)
    assert tb.last_reason(device) == Reason.ALREADY_CLAIMED.value
    assert tb.service.history(device)[-1].message == (
        f"Device [{device.name}] has been already claimed!")
    assert tb.service.rules.cache.get(device.id) is None


def test_b3_not_allowed_by_default_needs_boolean_claiming_allowed() -> None:
    tb = make_tb(allow_claiming_by_default=False)
    device = tb.device()
    tb.send(device, CLAIM)
    assert tb.last_reason(device) == Reason.CLAIMING_NOT_ALLOWED.value
    tb.service.save_attributes(device, SERVER_SCOPE, {CLAIM_ATTRIBUTE_NAME: "true"})
    tb.send(device, CLAIM)
    assert tb.last_reason(device) == Reason.CLAIMING_NOT_ALLOWED.value  # a string, not boolean
    tb.service.save_attributes(device, SERVER_SCOPE, {CLAIM_ATTRIBUTE_NAME: True})
    tb.send(device, CLAIM)
    assert tb.last_reason(device) == Reason.REGISTERED.value


def test_b3_put_if_absent_keeps_the_first_secret(tb: Tb) -> None:
    device = tb.device()
    tb.send(device, CLAIM)
    tb.world.run_for(5)
    tb.send(device, b'{"secretKey":"second","durationMs":999999}')
    assert tb.last_reason(device) == Reason.KEPT_FIRST_SECRET.value
    cached = tb.service.rules.cache.get(device.id)
    assert cached is not None and cached.secret_key == "abc"
    assert tb.service.claim_device(tb.a, device.name, "second").reason is Reason.SECRET_MISMATCH


def test_b3_registration_does_not_write_claiming_data(tb: Tb) -> None:
    device = tb.device()
    tb.send(device, CLAIM)
    assert attr(tb, device, CLAIM_DATA_ATTRIBUTE_NAME) is None


def test_b3_a_disabled_cache_drops_claim_data() -> None:
    tb = make_tb(cache_max_size=0)
    device = tb.device()
    tb.send(device, CLAIM)
    assert tb.last_reason(device) == Reason.CACHE_DISABLED.value
    assert tb.service.claim_device(tb.a, device.name, "abc").response is ClaimResponse.FAILURE


def test_b3_java_long_overflow_of_a_huge_duration_expires_at_once(tb: Tb) -> None:
    device = tb.device()
    tb.send(device, b'{"secretKey":"abc","durationMs":9223372036854775807}')
    outcome = tb.service.claim_device(tb.a, device.name, "abc")
    assert outcome.reason is Reason.EXPIRED


# -- B4 customer claim ---------------------------------------------------------------------------

def test_b4_success_assigns_and_deletes_attributes_and_evicts(tb: Tb) -> None:
    device = tb.device()
    tb.service.save_attributes(device, SERVER_SCOPE, {CLAIM_ATTRIBUTE_NAME: True})
    tb.send(device, CLAIM)
    outcome = tb.service.claim_device(tb.a, device.name, "abc")
    assert outcome.response is ClaimResponse.SUCCESS and outcome.source == "cache"
    assert tb.fresh(device).customer_id == tb.a.customer_id
    assert attr(tb, device, CLAIM_ATTRIBUTE_NAME) is None
    assert tb.service.rules.cache.get(device.id) is None


def test_b4_lookup_is_by_name_within_the_callers_tenant(tb: Tb) -> None:
    other = tb.service.create_tenant("Other tenant")
    tb.service.create_device(other.id, "Elsewhere")
    with pytest.raises(TbError) as raised:
        tb.service.claim_device(tb.a, "Elsewhere", "")
    assert raised.value.status == 404 and raised.value.message == "Requested item wasn't found!"


def test_b4_tenant_admin_may_not_claim(tb: Tb) -> None:
    device = tb.device()
    with pytest.raises(TbError) as raised:
        tb.service.claim_device(tb.tenant_admin, device.name, "")
    assert raised.value.status == 403


def test_b4_claim_data_on_an_assigned_device_answers_claimed_and_deletes_attributes(
        tb: Tb) -> None:
    device = tb.device(customer_id=tb.a.customer_id)
    tb.service.save_attributes(device, SERVER_SCOPE, {
        CLAIM_DATA_ATTRIBUTE_NAME: {"secretKey": "k", "expirationTime": tb.service.now_ms() + 1}})
    outcome = tb.service.claim_device(tb.b, device.name, "k")
    assert outcome.response is ClaimResponse.CLAIMED
    assert attr(tb, device, CLAIM_DATA_ATTRIBUTE_NAME) is None
    assert tb.fresh(device).customer_id == tb.a.customer_id


def test_b4_no_claim_data_failure_when_unassigned_claimed_when_assigned(tb: Tb) -> None:
    free = tb.device("Free")
    taken = tb.device("Taken", customer_id=tb.a.customer_id)
    assert tb.service.claim_device(tb.b, free.name, "").reason is Reason.NO_CLAIM_DATA
    assert tb.service.claim_device(tb.b, taken.name, "").response is ClaimResponse.CLAIMED


def test_b4_same_customer_claiming_again_gets_claimed(tb: Tb) -> None:
    device = tb.device()
    tb.send(device, CLAIM)
    tb.service.claim_device(tb.a, device.name, "abc")
    assert tb.service.claim_device(tb.a, device.name, "abc").response is ClaimResponse.CLAIMED


# -- B5 reclaim ----------------------------------------------------------------------------------

def test_b5_reclaim_unassigns_and_keeps_allowance_default(tb: Tb) -> None:
    device = tb.device(customer_id=tb.a.customer_id)
    outcome = tb.service.reclaim_device(tb.tenant_admin, device.name)
    assert outcome.reason is Reason.RECLAIMED and tb.fresh(device).customer_id is None
    assert attr(tb, device, CLAIM_ATTRIBUTE_NAME) is None


def test_b5_reclaim_restores_claiming_allowed_when_not_allowed_by_default() -> None:
    tb = make_tb(allow_claiming_by_default=False)
    device = tb.device(customer_id=tb.a.customer_id)
    tb.service.reclaim_device(tb.a, device.name)
    assert attr(tb, device, CLAIM_ATTRIBUTE_NAME) is True


def test_b5_reclaim_of_an_unassigned_device_only_evicts(tb: Tb) -> None:
    device = tb.device()
    tb.send(device, CLAIM)
    outcome = tb.service.reclaim_device(tb.tenant_admin, device.name)
    assert outcome.reason is Reason.NOT_ASSIGNED
    assert tb.service.rules.cache.get(device.id) is None
    assert tb.service.claim_device(tb.a, device.name, "abc").reason is Reason.EVICTED_BY_RECLAIM


def test_b5_reclaim_does_not_restore_claiming_data(tb: Tb) -> None:
    device = tb.device()
    tb.service.save_attributes(device, SERVER_SCOPE, {
        CLAIM_DATA_ATTRIBUTE_NAME: {"secretKey": "k", "expirationTime": tb.service.now_ms() + 9}})
    tb.service.claim_device(tb.a, device.name, "k")
    tb.service.reclaim_device(tb.a, device.name)
    assert attr(tb, device, CLAIM_DATA_ATTRIBUTE_NAME) is None


# -- B6 secret comparison ------------------------------------------------------------------------

@pytest.mark.parametrize(("request_key", "saved", "ok"), [
    ("", "", True), ("", None, True), (None, "", True), ("abc", "", False), ("", "abc", False),
    ("abc", "abc", True), ("ABC", "abc", False), ("abc ", "abc", False)])
def test_b6_secret_key_is_empty_or_equal(request_key: str | None, saved: str | None,
                                         ok: bool) -> None:
    assert secret_key_is_empty_or_equal(request_key, saved) is ok


def test_b6_one_wrong_key_evicts_the_cached_data(tb: Tb) -> None:
    device = tb.device()
    tb.send(device, CLAIM)
    wrong = tb.service.claim_device(tb.a, device.name, "abd")
    assert wrong.reason is Reason.SECRET_MISMATCH and wrong.evicted
    right = tb.service.claim_device(tb.a, device.name, "abc")
    assert right.response is ClaimResponse.FAILURE
    assert right.reason is Reason.EVICTED_BY_FAILED_ATTEMPT


def test_b6_wrong_keys_do_not_delete_the_claiming_data_attribute(tb: Tb) -> None:
    device = tb.device()
    tb.service.save_attributes(device, SERVER_SCOPE, {
        CLAIM_DATA_ATTRIBUTE_NAME: {"secretKey": "k", "expirationTime": tb.service.now_ms() + 9}})
    for _ in range(3):
        assert tb.service.claim_device(tb.a, device.name, "x").reason is Reason.SECRET_MISMATCH
    assert tb.service.claim_device(tb.a, device.name, "k").response is ClaimResponse.SUCCESS


def test_b6_empty_request_key_against_a_saved_key_fails(tb: Tb) -> None:
    device = tb.device()
    tb.send(device, CLAIM)
    assert tb.service.claim_device(tb.a, device.name, "").reason is Reason.SECRET_MISMATCH


# -- B7 expiration -------------------------------------------------------------------------------

def test_b7_device_window_expires_after_duration(tb: Tb) -> None:
    device = tb.device()
    tb.send(device, CLAIM)
    tb.world.run_for(60.001)
    outcome = tb.service.claim_device(tb.a, device.name, "abc")
    assert outcome.reason is Reason.EXPIRED and outcome.evicted


def test_b7_expiry_equality_still_passes(tb: Tb) -> None:
    device = tb.device()
    tb.service.save_attributes(device, SERVER_SCOPE, {
        CLAIM_DATA_ATTRIBUTE_NAME: {"secretKey": "k", "expirationTime": tb.service.now_ms()}})
    assert tb.service.claim_device(tb.a, device.name, "k").response is ClaimResponse.SUCCESS


def test_b7_the_attribute_is_read_only_when_nothing_is_cached(tb: Tb) -> None:
    device = tb.device()
    tb.service.save_attributes(device, SERVER_SCOPE, {
        CLAIM_DATA_ATTRIBUTE_NAME: {"secretKey": "attr", "expirationTime": tb.service.now_ms()
                                    + 10_000}})
    tb.send(device, CLAIM)
    assert tb.service.claim_device(tb.a, device.name, "attr").reason is Reason.SECRET_MISMATCH


def test_b7_cache_ttl_bounds_the_window() -> None:
    tb = make_tb(cache_ttl_minutes=1)
    device = tb.device()
    tb.send(device, b'{"secretKey":"abc","durationMs":3600000}')
    tb.world.run_for(61)
    assert tb.service.claim_device(tb.a, device.name, "abc").reason is Reason.CACHE_TTL_EXPIRED


def test_b7_cache_size_evicts_the_oldest() -> None:
    tb = make_tb(cache_max_size=2)
    devices = [tb.device(f"D{i}") for i in range(3)]
    for device in devices:
        tb.send(device, CLAIM)
    assert tb.service.claim_device(tb.a, "D0", "abc").reason is Reason.CACHE_SIZE_EVICTED
    assert tb.service.claim_device(tb.a, "D2", "abc").response is ClaimResponse.SUCCESS


def test_b7_claiming_data_must_be_one_json_attribute(tb: Tb) -> None:
    device = tb.device()
    tb.service.save_attributes(device, SERVER_SCOPE, {"secretKey": "k",
                                                      "expirationTime": 9_999_999_999_999})
    assert tb.service.claim_device(tb.a, device.name, "k").reason is Reason.CLAIMING_DATA_SPLIT
    tb.service.save_attributes(device, SERVER_SCOPE, {CLAIM_DATA_ATTRIBUTE_NAME: "not json"})
    assert tb.service.claim_device(tb.a, device.name, "k").reason is (
        Reason.CLAIMING_DATA_INVALID)
    tb.service.save_attributes(device, SERVER_SCOPE, {
        CLAIM_DATA_ATTRIBUTE_NAME: '{"secretKey":"k","expirationTime":9999999999999}'})
    assert tb.service.claim_device(tb.a, device.name, "k").response is ClaimResponse.SUCCESS


# -- B8 permissions ------------------------------------------------------------------------------

def test_b8_a_customer_may_claim_any_device_of_its_tenant(tb: Tb) -> None:
    device = tb.device()
    tb.send(device, CLAIM)
    assert tb.service.claim_device(tb.b, device.name, "abc").response is ClaimResponse.SUCCESS


def test_b8_a_customer_may_reclaim_another_customers_device(tb: Tb) -> None:
    device = tb.device(customer_id=tb.a.customer_id)
    assert tb.service.reclaim_device(tb.b, device.name).reason is Reason.RECLAIMED


def test_b8_sysadmin_may_neither_claim_nor_reclaim(tb: Tb) -> None:
    device = tb.device()
    admin = tb.user("sysadmin@thingsboard.org")
    for call in (lambda: tb.service.claim_device(admin, device.name, ""),
                 lambda: tb.service.reclaim_device(admin, device.name)):
        with pytest.raises(TbError) as raised:
            call()
        assert raised.value.status == 403


# -- B9 lifecycle --------------------------------------------------------------------------------

def test_b9_failure_from_attribute_leaves_everything(tb: Tb) -> None:
    device = tb.device()
    tb.service.save_attributes(device, SERVER_SCOPE, {
        CLAIM_ATTRIBUTE_NAME: True,
        CLAIM_DATA_ATTRIBUTE_NAME: {"secretKey": "k", "expirationTime": tb.service.now_ms() + 9}})
    outcome = tb.service.claim_device(tb.a, device.name, "nope")
    assert outcome.response is ClaimResponse.FAILURE and not outcome.evicted
    assert attr(tb, device, CLAIM_ATTRIBUTE_NAME) is True
    assert tb.fresh(device).customer_id is None


def test_b9_why_tells_the_whole_story(tb: Tb) -> None:
    device = tb.device()
    tb.send(device, CLAIM)
    tb.service.claim_device(tb.a, device.name, "bad")
    tb.service.claim_device(tb.a, device.name, "abc")
    why = tb.service.why(device)
    assert [e["reason"] for e in why["history"]] == [
        "registered", "secret_mismatch", "evicted_by_failed_attempt"]
    assert why["cached_claim_data"] is None and why["assigned_to"] is None
