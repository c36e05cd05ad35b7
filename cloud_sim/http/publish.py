"""Publishing an event through the API: ``POST /v1/devices/events`` and
``POST /v1/products/:p/events`` ("Publish an event" of the Cloud API reference,
docs.particle.io reference/cloud-apis/api).

Parameters (JSON or form, like every route): ``name`` (required), ``data``, ``private``,
``ttl``; the answer is ``{"ok": true}``. The cloud then puts the event on its bus - the
publisher's own event streams see it (the product's streams, for the product route) with
``coreid`` ``api`` - and sends it to every online device of the publisher (of the product) whose
session subscribed to a prefix of the name (:meth:`~cloud_sim.cloud.Cloud.publish_event`).

Checks, in order: the body (400 malformed, 413 too large), the token (400 missing, 401 invalid
or expired); for the product route the product (404 unknown) and the caller's membership of its
team (403); then the parameters (400):
``name`` 1-64 characters without control characters and not starting with ``spark`` or
``particle`` (any case: those names are the cloud's own), ``data`` at most 1024 bytes of UTF-8,
``private`` a boolean (default true), ``ttl`` an integer >= 0 (default 60). The limits and
the refusals of reserved and control-character names are fwsim's choices (UNVERIFIED,
docs/cloud-api.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from firmware_sim.communication.wire import MAX_EVENT_DATA_LENGTH, MAX_EVENT_NAME_LENGTH

from .common import caller_of, json
from .errors import bad_request
from .openapi import BOOLEAN, ERRORS, body
from .params import Params, get_bool, get_int, get_str, require_str
from .products import team_call

router = APIRouter(tags=["events"])

__all__ = ["PublishedEvent", "read_event", "router"]

#: event name prefixes reserved for the cloud's own events (Device OS docs: "A device may not
#: publish events beginning with a case-insensitive match for 'particle' or 'spark'")
RESERVED_PREFIXES = ("spark", "particle")
DEFAULT_TTL_S = 60
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class PublishedEvent:
    name: str
    data: str
    private: bool
    ttl: int


def read_event(params: Params) -> PublishedEvent:
    """The event a request publishes, checked (400 :class:`~.errors.ApiError` otherwise)."""
    name = require_str(params, "name", max_length=MAX_EVENT_NAME_LENGTH)
    if _CONTROL.search(name):
        raise bad_request("name must not hold control characters")
    if name.lower().startswith(RESERVED_PREFIXES):
        raise bad_request("event names starting with 'spark' or 'particle' are reserved")
    data = get_str(params, "data", max_length=MAX_EVENT_DATA_LENGTH) or ""
    if len(data.encode("utf-8")) > MAX_EVENT_DATA_LENGTH:
        raise bad_request(f"data is longer than {MAX_EVENT_DATA_LENGTH} bytes")
    private = get_bool(params, "private", default=True)
    ttl = get_int(params, "ttl")
    return PublishedEvent(name, data, private, DEFAULT_TTL_S if ttl is None else ttl)


OK_SCHEMA: dict[str, Any] = {"type": "object", "properties": {"ok": BOOLEAN}}
RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "published", "content": {"application/json": {"schema": OK_SCHEMA}}},
    **ERRORS}
PUBLISH_BODY = body({"name": {"type": "string", "minLength": 1,
                              "maxLength": MAX_EVENT_NAME_LENGTH},
                     "data": {"type": "string", "maxLength": MAX_EVENT_DATA_LENGTH},
                     "private": BOOLEAN,
                     "ttl": {"type": "integer", "minimum": 0}},
                    required=("name",))


@router.post("/v1/devices/events", responses=RESPONSES, openapi_extra=PUBLISH_BODY)
async def publish_event(request: Request) -> Response:
    ctx, params, caller = await caller_of(request)
    event = read_event(params)
    ctx.cloud.publish_event(caller.principal, event.name, event.data, private=event.private,
                            ttl=event.ttl)
    return json({"ok": True})


@router.post("/v1/products/{product}/events", responses=RESPONSES,
             openapi_extra=PUBLISH_BODY)
async def publish_product_event(request: Request, product: str) -> Response:
    ctx, params, caller, found = await team_call(request, product)
    event = read_event(params)
    ctx.cloud.publish_event(caller.principal, event.name, event.data, product=found,
                            private=event.private, ttl=event.ttl)
    return json({"ok": True})
