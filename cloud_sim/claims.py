"""Claiming rules: claim codes, the claim API and developer transfers, as pure functions.

Every rule is written down in docs/claiming.md (with the UNVERIFIED choices) and has a test in
tests/cloud/test_claim_rules.py. The functions here decide; :mod:`cloud_sim.ownership` applies
the decisions to a store (and sends the emails).

Claim codes (cloud.md A4)
    63 characters of the base64 alphabet, single use, bound to their creator (a user; or a
    customer together with the customer's product), expiring after a configurable time to live
    (default one hour). When a device sends ``spark/device/claim/code`` after a full handshake,
    the code is redeemed if it is known, unused and unexpired and the device may move:

    - a customer's code (product P): the device must be in P, or in no product (it then joins
      P); a device in another product is refused;
    - a user's code (no product): a device in no product may move; a product device only if the
      user is on that product's team;

    a redeemed code is consumed and the device's owner becomes the creator *whoever owned it
    before*: physical access (codes are set over USB, BLE, SoftAP or serial) is what lets claim
    codes move devices between owners - the only way a device moves between customers.

The claim API, ``POST /v1/devices`` (cloud.md A3)
    allowed when the device is unclaimed or already the caller's; a device owned by anyone else
    is refused with 403 "That belongs to someone else."; with ``request_transfer`` a developer
    (user) asking for a device another developer owns gets a transfer request the owner approves
    or denies by email; customers cannot request transfers, and devices owned by customers
    cannot be transferred. An unclaimed developer device (no product) must be online. An
    unclaimed product device may be claimed by a member of the product's team, online or not
    (the manufacturing flow), and by a customer of that product while it is online; other
    developers may not claim it. Anything else is "device not found" - the same answer for an
    unknown id, so the API does not tell unauthorized callers which ids exist. The three
    "online"/"team" conditions come from staff posts the spec marks [3P]; each can be turned
    off in :class:`ApiClaimPolicy` (docs/claiming.md).
"""

from __future__ import annotations

import base64
import random
from dataclasses import dataclass, replace
from enum import Enum

from .model import ClaimCode, DeviceRecord, Principal, Transfer, TransferStatus
from .store import CloudStore

CLAIM_CODE_LENGTH = 63
BASE64_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
DEFAULT_CLAIM_CODE_TTL_S = 3600.0


# -- claim codes ---------------------------------------------------------------------------------


class ClaimOutcome(Enum):
    CLAIMED = "claimed"
    UNKNOWN_CODE = "unknown_code"
    MALFORMED_CODE = "malformed_code"
    ALREADY_USED = "already_used"
    EXPIRED = "expired"
    OTHER_PRODUCT = "device_in_other_product"
    PRODUCT_DEVICE = "product_device_not_in_team"

    @property
    def accepted(self) -> bool:
        return self is ClaimOutcome.CLAIMED


@dataclass(frozen=True)
class ClaimResult:
    outcome: ClaimOutcome
    device_id: str
    previous_owner: Principal | None = None
    new_owner: Principal | None = None
    product_id: int | None = None


def generate_claim_code(rng: random.Random) -> str:
    """63 characters of the base64 alphabet (random bytes, base64, first 63 characters)."""
    return base64.b64encode(rng.randbytes(48)).decode("ascii")[:CLAIM_CODE_LENGTH]


def is_well_formed(code: str) -> bool:
    return len(code) == CLAIM_CODE_LENGTH and all(c in BASE64_ALPHABET for c in code)


def issue_claim_code(store: CloudStore, rng: random.Random, creator: Principal,
                     product_id: int | None, now_us: int,
                     ttl_s: float = DEFAULT_CLAIM_CODE_TTL_S) -> ClaimCode:
    while True:
        code = generate_claim_code(rng)
        if store.get_claim_code(code) is None:
            break
    claim = ClaimCode(code, creator, product_id, now_us, now_us + round(ttl_s * 1e6))
    store.add_claim_code(claim)
    return claim


def decide_claim_code(claim: ClaimCode | None, code: str, device: DeviceRecord,
                      team_of_device_product: set[str] | None, now_us: int) -> ClaimOutcome:
    """May ``device`` be claimed with ``code`` (``claim`` is the stored record, if any)?

    ``team_of_device_product`` is the team of the device's product (None when the device is in
    no product or the product is unknown).
    """
    if not is_well_formed(code):
        return ClaimOutcome.MALFORMED_CODE
    if claim is None:
        return ClaimOutcome.UNKNOWN_CODE
    if claim.consumed:
        return ClaimOutcome.ALREADY_USED
    if now_us > claim.expires_us:
        return ClaimOutcome.EXPIRED
    if claim.product_id is not None:
        if device.product_id is not None and device.product_id != claim.product_id:
            return ClaimOutcome.OTHER_PRODUCT
    elif device.product_id is not None and (
            team_of_device_product is None or claim.creator.id not in team_of_device_product):
        return ClaimOutcome.PRODUCT_DEVICE
    return ClaimOutcome.CLAIMED


def redeem_claim_code(store: CloudStore, device_id: str, code: str, now_us: int) -> ClaimResult:
    """Apply a claim code received from ``device_id``; consumes it when the claim succeeds."""
    claim = store.get_claim_code(code) if is_well_formed(code) else None
    device = store.get_device(device_id) or DeviceRecord(device_id)
    team = None
    if device.product_id is not None:
        product = store.get_product(device.product_id)
        team = product.team if product else None
    outcome = decide_claim_code(claim, code, device, team, now_us)
    if claim is None or not outcome.accepted:
        return ClaimResult(outcome, device_id, device.owner)
    product_id = claim.product_id if claim.product_id is not None else device.product_id
    with store.transaction():
        store.put_device(replace(device, owner=claim.creator, product_id=product_id))
        store.update_claim_code(replace(claim, consumed_us=now_us, consumed_by=device_id))
    return ClaimResult(ClaimOutcome.CLAIMED, device_id, device.owner, claim.creator, product_id)


# -- the claim API -------------------------------------------------------------------------------


class ApiClaimOutcome(Enum):
    #: the caller now owns the device (200)
    CLAIMED = "claimed"
    #: the caller already owned it (200, nothing changes)
    ALREADY_YOURS = "already_yours"
    #: unknown id, or a device this caller may not claim (404 "device not found")
    NOT_FOUND = "not_found"
    #: owned by someone else (403 "That belongs to someone else.")
    BELONGS_TO_SOMEONE_ELSE = "belongs_to_someone_else"
    #: owned by another developer; a transfer request was made (200 with a transfer id)
    TRANSFER_REQUESTED = "transfer_requested"
    #: ``request_transfer`` by a customer, or for a device a customer owns (403)
    TRANSFER_NOT_ALLOWED = "transfer_not_allowed"

    @property
    def status(self) -> int:
        return {ApiClaimOutcome.CLAIMED: 200, ApiClaimOutcome.ALREADY_YOURS: 200,
                ApiClaimOutcome.NOT_FOUND: 404, ApiClaimOutcome.TRANSFER_REQUESTED: 200
                }.get(self, 403)


@dataclass(frozen=True)
class ApiClaimPolicy:
    #: an unclaimed device that is in no product must be online to be claimed by id
    require_online: bool = True
    #: a customer claims an unclaimed device of its product only while it is online
    customer_requires_online: bool = True
    #: only members of the product's team may claim an unclaimed product device (developers)
    product_team_only: bool = True


def decide_api_claim(device: DeviceRecord | None, caller: Principal, *,
                     caller_product_id: int | None, request_transfer: bool,
                     policy: ApiClaimPolicy = ApiClaimPolicy(),
                     caller_on_team: bool = False) -> ApiClaimOutcome:
    """``POST /v1/devices`` by ``caller`` (``caller_product_id``: a customer's product;
    ``caller_on_team``: the caller is a member of the device's product team)."""
    if device is None:
        return ApiClaimOutcome.NOT_FOUND
    owner = device.owner
    if owner == caller:
        return ApiClaimOutcome.ALREADY_YOURS
    if owner is not None:
        if not request_transfer:
            return ApiClaimOutcome.BELONGS_TO_SOMEONE_ELSE
        if caller.is_customer or owner.is_customer:
            return ApiClaimOutcome.TRANSFER_NOT_ALLOWED
        return ApiClaimOutcome.TRANSFER_REQUESTED
    if caller.is_customer:
        if device.product_id is None or device.product_id != caller_product_id:
            return ApiClaimOutcome.NOT_FOUND
        if policy.customer_requires_online and not device.online:
            return ApiClaimOutcome.NOT_FOUND
        return ApiClaimOutcome.CLAIMED
    if device.product_id is None:
        if policy.require_online and not device.online:
            return ApiClaimOutcome.NOT_FOUND
        return ApiClaimOutcome.CLAIMED
    if policy.product_team_only and not caller_on_team:
        return ApiClaimOutcome.NOT_FOUND
    return ApiClaimOutcome.CLAIMED


# -- developer transfers -------------------------------------------------------------------------


class TransferDecision(Enum):
    APPROVED = "approved"
    DENIED = "denied"
    #: not pending any more, or the device changed hands since the request
    VOID = "void"
    ALREADY_DECIDED = "already_decided"
    #: the answer did not carry the token of the owner's email: nothing changes
    REFUSED = "refused"


def decide_transfer(transfer: Transfer, device: DeviceRecord | None,
                    approve: bool) -> TransferDecision:
    """The owner answers a transfer request (the link in the email)."""
    if transfer.status is not TransferStatus.PENDING:
        return TransferDecision.ALREADY_DECIDED
    if device is None or device.owner != transfer.owner:
        return TransferDecision.VOID
    return TransferDecision.APPROVED if approve else TransferDecision.DENIED
