"""Claim codes: issuing them and redeeming the ones devices send.

Rules (cloud.md A4; choices for the UNVERIFIED parts are written in docs/claiming.md):

* a claim code is 63 characters of the base64 alphabet, single use, bound to its creator (a user,
  or a customer together with the customer's product), and expires after a configurable time to
  live (default one hour);
* when a device sends ``spark/device/claim/code`` with a code the cloud issued, the code is
  redeemed if it is known, unused and unexpired and the device may move to the creator:

  - a customer's code (product P): the device must be in P, or in no product (it then joins P);
    a device in another product is refused;
  - a user's code (no product): a device in no product may move; a product device only if the
    user is on that product's team;

* a redeemed code is consumed and the device's owner becomes the creator, whoever owned it
  before: physical access (claim codes are set over USB, BLE, SoftAP or serial) is what lets
  claim codes move devices between owners, unlike the claim API.
"""

from __future__ import annotations

import base64
import random
from dataclasses import dataclass, replace
from enum import Enum

from .model import ClaimCode, DeviceRecord, Principal
from .store import CloudStore

CLAIM_CODE_LENGTH = 63
BASE64_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
DEFAULT_CLAIM_CODE_TTL_S = 3600.0


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


def redeem_claim_code(store: CloudStore, device_id: str, code: str, now_us: int) -> ClaimResult:
    """Apply a claim code received from ``device_id``; consumes it when the claim succeeds."""
    if not is_well_formed(code):
        return ClaimResult(ClaimOutcome.MALFORMED_CODE, device_id)
    claim = store.get_claim_code(code)
    if claim is None:
        return ClaimResult(ClaimOutcome.UNKNOWN_CODE, device_id)
    if claim.consumed:
        return ClaimResult(ClaimOutcome.ALREADY_USED, device_id)
    if now_us > claim.expires_us:
        return ClaimResult(ClaimOutcome.EXPIRED, device_id)
    device = store.get_device(device_id) or DeviceRecord(device_id)
    product_id = device.product_id
    if claim.product_id is not None:
        if product_id is not None and product_id != claim.product_id:
            return ClaimResult(ClaimOutcome.OTHER_PRODUCT, device_id, device.owner)
        product_id = claim.product_id
    elif product_id is not None:
        product = store.get_product(product_id)
        if product is None or claim.creator.id not in product.team:
            return ClaimResult(ClaimOutcome.PRODUCT_DEVICE, device_id, device.owner)
    previous = device.owner
    store.put_device(replace(device, owner=claim.creator, product_id=product_id))
    store.update_claim_code(replace(claim, consumed_us=now_us, consumed_by=device_id))
    return ClaimResult(ClaimOutcome.CLAIMED, device_id, previous, claim.creator, product_id)
