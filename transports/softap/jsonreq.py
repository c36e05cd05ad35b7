"""The JSON layer of the SoftAP commands: request bodies parsed by the device's rules.

How this works
--------------
Device OS parses a request body with jsmn into tokens and walks the members of the top-level
object (``JSONRequestCommand::parse_json_request`` in ``hal/src/photon/softap.cpp``):

* the body is a C string: it ends at the first NUL byte;
* it must be valid JSON whose top level is an object (fwsim is strict: trailing text, NaN or an
  unterminated value is a parse failure; on the device such input leaves jsmn's token array
  partly uninitialised);
* every member's key must be one the command knows, and its value must have the expected jsmn
  type: STRING (a quoted string) or PRIMITIVE (number, ``true``, ``false``, ``null``); a nested
  object or array is never accepted;
* string values are handed over *raw*: the text between the quotes, escapes not decoded (jsmn
  only marks token boundaries). Only the certificate fields go through ``json_unescape``;
* numbers are read with C ``atoi`` (``1.5`` -> 1, ``true`` -> 0, out of range saturates).

Any failure makes the command write no response at all (:class:`JsonRequestError`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1


class JsonType(Enum):
    STRING = "string"
    PRIMITIVE = "primitive"
    OBJECT = "object"
    ARRAY = "array"


class JsonRequestError(ValueError):
    """The device's JSON parse failed: the command answers nothing."""


@dataclass(frozen=True)
class Member:
    key: str
    kind: JsonType
    raw: str


def body_text(body: bytes) -> str:
    """The request body as the device's C string (cut at the first NUL; bytes kept)."""
    return body.split(b"\x00", 1)[0].decode("utf-8", "surrogateescape")


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def _skip_ws(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t\r\n":
        i += 1
    return i


def _string_end(text: str, i: int) -> int:
    """Index just past the closing quote of the string starting at ``text[i] == '"'``."""
    j = i + 1
    while text[j] != '"':
        j += 2 if text[j] == "\\" else 1
    return j + 1


def _composite_end(text: str, i: int) -> int:
    depth = 0
    j = i
    while True:
        ch = text[j]
        if ch == '"':
            j = _string_end(text, j)
            continue
        if ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
            if depth == 0:
                return j + 1
        j += 1


def scan_members(text: str) -> list[Member]:
    """The members of a top-level JSON object, values as raw token text.

    ``text`` must already be known to be valid JSON with an object at the top level.
    """
    members: list[Member] = []
    i = _skip_ws(text, 0) + 1
    i = _skip_ws(text, i)
    if text[i] == "}":
        return members
    while True:
        key_end = _string_end(text, i)
        key = text[i + 1:key_end - 1]
        i = _skip_ws(text, key_end) + 1  # past ':'
        i = _skip_ws(text, i)
        ch = text[i]
        if ch == '"':
            end = _string_end(text, i)
            members.append(Member(key, JsonType.STRING, text[i + 1:end - 1]))
        elif ch in "{[":
            end = _composite_end(text, i)
            kind = JsonType.OBJECT if ch == "{" else JsonType.ARRAY
            members.append(Member(key, kind, text[i:end]))
        else:
            end = i
            while end < len(text) and text[end] not in ",}] \t\r\n":
                end += 1
            members.append(Member(key, JsonType.PRIMITIVE, text[i:end]))
        i = _skip_ws(text, end)
        if text[i] == "}":
            return members
        i = _skip_ws(text, i + 1)  # past ','


def parse_request(body: bytes, schema: Mapping[str, JsonType]) -> dict[str, str]:
    """Raw values of the members of ``body``; raises :class:`JsonRequestError` like the device.

    Duplicate keys: the last one wins (the device overwrites as it walks the tokens).
    """
    text = body_text(body)
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise JsonRequestError(f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise JsonRequestError("the top level is not an object")
    result: dict[str, str] = {}
    for member in scan_members(text):
        expected = schema.get(member.key)
        if expected is None:
            raise JsonRequestError(f"unknown key {member.key!r}")
        if member.kind is not expected:
            raise JsonRequestError(
                f"{member.key!r} is a {member.kind.value}, expected a {expected.value}")
        result[member.key] = member.raw
    return result


_ATOI = re.compile(r"[ \t\n\v\f\r]*([+-]?)([0-9]*)")


def c_atoi(raw: str) -> int:
    """C ``atoi`` on a 32-bit target (newlib: ``strtol``, saturating)."""
    match = _ATOI.match(raw)
    if match is None or not match.group(2):
        return 0
    value = int(match.group(2))
    if match.group(1) == "-":
        value = -value
    return max(INT32_MIN, min(INT32_MAX, value))


_UNESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "t": "\t", "n": "\n", "f": "\f",
              "r": "\r"}


def json_unescape(raw: str) -> str | None:
    """Device OS ``json_unescape`` (spark_wiring_json.h copy in softap.cpp).

    Returns None where the device's function fails (a ``\\u`` escape, an unknown escape or a
    trailing backslash) - it then reports length 0.
    """
    out: list[str] = []
    i = 0
    while i < len(raw):
        ch = raw[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        if i + 1 >= len(raw):
            return None
        replacement = _UNESCAPES.get(raw[i + 1])
        if replacement is None:
            return None
        out.append(replacement)
        i += 2
    return "".join(out)


def raw_bytes(raw: str) -> bytes:
    """The bytes of a raw token as the device holds them."""
    return raw.encode("utf-8", "surrogateescape")
