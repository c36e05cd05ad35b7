"""``/oauth/token``, users and access tokens (cloud.md A5, A7).

Grants: ``password`` (a developer, or a customer when the client is a product client),
``client_credentials`` (with ``scope=customer=<email>`` a customer token; without, a token for
the client's owner), ``refresh_token`` (single use: the old refresh token is replaced) and
``urn:custom:mfa-otp`` (no account of the emulator has MFA, so it is always ``invalid_grant``).
The endpoint takes form bodies only, like the real one.

``DELETE /v1/access_tokens/:token`` needs no authorization: the token in the path is the
credential (see :func:`delete_token`).
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from .. import accounts
from ..model import OAuthClient, Principal, TokenKind
from .auth import authenticate, require_client, token_from
from .common import caller_of, context, json, params_of
from .context import ApiContext
from .errors import MISSING_TOKEN, ApiError, api_error, errors_list, oauth_error
from .openapi import BOOLEAN, ERRORS, INTEGER, STRING, body, query
from .params import Params, get_str, is_ascii_digits, media_type
from .render import iso

router = APIRouter()

TOKEN_BODY = body({"grant_type": STRING, "username": STRING, "password": STRING,
                   "client_id": STRING, "client_secret": STRING, "expires_in": INTEGER,
                   "expires_at": STRING, "scope": STRING, "refresh_token": STRING,
                   "mfa_token": STRING, "otp": STRING}, json=False)


@router.post("/oauth/token", tags=["auth"], responses=ERRORS, openapi_extra=TOKEN_BODY)
async def create_token(request: Request) -> Response:
    ctx = context(request)
    params = await params_of(request)
    if media_type(request) != "application/x-www-form-urlencoded":
        raise oauth_error(400, "invalid_request", "Method must be POST with "
                          "application/x-www-form-urlencoded encoding")
    client = require_client(ctx, request, params)
    grant = get_str(params, "grant_type", max_length=64)
    if grant is None:
        raise oauth_error(400, "invalid_request", "Missing parameter: `grant_type`")
    now_us = ctx.cloud.unix_us
    if grant == "password":
        principal, scope = _password_grant(ctx, client, params)
    elif grant == "client_credentials":
        principal, scope = _client_credentials_grant(ctx, client, params)
    elif grant == "refresh_token":
        return json(_refresh_grant(ctx, client, params))
    elif grant == "urn:custom:mfa-otp":
        raise oauth_error(400, "invalid_grant", "Invalid or expired mfa_token")
    else:
        raise oauth_error(400, "unsupported_grant_type",
                          "Invalid grant_type parameter or parameter missing")
    issued = ctx.cloud.issue_tokens(principal, client.id, expires_in_s=_lifetime(params, now_us),
                                    scope=scope)
    return json(issued.as_json(now_us))


def _lifetime(params: Params, now_us: int) -> int:
    expires_at = get_str(params, "expires_at", max_length=64)
    if expires_at is not None:
        try:
            moment = datetime.fromisoformat(expires_at.replace("Z", "+00:00"))
            until_us = round(moment.timestamp() * 1e6)
        except (ValueError, OverflowError, OSError):
            raise oauth_error(400, "invalid_request", "Invalid parameter: `expires_at`"
                              ) from None
        if moment.tzinfo is None or until_us <= now_us:
            raise oauth_error(400, "invalid_request", "Invalid parameter: `expires_at`")
        return max(1, (until_us - now_us) // 1_000_000)
    raw = params.get("expires_in")
    if raw is None or raw == "":
        return accounts.DEFAULT_TOKEN_DURATION_S
    if not isinstance(raw, str) or not is_ascii_digits(raw) or len(raw) > 10:
        raise oauth_error(400, "invalid_request", "Invalid parameter: `expires_in`")
    return int(raw)


def _password_grant(ctx: ApiContext, client: OAuthClient, params: Params
                    ) -> tuple[Principal, str]:
    username = get_str(params, "username", max_length=254)
    password = get_str(params, "password", max_length=1024)
    if username is None or password is None:
        raise oauth_error(400, "invalid_request", "Missing parameter: `username` or "
                          "`password`")
    store = ctx.cloud.store
    if client.product_id is not None:
        customer = store.find_customer(client.product_id, username)
        if customer is not None and customer.password_hash and accounts.verify_password(
                password, customer.password_hash):
            return Principal.customer(customer.id), f"customer={customer.email}"
    user = store.find_user(username)
    if user is None or not accounts.verify_password(password, user.password_hash):
        raise oauth_error(400, "invalid_grant", "User credentials are invalid")
    return Principal.user(user.id), ""


def _client_credentials_grant(ctx: ApiContext, client: OAuthClient, params: Params
                              ) -> tuple[Principal, str]:
    scope = get_str(params, "scope", max_length=300)
    if scope is None:
        if client.owner is None or ctx.cloud.store.get_user(client.owner) is None:
            raise oauth_error(400, "invalid_grant", "This client has no owner to act for")
        return Principal.user(client.owner), ""
    kind, _, email = scope.partition("=")
    if kind != "customer" or not email:
        raise oauth_error(400, "invalid_scope", "Invalid scope: expected customer=<email>")
    if client.product_id is None:
        raise oauth_error(400, "invalid_scope", "Customer scopes need a product OAuth client")
    customer = ctx.cloud.store.find_customer(client.product_id, email)
    if customer is None:
        raise oauth_error(400, "invalid_grant", "Customer not found")
    return Principal.customer(customer.id), f"customer={customer.email}"


def _refresh_grant(ctx: ApiContext, client: OAuthClient, params: Params) -> dict[str, object]:
    value = get_str(params, "refresh_token", max_length=256)
    if value is None:
        raise oauth_error(400, "invalid_request", "Missing parameter: `refresh_token`")
    store = ctx.cloud.store
    now_us = ctx.cloud.unix_us
    token = store.get_token(value)
    if (token is None or token.kind is not TokenKind.REFRESH or token.client_id != client.id
            or token.expired(now_us)):
        raise oauth_error(400, "invalid_grant", "Invalid refresh token")
    with store.transaction():
        store.delete_token(token.token)
        issued = ctx.cloud.issue_tokens(token.principal, client.id, scope=token.scope)
    return issued.as_json(now_us)


# -- users ---------------------------------------------------------------------------------------


@router.post("/v1/users", tags=["users"], responses=ERRORS,
             openapi_extra=body({"username": STRING, "password": STRING},
                                required=("username", "password")))
async def create_user(request: Request) -> Response:
    ctx = context(request)
    params = await params_of(request)
    username = get_str(params, "username", max_length=254)
    password = get_str(params, "password", max_length=1024)
    if username is None or "@" not in username or "." not in username.rpartition("@")[2]:
        raise errors_list(400, "username must be an email address")
    if password is None:
        raise errors_list(400, "password must not be empty")
    store = ctx.cloud.store
    with store.transaction():
        if store.find_user(username) is not None:
            raise errors_list(400, "username must be unique")
        ctx.cloud.create_user(username, password)
    return json({"ok": True})


@router.get("/v1/user", tags=["users"], responses=ERRORS, openapi_extra=query())
async def get_user(request: Request) -> Response:
    _, _, caller = await caller_of(request)
    if caller.user is None:
        raise api_error(403, "Permission Denied",
                        error_description="customer tokens cannot read a user account")
    return json({"username": caller.user.username, "subscription_ids": [],
                 "account_info": {"first_name": "", "last_name": "", "company_name": "",
                                  "business_account": False},
                 "team_invites": [], "wifi_frequency_bands": ["2.4"], "scim_provisioned": False,
                 "no_password": False, "mfa": {"enabled": False}})


@router.get("/v1/access_tokens/current", tags=["users"], responses=ERRORS,
            openapi_extra=query())
async def current_token(request: Request) -> Response:
    _, _, caller = await caller_of(request)
    token = caller.token
    return json({"expires_at": iso(token.expires_us), "client": token.client_id,
                 "scopes": [token.scope] if token.scope else [], "orgs": []})


@router.delete("/v1/access_tokens/current", tags=["users"], responses=ERRORS,
               openapi_extra=body({}))
async def delete_current_token(request: Request) -> Response:
    ctx, _, caller = await caller_of(request)
    ctx.cloud.store.delete_token(caller.token.token)
    return json({"ok": True})


@router.delete("/v1/access_tokens/{token}", tags=["users"], responses=ERRORS,
               openapi_extra=body({"password": STRING, "logout": BOOLEAN}))
async def delete_token(request: Request, token: str) -> Response:
    """Revoke the token named in the path. With an access token of the caller (Bearer, or
    ``access_token``): any token of the same account, else 404 ``Token not found``. Without
    one, knowing the token is the credential: particle-api-js 11+ ``deleteAccessToken``
    (particle-cli ``token revoke``) sends no authorization, Particle having removed it on
    purpose; an ``Authorization`` of another scheme (older clients' Basic) is ignored. An
    access token (expired or not) is then revoked; anything else - unknown, a refresh token,
    malformed - is answered as a request without a token is (400 ``invalid_request``, which
    particle-cli prints as "The access token was not found")."""
    ctx = context(request)
    params = await params_of(request)
    store = ctx.cloud.store
    target = store.get_token(token) if len(token) <= 256 else None
    if token_from(request, params) is None:
        if target is None or target.kind is not TokenKind.ACCESS:
            raise oauth_error(400, *MISSING_TOKEN)
        store.delete_token(target.token)
        return json({"ok": True})
    caller = authenticate(ctx, request, params)
    if target is None or target.principal != caller.principal:
        raise ApiError(404, {"ok": False, "error": "Token not found"})
    store.delete_token(target.token)
    return json({"ok": True})
