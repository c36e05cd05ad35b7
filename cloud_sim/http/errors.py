"""JSON error bodies of the REST API.

particle-api-js runs ``JSON.parse`` on every non-2xx body (cloud.md A1), so every error - ours,
the router's 404/405, a body that is too large, even an internal error - is a JSON object.
Two shapes are used, as the real API does: OAuth errors ``{"error", "error_description"}``
(``/oauth/token``, bad tokens) and API errors ``{"ok": false, "error": ..., ...}`` or
``{"ok": false, "errors": [...]}`` (particle-cli reads ``error`` first, then a one-element
``errors`` list).
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An HTTP error with its JSON body; raised anywhere in a handler."""

    def __init__(self, status: int, body: dict[str, Any],
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status} {body}")
        self.status = status
        self.body = body
        self.headers = headers or {}


def oauth_error(status: int, error: str, description: str) -> ApiError:
    headers = {"WWW-Authenticate": f'Bearer error="{error}"'} if status == 401 else None
    return ApiError(status, {"error": error, "error_description": description}, headers)


def api_error(status: int, message: str, **extra: Any) -> ApiError:
    return ApiError(status, {"ok": False, "error": message, **extra})


def errors_list(status: int, *messages: str) -> ApiError:
    return ApiError(status, {"ok": False, "errors": list(messages)})


def bad_request(message: str) -> ApiError:
    return api_error(400, message, error_description=message)


def forbidden(message: str) -> ApiError:
    return api_error(403, "Forbidden", error_description=message)


def permission_denied() -> ApiError:
    """The answer for a device the caller may not see - and for an unknown id (no leak)."""
    return api_error(403, "Permission Denied",
                     info="I didn't recognize that device name or ID, try opening /v1/devices")


def product_not_found() -> ApiError:
    return api_error(404, "Product not found", error_description="Product not found")


def product_permission_denied(description: str) -> ApiError:
    return api_error(403, "Permission Denied", error_description=description)


MISSING_TOKEN = ("invalid_request", "The access token was not found")
INVALID_TOKEN = ("invalid_token", "The access token provided is invalid.")
EXPIRED_TOKEN = ("invalid_token", "The access token provided has expired.")
