"""Bits of the OpenAPI document that FastAPI cannot infer from handlers that read their own
bodies: request bodies (JSON and form), query parameters, error responses, security schemes."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "ok": {"type": "boolean"},
        "error": {"type": "string"},
        "error_description": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "string"}},
        "info": {"type": "string"},
    },
}


def _error(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


ERRORS: dict[int | str, dict[str, Any]] = {
    400: _error("bad request (malformed body, missing parameter, missing token)"),
    401: _error("invalid or expired token, bad client credentials"),
    403: _error("not allowed"),
    404: _error("not found"),
    413: _error("request body too large"),
}

TOKEN_QUERY: dict[str, Any] = {"name": "access_token", "in": "query", "required": False,
                               "schema": {"type": "string"},
                               "description": "access token (deprecated alternative to Bearer)"}


def body(properties: dict[str, Any], *, required: tuple[str, ...] = (), json: bool = True,
         form: bool = True, multipart: bool = False) -> dict[str, Any]:
    """``openapi_extra`` declaring a request body and the ``access_token`` query parameter."""
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    content: dict[str, Any] = {}
    if json:
        content["application/json"] = {"schema": schema}
    if form:
        content["application/x-www-form-urlencoded"] = {"schema": schema}
    if multipart:
        content["multipart/form-data"] = {"schema": schema}
    return {"requestBody": {"required": bool(required), "content": content},
            "parameters": [TOKEN_QUERY]}


def query(*params: tuple[str, str]) -> dict[str, Any]:
    """``openapi_extra`` declaring query parameters ``(name, json type)``."""
    return {"parameters": [TOKEN_QUERY, *({"name": name, "in": "query", "required": False,
                                            "schema": {"type": kind}} for name, kind in params)]}


STRING = {"type": "string"}
BOOLEAN = {"type": "boolean"}
INTEGER = {"type": "integer"}


def install(app: FastAPI) -> None:
    """Add the error schema and security schemes to the generated document."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = get_openapi(title=app.title, version=app.version,
                               description=app.description, routes=app.routes)
        components = document.setdefault("components", {})
        components.setdefault("schemas", {})["Error"] = ERROR_SCHEMA
        components["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer"},
            "basicClient": {"type": "http", "scheme": "basic",
                            "description": "OAuth client id and secret (/oauth/token, "
                                           "create customer)"},
        }
        document["security"] = [{"bearer": []}]
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]
