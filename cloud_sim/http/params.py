"""Reading a request's parameters: JSON, form and multipart bodies, plus the query string.

The real API takes JSON or ``application/x-www-form-urlencoded`` bodies (cloud.md A0) and, for
a few parameters (``access_token``, ``request_transfer``), the query string. :func:`read_params`
merges them - body over query - into one ``dict``; in a form body, a field named ``x[]``
collects every value it is given into a list (``groups[]=a&groups[]=b``). Everything malformed
is a 400 with a JSON body; a body over the size limit is a 413, checked both against
``Content-Length`` and while streaming (chunked uploads); a body that does not arrive within
``timeout_s`` is a 408.

Text is validated once, here: a JSON string (or key) holding a lone surrogate (``"\\ud800"``,
which JSON can escape but UTF-8 cannot encode) is a 400, as are ``NaN``/``Infinity``; numbers in
text (``per_page``, ``Content-Length``, ``expires_in``) are ASCII digits only - ``str.isdigit``
also accepts ``"²"`` or ``"١"``, which ``int()`` then refuses or reads.
"""

from __future__ import annotations

import asyncio
import json
from email.message import Message
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import ClientDisconnect, Request

from .errors import ApiError, api_error, bad_request

MAX_FIELDS = 256
#: scope key the served httptools protocol (``cloud_sim/connections.py``) sets to True once the
#: whole request, head and body, has been parsed: the body is then taken in one
#: ``receive()`` with no deadline to arm, since nothing is left to wait for
WHOLE_REQUEST_RECEIVED = "fwsim.whole_request_received"
#: seconds a request body may take to arrive (a slow upload is answered 408)
BODY_TIMEOUT_S = 20.0
Params = dict[str, Any]


def is_ascii_digits(text: str) -> bool:
    """``"0"``-``"9"`` only (``str.isdigit`` is true for every Unicode digit)."""
    return text.isascii() and text.isdigit()


def has_lone_surrogate(text: str) -> bool:
    """True when ``text`` cannot be encoded as UTF-8 (it holds a lone surrogate)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def check_text(value: Any) -> None:
    """Reject (400) a parsed body holding a lone surrogate anywhere, keys included.

    Iterative, so a deeply nested document cannot exhaust the stack."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if has_lone_surrogate(item):
                raise bad_request("Invalid text: a string holds a lone surrogate (not Unicode)")
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)


async def read_body(request: Request, limit: int, timeout_s: float = BODY_TIMEOUT_S) -> bytes:
    declared = request.headers.get("content-length", "").strip()
    if is_ascii_digits(declared) and (len(declared) > 18 or int(declared) > limit):
        raise _too_large(limit)
    if request.scope.get(WHOLE_REQUEST_RECEIVED):
        # the server has parsed the whole request: one receive() hands over the body at once,
        # so there is neither a deadline to arm nor a stream to walk
        request.scope[WHOLE_REQUEST_RECEIVED] = False  # a second read takes the stream
        message = await request.receive()
        if message["type"] != "http.request":
            raise _client_left()
        body: bytes = message.get("body", b"")
        if len(body) > limit:
            raise _too_large(limit)
        return body
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout_s):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise _too_large(limit)
                chunks.append(chunk)
    except TimeoutError:
        raise api_error(408, "Request timeout",
                        error_description=f"the request body did not arrive within "
                        f"{timeout_s:g} s") from None
    except ClientDisconnect:  # the client left mid-body: nobody reads the answer
        raise _client_left() from None
    return b"".join(chunks)


def _client_left() -> ApiError:
    return api_error(400, "Client disconnected",
                     error_description="the client closed the connection")


def _too_large(limit: int) -> ApiError:
    return api_error(413, "Request body too large",
                     error_description=f"request bodies are limited to {limit} bytes")


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json_body(body: bytes) -> Params:
    try:
        value = json.loads(body.decode("utf-8"), parse_constant=_no_constants)
    except (ValueError, RecursionError):  # JSONDecodeError, UnicodeDecodeError are ValueErrors
        raise bad_request("Malformed JSON body") from None
    if b"\\u" in body:  # a lone surrogate only comes from a backslash-u escape
        check_text(value)
    # Well-formed JSON that is not an object carries no parameters (e.g. ``[]`` or ``"x"``).
    return value if isinstance(value, dict) else {}


def parse_form_body(body: bytes) -> Params:
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, errors="strict",
                          max_num_fields=MAX_FIELDS)
    except ValueError:
        raise bad_request("Malformed form body") from None
    params: Params = {}
    for key, value in pairs:
        if key.endswith("[]"):  # an array, one value a field: groups[]=a&groups[]=b
            params.setdefault(key, []).append(value)
        else:
            params[key] = value
    return params


def parse_multipart_body(body: bytes, content_type: str) -> Params:
    header = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1",
                                                                                  "replace")
    try:
        message: Message = BytesParser(policy=HTTP).parsebytes(header + body)
    except (ValueError, TypeError, LookupError):
        raise bad_request("Malformed multipart body") from None
    if not message.is_multipart() or message.defects:
        raise bad_request("Malformed multipart body")
    params: Params = {}
    parts = message.get_payload()
    if not isinstance(parts, list) or len(parts) > MAX_FIELDS:
        raise bad_request("Malformed multipart body")
    for part in parts:
        if not isinstance(part, Message):
            raise bad_request("Malformed multipart body")
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if not isinstance(name, str) or not isinstance(payload, bytes):
            raise bad_request("Malformed multipart body")
        try:
            params[name] = payload.decode("utf-8")
        except UnicodeDecodeError:
            raise bad_request("Malformed multipart body") from None
    return params


def parse_body(body: bytes, content_type: str, full_content_type: str) -> Params:
    if not body.strip():
        return {}
    if content_type == "application/json" or content_type.endswith("+json"):
        return parse_json_body(body)
    if content_type == "application/x-www-form-urlencoded":
        return parse_form_body(body)
    if content_type == "multipart/form-data":
        return parse_multipart_body(body, full_content_type)
    # No or another content type: sniff, as lenient servers do.
    if body.lstrip()[:1] in (b"{", b"["):
        return parse_json_body(body)
    return parse_form_body(body)


async def read_params(request: Request, limit: int, timeout_s: float = BODY_TIMEOUT_S
                      ) -> Params:
    body = await read_body(request, limit, timeout_s)
    params: Params = {}
    if request.scope.get("query_string"):  # most requests have none: no URL to build
        try:
            query = parse_qsl(request.url.query, keep_blank_values=True, errors="strict",
                              max_num_fields=MAX_FIELDS)
        except ValueError:
            raise bad_request("Malformed query string") from None
        params.update(query)
    params.update(parse_body(body, media_type(request),
                             request.headers.get("content-type", "")))
    return params


# -- typed access --------------------------------------------------------------------------------


def get_str(params: Params, name: str, *, required: bool = False, max_length: int = 1024
            ) -> str | None:
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise bad_request(f"{name} is required")
        return None
    if not isinstance(value, str):
        raise bad_request(f"{name} must be a string")
    if has_lone_surrogate(value):
        raise bad_request(f"{name} is not valid Unicode text (a lone surrogate)")
    if len(value) > max_length:
        raise bad_request(f"{name} is longer than {max_length} characters")
    return value


def require_str(params: Params, name: str, *, max_length: int = 1024) -> str:
    value = get_str(params, name, required=True, max_length=max_length)
    assert value is not None
    return value


def get_bool(params: Params, name: str, default: bool = False) -> bool:
    value = params.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "1", "yes", "on"):
        return True
    if isinstance(value, str) and value.lower() in ("false", "0", "no", "off"):
        return False
    raise bad_request(f"{name} must be true or false")


def get_int(params: Params, name: str, *, minimum: int = 0, maximum: int = 2**31 - 1
            ) -> int | None:
    """An integer parameter (JSON number or ASCII digits), None when absent or empty. Anything
    else - a sign, a fraction, a Unicode digit, a huge number, a value out of range - is a 400
    that names the constraint: ``<name> must be an integer between <minimum> and <maximum>``."""
    value = params.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, str):
        text = value.strip()
        # beyond the maximum's length the text cannot be in range (int() of a long text is slow)
        if is_ascii_digits(text) and len(text.lstrip("0")) <= len(str(maximum)):
            value = int(text)
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise bad_request(f"{name} must be an integer between {minimum} and {maximum}")
    return value
