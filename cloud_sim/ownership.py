"""Ownership operations: the claim API, transfers, unclaiming, product membership.

These apply the decisions of :mod:`cloud_sim.claims` to a store, inside one transaction each,
and write the simulated emails of the transfer flow to the outbox.

A transfer request carries an unguessable approval token (20 random bytes, hex) that only the
owner's email holds, in its approve/deny links - as a real emailed link would. The transfer id is
no secret (the requester gets it back), so answering without the token changes nothing.
"""

from __future__ import annotations

import hmac
import random
import re
from dataclasses import dataclass, replace

from .claims import (
    ApiClaimOutcome,
    ApiClaimPolicy,
    TransferDecision,
    decide_api_claim,
    decide_transfer,
)
from .model import DeviceRecord, Email, Principal, Transfer, TransferStatus
from .store import CloudStore


@dataclass(frozen=True)
class ApiClaimResult:
    outcome: ApiClaimOutcome
    device: DeviceRecord | None
    transfer: Transfer | None = None


def email_of(store: CloudStore, principal: Principal) -> str:
    if principal.is_user:
        user = store.get_user(principal.id)
        return user.username if user else principal.id
    customer = store.get_customer(principal.id)
    return customer.email if customer else principal.id


def _customer_product(store: CloudStore, principal: Principal) -> int | None:
    if not principal.is_customer:
        return None
    customer = store.get_customer(principal.id)
    return customer.product_id if customer else None


def _on_team(store: CloudStore, caller: Principal, device: DeviceRecord | None) -> bool:
    if device is None or device.product_id is None or not caller.is_user:
        return False
    product = store.get_product(device.product_id)
    return product is not None and caller.id in product.team


def api_claim(store: CloudStore, rng: random.Random, caller: Principal, device_id: str,
              request_transfer: bool, now_us: int,
              policy: ApiClaimPolicy | None = None) -> ApiClaimResult:
    """``POST /v1/devices``: claim ``device_id`` for ``caller``, or request a transfer."""
    with store.transaction():
        device = store.get_device(device_id)
        outcome = decide_api_claim(device, caller,
                                   caller_product_id=_customer_product(store, caller),
                                   request_transfer=request_transfer,
                                   policy=policy or ApiClaimPolicy(),
                                   caller_on_team=_on_team(store, caller, device))
        if device is None:
            return ApiClaimResult(outcome, None)
        if outcome is ApiClaimOutcome.CLAIMED:
            device = replace(device, owner=caller)
            store.put_device(device)
        elif outcome is ApiClaimOutcome.TRANSFER_REQUESTED and device.owner is not None:
            transfer = _request_transfer(store, rng, device, caller, device.owner, now_us)
            return ApiClaimResult(outcome, device, transfer)
        return ApiClaimResult(outcome, device)


def _request_transfer(store: CloudStore, rng: random.Random, device: DeviceRecord,
                      requester: Principal, owner: Principal, now_us: int) -> Transfer:
    for existing in store.list_transfers():
        if (existing.device_id == device.id and existing.requester == requester
                and existing.owner == owner and existing.status is TransferStatus.PENDING):
            return existing
    transfer = Transfer(rng.randbytes(12).hex(), device.id, requester, owner,
                        TransferStatus.PENDING, now_us,
                        approval_token=rng.randbytes(APPROVAL_TOKEN_BYTES).hex())
    store.add_transfer(transfer)
    approve, deny = transfer_links(transfer)
    store.add_email(Email(0, email_of(store, owner), "Device transfer request",
                          f"{email_of(store, requester)} asks for device {device.id}. "
                          f"Approve: POST {approve}; deny: POST {deny}.",
                          now_us, "transfer_request", transfer.id))
    return transfer


APPROVAL_TOKEN_BYTES = 20


def transfer_links(transfer: Transfer) -> tuple[str, str]:
    """The approve and deny links of the owner's email (they carry the approval token)."""
    base = f"/fwsim/transfers/{transfer.id}"
    query = f"?token={transfer.approval_token}"
    return f"{base}/approve{query}", f"{base}/deny{query}"


def answer_transfer(store: CloudStore, transfer_id: str, approve: bool,
                    now_us: int, token: str) -> tuple[TransferDecision, Transfer] | None:
    """The owner approves or denies a transfer request through the link of the email, which
    carries ``token`` (None: no such transfer; REFUSED: not the email's token)."""
    with store.transaction():
        transfer = store.get_transfer(transfer_id)
        if transfer is None:
            return None
        if not transfer.approval_token or not hmac.compare_digest(
                transfer.approval_token.encode(), token.encode("utf-8", "replace")):
            return TransferDecision.REFUSED, transfer
        device = store.get_device(transfer.device_id)
        decision = decide_transfer(transfer, device, approve)
        if decision is TransferDecision.ALREADY_DECIDED:
            return decision, transfer
        status = {TransferDecision.APPROVED: TransferStatus.APPROVED,
                  TransferDecision.DENIED: TransferStatus.DENIED}.get(decision,
                                                                      TransferStatus.VOID)
        transfer = replace(transfer, status=status, decided_us=now_us)
        store.update_transfer(transfer)
        if decision is TransferDecision.APPROVED and device is not None:
            store.put_device(replace(device, owner=transfer.requester))
        verb = {TransferStatus.APPROVED: "approved", TransferStatus.DENIED: "denied"}.get(
            status, "cancelled (the device changed hands)")
        store.add_email(Email(0, email_of(store, transfer.requester),
                              f"Device transfer {verb.split()[0]}",
                              f"Your transfer request for device {transfer.device_id} was "
                              f"{verb}.", now_us, f"transfer_{status.value}", transfer.id))
        return decision, transfer


def unclaim(store: CloudStore, device_id: str) -> DeviceRecord | None:
    with store.transaction():
        device = store.get_device(device_id)
        if device is None:
            return None
        device = replace(device, owner=None)
        store.put_device(device)
        return device


def remove_from_product(store: CloudStore, device_id: str) -> DeviceRecord | None:
    """Remove a device from its product; a customer owner loses it too (cloud.md A6)."""
    with store.transaction():
        device = store.get_device(device_id)
        if device is None:
            return None
        owner = device.owner if device.owner is not None and device.owner.is_user else None
        device = replace(device, product_id=None, owner=owner)
        store.put_device(device)
        return device


@dataclass(frozen=True)
class ImportResult:
    updated: int
    nonmember_ids: list[str]
    invalid_ids: list[str]


def import_devices(store: CloudStore, product_id: int, device_ids: list[str]) -> ImportResult:
    """``POST /v1/products/:p/devices``: add devices (known or not yet seen) to a product."""
    updated, invalid = 0, []
    with store.transaction():
        for raw in device_ids:
            device_id = raw.strip().lower()
            if not is_device_id(device_id):
                invalid.append(raw)
                continue
            device = store.get_device(device_id) or DeviceRecord(device_id)
            if device.product_id not in (None, product_id):
                invalid.append(raw)
                continue
            if device.product_id != product_id:
                store.put_device(replace(device, product_id=product_id))
            updated += 1
    return ImportResult(updated, [], invalid)


_DEVICE_ID = re.compile("[0-9a-f]{24}")


def is_device_id(text: str) -> bool:
    """24 lowercase hex digits."""
    return _DEVICE_ID.fullmatch(text) is not None
