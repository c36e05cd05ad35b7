"""Devices and claim codes: ``/v1/devices[...]`` and ``/v1/device_claims`` (cloud.md A3, A4, A6).

A device the caller may not see answers exactly like an unknown id (403 "Permission Denied"
for the device pages, 404 "device not found" for the claim API): the API never tells an
unauthorized caller which ids exist.
"""

from __future__ import annotations

import string
from dataclasses import replace
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from .. import ownership
from ..model import DeviceRecord
from .auth import Caller
from .common import caller_of, json
from .context import ApiContext
from .errors import api_error, bad_request, permission_denied
from .openapi import BOOLEAN, ERRORS, STRING, body, query
from .params import get_bool, get_str
from .render import api_claim_response, device_json, display_name

router = APIRouter(tags=["devices"])


_NAME_CHARACTERS = frozenset(string.ascii_letters + string.digits + "_-")


def is_device_name(name: str) -> bool:
    """A device name: ASCII letters, digits, ``_`` and ``-`` (``str.isalnum`` would also take
    ``"x²"`` or ``"héllo"``)."""
    return bool(name) and all(c in _NAME_CHARACTERS for c in name)


def visible_device(ctx: ApiContext, caller: Caller, id_or_name: str) -> DeviceRecord:
    """A device the caller owns (or sees as a member of its product's team), by id or name."""
    store = ctx.cloud.store
    key = id_or_name.strip().lower()
    device = store.get_device(key) if ownership.is_device_id(key) else None
    if device is None and 0 < len(id_or_name) <= 64:
        device = next((d for d in store.devices_owned_by(caller.principal)
                       if display_name(d) == id_or_name), None)
    if device is None or not can_see(ctx, caller, device):
        raise permission_denied()
    return device


def can_see(ctx: ApiContext, caller: Caller, device: DeviceRecord) -> bool:
    if device.owner == caller.principal:
        return True
    if device.product_id is not None and caller.user is not None:
        product = ctx.cloud.store.get_product(device.product_id)
        return product is not None and caller.is_team_member(product)
    return False


@router.get("/v1/devices", responses=ERRORS, openapi_extra=query())
async def list_devices(request: Request) -> Response:
    ctx, _, caller = await caller_of(request)
    store = ctx.cloud.store
    interface_of = ctx.cloud.endpoint.interface_of
    return json([device_json(d, store, interface=interface_of(d.id))
                 for d in store.devices_owned_by(caller.principal)])


@router.post("/v1/devices", responses=ERRORS,
             openapi_extra=body({"id": STRING, "request_transfer": BOOLEAN},
                                required=("id",)))
async def claim_device(request: Request) -> Response:
    ctx, params, caller = await caller_of(request)
    device_id = get_str(params, "id", max_length=64)
    if device_id is None:
        raise bad_request("id is required")
    request_transfer = get_bool(params, "request_transfer")
    key = device_id.strip().lower()
    if not ownership.is_device_id(key):
        key = "-"  # not an id: answered like an unknown one
    result = ctx.cloud.api_claim(caller.principal, key, request_transfer)
    answer = api_claim_response(result, caller.is_customer)
    if isinstance(answer, Exception):
        raise answer
    return json(answer)


@router.post("/v1/device_claims", responses=ERRORS, openapi_extra=body({"iccid": STRING}))
async def create_claim_code(request: Request) -> Response:
    ctx, _, caller = await caller_of(request)
    product_id = caller.customer.product_id if caller.customer is not None else None
    return json(_claim_code_body(ctx, caller, product_id))


def _claim_code_body(ctx: ApiContext, caller: Caller, product_id: int | None
                     ) -> dict[str, object]:
    claim = ctx.cloud.create_claim_code(caller.principal, product_id)
    owned = ctx.cloud.store.devices_owned_by(caller.principal)
    return {"claim_code": claim.code, "device_ids": [d.id for d in owned]}


@router.get("/v1/devices/{device_id}", responses=ERRORS, openapi_extra=query())
async def get_device(request: Request, device_id: str) -> Response:
    ctx, _, caller = await caller_of(request)
    device = visible_device(ctx, caller, device_id)
    return json(device_json(device, ctx.cloud.store,
                            interface=ctx.cloud.endpoint.interface_of(device.id)))


@router.put("/v1/devices/{device_id}", responses=ERRORS,
            openapi_extra=body({"name": STRING, "notes": STRING, "signal": STRING}))
async def update_device(request: Request, device_id: str) -> Response:
    ctx, params, caller = await caller_of(request)
    device = visible_device(ctx, caller, device_id)
    if params.get("signal") not in (None, ""):
        return _signal(ctx, device, params)
    if device.owner != caller.principal:
        raise permission_denied()
    if params.get("name") == "":
        raise bad_request("name must not be empty (1 to 64 of A-Z a-z 0-9 _ -)")
    name = get_str(params, "name", max_length=64)
    if name is not None and not is_device_name(name):
        raise bad_request("name may only contain the ASCII letters A-Z a-z, digits 0-9, "
                          "'_' and '-'")
    notes = device.notes
    if params.get("notes") == "":
        notes = None  # an empty note clears the notes
    elif "notes" in params:
        notes = get_str(params, "notes", max_length=750) or notes
    device = replace(device, name=name if name is not None else device.name, notes=notes)
    ctx.cloud.store.put_device(device)
    return json({"ok": True, "id": device.id, "name": display_name(device),
                 "notes": device.notes})


def _signal(ctx: ApiContext, device: DeviceRecord, params: dict[str, Any]) -> Response:
    """``signal`` 1 starts the device's rainbow LED signal, 0 stops it (particle-cli ``nyan``,
    particle-api-js ``signalDevice``). Anyone who sees the device may (its owner, the
    product's team, its customer). A device that is not online (``online`` false, as ``GET
    /v1/devices`` shows it: the cloud keeps an offline device's session for resumption, but
    the device is gone) or that the cloud has no session of answers 404 ``Device is not
    connected`` (UNVERIFIED wording, docs/cloud-api.md)."""
    value = params.get("signal")
    if value not in (0, 1, "0", "1", True, False):
        raise bad_request("signal must be 1 (start) or 0 (stop)")
    on = value in (1, "1", True)
    if not ctx.cloud.endpoint.is_online(device.id):  # the rule of calls and the device list
        raise api_error(404, "Device is not connected",
                        error_description=f"{device.id} is offline")
    if not ctx.cloud.endpoint.send_signal(device.id, on):
        raise api_error(404, "Device is not connected",
                        error_description=f"the cloud has no session of {device.id}")
    ctx.runtime.wake()
    return json({"id": device.id, "connected": True, "signaling": on})


@router.delete("/v1/devices/{device_id}", responses=ERRORS, openapi_extra=body({}))
async def unclaim_device(request: Request, device_id: str) -> Response:
    ctx, _, caller = await caller_of(request)
    device = visible_device(ctx, caller, device_id)
    if device.owner != caller.principal:
        raise permission_denied()
    ownership.unclaim(ctx.cloud.store, device.id)
    ctx.cloud.tracer.emit("claim.released", device_id=device.id, by=str(caller.principal))
    return json({"ok": True})
