"""The JSON response of the REST API: compact UTF-8, and never an exception while rendering.

Starlette's ``JSONResponse`` encodes with ``ensure_ascii=False`` and then UTF-8, which raises on a
string holding a lone surrogate (input is validated before it reaches a handler, so this is the
backstop): such a body is rendered with ``\\uXXXX`` escapes instead, which is still JSON.

With ``orjson`` installed (the ``cloud`` extra) a body is written by it - ten times faster for a
device list - when it writes the same bytes as the standard library would: content of plain
dicts (string keys), lists, strings, integers, booleans and None. A body holding a float
(orjson writes ``1e16`` where Python writes ``1e+16``, and NaN as ``null``), a subclass, an
integer beyond 64 bits or a lone surrogate goes the standard way.
"""

from __future__ import annotations

import json
from importlib import import_module
from typing import Any

from starlette.responses import JSONResponse

orjson: Any
try:
    orjson = import_module("orjson")
except ModuleNotFoundError:  # optional: the standard library writes the same bytes
    orjson = None

_PASSTHROUGH = (orjson.OPT_PASSTHROUGH_SUBCLASS | orjson.OPT_PASSTHROUGH_DATACLASS
                | orjson.OPT_PASSTHROUGH_DATETIME) if orjson is not None else 0


def _refuse(value: Any) -> Any:
    raise TypeError  # not a plain JSON value: the standard library decides


def _has_float(content: Any) -> bool:
    pending = [content]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, float):
            return True
    return False


class ApiJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        if orjson is not None and not _has_float(content):
            try:
                data: bytes = orjson.dumps(content, default=_refuse, option=_PASSTHROUGH)
                return data
            except TypeError:  # orjson.JSONEncodeError is a TypeError
                pass
        try:
            return super().render(content)
        except UnicodeEncodeError:
            return json.dumps(content, ensure_ascii=True, allow_nan=False,
                              separators=(",", ":")).encode("ascii")
