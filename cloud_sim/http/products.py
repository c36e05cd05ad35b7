"""Products (by id or slug), team, customers, product devices, device groups and product claim
codes (cloud.md A4-A6; device groups: docs/cloud-api.md "Device groups").

Access: product pages need a team member's token (403 otherwise; 404 for an unknown product -
product ids are not secret, device ids are). Product claim codes need a token of one of the
product's customers. Creating a customer needs the product's OAuth client credentials.

Device groups: a product's groups are named ``[a-z0-9_-]{1,64}``; a device's memberships are
set whole (``PUT .../devices/:id`` with ``groups``) or changed for many devices at once (``PUT
.../devices`` with ``action: groups``); both create the groups they name that do not exist yet.
Every request is checked in full before anything is written (the memory store cannot roll back).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from .. import accounts, ownership
from ..model import DeviceGroup, DeviceRecord, Principal, Product
from ..store import CloudStore
from .auth import Caller, require_client
from .common import caller_of, context, find_product, json, no_content, params_of
from .context import ApiContext
from .devices import _claim_code_body
from .errors import ApiError, api_error, bad_request, product_permission_denied
from .openapi import BOOLEAN, ERRORS, STRING, body, query
from .params import Params, get_bool, get_int, get_str
from .render import device_groups, device_json, display_name, group_json, iso, product_json

router = APIRouter(tags=["products"])


async def team_call(request: Request, product_key: str) -> tuple[ApiContext, dict[str, object],
                                                                 Caller, Product]:
    ctx, params, caller = await caller_of(request)
    product = find_product(ctx, product_key)
    caller.require_team(product)
    return ctx, params, caller, product


def _product_json(store: CloudStore, product: Product) -> dict[str, Any]:
    return product_json(product, tuple(g.name for g in store.list_groups(product.id)))


@router.get("/v1/products", responses=ERRORS, openapi_extra=query())
async def list_products(request: Request) -> Response:
    ctx, _, caller = await caller_of(request)
    store = ctx.cloud.store
    return json({"products": [_product_json(store, p) for p in store.list_products()
                              if caller.is_team_member(p)]})


@router.get("/v1/products/{product}", responses=ERRORS, openapi_extra=query())
async def get_product(request: Request, product: str) -> Response:
    ctx, _, _, found = await team_call(request, product)
    return json({"product": _product_json(ctx.cloud.store, found)})


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
    store = ctx.cloud.store
    with store.transaction():
        removed = ownership.remove_from_product(store, key)
        if removed is not None and removed.groups:  # a device leaves its product's groups too
            store.put_device(replace(removed, groups=()))
    return no_content()


@router.delete("/v1/products/{product}/devices/{device_id}/owner", responses=ERRORS,
               openapi_extra=body({}))
async def remove_product_device_owner(request: Request, product: str,
                                      device_id: str) -> Response:
    ctx, _, _, found = await team_call(request, product)
    key = device_in_product(ctx, found, device_id)
    ownership.unclaim(ctx.cloud.store, key)
    return json({"ok": True})


# -- device groups -------------------------------------------------------------------------------

#: a group name (Particle's device groups guide: the letters a-z, digits 0-9, hyphen and
#: underscore, at most 64 characters)
GROUP_NAME = re.compile(r"[a-z0-9_-]{1,64}")
GROUP_NAME_RULE = "1 to 64 of the lowercase letters a-z, digits 0-9, '-' and '_'"
#: ``#rgb`` or ``#rrggbb``, kept in lowercase (UNVERIFIED: the reference says "a hex value")
GROUP_COLOR = re.compile(r"#(?:[0-9a-fA-F]{3}){1,2}")
#: limits the reference does not give (UNVERIFIED choices, docs/cloud-api.md)
MAX_GROUP_DESCRIPTION = 1024
MAX_GROUPS_PER_PRODUCT = 1000
MAX_GROUPS_PER_DEVICE = 100
MAX_BATCH_DEVICES = 1000
GROUP_FIELDS = {"name": STRING, "description": STRING, "color": STRING}
GROUP_NAMES = {"type": "array", "items": STRING}


def is_group_name(value: object) -> bool:
    return isinstance(value, str) and GROUP_NAME.fullmatch(value) is not None


def _group_not_found() -> ApiError:
    return api_error(404, "Group not found", error_description="Group not found")


def _group(ctx: ApiContext, product: Product, name: str) -> DeviceGroup:
    """The product's group ``name`` (404 when there is none; a name that breaks the naming
    rule names no group)."""
    group = ctx.cloud.store.get_group(product.id, name) if is_group_name(name) else None
    if group is None:
        raise _group_not_found()
    return group


def _name_param(params: Params, *, required: bool) -> str | None:
    value = params.get("name")
    if value is None or value == "":
        if required:
            raise bad_request("name is required")
        return None
    if not is_group_name(value):
        raise bad_request(f"name must be {GROUP_NAME_RULE}")
    assert isinstance(value, str)
    return value


def _description_param(params: Params) -> str | None:
    return get_str(params, "description", max_length=MAX_GROUP_DESCRIPTION)


def _color_param(params: Params) -> str | None:
    color = get_str(params, "color", max_length=16)
    if color is None:
        return None
    if GROUP_COLOR.fullmatch(color) is None:
        raise bad_request("color must be a hex colour, #rrggbb or #rgb")
    return color.lower()


def _names_param(params: Params, key: str, *, required: bool) -> tuple[str, ...] | None:
    """An array of group names (JSON, or form fields ``key[]``), each kept once in its first
    place; None when absent and not ``required``."""
    value = params.get(key, params.get(f"{key}[]"))
    if value is None:
        if required:
            raise bad_request(f"{key} is required: an array of group names")
        return None
    if not isinstance(value, list):
        raise bad_request(f"{key} must be an array of group names")
    if len(value) > MAX_GROUPS_PER_DEVICE:
        raise bad_request(f"{key} names at most {MAX_GROUPS_PER_DEVICE} groups")
    if not all(is_group_name(item) for item in value):
        raise bad_request(f"each group name in {key} must be {GROUP_NAME_RULE}")
    return tuple(dict.fromkeys(value))


def _device_count(store: CloudStore, product_id: int, name: str) -> int:
    return sum(name in d.groups for d in store.devices_in_product(product_id))


def _make_room(store: CloudStore, product_id: int, names: tuple[str, ...]) -> list[str]:
    """The names among ``names`` the product has no group of yet (400 when adding them would
    pass the product's limit)."""
    missing = [n for n in names if store.get_group(product_id, n) is None]
    if missing and len(store.list_groups(product_id)) + len(missing) > MAX_GROUPS_PER_PRODUCT:
        raise bad_request(f"a product has at most {MAX_GROUPS_PER_PRODUCT} device groups")
    return missing


@router.get("/v1/products/{product}/groups", responses=ERRORS,
            openapi_extra=query(("name", "string")))
async def list_groups(request: Request, product: str) -> Response:
    ctx, params, _, found = await team_call(request, product)
    wanted = get_str(params, "name", max_length=64) or ""
    return json({"groups": [group_json(g) for g in ctx.cloud.store.list_groups(found.id)
                            if wanted in g.name]})


@router.post("/v1/products/{product}/groups", status_code=201, responses=ERRORS,
             openapi_extra=body(GROUP_FIELDS, required=("name",)))
async def create_group(request: Request, product: str) -> Response:
    ctx, params, _, found = await team_call(request, product)
    name = _name_param(params, required=True)
    assert name is not None
    group = DeviceGroup(found.id, name, _description_param(params), _color_param(params))
    store = ctx.cloud.store
    with store.transaction():
        if store.get_group(found.id, name) is not None:
            raise api_error(400, "Group already exists",
                            error_description=f"The product has a group named {name}")
        _make_room(store, found.id, (name,))
        store.add_group(group)
    return json({"group": group_json(group)}, status=201)


@router.get("/v1/products/{product}/groups/{group}", responses=ERRORS, openapi_extra=query())
async def get_group(request: Request, product: str, group: str) -> Response:
    ctx, _, _, found = await team_call(request, product)
    current = _group(ctx, found, group)
    return json({"group": group_json(current, _device_count(ctx.cloud.store, found.id,
                                                             current.name))})


@router.put("/v1/products/{product}/groups/{group}", responses=ERRORS,
            openapi_extra=body(GROUP_FIELDS))
async def edit_group(request: Request, product: str, group: str) -> Response:
    """Any of ``name`` (renames the group, in its devices too), ``description`` and ``color``
    (``""`` clears either); at least one is needed."""
    ctx, params, _, found = await team_call(request, product)
    current = _group(ctx, found, group)
    if not any(params.get(key) is not None for key in GROUP_FIELDS):
        raise bad_request("pass one of name, color or description")
    name = _name_param(params, required=False) or current.name
    updated = DeviceGroup(
        found.id, name,
        _description_param(params) if params.get("description") is not None
        else current.description,
        _color_param(params) if params.get("color") is not None else current.color)
    store = ctx.cloud.store
    with store.transaction():
        if name != current.name and store.get_group(found.id, name) is not None:
            raise api_error(400, "Group already exists",
                            error_description=f"The product has a group named {name}")
        store.update_group(current.name, updated)
    return json({"group": group_json(updated, _device_count(store, found.id, name))})


@router.delete("/v1/products/{product}/groups/{group}", responses=ERRORS,
               openapi_extra=body({}))
async def delete_group(request: Request, product: str, group: str) -> Response:
    """Deletes the group; its devices stay in the product, out of the group."""
    ctx, _, _, found = await team_call(request, product)
    current = _group(ctx, found, group)
    ctx.cloud.store.delete_group(found.id, current.name)
    return no_content()


@router.put("/v1/products/{product}/devices/{device_id}", responses=ERRORS,
            openapi_extra=body({"groups": GROUP_NAMES}, required=("groups",)))
async def assign_device_groups(request: Request, product: str, device_id: str) -> Response:
    """``groups``: the device's groups from now on, whatever it was in before (``[]``: none);
    a name the product has no group of creates that group."""
    ctx, params, _, found = await team_call(request, product)
    key = device_in_product(ctx, found, device_id)
    names = _names_param(params, "groups", required=True)
    assert names is not None
    store = ctx.cloud.store
    with store.transaction():
        for name in _make_room(store, found.id, names):
            store.add_group(DeviceGroup(found.id, name))
        device = store.get_device(key)
        assert device is not None
        store.put_device(replace(device, groups=names))
    return json({"id": key, "groups": list(names), "updated_at": iso(ctx.cloud.unix_us)})


@router.put("/v1/products/{product}/devices", responses=ERRORS,
            openapi_extra=body({"action": STRING,
                                "devices": {"type": "array", "items": STRING},
                                "metadata": {"type": "object",
                                             "properties": {"add": GROUP_NAMES,
                                                            "remove": GROUP_NAMES}}},
                               required=("action", "devices", "metadata"), form=False))
async def batch_device_groups(request: Request, product: str) -> Response:
    """``{"action": "groups", "devices": [ids], "metadata": {"add": [...], "remove": [...]}}``:
    adds the ``add`` groups to every listed device (creating those the product lacks), then
    takes the ``remove`` groups out of them. Every id must be a device of the product (404
    otherwise, and nothing changes)."""
    ctx, params, _, found = await team_call(request, product)
    if get_str(params, "action", required=True, max_length=64) != "groups":
        raise bad_request("action must be groups")
    ids = params.get("devices")
    if (not isinstance(ids, list) or not 1 <= len(ids) <= MAX_BATCH_DEVICES
            or not all(isinstance(i, str) for i in ids)):
        raise bad_request(f"devices must be an array of 1 to {MAX_BATCH_DEVICES} device ids")
    metadata = params.get("metadata")
    if not isinstance(metadata, dict) or ("add" not in metadata and "remove" not in metadata):
        raise bad_request("metadata must be an object with add and/or remove, arrays of group "
                          "names")
    add = _names_param(metadata, "add", required=False) or ()
    remove = set(_names_param(metadata, "remove", required=False) or ())
    store = ctx.cloud.store
    changed: list[DeviceRecord] = []
    for key in dict.fromkeys(device_in_product(ctx, found, i) for i in ids):
        device = store.get_device(key)
        assert device is not None
        groups = tuple(g for g in dict.fromkeys(device.groups + add) if g not in remove)
        if len(groups) > MAX_GROUPS_PER_DEVICE:
            raise bad_request(f"a device is in at most {MAX_GROUPS_PER_DEVICE} groups")
        if groups != device.groups:
            changed.append(replace(device, groups=groups))
    with store.transaction():
        for name in _make_room(store, found.id, tuple(n for n in add if n not in remove)):
            store.add_group(DeviceGroup(found.id, name))
        for device in changed:
            store.put_device(device)
    return json({"ok": True})
