"""The emulator's own namespace, ``/fwsim/...``: seeding, the email outbox, transfers, claim
codes, sessions and events. It has no counterpart in Particle's API; tests and demos use it to
set up and inspect a world. It is powerful (it hands out tokens and moves devices), so it is
guarded (:mod:`.guard`, docs/security.md): off unless enabled (``fwsim cloud serve --admin``),
behind an admin token when served, JSON bodies only, Host and Origin checked.

``POST /fwsim/seed`` takes one JSON document::

    {"users": [{"username": "dev@example.com", "password": "pw"}],
     "products": [{"id": 4242, "slug": "acme", "name": "Acme", "team": ["dev@example.com"],
                   "client": {"id": "acme-client", "secret": "s3cret"}}],
     "customers": [{"product": "acme", "email": "a@example.com", "password": "pw"}],
     "devices": [{"id": "e00f...", "product": "acme", "owner": "customer:a@example.com",
                  "platform_id": 32}]}

(``owner`` is ``user:<username>`` or ``customer:<email>``) and answers with the ids and a fresh
access token for every user and customer it names. For a user or customer that already exists
the password must be the right one (403 otherwise): seeding never hands out the token of an
account whose password the caller does not know.

A transfer is answered through the links of the owner's email (``GET /fwsim/outbox``), which
carry the transfer's approval token: ``POST /fwsim/transfers/<id>/approve?token=<token>``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from .. import accounts, ownership
from ..claims import TransferDecision
from ..model import DeviceRecord, Principal, Product
from .common import context, json, params_of
from .context import ApiContext
from .device_calls import CALL_BODY, RESPONSES, call_response, read_response
from .errors import api_error, bad_request, forbidden
from .openapi import BOOLEAN, ERRORS, STRING, body
from .params import get_bool, get_str
from .render import claim_code_json, device_json, email_json, iso, transfer_json

router = APIRouter(prefix="/fwsim", tags=["fwsim admin"])

SEED_SCHEMA = {"users": {"type": "array", "items": {"type": "object"}},
               "products": {"type": "array", "items": {"type": "object"}},
               "customers": {"type": "array", "items": {"type": "object"}},
               "devices": {"type": "array", "items": {"type": "object"}}}


def _items(params: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = params.get(key, [])
    if not isinstance(value, list) or not all(isinstance(i, dict) for i in value):
        raise bad_request(f"{key} must be a list of objects")
    return value


def _text(item: dict[str, Any], key: str, *, required: bool = True) -> str | None:
    value = get_str(item, key, required=required, max_length=254)
    return value


def _int(item: dict[str, Any], key: str, default: int | None, *, minimum: int = 0,
         maximum: int = 2**31 - 1) -> int | None:
    value = item.get(key, default)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not minimum <= value <= maximum:
        raise bad_request(f"{key} must be an integer between {minimum} and {maximum}")
    return value


def _product_of(ctx: ApiContext, key: object) -> Product:
    if isinstance(key, int) and not isinstance(key, bool):
        key = str(key)
    if not isinstance(key, str):
        raise bad_request("product must be an id or a slug")
    product = ctx.cloud.store.find_product(key)
    if product is None:
        raise bad_request(f"unknown product {key!r}")
    return product


def _owner(ctx: ApiContext, text: str, product: Product | None) -> Principal:
    kind, _, who = text.partition(":")
    store = ctx.cloud.store
    if kind == "user":
        user = store.find_user(who)
        if user is None:
            raise bad_request(f"unknown user {who!r}")
        return Principal.user(user.id)
    if kind == "customer" and product is not None:
        customer = store.find_customer(product.id, who)
        if customer is None:
            raise bad_request(f"unknown customer {who!r} of product {product.slug}")
        return Principal.customer(customer.id)
    raise bad_request("owner must be user:<username> or customer:<email> (with a product)")


@router.post("/seed", responses=ERRORS,
             openapi_extra=body(SEED_SCHEMA, form=False))
async def seed(request: Request) -> Response:
    ctx = context(request)
    params = await params_of(request)
    cloud = ctx.cloud
    store = cloud.store
    created: dict[str, Any] = {"users": {}, "customers": {}, "products": {}, "devices": []}
    with store.transaction():
        for item in _items(params, "users"):
            username = _text(item, "username") or ""
            password = _text(item, "password") or ""
            user = store.find_user(username)
            if user is None:
                user = cloud.create_user(username, password)
            elif not accounts.verify_password(password, user.password_hash):
                raise forbidden(f"user {username!r} exists and the password does not match")
            token = cloud.issue_tokens(Principal.user(user.id), "particle")
            created["users"][username] = {"id": user.id, "access_token": token.access.token}
        for item in _items(params, "products"):
            created["products"].update(_seed_product(ctx, item))
        for item in _items(params, "customers"):
            product = _product_of(ctx, item.get("product"))
            email = _text(item, "email") or ""
            password = _text(item, "password", required=False) or ""
            customer = store.find_customer(product.id, email)
            if customer is None:
                customer = cloud.create_customer(product.id, email, password)
            elif not (customer.password_hash
                      and accounts.verify_password(password, customer.password_hash)):
                raise forbidden(f"customer {email!r} exists and the password does not match")
            token = cloud.issue_tokens(Principal.customer(customer.id), "particle",
                                       scope=f"customer={customer.email}")
            created["customers"][email] = {"id": customer.id, "product_id": product.id,
                                           "access_token": token.access.token}
        for item in _items(params, "devices"):
            created["devices"].append(_seed_device(ctx, item))
    return json({"ok": True, **created})


def _seed_product(ctx: ApiContext, item: dict[str, Any]) -> dict[str, Any]:
    cloud = ctx.cloud
    store = cloud.store
    product_id = _int(item, "id", None, minimum=1)
    if product_id is None:
        raise bad_request("product id must be a positive integer")
    slug = _text(item, "slug") or ""
    if slug.isdigit() or not slug:
        raise bad_request("a product slug must not be a number")
    team: set[str] = set()
    for username in item.get("team", []):
        user = store.find_user(username) if isinstance(username, str) else None
        if user is None:
            raise bad_request(f"unknown team member {username!r}")
        team.add(user.id)
    product = store.get_product(product_id)
    if product is None:
        if store.find_product(slug) is not None:
            raise bad_request(f"slug {slug!r} is taken")
        platform_id = _int(item, "platform_id", 32) or 32
        product = cloud.create_product(product_id, slug, _text(item, "name", required=False)
                                       or slug, team=team, platform_id=platform_id)
    else:
        product.team |= team
        store.update_product(product)
    answer: dict[str, Any] = {"id": product.id}
    client = item.get("client")
    if isinstance(client, dict):
        client_id = _text(client, "id") or ""
        secret = _text(client, "secret") or ""
        cloud.create_product_client(product, client_id, secret)
        answer["client_id"] = client_id
    return {slug: answer}


def _seed_device(ctx: ApiContext, item: dict[str, Any]) -> dict[str, Any]:
    device_id = (_text(item, "id") or "").lower()
    if not ownership.is_device_id(device_id):
        raise bad_request(f"invalid device id {device_id!r}")
    product = _product_of(ctx, item["product"]) if item.get("product") is not None else None
    owner_text = _text(item, "owner", required=False)
    owner = _owner(ctx, owner_text, product) if owner_text else None
    store = ctx.cloud.store
    device = store.get_device(device_id) or DeviceRecord(device_id)
    platform_id = _int(item, "platform_id", device.platform_id)
    product_id = product.id if product else device.product_id
    device = replace(device, product_id=product_id,
                     owner=owner if owner_text else device.owner, platform_id=platform_id,
                     online=bool(item.get("online", device.online)),
                     # groups belong to a product: a device seeded into another leaves them
                     groups=device.groups if product_id == device.product_id else ())
    store.put_device(device)
    return {"id": device.id, "product_id": device.product_id,
            "owner": str(device.owner) if device.owner else None}


@router.get("/state", responses=ERRORS)
async def state(request: Request) -> Response:
    ctx = context(request)
    store = ctx.cloud.store
    now = ctx.cloud.unix_us
    return json({
        "now": iso(now),
        "users": [{"id": u.id, "username": u.username} for u in store.list_users()],
        "products": [{"id": p.id, "slug": p.slug, "name": p.name,
                      "team": sorted(p.team)} for p in store.list_products()],
        "customers": [{"id": c.id, "email": c.email, "product_id": c.product_id}
                      for p in store.list_products() for c in store.list_customers(p.id)],
        "devices": [{**device_json(d, store), "owner": str(d.owner) if d.owner else None}
                    for d in store.list_devices()],
        "claim_codes": [claim_code_json(c, now) for c in store.list_claim_codes()],
        "transfers": [transfer_json(t) for t in store.list_transfers()],
    })


@router.get("/outbox", responses=ERRORS)
async def outbox(request: Request) -> Response:
    ctx = context(request)
    store = ctx.cloud.store
    return json({"emails": [email_json(e, store) for e in store.list_emails()]})


@router.post("/transfers/{transfer_id}/{answer}", responses=ERRORS,
             openapi_extra=body({"token": STRING}, form=False))
async def answer_transfer(request: Request, transfer_id: str, answer: str) -> Response:
    """The owner's answer: a link of the email, carrying the transfer's approval token."""
    ctx = context(request)
    params = await params_of(request)
    if answer not in ("approve", "deny"):
        raise api_error(404, "Not Found", error_description="Not Found")
    token = get_str(params, "token", max_length=128) or ""
    result = ctx.cloud.answer_transfer(transfer_id, answer == "approve", token)
    if result is None:
        raise api_error(404, "Transfer not found", error_description="Transfer not found")
    decision, transfer = result
    if decision is TransferDecision.REFUSED:
        raise forbidden("the token of the owner's email link is missing or wrong")
    return json({"ok": True, "decision": decision.value, "transfer": transfer_json(transfer)})


@router.get("/claim_codes", responses=ERRORS)
async def claim_codes(request: Request) -> Response:
    ctx = context(request)
    now = ctx.cloud.unix_us
    return json({"claim_codes": [claim_code_json(c, now)
                                 for c in ctx.cloud.store.list_claim_codes()]})


@router.post("/claim_codes/expire", responses=ERRORS,
             openapi_extra=body({"code": STRING, "all": BOOLEAN}, form=False))
async def expire_claim_codes(request: Request) -> Response:
    """Expire one claim code (``code``) or every unused one (``all``)."""
    ctx = context(request)
    params = await params_of(request)
    store = ctx.cloud.store
    code = get_str(params, "code", max_length=128)
    expire_all = get_bool(params, "all")
    if code is None and not expire_all:
        raise bad_request("code or all is required")
    now = ctx.cloud.unix_us
    expired = 0
    with store.transaction():
        for claim in store.list_claim_codes():
            if (expire_all or claim.code == code) and not claim.consumed:
                store.update_claim_code(replace(claim, expires_us=min(claim.expires_us,
                                                                      now - 1)))
                expired += 1
    if code is not None and not expired:
        raise api_error(404, "Claim code not found")
    return json({"ok": True, "expired": expired})


@router.get("/sessions", responses=ERRORS)
async def sessions(request: Request) -> Response:
    ctx = context(request)
    endpoint = ctx.cloud.endpoint
    return json({"sessions": [{"device_id": s.device_id, "session_id": s.session_id.hex(),
                               "full_handshakes": s.full_handshakes, "resumes": s.resumes}
                              for s in endpoint.sessions.values()]})


def _path_device_id(device_id: str) -> str:
    """A device id from a route's path, lowercased (400 when it is not one)."""
    key = device_id.lower()
    if not ownership.is_device_id(key):
        raise bad_request(f"invalid device id {key[:40]!r}")
    return key


@router.post("/sessions/{device_id}/forget", responses=ERRORS,
             openapi_extra=body({}, form=False))
async def forget_session(request: Request, device_id: str) -> Response:
    """The cloud forgets the device's session (as ``spark/device/session/end`` does): the
    device's next message on it gets a RST and it does a full handshake."""
    ctx = context(request)
    device_id = _path_device_id(device_id)
    dropped = ctx.cloud.endpoint.forget_session(device_id)
    return json({"ok": True, "device_id": device_id, "dropped": dropped})


@router.post("/sessions/{device_id}/key-change", responses=ERRORS,
             openapi_extra=body({}, form=False))
async def key_change(request: Request, device_id: str) -> Response:
    """The cloud sends the device a key change message over its session: the device discards
    the session and reconnects with a full handshake. 404 when the device has no session."""
    ctx = context(request)
    device_id = _path_device_id(device_id)
    if not ctx.cloud.endpoint.send_key_change(device_id):
        raise api_error(404, "device not connected",
                        error_description=f"the cloud has no session of {device_id}")
    ctx.runtime.wake()
    return json({"ok": True, "device_id": device_id, "sent": True})


def _known_device(ctx: ApiContext, device_id: str) -> DeviceRecord:
    key = _path_device_id(device_id)
    device = ctx.cloud.store.get_device(key)
    if device is None:
        raise api_error(404, "device not found", error_description=f"no device {key}")
    return device


@router.post("/devices/{device_id}/functions/{function}", responses=RESPONSES,
             openapi_extra=CALL_BODY)
async def call_function(request: Request, device_id: str, function: str) -> Response:
    """Call the device's function as its owner would (``fwsim ctl call``): the answer of
    ``POST /v1/devices/:id/:function``, whoever owns the device."""
    ctx = context(request)
    params = await params_of(request)
    return await call_response(ctx, _known_device(ctx, device_id), function, params)


@router.get("/devices/{device_id}/variables/{variable}", responses=RESPONSES)
async def get_variable(request: Request, device_id: str, variable: str) -> Response:
    """Read the device's variable (``fwsim ctl get``): the answer of ``GET
    /v1/devices/:id/:variable``, whoever owns the device."""
    ctx = context(request)
    params = await params_of(request)
    return await read_response(ctx, _known_device(ctx, device_id), variable, params)


@router.get("/events", responses=ERRORS)
async def events(request: Request) -> Response:
    ctx = context(request)
    return json({"events": [{"name": e.name, "data": e.data, "coreid": e.coreid,
                             "published_at": iso(e.published_us), "direction": e.direction,
                             "public": e.public, "product_id": e.product_id}
                            for e in ctx.cloud.bus.history]})


@router.post("/devices/{device_id}/events", responses=ERRORS,
             openapi_extra=body({"name": STRING, "data": STRING}, required=("name",),
                                form=False))
async def send_to_device(request: Request, device_id: str) -> Response:
    """Send a cloud event to a connected device (e.g. ``spark/device/claim/confirm``)."""
    ctx = context(request)
    params = await params_of(request)
    name = get_str(params, "name", required=True, max_length=64) or ""
    data = get_str(params, "data", max_length=1024) or ""
    if not ctx.cloud.endpoint.send_event(device_id.lower(), name, data.encode("utf-8", "replace")):
        raise api_error(404, "device not connected")
    ctx.runtime.wake()
    return json({"ok": True})

