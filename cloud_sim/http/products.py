"""Products (by id or slug), team, customers, product devices and product claim codes
(cloud.md A4-A6).

Access: product pages need a team member's token (403 otherwise; 404 for an unknown product -
product ids are not secret, device ids are). Product claim codes need a token of one of the
product's customers. Creating a customer needs the product's OAuth client credentials.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from .. import accounts, ownership
from ..model import DeviceRecord, Principal, Product
from .auth import Caller, require_client
from .common import caller_of, context, find_product, json, no_content, params_of
from .context import ApiContext
from .devices import _claim_code_body
from .errors import api_error, bad_request, product_permission_denied
from .openapi import BOOLEAN, ERRORS, STRING, body, query
from .params import get_bool, get_int, get_str
from .render import device_groups, device_json, display_name, product_json

router = APIRouter(tags=["products"])


async def team_call(request: Request, product_key: str) -> tuple[ApiContext, dict[str, object],
                                                                 Caller, Product]:
    ctx, params, caller = await caller_of(request)
    product = find_product(ctx, product_key)
    caller.require_team(product)
    return ctx, params, caller, product


@router.get("/v1/products", responses=ERRORS, openapi_extra=query())
async def list_products(request: Request) -> Response:
    ctx, _, caller = await caller_of(request)
    return json({"products": [product_json(p) for p in ctx.cloud.store.list_products()
                              if caller.is_team_member(p)]})


@router.get("/v1/products/{product}", responses=ERRORS, openapi_extra=query())
async def get_product(request: Request, product: str) -> Response:
    _, _, _, found = await team_call(request, product)
    return json({"product": product_json(found)})


# -- team ----------------------------------------------------------------------------------------


@router.get("/v1/products/{product}/team", responses=ERRORS, openapi_extra=query())
async def get_team(request: Request, product: str) -> Response:
    ctx, _, _, found = await team_call(request, product)
    store = ctx.cloud.store
    members = [u for u in (store.get_user(uid) for uid in sorted(found.team)) if u is not None]
    return json({"team": [{"username": u.username, "role": {"name": "Administrator"}}
                          for u in members]})


@router.post("/v1/products/{product}/team", responses=ERRORS,
             openapi_extra=body({"username": STRING}, required=("username",)))
async def add_team_member(request: Request, product: str) -> Response:
    ctx, params, _, found = await team_call(request, product)
    username = get_str(params, "username", required=True, max_length=254) or ""
    user = ctx.cloud.store.find_user(username)
    if user is None:
        raise api_error(404, "User not found", error_description="User not found")
    found.team.add(user.id)
    ctx.cloud.store.update_product(found)
    return json({"ok": True, "username": user.username})


@router.delete("/v1/products/{product}/team/{username}", responses=ERRORS,
               openapi_extra=body({}))
async def remove_team_member(request: Request, product: str, username: str) -> Response:
    ctx, _, _, found = await team_call(request, product)
    user = ctx.cloud.store.find_user(username) if len(username) <= 254 else None
    if user is None or user.id not in found.team:
        raise api_error(404, "User not found", error_description="User not found")
    found.team.discard(user.id)
    ctx.cloud.store.update_product(found)
    return no_content()


# -- customers -----------------------------------------------------------------------------------


@router.post("/v1/products/{product}/customers", status_code=201, responses=ERRORS,
             openapi_extra=body({"email": STRING, "password": STRING, "no_password": BOOLEAN,
                                 "client_id": STRING, "client_secret": STRING,
                                 "grant_type": STRING}, required=("email",)))
async def create_customer(request: Request, product: str) -> Response:
    ctx = context(request)
    params = await params_of(request)
    found = find_product(ctx, product)
    client = require_client(ctx, request, params)
    if client.product_id != found.id:
        raise product_permission_denied("This OAuth client does not belong to the product")
    email = get_str(params, "email", max_length=254)
    if email is None or "@" not in email:
        raise bad_request("email must be an email address")
    password = get_str(params, "password", max_length=1024)
    if password is None and not get_bool(params, "no_password"):
        raise bad_request("password is required unless no_password is true")
    store = ctx.cloud.store
    with store.transaction():
        if store.find_customer(found.id, email) is not None:
            raise api_error(400, "Customer already exists",
                            error_description="A customer with this email already exists")
        customer = ctx.cloud.create_customer(found.id, email, password or "")
        issued = ctx.cloud.issue_tokens(Principal.customer(customer.id), client.id,
                                        scope=f"customer={customer.email}")
    return json(issued.as_json(ctx.cloud.unix_us), status=201)


@router.get("/v1/products/{product}/customers", responses=ERRORS,
            openapi_extra=query(("page", "integer"), ("per_page", "integer")))
async def list_customers(request: Request, product: str) -> Response:
    ctx, _, _, found = await team_call(request, product)
    store = ctx.cloud.store
    listed = []
    for customer in store.list_customers(found.id):
        devices = store.devices_owned_by(Principal.customer(customer.id))
        # A customer appears once it owns a device (cloud.md A5, [3P]).
        if devices:
            listed.append({"id": customer.id, "username": customer.email,
                           "devices": [d.id for d in devices]})
    return json({"customers": listed, "meta": {"total_pages": 1}})


def _customer(ctx: ApiContext, product: Product, email: str) -> Principal:
    customer = ctx.cloud.store.find_customer(product.id, email) if len(email) <= 254 else None
    if customer is None:
        raise api_error(404, "Customer not found", error_description="Customer not found")
    return Principal.customer(customer.id)


@router.put("/v1/products/{product}/customers/{email}", responses=ERRORS,
            openapi_extra=body({"password": STRING}, required=("password",)))
async def update_customer(request: Request, product: str, email: str) -> Response:
    ctx, params, _, found = await team_call(request, product)
    principal = _customer(ctx, found, email)
    password = get_str(params, "password", required=True, max_length=1024) or ""
    customer = ctx.cloud.store.get_customer(principal.id)
    assert customer is not None
    customer.password_hash = accounts.hash_password(password, ctx.cloud.rng)
    ctx.cloud.store.update_customer(customer)
    return json({"ok": True})


@router.delete("/v1/products/{product}/customers/{email}", responses=ERRORS,
               openapi_extra=body({}))
async def delete_customer(request: Request, product: str, email: str) -> Response:
    ctx, _, _, found = await team_call(request, product)
    principal = _customer(ctx, found, email)
    customer = ctx.cloud.store.get_customer(principal.id)
    assert customer is not None
    ctx.cloud.delete_customer(customer)
    return json({"ok": True})


# -- product claim codes -------------------------------------------------------------------------


@router.post("/v1/products/{product}/device_claims", responses=ERRORS,
             openapi_extra=body({"iccid": STRING}))
async def create_product_claim_code(request: Request, product: str) -> Response:
    ctx, _, caller = await caller_of(request)
    found = find_product(ctx, product)
    if caller.customer is None or caller.customer.product_id != found.id:
        raise product_permission_denied(
            "Product claim codes need an access token of one of the product's customers")
    return json(_claim_code_body(ctx, caller, found.id))


# -- product devices -----------------------------------------------------------------------------


@router.get("/v1/products/{product}/devices", responses=ERRORS,
            openapi_extra=query(("deviceId", "string"), ("deviceName", "string"),
                                ("page", "integer"), ("per_page", "integer"),
                                ("sortAttr", "string"), ("sortDir", "string"),
                                ("groups", "string")))
async def list_product_devices(request: Request, product: str) -> Response:
    ctx, params, _, found = await team_call(request, product)
    store = ctx.cloud.store
    devices = store.devices_in_product(found.id)
    wanted_id = get_str(params, "deviceId", max_length=64)
    if wanted_id:
        devices = [d for d in devices if wanted_id.lower() in d.id]
    wanted_name = get_str(params, "deviceName", max_length=64)
    if wanted_name:
        devices = [d for d in devices if wanted_name in display_name(d)]
    wanted_groups = _groups(params)
    if wanted_groups:
        devices = [d for d in devices if wanted_groups.intersection(device_groups(d))]
    devices = _sorted(devices, params)
    per_page = get_int(params, "per_page", minimum=1, maximum=1000) or 25
    page = get_int(params, "page", minimum=1, maximum=10**6) or 1
    total_pages = max(1, -(-len(devices) // per_page))
    shown = devices[(page - 1) * per_page: page * per_page]
    customers = {d.owner.id for d in shown if d.owner is not None and d.owner.is_customer}
    return json({"devices": [device_json(d, store, product_view=True) for d in shown],
                 "customers": [{"id": c.id, "username": c.email}
                               for c in (store.get_customer(i) for i in sorted(customers))
                               if c is not None],
                 "meta": {"total_pages": total_pages}})


def _groups(params: dict[str, object]) -> frozenset[str]:
    """``groups``: a comma-separated list of group names (particle-api-js joins an array with
    commas); blanks around and between the commas are ignored."""
    text = get_str(params, "groups", max_length=4096)
    if text is None:
        return frozenset()
    return frozenset(name.strip() for name in text.split(",") if name.strip())


def _last_connection(device: DeviceRecord) -> tuple[bool, int]:
    return device.last_handshake_us is not None, device.last_handshake_us or 0


def _unknown(device: DeviceRecord) -> tuple[bool, int]:
    return False, 0


#: ``sortAttr`` -> the key a device sorts by; a device without the attribute (never connected)
#: sorts lowest. The reference lists ``deviceId``, ``firmwareVersion`` and ``lastConnection``;
#: ``deviceName`` is fwsim's addition (UNVERIFIED). fwsim keeps no product firmware version
#: (the HELLO's is not stored), so under ``firmwareVersion`` every device ties.
SORT_KEYS: dict[str, Callable[[DeviceRecord], tuple[bool, Any]]] = {
    "deviceId": lambda d: (True, d.id),
    "deviceName": lambda d: (True, display_name(d)),
    "firmwareVersion": _unknown,
    "lastConnection": _last_connection,
}
SORT_DIRECTIONS = ("asc", "desc")


def _sorted(devices: list[DeviceRecord], params: dict[str, object]) -> list[DeviceRecord]:
    """Devices in ``sortAttr`` order (default ``lastConnection``), ``sortDir`` ``asc`` or
    ``desc`` (default ``desc``: by default the most recently connected first, as the
    reference says); ties in device id order either way (the sort is stable)."""
    attribute = get_str(params, "sortAttr", max_length=64) or "lastConnection"
    direction = get_str(params, "sortDir", max_length=16) or "desc"
    if attribute not in SORT_KEYS:
        raise bad_request(f"sortAttr must be one of {', '.join(SORT_KEYS)}")
    if direction not in SORT_DIRECTIONS:
        raise bad_request(f"sortDir must be {' or '.join(SORT_DIRECTIONS)}")
    by_id = sorted(devices, key=lambda d: d.id)
    return sorted(by_id, key=SORT_KEYS[attribute], reverse=direction == "desc")


def device_in_product(ctx: ApiContext, product: Product, device_id: str) -> str:
    """The id of the product's device ``device_id`` (404 when the product has no such device)."""
    key = device_id.strip().lower()
    device = ctx.cloud.store.get_device(key) if ownership.is_device_id(key) else None
    if device is None or device.product_id != product.id:
        raise api_error(404, "device not found", error_description="device not found")
    return key


@router.get("/v1/products/{product}/devices/{device_id}", responses=ERRORS,
            openapi_extra=query())
async def get_product_device(request: Request, product: str, device_id: str) -> Response:
    ctx, _, _, found = await team_call(request, product)
    key = device_in_product(ctx, found, device_id)
    device = ctx.cloud.store.get_device(key)
    assert device is not None
    return json(device_json(device, ctx.cloud.store, product_view=True,
                            interface=ctx.cloud.endpoint.interface_of(device.id)))


@router.post("/v1/products/{product}/devices", responses=ERRORS,
             openapi_extra=body({"id": STRING, "file": STRING}, multipart=True))
async def import_devices(request: Request, product: str) -> Response:
    ctx, params, _, found = await team_call(request, product)
    single = get_str(params, "id", max_length=64)
    listing = get_str(params, "file", max_length=1_000_000)
    if single is None and listing is None:
        raise bad_request("id or file is required")
    ids = [single] if single is not None else []
    if listing is not None:
        ids += [line for line in listing.replace(",", "\n").splitlines() if line.strip()]
    if len(ids) > 10_000:
        raise bad_request("at most 10000 device ids per import")
    result = ownership.import_devices(ctx.cloud.store, found.id, ids)
    return json({"updated": result.updated, "nonmemberDeviceIds": result.nonmember_ids,
                 "invalidDeviceIds": result.invalid_ids})


@router.delete("/v1/products/{product}/devices/{device_id}", responses=ERRORS,
               openapi_extra=body({"deny": BOOLEAN}))
async def remove_product_device(request: Request, product: str, device_id: str) -> Response:
    ctx, params, _, found = await team_call(request, product)
    get_bool(params, "deny")
    key = device_in_product(ctx, found, device_id)
    ownership.remove_from_product(ctx.cloud.store, key)
    return no_content()


@router.delete("/v1/products/{product}/devices/{device_id}/owner", responses=ERRORS,
               openapi_extra=body({}))
async def remove_product_device_owner(request: Request, product: str,
                                      device_id: str) -> Response:
    ctx, _, _, found = await team_call(request, product)
    key = device_in_product(ctx, found, device_id)
    ownership.unclaim(ctx.cloud.store, key)
    return json({"ok": True})

