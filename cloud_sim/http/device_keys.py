"""``/fwsim`` routes of the device link's keys: enrol a device from another process.

A device in another process (``fwsim device run --api URL --admin-token T``) cannot be
registered by the testbed that builds the cloud, so it enrols itself before it connects, as a
device is enrolled at manufacturing: ``POST /fwsim/devices/<id>/key`` with its P-256 public key
(``{"public_key": "<hex DER or PEM>"}``) registers (or replaces) the key the DTLS handshake
authenticates it with and answers the server's public key, which the device stores in its DCT
(``alt_server_public_key``). ``POST /fwsim/device_keys`` does the same for many devices at once
(``{"devices": [{"id": ..., "public_key": ...}, ...]}``, all or nothing; a fleet shard enrols its
devices with it). ``GET /fwsim/server_key`` answers the server key alone. Both sit
in the admin namespace, behind its token (docs/security.md): registering a key for a device id
is what lets a device connect as that id.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from ..device_keys import KeyRegistryError, normalize_public_key
from ..ownership import is_device_id
from .common import context, json, params_of
from .errors import bad_request
from .openapi import ERRORS, STRING, body
from .params import get_str

router = APIRouter(prefix="/fwsim", tags=["fwsim admin"])


@router.post("/devices/{device_id}/key", responses=ERRORS,
             openapi_extra=body({"public_key": STRING}, required=("public_key",), form=False))
async def enrol_device(request: Request, device_id: str) -> Response:
    """Register a device's public key; answers the cloud's server public key."""
    ctx = context(request)
    params = await params_of(request)
    public_key = get_str(params, "public_key", required=True, max_length=4096) or ""
    try:
        der = ctx.cloud.register_device_key(device_id, public_key)
    except KeyRegistryError as exc:
        raise bad_request(str(exc)) from None
    server = ctx.cloud.device_keys.server_key().public_der
    return json({"device_id": device_id.lower(), "public_key": der.hex(),
                 "server_public_key": server.hex()})


@router.post("/device_keys", responses=ERRORS,
             openapi_extra=body({"devices": {"type": "array", "items": {"type": "object"}}},
                                required=("devices",), form=False))
async def enrol_devices(request: Request) -> Response:
    """Register many devices' public keys (every entry checked before any is kept)."""
    ctx = context(request)
    params = await params_of(request)
    entries = params.get("devices")
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise bad_request("devices must be a list of objects")
    checked: list[tuple[str, bytes]] = []
    for entry in entries:
        device_id = get_str(entry, "id", required=True, max_length=24) or ""
        public_key = get_str(entry, "public_key", required=True, max_length=4096) or ""
        try:
            der = normalize_public_key(public_key)
            if not is_device_id(device_id.lower()):
                raise KeyRegistryError(f"invalid device id {device_id!r}")
        except KeyRegistryError as exc:
            raise bad_request(f"{device_id}: {exc}") from None
        checked.append((device_id, der))
    for device_id, der in checked:
        ctx.cloud.register_device_key(device_id, der)
    return json({"enrolled": len(checked),
                 "server_public_key": ctx.cloud.device_keys.server_key().public_der.hex()})


@router.get("/server_key", responses=ERRORS)
async def server_key(request: Request) -> Response:
    """The cloud's server public key (SubjectPublicKeyInfo DER, hex)."""
    ctx = context(request)
    return json({"server_public_key": ctx.cloud.device_keys.server_key().public_der.hex()})
