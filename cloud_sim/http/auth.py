"""Who is calling: access tokens (Bearer header, ``access_token`` query or body field) and
OAuth client credentials (HTTP Basic or ``client_id``/``client_secret`` fields)."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from starlette.requests import Request

from ..accounts import authenticate_client
from ..model import Customer, OAuthClient, Principal, Product, Token, TokenKind, User
from .context import ApiContext
from .errors import (
    EXPIRED_TOKEN,
    INVALID_TOKEN,
    MISSING_TOKEN,
    oauth_error,
    product_permission_denied,
)
from .params import Params


@dataclass(frozen=True)
class Caller:
    token: Token
    user: User | None = None
    customer: Customer | None = None

    @property
    def principal(self) -> Principal:
        return self.token.principal

    @property
    def is_customer(self) -> bool:
        return self.customer is not None

    @property
    def email(self) -> str:
        if self.user is not None:
            return self.user.username
        return self.customer.email if self.customer is not None else ""

    def is_team_member(self, product: Product) -> bool:
        return self.user is not None and self.user.id in product.team

    def require_team(self, product: Product) -> None:
        if not self.is_team_member(product):
            raise product_permission_denied("You are not a member of this product's team")


def token_from(request: Request, params: Params) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    for candidate in (params.get("access_token"),):
        if isinstance(candidate, str) and candidate:
            return candidate
    return None


def authenticate(ctx: ApiContext, request: Request, params: Params) -> Caller:
    """The caller of an endpoint that needs an access token (400/401 otherwise)."""
    value = token_from(request, params)
    if value is None:
        raise oauth_error(400, *MISSING_TOKEN)
    store = ctx.cloud.store
    token = store.get_token(value) if len(value) <= 256 else None
    if token is None or token.kind is not TokenKind.ACCESS:
        raise oauth_error(401, *INVALID_TOKEN)
    if token.expired(ctx.cloud.unix_us):
        raise oauth_error(401, *EXPIRED_TOKEN)
    principal = token.principal
    if principal.is_user:
        user = store.get_user(principal.id)
        if user is None:
            raise oauth_error(401, *INVALID_TOKEN)
        return Caller(token, user=user)
    customer = store.get_customer(principal.id)
    if customer is None:
        raise oauth_error(401, *INVALID_TOKEN)
    return Caller(token, customer=customer)


def client_credentials(request: Request, params: Params) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "basic" and value.strip():
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            raise oauth_error(401, "invalid_client", "Malformed Basic authorization") from None
        client_id, sep, secret = decoded.partition(":")
        if not sep:
            raise oauth_error(401, "invalid_client", "Malformed Basic authorization")
        return client_id, secret
    field_id, field_secret = params.get("client_id"), params.get("client_secret")
    if isinstance(field_id, str) and field_id and isinstance(field_secret, str):
        return field_id, field_secret
    if field_id is not None or field_secret is not None:
        raise oauth_error(401, "invalid_client", "Client authentication failed")
    return None


def require_client(ctx: ApiContext, request: Request, params: Params) -> OAuthClient:
    credentials = client_credentials(request, params)
    if credentials is None:
        raise oauth_error(401, "invalid_client",
                          "Client credentials were not found in the headers or body")
    client = authenticate_client(ctx.cloud.store, *credentials)
    if client is None:
        raise oauth_error(401, "invalid_client", "Client authentication failed")
    return client
