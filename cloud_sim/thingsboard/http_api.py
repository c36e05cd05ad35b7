"""The REST API and the device HTTP API of the emulated ThingsBoard (FastAPI).

How this works
--------------
Handlers are thin: they authenticate the caller (``X-Authorization: Bearer <JWT>``,
docs/thingsboard.md B11), read the body themselves (bounded; JSON parsed here, so the
``text/plain`` attribute bodies that tb-rest-client sends are accepted like the real server
accepts them) and call
:class:`~.service.ThingsBoardService`. Every error is ThingsBoard's error JSON
``{"status", "message", "errorCode", "timestamp"}``; the router's 404/405 and a last-resort 500
too. The paths are ThingsBoard's, so tb-rest-client and scripts written for a real server work:

* ``/api/auth/login``, ``/api/auth/token`` (refresh), ``/api/auth/user``, ``/api/auth/logout``;
* ``POST``/``DELETE /api/customer/device/{deviceName}/claim`` with B4/B5's status codes and
  bodies (``ClaimResult`` on 200; bare ``"FAILURE"``/``"CLAIMED"`` on 400; the body-less POST and
  the reclaim body follow the settings);
* set-up: customers, users (activation link + ``/api/noauth/activate``), devices and their
  credentials, attributes (``/api/plugins/telemetry/...``);
* the device HTTP API ``POST /api/v1/{deviceToken}/claim`` (200 empty, 401 no body, B2);
* fwsim's own ``/fwsim/devices/{deviceName}/why`` and ``/press`` (tenant administrators only).

An outer ASGI wrapper brings the World up to the wall clock before each request
(``runtime.sync()``), wakes the driver after it, and writes one ``tb.http`` trace record with
the *route template* (never a device token from the path). Inside it, once served
(:func:`set_host_policy`), every request must name the bound address in ``Host`` (400
otherwise) and come from no other web origin (403), as docs/security.md says of the whole API.

Every JSON body goes through one reader (:func:`_parse_json`): malformed JSON, ``NaN``, numbers
beyond a double and text holding a lone surrogate are 400 before any handler sees them (a lone
surrogate in a login is the 401 of any unknown user).
"""

from __future__ import annotations

import json
import logging
import math
import re
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..http.errors import ApiError
from ..http.guard import HostPolicy
from ..http.params import check_text
from ..runtime import NullRuntime, Runtime
from . import errors
from .errors import ErrorCode, TbError
from .model import (
    SCOPES,
    Authority,
    ClaimResponse,
    Device,
    User,
    credentials_json,
    customer_json,
    device_json,
    user_json,
)
from .service import DeviceAck, ThingsBoardService
from .settings import BodylessClaim, ReclaimBody

log = logging.getLogger("cloud_sim.thingsboard.http")

MAX_BODY_BYTES = 64 * 1024
MAX_PAGE_SIZE = 10_000
_JAVA_INT = re.compile(r"[-+]?[0-9]{1,10}")
TAG_AUTH, TAG_CLAIM, TAG_SETUP, TAG_DEVICE, TAG_FWSIM = (
    "auth", "claiming", "set-up", "device API", "fwsim")

JSON_OBJECT: dict[str, Any] = {"type": "object", "additionalProperties": True}


def _body_doc(schema: dict[str, Any], *, required: bool = True,
              content_types: tuple[str, ...] = ("application/json",)) -> dict[str, Any]:
    return {"requestBody": {"required": required,
                            "content": {kind: {"schema": schema} for kind in content_types}}}


ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"status": {"type": "integer"}, "message": {"type": "string"},
                   "errorCode": {"type": "integer"}, "timestamp": {"type": "integer"}},
}
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"description": text, "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/ThingsboardErrorResponse"}}}}
    for code, text in ((400, "bad request"), (401, "authentication failed or token expired"),
                       (403, "permission denied"), (404, "item not found"),
                       (413, "body too large"), (415, "unsupported content type"))
}


class _Context:
    def __init__(self, service: ThingsBoardService, runtime: Runtime) -> None:
        self.service = service
        self.runtime = runtime
        #: the names the served API answers to (``ThingsBoardServer`` sets it once bound);
        #: None in process, where there is no socket and no Host header to check
        self.hosts: HostPolicy | None = None


def _ctx(request: Request) -> _Context:
    ctx: _Context = request.app.state.tb
    return ctx


def _service(request: Request) -> ThingsBoardService:
    return _ctx(request).service


async def _body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > MAX_BODY_BYTES:
                raise TbError(413, "Request body is too large", ErrorCode.BAD_REQUEST_PARAMS)
        except ValueError:
            raise errors.bad_request("Invalid Content-Length") from None
    chunks = bytearray()
    async for chunk in request.stream():
        chunks += chunk
        if len(chunks) > MAX_BODY_BYTES:
            raise TbError(413, "Request body is too large", ErrorCode.BAD_REQUEST_PARAMS)
    return bytes(chunks)


class InvalidText(TbError):
    """A JSON body holding text no store can keep (a lone surrogate such as ``"\\ud800"``)."""

    def __init__(self) -> None:
        super().__init__(400, "Invalid request body: a string holds a lone surrogate (not "
                         "Unicode)", ErrorCode.BAD_REQUEST_PARAMS)


class NumberText(str):
    """A JSON number kept as written (``1e3``, ``1.50``): what Jackson hands a ``String``
    field when it coerces a scalar."""


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999: JSON allows it, no JSON answer can hold it
        raise ValueError("number out of range")
    return value


def _parse_json(data: bytes, *, numbers_as_text: bool = False) -> Any:
    """The one reader of every JSON body of the REST API: malformed JSON, ``NaN``/``Infinity``
    (Jackson refuses them) and numbers beyond a double are 400; so is text holding a lone
    surrogate (:class:`InvalidText`), which JSON can escape but UTF-8 - and so SQLite and every
    answer - cannot hold."""
    number: Any = NumberText if numbers_as_text else None
    try:
        value = json.loads(data.decode("utf-8"), parse_constant=_no_constant,
                           parse_float=number or _finite, parse_int=number)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise errors.bad_request("Invalid request body") from None
    if b"\\u" in data:  # a lone surrogate only comes from a backslash-u escape
        try:
            check_text(value)
        except ApiError:
            raise InvalidText() from None
    return value


def _require_json_type(request: Request) -> None:
    kind = request.headers.get("content-type", "application/octet-stream")
    media = kind.split(";")[0].strip().lower()
    if not (media == "application/json" or (media.startswith("application/")
                                            and media.endswith("+json"))):
        raise TbError(415, f"Content type '{media}' not supported",
                      ErrorCode.BAD_REQUEST_PARAMS)


async def _json_object(request: Request, *, strict_type: bool = True) -> dict[str, Any]:
    data = await _body(request)
    if strict_type:
        _require_json_type(request)
    value = _parse_json(data)
    if not isinstance(value, dict):
        raise errors.bad_request("Invalid request body: a JSON object is expected")
    return value


def _bearer(request: Request) -> str:
    """The JWT of ``X-Authorization: Bearer <JWT>``, or of ``Authorization`` when that is
    blank (ThingsBoard's ``JwtHeaderTokenExtractor``)."""
    header = request.headers.get("x-authorization", "")
    if not header.strip():
        header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise errors.authentication_failed()
    return token.strip()


def _user(request: Request) -> User:
    return _service(request).user_from_jwt(_bearer(request))


def _tenant_admin(request: Request) -> User:
    user = _user(request)
    if user.authority is not Authority.TENANT_ADMIN or user.tenant_id is None:
        raise errors.permission_denied()
    return user


def _device_of_tenant(service: ThingsBoardService, user: User, device_id: str) -> Device:
    device = service.store.get_device(device_id)
    if device is None or device.tenant_id != user.tenant_id:
        raise errors.not_found()
    return device


def _readable_device(service: ThingsBoardService, user: User, device_id: str) -> Device:
    device = service.store.get_device(device_id)
    if device is None or device.tenant_id != user.tenant_id:
        raise errors.not_found()
    if user.authority is Authority.CUSTOMER_USER and device.customer_id != user.customer_id:
        raise errors.permission_denied()
    return device


def _id_of(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def _text(value: Any, field: str, *, required: bool = False) -> str | None:
    if value is None:
        if required:
            raise errors.invalid_argument(f"{field} should be specified!")
        return None
    if not isinstance(value, str):
        raise errors.invalid_argument(f"{field} must be a string")
    return value


def _page(request: Request) -> tuple[int, int]:
    """``pageSize`` and ``page``: required, as ThingsBoard's ``createPageLink`` has them."""
    values = []
    for name in ("pageSize", "page"):
        text = request.query_params.get(name)
        if text is None:
            raise errors.bad_request(f"Required request parameter '{name}' for method "
                                     "parameter type int is not present")
        text = text.strip()
        if not _JAVA_INT.fullmatch(text) or not -(2**31) <= int(text) < 2**31:
            raise errors.bad_request(f"Failed to convert value of type 'java.lang.String' to "
                                     f"required type 'int'; For input string: \"{text[:40]}\"")
        values.append(int(text))
    size, page = values
    if not 1 <= size <= MAX_PAGE_SIZE or page < 0:
        raise errors.bad_request(f"pageSize must be 1..{MAX_PAGE_SIZE} and page >= 0")
    return size, page


#: ``sortProperty`` values of a device page, and how each sorts
_DEVICE_SORT: dict[str, Any] = {
    "name": lambda d: d.name, "createdTime": lambda d: d.created_ms,
    "label": lambda d: d.label or "", "type": lambda d: d.type,
    "deviceProfileName": lambda d: d.type,
}


def _device_page(request: Request, devices: list[Device]) -> dict[str, Any]:
    """A ``PageData<Device>`` of ``devices`` as ThingsBoard's paged device lists answer:
    ``type`` (equal), ``textSearch`` (case-insensitive substring of the name), ``sortProperty``
    and ``sortOrder`` (ASC/DESC), then ``pageSize`` and ``page``."""
    size, page = _page(request)
    params = request.query_params
    kind = params.get("type", "").strip()
    if kind:
        devices = [d for d in devices if d.type == kind]
    search = params.get("textSearch", "").strip().casefold()
    if search:
        devices = [d for d in devices if search in d.name.casefold()]
    sort_property = params.get("sortProperty", "").strip()
    if sort_property:
        key = _DEVICE_SORT.get(sort_property)
        if key is None:
            raise errors.bad_request(f"Invalid sort property: {sort_property[:40]}")
        order = params.get("sortOrder", "ASC").strip().upper()
        if order not in ("ASC", "DESC"):
            raise errors.bad_request(f"Invalid sort order: {order[:10]} (ASC or DESC)")
        devices = sorted(devices, key=key, reverse=order == "DESC")
    return _page_data([device_json(d) for d in devices], size, page)


def _page_data(items: list[dict[str, Any]], size: int, page: int) -> dict[str, Any]:
    """ThingsBoard's ``PageData``: ``data``, ``totalPages``, ``totalElements``, ``hasNext``."""
    chunk = items[page * size:(page + 1) * size]
    total_pages = (len(items) + size - 1) // size
    return {"data": chunk, "totalPages": total_pages, "totalElements": len(items),
            "hasNext": page + 1 < total_pages}


# -- auth ---------------------------------------------------------------------------------------

auth = APIRouter(tags=[TAG_AUTH])
LOGIN_BODY = _body_doc({"type": "object", "required": ["username", "password"],
                        "properties": {"username": {"type": "string"},
                                       "password": {"type": "string"}}})


@auth.post("/api/auth/login", openapi_extra=LOGIN_BODY, responses=ERROR_RESPONSES)
async def login(request: Request) -> Response:
    try:
        body = await _json_object(request, strict_type=False)
    except InvalidText:  # no account has such a name or password: as any unknown user
        raise errors.authentication_failed("Invalid username or password") from None
    username, password = body.get("username"), body.get("password")
    if not isinstance(username, str) or not isinstance(password, str):
        raise errors.authentication_failed("Invalid username or password")
    return JSONResponse(_service(request).login(username, password))


@auth.post("/api/auth/token", openapi_extra=_body_doc(
    {"type": "object", "properties": {"refreshToken": {"type": "string"}}}),
    responses=ERROR_RESPONSES)
async def refresh_token(request: Request) -> Response:
    body = await _json_object(request, strict_type=False)
    token = body.get("refreshToken")
    if not isinstance(token, str) or not token:
        raise errors.authentication_failed("Refresh token is not provided")
    return JSONResponse(_service(request).refresh(token))


@auth.get("/api/auth/user", responses=ERROR_RESPONSES)
async def current_user(request: Request) -> Response:
    return JSONResponse(user_json(_user(request)))


@auth.post("/api/auth/logout", responses=ERROR_RESPONSES)
async def logout(request: Request) -> Response:
    """Ends the session the token belongs to: its access and refresh tokens stop working
    (ThingsBoard's ``UserSessionInvalidationEvent``); other logins of the user go on."""
    _service(request).logout(_bearer(request))
    return Response(status_code=200)


@auth.post("/api/noauth/activate", openapi_extra=_body_doc(
    {"type": "object", "properties": {"activateToken": {"type": "string"},
                                      "password": {"type": "string"}}}),
    responses=ERROR_RESPONSES)
async def activate(request: Request) -> Response:
    body = await _json_object(request, strict_type=False)
    token, password = body.get("activateToken"), body.get("password")
    if not isinstance(token, str) or not isinstance(password, str):
        raise errors.invalid_argument("activateToken and password should be specified!")
    service = _service(request)
    user = service.activate_user(token, password)
    return JSONResponse(service.login(user.email, password))


# -- claiming -----------------------------------------------------------------------------------

claiming = APIRouter(tags=[TAG_CLAIM])
CLAIM_BODY = _body_doc({"type": "object", "properties": {"secretKey": {"type": "string",
                                                                       "nullable": True}}},
                       required=False)


@claiming.post("/api/customer/device/{deviceName}/claim", openapi_extra=CLAIM_BODY,
               responses={200: {"description": "ClaimResult {device, response: SUCCESS}"},
                          400: {"description": 'bare "FAILURE" or "CLAIMED"'},
                          **ERROR_RESPONSES})
async def claim_device(deviceName: str, request: Request) -> Response:
    service = _service(request)
    user = _user(request)
    if user.authority is not Authority.CUSTOMER_USER:
        raise errors.permission_denied()
    data = await _body(request)
    if not data:
        if service.settings.bodyless_claim is BodylessClaim.INTERNAL_ERROR:
            service.tracer.emit("tb.claim.bodyless", device=deviceName[:255],
                                reason="null_claim_request")
            raise TbError(500, "Cannot invoke \"org.thingsboard.server.dao.device.claim."
                          "ClaimRequest.getSecretKey()\" because \"claimRequest\" is null",
                          ErrorCode.GENERAL)
        secret = ""
    else:
        _require_json_type(request)
        body = _parse_json(data, numbers_as_text=True)
        if not isinstance(body, dict):
            raise errors.bad_request("Invalid request body: a ClaimRequest object is expected")
        value = body.get("secretKey")
        # Jackson coerces a scalar into the String field: 123 -> "123", true -> "true"
        if isinstance(value, bool):
            value = "true" if value else "false"
        if value is not None and not isinstance(value, str):
            raise errors.bad_request("Invalid request body: secretKey must be a string")
        secret = str(value or "")
    outcome = service.claim_device(user, deviceName, secret)
    if outcome.response is ClaimResponse.SUCCESS:
        return JSONResponse({"device": device_json(outcome.device), "response": "SUCCESS"})
    return JSONResponse(outcome.response.value, status_code=400)


@claiming.delete("/api/customer/device/{deviceName}/claim", responses=ERROR_RESPONSES)
async def reclaim_device(deviceName: str, request: Request) -> Response:
    service = _service(request)
    service.reclaim_device(_user(request), deviceName)
    if service.settings.reclaim_body is ReclaimBody.DOCUMENTED:
        return JSONResponse({"result": {}, "setOrExpired": True})
    return Response(status_code=200)


# -- set-up -------------------------------------------------------------------------------------

setup = APIRouter(tags=[TAG_SETUP])


@setup.post("/api/customer", openapi_extra=_body_doc(
    {"type": "object", "required": ["title"], "properties": {"title": {"type": "string"},
                                                             "email": {"type": "string"}}}),
    responses=ERROR_RESPONSES)
async def save_customer(request: Request) -> Response:
    user = _tenant_admin(request)
    body = await _json_object(request)
    if _id_of(body.get("id")):
        raise errors.bad_request("Updating customers is not supported by fwsim")
    title = _text(body.get("title"), "Customer title", required=True)
    assert title is not None and user.tenant_id is not None
    customer = _service(request).create_customer(user.tenant_id, title,
                                                 _text(body.get("email"), "email"))
    return JSONResponse(customer_json(customer))


@setup.get("/api/customer/{customerId}", responses=ERROR_RESPONSES)
async def get_customer(customerId: str, request: Request) -> Response:
    user = _user(request)
    customer = _service(request).store.get_customer(customerId)
    if customer is None or customer.tenant_id != user.tenant_id:
        raise errors.not_found()
    if user.authority is Authority.CUSTOMER_USER and user.customer_id != customer.id:
        raise errors.permission_denied()
    return JSONResponse(customer_json(customer))


@setup.get("/api/tenant/customers", responses=ERROR_RESPONSES)
async def get_tenant_customer(request: Request) -> Response:
    user = _tenant_admin(request)
    title = request.query_params.get("customerTitle", "")
    assert user.tenant_id is not None
    customer = _service(request).store.find_customer(user.tenant_id, title)
    if customer is None:
        raise errors.not_found()
    return JSONResponse(customer_json(customer))


@setup.post("/api/user", openapi_extra=_body_doc(
    {"type": "object", "required": ["email", "authority"],
     "properties": {"email": {"type": "string"}, "authority": {"type": "string"},
                    "customerId": JSON_OBJECT}}),
    responses=ERROR_RESPONSES)
async def save_user(request: Request) -> Response:
    admin = _tenant_admin(request)
    body = await _json_object(request)
    email = _text(body.get("email"), "Email", required=True)
    try:
        authority = Authority(body.get("authority"))
    except ValueError:
        raise errors.invalid_argument("User authority should be specified!") from None
    service = _service(request)
    customer_id = _id_of(body.get("customerId"))
    if authority is Authority.CUSTOMER_USER:
        customer = service.store.get_customer(customer_id) if customer_id else None
        if customer is None or customer.tenant_id != admin.tenant_id:
            raise errors.invalid_argument("Customer should be specified for a customer user!")
    elif authority is Authority.TENANT_ADMIN:
        customer_id = None
    else:
        raise errors.permission_denied()
    assert email is not None
    user = service.create_user(email, authority, tenant_id=admin.tenant_id,
                               customer_id=customer_id,
                               first_name=_text(body.get("firstName"), "firstName"),
                               last_name=_text(body.get("lastName"), "lastName"))
    return JSONResponse(user_json(user))


@setup.get("/api/user/{userId}/activationLink", response_class=PlainTextResponse,
           responses=ERROR_RESPONSES)
async def activation_link(userId: str, request: Request) -> Response:
    admin = _tenant_admin(request)
    user = _service(request).store.get_user(userId)
    if user is None or user.tenant_id != admin.tenant_id:
        raise errors.not_found()
    if not user.activate_token:
        raise errors.bad_request("User is already activated!")
    base = str(request.base_url).rstrip("/")
    return PlainTextResponse(f"{base}/api/noauth/activate?activateToken={user.activate_token}")


@setup.post("/api/device", openapi_extra=_body_doc(
    {"type": "object", "required": ["name"],
     "properties": {"name": {"type": "string"}, "type": {"type": "string"},
                    "label": {"type": "string"}, "additionalInfo": JSON_OBJECT}}),
    responses=ERROR_RESPONSES)
async def save_device(request: Request) -> Response:
    user = _tenant_admin(request)
    body = await _json_object(request)
    if _id_of(body.get("id")):
        raise errors.bad_request("Updating devices is not supported by fwsim")
    name = _text(body.get("name"), "Device name", required=True)
    token = request.query_params.get("accessToken") or None
    info = body.get("additionalInfo")
    gateway = isinstance(info, dict) and info.get("gateway") is True
    service = _service(request)
    assert name is not None and user.tenant_id is not None
    profile = None
    profile_id = _id_of(body.get("deviceProfileId"))
    if profile_id is not None:
        profile = service.store.get_profile(profile_id)
        if profile is None or profile.tenant_id != user.tenant_id:
            raise errors.not_found()
    device = service.create_device(user.tenant_id, name, token=token, profile=profile,
                                   type=_text(body.get("type"), "type"),
                                   label=_text(body.get("label"), "label"), gateway=gateway)
    return JSONResponse(device_json(device))


@setup.get("/api/device/{deviceId}", responses=ERROR_RESPONSES)
async def get_device(deviceId: str, request: Request) -> Response:
    service = _service(request)
    return JSONResponse(device_json(_readable_device(service, _user(request), deviceId)))


@setup.get("/api/tenant/device", responses=ERROR_RESPONSES)
async def get_tenant_device(request: Request) -> Response:
    user = _tenant_admin(request)
    assert user.tenant_id is not None
    name = request.query_params.get("deviceName", "")
    return JSONResponse(device_json(_service(request).device_named(user.tenant_id, name)))


@setup.get("/api/tenant/devices", responses=ERROR_RESPONSES)
async def get_tenant_devices(request: Request) -> Response:
    """A page of the tenant's devices; with ``deviceName`` the one device of that name
    (ThingsBoard maps both on this path, told apart by the parameter)."""
    user = _tenant_admin(request)
    assert user.tenant_id is not None
    service = _service(request)
    name = request.query_params.get("deviceName")
    if name is not None:
        return JSONResponse(device_json(service.device_named(user.tenant_id, name)))
    return JSONResponse(_device_page(request, service.store.list_devices(user.tenant_id)))


@setup.get("/api/customer/{customerId}/devices", responses=ERROR_RESPONSES)
async def get_customer_devices(customerId: str, request: Request) -> Response:
    user = _user(request)
    if user.authority is Authority.CUSTOMER_USER and user.customer_id != customerId:
        raise errors.permission_denied()
    assert user.tenant_id is not None
    devices = [d for d in _service(request).store.list_devices(user.tenant_id)
               if d.customer_id == customerId]
    return JSONResponse(_device_page(request, devices))


@setup.get("/api/device/{deviceId}/credentials", responses=ERROR_RESPONSES)
async def get_device_credentials(deviceId: str, request: Request) -> Response:
    user = _tenant_admin(request)
    service = _service(request)
    device = _device_of_tenant(service, user, deviceId)
    credentials = service.store.credentials_of(device.id)
    assert credentials is not None
    return JSONResponse(credentials_json(device, credentials[1], credentials[0],
                                         credentials[2]))


ATTRIBUTES_BODY = _body_doc(JSON_OBJECT, content_types=("application/json", "text/plain"))


async def _save_attributes(request: Request, entity_type: str, entity_id: str,
                           scope: str) -> Response:
    user = _tenant_admin(request)
    if entity_type != "DEVICE":
        raise errors.bad_request(f"fwsim keeps attributes of devices only, not {entity_type}")
    if scope not in SCOPES:
        raise errors.bad_request(f"Invalid attribute scope: {scope}")
    service = _service(request)
    device = _device_of_tenant(service, user, entity_id)
    body = _parse_json(await _body(request))
    if not isinstance(body, dict) or not body:
        raise errors.bad_request("Invalid request body: a JSON object of attributes is "
                                 "expected")
    service.save_attributes(device, scope, body)
    return Response(status_code=200)


async def _delete_attributes(request: Request, entity_type: str, entity_id: str,
                             scope: str) -> Response:
    user = _tenant_admin(request)
    if entity_type != "DEVICE" or scope not in SCOPES:
        raise errors.bad_request("Invalid entity type or attribute scope")
    service = _service(request)
    device = _device_of_tenant(service, user, entity_id)
    keys = [k for part in request.query_params.getlist("keys") for k in part.split(",") if k]
    keys += [k for k in request.query_params.getlist("key") if k]
    if not keys:
        raise errors.bad_request("Empty keys: attribute keys must be specified")
    service.delete_attributes(device, scope, keys)
    return Response(status_code=200)


@setup.post("/api/plugins/telemetry/{deviceId}/{scope}", openapi_extra=ATTRIBUTES_BODY,
            responses=ERROR_RESPONSES)
async def save_device_attributes(deviceId: str, scope: str, request: Request) -> Response:
    return await _save_attributes(request, "DEVICE", deviceId, scope)


@setup.post("/api/plugins/telemetry/{entityType}/{entityId}/{scope}",
            openapi_extra=ATTRIBUTES_BODY, responses=ERROR_RESPONSES)
async def save_entity_attributes_v1(entityType: str, entityId: str, scope: str,
                                    request: Request) -> Response:
    return await _save_attributes(request, entityType, entityId, scope)


@setup.post("/api/plugins/telemetry/{entityType}/{entityId}/attributes/{scope}",
            openapi_extra=ATTRIBUTES_BODY, responses=ERROR_RESPONSES)
async def save_entity_attributes_v2(entityType: str, entityId: str, scope: str,
                                    request: Request) -> Response:
    return await _save_attributes(request, entityType, entityId, scope)


@setup.delete("/api/plugins/telemetry/{deviceId}/{scope}", responses=ERROR_RESPONSES)
async def delete_device_attributes(deviceId: str, scope: str, request: Request) -> Response:
    return await _delete_attributes(request, "DEVICE", deviceId, scope)


@setup.delete("/api/plugins/telemetry/{entityType}/{entityId}/{scope}",
              responses=ERROR_RESPONSES)
async def delete_entity_attributes(entityType: str, entityId: str, scope: str,
                                   request: Request) -> Response:
    return await _delete_attributes(request, entityType, entityId, scope)


@setup.get("/api/plugins/telemetry/{entityType}/{entityId}/values/attributes/{scope}",
           responses=ERROR_RESPONSES)
async def get_attributes(entityType: str, entityId: str, scope: str,
                         request: Request) -> Response:
    user = _user(request)
    if entityType != "DEVICE" or scope not in SCOPES:
        raise errors.bad_request("Invalid entity type or attribute scope")
    service = _service(request)
    device = _readable_device(service, user, entityId)
    wanted = {k for part in request.query_params.getlist("keys") for k in part.split(",") if k}
    return JSONResponse([{"key": a.key, "value": a.value, "lastUpdateTs": a.last_update_ms}
                         for a in service.store.list_attributes(device.id, scope)
                         if not wanted or a.key in wanted])


# -- device HTTP API ----------------------------------------------------------------------------

device_api = APIRouter(tags=[TAG_DEVICE])


@device_api.post("/api/v1/{deviceToken}/claim", openapi_extra=_body_doc(
    {"type": "object", "properties": {"secretKey": {"type": "string"},
                                      "durationMs": {"type": "integer"}}}, required=False),
    responses={200: {"description": "accepted (empty body)"},
               400: {"description": "the payload cannot be parsed (no body)"},
               401: {"description": "unknown device token (no body)"}})
async def device_claim(deviceToken: str, request: Request) -> Response:
    data = await _body(request)
    ack = _service(request).device_claim(deviceToken, data or None, transport="http")
    if ack is DeviceAck.UNAUTHORIZED:
        return Response(status_code=401)
    if ack is DeviceAck.MALFORMED:
        return Response(status_code=400)
    return Response(status_code=200)


# -- fwsim --------------------------------------------------------------------------------------

fwsim = APIRouter(tags=[TAG_FWSIM])


@fwsim.get("/fwsim/devices/{deviceName}/why", responses=ERROR_RESPONSES)
async def why(deviceName: str, request: Request) -> Response:
    """The device's claim state and the history of registrations, claims and reclaims, each
    with its reason code (tenant administrators only)."""
    user = _tenant_admin(request)
    service = _service(request)
    assert user.tenant_id is not None
    return JSONResponse(service.why(service.device_named(user.tenant_id, deviceName)))


@fwsim.post("/fwsim/devices/{deviceName}/press", responses=ERROR_RESPONSES)
async def press(deviceName: str, request: Request) -> Response:
    """Press the claim button of a simulated device (tenant administrators only)."""
    user = _tenant_admin(request)
    service = _service(request)
    assert user.tenant_id is not None
    service.device_named(user.tenant_id, deviceName)
    service.press(deviceName)
    return JSONResponse({"pressed": deviceName})


# -- the app ------------------------------------------------------------------------------------


def _error_json(service: ThingsBoardService, status: int, message: str,
                code: ErrorCode) -> JSONResponse:
    return JSONResponse({"status": status, "message": message, "errorCode": int(code),
                         "timestamp": service.now_ms()}, status_code=status)


def create_app(service: ThingsBoardService, *, runtime: Runtime | None = None) -> FastAPI:
    """The REST + device HTTP API of ``service`` (an ASGI app; serve it with uvicorn)."""
    app = FastAPI(title="fwsim emulated ThingsBoard", version="1",
                  description="A ThingsBoard REST API subset for device claiming (login, "
                  "customer claim/reclaim, the set-up a claim needs), the device HTTP claim "
                  "API and fwsim's own /fwsim namespace.",
                  docs_url=None, redoc_url=None, openapi_url=None)
    app.state.tb = _Context(service, runtime or NullRuntime())
    for router in (auth, claiming, setup, device_api, fwsim):
        app.include_router(router)

    async def tb_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, TbError)
        return _error_json(service, exc.status, exc.message, exc.code)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        code = ErrorCode.ITEM_NOT_FOUND if exc.status_code == 404 else (
            ErrorCode.BAD_REQUEST_PARAMS)
        return _error_json(service, exc.status_code, str(exc.detail), code)

    async def validation_error(request: Request, exc: Exception) -> Response:
        return _error_json(service, 400, "Invalid request parameters",
                           ErrorCode.BAD_REQUEST_PARAMS)

    async def internal_error(request: Request, exc: Exception) -> Response:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return _error_json(service, 500, "Internal server error", ErrorCode.GENERAL)

    app.add_exception_handler(TbError, tb_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, internal_error)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(title=app.title, version=app.version,
                                   description=app.description, routes=app.routes)
            components = document.setdefault("components", {})
            components.setdefault("schemas", {})["ThingsboardErrorResponse"] = ERROR_SCHEMA
            components["securitySchemes"] = {"X-Authorization": {
                "type": "apiKey", "in": "header", "name": "X-Authorization",
                "description": "Bearer <JWT> from /api/auth/login"}}
            document["security"] = [{"X-Authorization": []}]
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    async def openapi_document(request: Request) -> Response:
        return JSONResponse(openapi())

    for path in ("/openapi.json", "/v3/api-docs"):
        app.add_route(path, openapi_document, include_in_schema=False)
    app.add_middleware(_SameOrigin, service=service, context=app.state.tb)
    app.add_middleware(_Runtime, service=service, runtime=app.state.tb.runtime)
    return app


def set_host_policy(app: FastAPI, hosts: HostPolicy | None) -> None:
    """The names a served ``app`` answers to (None: no Host/Origin checks, as in process)."""
    context: _Context = app.state.tb
    context.hosts = hosts


class _SameOrigin:
    """ASGI wrapper of a served API: the Host and Origin rules of docs/security.md ("Host and
    Origin"), with the Particle API's :class:`~cloud_sim.http.guard.HostPolicy`. A ``Host``
    that does not name the bound address (DNS rebinding) is 400; an ``Origin`` that is not
    this server, or ``Sec-Fetch-Site: cross-site/same-site``, is 403 - in ThingsBoard's error
    JSON, for every route: REST, device HTTP API, ``/fwsim`` and the dashboard."""

    def __init__(self, app: ASGIApp, service: ThingsBoardService, context: _Context) -> None:
        self.app = app
        self.service = service
        self.context = context
        self.tracer = service.world.trace.bind(service.name, "tb.http")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        hosts = self.context.hosts
        if hosts is None or scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        refusal = _cross_origin(hosts, _guard_headers(scope))
        if refusal is None:
            await self.app(scope, receive, send)
            return
        status, reason, message = refusal
        self.tracer.emit("tb.http.refused", method=scope.get("method", "WS"), status=status,
                         reason=reason)
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        code = ErrorCode.BAD_REQUEST_PARAMS if status == 400 else ErrorCode.PERMISSION_DENIED
        await _error_json(self.service, status, message, code)(scope, receive, send)


_GUARD_HEADERS = frozenset({b"host", b"origin", b"sec-fetch-site"})


def _guard_headers(scope: Scope) -> dict[str, str]:
    """The first ``Host``, ``Origin`` and ``Sec-Fetch-Site`` headers, latin-1 decoded."""
    found: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", []):
        name = bytes(raw_name).lower()
        if name in _GUARD_HEADERS:
            found.setdefault(name.decode("latin-1"), bytes(raw_value).decode("latin-1"))
    return found


def _cross_origin(hosts: HostPolicy, headers: dict[str, str]) -> tuple[int, str, str] | None:
    """``(status, reason, message)`` of a request to refuse, else None."""
    if not hosts.allows_host(headers.get("host", "")):
        return 400, "foreign_host", ("Invalid Host header: this server answers to the address "
                                     "it is bound to only (DNS rebinding protection; add names "
                                     "with --allow-host)")
    origin = headers.get("origin")
    if origin is not None and not hosts.allows_origin(origin):
        return 403, "cross_origin", "Cross-origin request refused"
    if headers.get("sec-fetch-site", "") in ("cross-site", "same-site"):
        return 403, "cross_site", "Cross-site request refused"
    return None


class _Runtime:
    """ASGI wrapper: World sync before, driver wake after, one trace record per request."""

    def __init__(self, app: ASGIApp, service: ThingsBoardService, runtime: Runtime) -> None:
        self.app = app
        self.runtime = runtime
        self.tracer = service.world.trace.bind(service.name, "tb.http")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.runtime.sync()

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start":
                route = scope.get("route")
                path = getattr(route, "path", None) or "(unrouted)"
                self.tracer.emit("tb.http.request", method=scope["method"], route=path,
                                 status=message["status"])
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            self.runtime.wake()


__all__ = ["InvalidText", "create_app", "set_host_policy"]
