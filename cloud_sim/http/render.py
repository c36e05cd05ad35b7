"""JSON renderings of the cloud's records, in the shapes the real API uses (cloud.md A1, A6)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ..claims import ApiClaimOutcome
from ..device_endpoint import AppInterface
from ..model import ClaimCode, DeviceGroup, DeviceRecord, Email, Product, Transfer
from ..ownership import ApiClaimResult, transfer_links
from ..store import CloudStore
from .errors import ApiError, api_error, errors_list

BELONGS_TO_SOMEONE_ELSE = "That belongs to someone else."
TRANSFER_HINT = " To request a transfer add ?request_transfer=true to the URL."
TRANSFER_NOT_ALLOWED = (" Transfers are only possible between developer accounts; a product's "
                        "customer gets a device with a claim code set on the device.")
DEVICE_NOT_FOUND = "device not found"


def iso(unix_us: int | None) -> str | None:
    if unix_us is None:
        return None
    moment = datetime.fromtimestamp(unix_us / 1e6, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def display_name(device: DeviceRecord) -> str:
    return device.name or f"fwsim_{device.id[-6:]}"


def owner_email(store: CloudStore, device: DeviceRecord) -> str | None:
    owner = device.owner
    if owner is None:
        return None
    if owner.is_user:
        user = store.get_user(owner.id)
        return user.username if user else None
    customer = store.get_customer(owner.id)
    return customer.email if customer else None


#: the API's names of the describe's variable type codes (``Spark_Data_TypeDef``)
VARIABLE_TYPE_NAMES = {1: "bool", 2: "int32", 4: "string", 9: "double"}


def api_variables(interface: AppInterface) -> dict[str, str]:
    """A describe's variables as the API lists them: name -> type name (``int32``, ...)."""
    return {name: VARIABLE_TYPE_NAMES.get(code, str(code))
            for name, code in interface.variables.items()}


def device_groups(device: DeviceRecord) -> tuple[str, ...]:
    """The product groups a device is in, in the order they were assigned (the product device
    view's ``groups``, what the device list's ``groups`` filter matches)."""
    return device.groups if device.product_id is not None else ()


def group_json(group: DeviceGroup, device_count: int | None = None) -> dict[str, Any]:
    """A device group as the reference's examples show it; ``device_count`` where they do (get
    and edit). ``fw_version`` (the product firmware released to the group) is left out: fwsim
    releases no product firmware."""
    body: dict[str, Any] = {"name": group.name, "description": group.description,
                            "color": group.color}
    if device_count is not None:
        body["device_count"] = device_count
    return body


def device_json(device: DeviceRecord, store: CloudStore, *, product_view: bool = False,
                interface: AppInterface | None = None) -> dict[str, Any]:
    """``interface``: the functions and variables of the device's last application describe."""
    platform_id = device.platform_id or 0
    body: dict[str, Any] = {
        "id": device.id,
        "name": display_name(device),
        "last_app": None,
        "last_ip_address": "127.0.0.1" if device.last_heard_us is not None else None,
        "last_heard": iso(device.last_heard_us),
        "last_handshake_at": iso(device.last_handshake_us),
        # A developer device reports its platform id as product id (cloud.md A1).
        "product_id": device.product_id if device.product_id is not None else platform_id,
        "online": device.online,
        "connected": device.online,
        "platform_id": platform_id,
        "cellular": False,
        "notes": device.notes,
        "functions": list(interface.functions) if interface is not None else [],
        "variables": api_variables(interface) if interface is not None else {},
        "status": "normal",
        "system_firmware_version": _version_text(device.system_version),
    }
    if product_view:
        body.update({"owner": owner_email(store, device), "denied": False,
                     "quarantined": False, "development": False,
                     "groups": list(device_groups(device)),
                     "firmware_product_id": device.product_id})
    return body


def _version_text(module_version: int | None) -> str | None:
    if module_version is None:
        return None
    # UNVERIFIED mapping (firmware_sim.profiles): 6200 -> 6.2.0
    return f"{module_version // 1000}.{module_version // 100 % 10}.{module_version % 100}"


def product_json(product: Product, groups: tuple[str, ...] = ()) -> dict[str, Any]:
    """``groups``: the names of the product's device groups."""
    return {"id": product.id, "slug": product.slug, "name": product.name,
            "platform_id": product.platform_id, "description": "", "subscription_id": None,
            "groups": list(groups), "settings": {}, "mfa_required": False}


def claim_code_json(claim: ClaimCode, now_us: int) -> dict[str, Any]:
    status = ("consumed" if claim.consumed
              else "expired" if now_us > claim.expires_us else "active")
    return {"claim_code": claim.code, "creator": str(claim.creator),
            "product_id": claim.product_id, "created_at": iso(claim.created_us),
            "expires_at": iso(claim.expires_us), "status": status,
            "consumed_at": iso(claim.consumed_us), "consumed_by": claim.consumed_by}


def transfer_json(transfer: Transfer) -> dict[str, Any]:
    return {"id": transfer.id, "device_id": transfer.device_id,
            "requester": str(transfer.requester), "owner": str(transfer.owner),
            "status": transfer.status.value, "created_at": iso(transfer.created_us),
            "decided_at": iso(transfer.decided_us)}


def email_json(email: Email, store: CloudStore) -> dict[str, Any]:
    body: dict[str, Any] = {"id": email.id, "to": email.to, "subject": email.subject,
                            "body": email.body, "kind": email.kind, "ref": email.ref,
                            "created_at": iso(email.created_us)}
    transfer = (store.get_transfer(email.ref) if email.kind == "transfer_request" and email.ref
                else None)
    if transfer is not None:
        approve, deny = transfer_links(transfer)
        body["actions"] = {"approve": approve, "deny": deny}
    return body


def api_claim_response(result: ApiClaimResult, caller_is_customer: bool
                       ) -> dict[str, Any] | ApiError:
    """The body of ``POST /v1/devices`` (success), or the error to raise."""
    outcome = result.outcome
    device = result.device
    if outcome is ApiClaimOutcome.NOT_FOUND or device is None:
        return api_error(404, DEVICE_NOT_FOUND, errors=[DEVICE_NOT_FOUND])
    if outcome is ApiClaimOutcome.BELONGS_TO_SOMEONE_ELSE:
        return errors_list(403, BELONGS_TO_SOMEONE_ELSE
                           + ("" if caller_is_customer else TRANSFER_HINT))
    if outcome is ApiClaimOutcome.TRANSFER_NOT_ALLOWED:
        return errors_list(403, BELONGS_TO_SOMEONE_ELSE + TRANSFER_NOT_ALLOWED)
    if outcome is ApiClaimOutcome.TRANSFER_REQUESTED and result.transfer is not None:
        return {"ok": True, "transfer_id": result.transfer.id}
    body: dict[str, Any] = {"ok": True, "id": device.id, "deviceID": device.id,
                            "claimed": True, "connected": device.online}
    owner = device.owner
    if owner is not None:
        body["customer_id" if owner.is_customer else "user_id"] = owner.id
    if device.product_id is not None:
        body["product_id"] = device.product_id
    return body
