"""Helpers shared by the route modules."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..model import Product
from .auth import Caller, authenticate
from .context import ApiContext
from .errors import product_not_found
from .params import Params, read_params
from .responses import ApiJSONResponse


def context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.fwsim
    return ctx


async def params_of(request: Request, ctx: ApiContext | None = None) -> Params:
    """The request's parameters, read under the API's body limits (``ctx``: the API context,
    when the caller has it already)."""
    config = (ctx if ctx is not None else context(request)).config
    return await read_params(request, config.max_body_bytes, config.body_timeout_s)


async def caller_of(request: Request) -> tuple[ApiContext, Params, Caller]:
    """Parse the request, then authenticate it (the token may be a body field)."""
    ctx = context(request)
    params = await params_of(request, ctx)
    return ctx, params, authenticate(ctx, request, params)


def find_product(ctx: ApiContext, id_or_slug: str) -> Product:
    product = ctx.cloud.store.find_product(id_or_slug) if len(id_or_slug) <= 200 else None
    if product is None:
        raise product_not_found()
    return product


def json(body: Any, status: int = 200) -> ApiJSONResponse:
    return ApiJSONResponse(body, status_code=status)


def no_content() -> Response:
    return Response(status_code=204)
