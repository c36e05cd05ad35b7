"""ThingsBoard's claiming rules (docs/thingsboard.md, B3-B9), each outcome with a reason code.

How this works
--------------
:class:`ClaimRules` holds the store, the ``claimDevices`` cache, the settings and the service
clock, and implements the three operations of ``ClaimDevicesServiceImpl``:

* :meth:`register` - a device sent claim info (B3): the expiry is ``now + durationMs`` (or the
  system ``claim.duration`` when ``durationMs <= 0``, with Java ``long`` overflow), the device
  must be unassigned (and, when ``allowClaimingByDefault`` is false, carry the SERVER attribute
  ``claimingAllowed`` = boolean true); the cache write is ``putIfAbsent``, so a second request
  while an entry lives changes nothing.
* :meth:`claim` - a customer user claims by name (B4, B6, B7): claim data from the cache, else
  from the SERVER attribute ``claimingData``; an expired or wrong-key attempt fails and *evicts
  the cached entry* (an attribute is never deleted by a failure); a match on an unassigned
  device assigns it and deletes ``claimingAllowed``/``claimingData``; a match on an assigned
  device deletes them too and answers CLAIMED.
* :meth:`reclaim` - unassign (B5) and, when claiming is not allowed by default, write
  ``claimingAllowed = true``.

The real server only *logs* why something failed (B2). Here every outcome carries a
:class:`Reason`, and the rules remember why a device's cached claim data last disappeared, so a
FAILURE with no claim data can say ``evicted_by_failed_attempt`` or ``cache_ttl_expired``
instead of just FAILURE.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from .claim_cache import ClaimCache
from .model import (
    CLAIM_ATTRIBUTE_NAME,
    CLAIM_DATA_ATTRIBUTE_NAME,
    SERVER_SCOPE,
    ClaimData,
    ClaimResponse,
    Device,
    User,
)
from .payloads import java_long
from .settings import ThingsBoardSettings
from .store import TbStore


class Reason(StrEnum):
    """Why a registration, claim or reclaim ended the way it did."""

    # registration (device -> server)
    REGISTERED = "registered"
    KEPT_FIRST_SECRET = "kept_first_secret"
    ALREADY_CLAIMED = "already_claimed"
    CLAIMING_NOT_ALLOWED = "claiming_not_allowed"
    CACHE_DISABLED = "cache_disabled"
    # customer claim
    CLAIMED = "claimed"
    EXPIRED = "expired"
    SECRET_MISMATCH = "secret_mismatch"
    NO_CLAIM_DATA = "no_claim_data"
    EVICTED_BY_FAILED_ATTEMPT = "evicted_by_failed_attempt"
    EVICTED_BY_RECLAIM = "evicted_by_reclaim"
    CACHE_TTL_EXPIRED = "cache_ttl_expired"
    CACHE_SIZE_EVICTED = "cache_size_evicted"
    CLAIMING_DATA_INVALID = "claiming_data_invalid"
    CLAIMING_DATA_SPLIT = "claiming_data_split"
    # reclaim
    RECLAIMED = "reclaimed"
    NOT_ASSIGNED = "not_assigned"


def fingerprint(secret: str | None) -> str:
    """A short, non-reversible tag of a secret for traces: equal secrets, equal tags."""
    if not secret:
        return "(empty)"
    return "sha256:" + hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()[:8]


def secret_key_is_empty_or_equal(request_key: str | None, saved_key: str | None) -> bool:
    """``secretKeyIsEmptyOrEqual`` (B6): both empty, or an exact, case-sensitive match."""
    if not request_key and not saved_key:
        return True
    return request_key == saved_key


@dataclass(frozen=True)
class Registration:
    saved: bool
    reason: Reason
    message: str
    expiration_time_ms: int | None = None


@dataclass(frozen=True)
class ClaimOutcome:
    response: ClaimResponse
    reason: Reason
    message: str
    device: Device
    #: where the claim data came from: "cache", "attribute" or None
    source: str | None = None
    evicted: bool = False
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ReclaimOutcome:
    reason: Reason
    device: Device
    previous_customer_id: str | None
    claiming_allowed_restored: bool


class ClaimRules:
    def __init__(self, store: TbStore, settings: ThingsBoardSettings,
                 now_ms: Callable[[], int]) -> None:
        self.store = store
        self.settings = settings
        self.now_ms = now_ms
        #: why each device's cached claim data last disappeared (reason, time ms)
        self.last_removal: dict[str, tuple[Reason, int]] = {}
        self._pending_cause: Reason | None = None
        self.cache = ClaimCache(settings.cache_ttl_minutes * 60_000, settings.cache_max_size,
                                now_ms, self._on_removal)

    def _on_removal(self, device_id: str, cause: str) -> None:
        if cause == "expired":
            reason = Reason.CACHE_TTL_EXPIRED
        elif cause == "size":
            reason = Reason.CACHE_SIZE_EVICTED
        else:
            reason = self._pending_cause or Reason.EVICTED_BY_FAILED_ATTEMPT
        self.last_removal[device_id] = (reason, self.now_ms())

    def _evict(self, device_id: str, cause: Reason) -> bool:
        self._pending_cause = cause
        try:
            return self.cache.evict(device_id)
        finally:
            self._pending_cause = None

    # -- B3 ------------------------------------------------------------------------------------

    def register(self, device: Device, secret_key: str, duration_ms: int) -> Registration:
        now = self.now_ms()
        window = duration_ms if duration_ms > 0 else self.settings.claim_duration_ms
        expiration = java_long(now + window)
        if self.settings.allow_claiming_by_default:
            if device.customer_id is not None:
                return Registration(False, Reason.ALREADY_CLAIMED,
                                    f"Device [{device.name}] has been already claimed!")
        else:
            attribute = self.store.get_attribute(device.id, SERVER_SCOPE, CLAIM_ATTRIBUTE_NAME)
            allowed = attribute is not None and attribute.value is True
            if not allowed or device.customer_id is not None:
                message = (f"Failed to find claimingAllowed attribute for device "
                           f"[{device.name}] or it is already claimed!")
                if device.customer_id is not None:
                    return Registration(False, Reason.ALREADY_CLAIMED, message)
                return Registration(False, Reason.CLAIMING_NOT_ALLOWED, message)
        if not self.cache.enabled:
            return Registration(False, Reason.CACHE_DISABLED,
                                "the claimDevices cache is disabled (TTL or maxSize 0): "
                                "the claim data is dropped", expiration)
        stored = self.cache.put_if_absent(device.id, ClaimData(secret_key, expiration))
        if not stored:
            kept = self.cache.get(device.id)
            return Registration(False, Reason.KEPT_FIRST_SECRET,
                                "claim data already cached (putIfAbsent): the first secret and "
                                "expiry stay until the entry is evicted",
                                kept.expiration_time_ms if kept else None)
        self.last_removal.pop(device.id, None)
        return Registration(True, Reason.REGISTERED, "claim data cached", expiration)

    # -- B4, B6, B7 ----------------------------------------------------------------------------

    def _attribute_claim_data(self, device: Device) -> tuple[ClaimData | None, Reason | None]:
        attribute = self.store.get_attribute(device.id, SERVER_SCOPE, CLAIM_DATA_ATTRIBUTE_NAME)
        if attribute is None:
            if (self.store.get_attribute(device.id, SERVER_SCOPE, "secretKey") is not None
                    or self.store.get_attribute(device.id, SERVER_SCOPE,
                                                "expirationTime") is not None):
                return None, Reason.CLAIMING_DATA_SPLIT
            return None, None
        value = attribute.value
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                return None, Reason.CLAIMING_DATA_INVALID
        if not isinstance(value, dict):
            return None, Reason.CLAIMING_DATA_INVALID
        secret = value.get("secretKey")
        expiration = value.get("expirationTime", 0)
        if secret is not None and not isinstance(secret, str):
            secret = json.dumps(secret)
        if isinstance(expiration, bool) or not isinstance(expiration, int | float):
            return None, Reason.CLAIMING_DATA_INVALID
        return ClaimData(secret, java_long(int(expiration))), None

    def claim(self, user: User, device: Device, secret_key: str) -> ClaimOutcome:
        now = self.now_ms()
        data = self.cache.get(device.id)
        source: str | None = "cache" if data is not None else None
        attribute_problem: Reason | None = None
        if data is None:
            data, attribute_problem = self._attribute_claim_data(device)
            source = "attribute" if data is not None else None
        if data is not None:
            expired = now > data.expiration_time_ms
            matches = secret_key_is_empty_or_equal(secret_key, data.secret_key)
            if expired or not matches:
                evicted = source == "cache" and self._evict(device.id,
                                                            Reason.EVICTED_BY_FAILED_ATTEMPT)
                reason = Reason.EXPIRED if expired else Reason.SECRET_MISMATCH
                text = (f"claim data expired at {data.expiration_time_ms} (now {now})"
                        if expired else "the secret key does not match")
                if evicted:
                    text += "; the cached claim data was evicted: the device must send it again"
                return ClaimOutcome(ClaimResponse.FAILURE, reason, text, device, source, evicted,
                                    {"expected": fingerprint(data.secret_key),
                                     "given": fingerprint(secret_key),
                                     "expiration_time_ms": data.expiration_time_ms,
                                     "now_ms": now})
            self.store.delete_attributes(device.id, SERVER_SCOPE,
                                         [CLAIM_ATTRIBUTE_NAME, CLAIM_DATA_ATTRIBUTE_NAME])
            self._evict(device.id, Reason.CLAIMED)
            if device.customer_id is None:
                device.customer_id = user.customer_id
                self.store.update_device(device)
                return ClaimOutcome(ClaimResponse.SUCCESS, Reason.CLAIMED,
                                    "device assigned to the caller's customer", device, source)
            return ClaimOutcome(ClaimResponse.CLAIMED, Reason.ALREADY_CLAIMED,
                                "the device is already assigned to a customer; its claiming "
                                "attributes were deleted", device, source,
                                details={"customer_id": device.customer_id})
        if device.customer_id is not None:
            return ClaimOutcome(ClaimResponse.CLAIMED, Reason.ALREADY_CLAIMED,
                                "the device is already assigned to a customer", device,
                                details={"customer_id": device.customer_id})
        reason, text = self._why_no_claim_data(device, attribute_problem)
        return ClaimOutcome(ClaimResponse.FAILURE, reason, text, device)

    def _why_no_claim_data(self, device: Device, problem: Reason | None) -> tuple[Reason, str]:
        if problem is Reason.CLAIMING_DATA_SPLIT:
            return problem, ("no claimingData attribute: secretKey/expirationTime are separate "
                             "attributes, but claimingData must be ONE JSON attribute "
                             '{"secretKey": ..., "expirationTime": ...}')
        if problem is Reason.CLAIMING_DATA_INVALID:
            return problem, ("the claimingData attribute is not a JSON object with secretKey "
                             "and a numeric expirationTime")
        removal = self.last_removal.get(device.id)
        if removal is not None:
            reason, at_ms = removal
            texts = {
                Reason.EVICTED_BY_FAILED_ATTEMPT:
                    "no claim data: a failed claim attempt evicted it; the device must send its "
                    "claim request again",
                Reason.CACHE_TTL_EXPIRED: "no claim data: the cache entry outlived the "
                                          "claimDevices cache TTL",
                Reason.CACHE_SIZE_EVICTED: "no claim data: evicted by the claimDevices cache "
                                           "size limit",
                Reason.EVICTED_BY_RECLAIM: "no claim data: a reclaim evicted it",
            }
            if reason in texts:
                return reason, f"{texts[reason]} (at {at_ms})"
        return Reason.NO_CLAIM_DATA, ("no claim data: the device has not sent a claim request "
                                      "(or the cache forgot it) and there is no claimingData "
                                      "attribute")

    # -- B5 ------------------------------------------------------------------------------------

    def reclaim(self, device: Device) -> ReclaimOutcome:
        previous = device.customer_id
        if previous is None:
            self._evict(device.id, Reason.EVICTED_BY_RECLAIM)
            return ReclaimOutcome(Reason.NOT_ASSIGNED, device, None, False)
        self._evict(device.id, Reason.EVICTED_BY_RECLAIM)
        device.customer_id = None
        self.store.update_device(device)
        restored = False
        if not self.settings.allow_claiming_by_default:
            self.store.save_attributes(device.id, SERVER_SCOPE, {CLAIM_ATTRIBUTE_NAME: True},
                                       self.now_ms())
            restored = True
        return ReclaimOutcome(Reason.RECLAIMED, device, previous, restored)
