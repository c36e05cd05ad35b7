"""The JSON response of the REST API: compact UTF-8, and never an exception while rendering.

Starlette's ``JSONResponse`` encodes with ``ensure_ascii=False`` and then UTF-8, which raises on a
string holding a lone surrogate (input is validated before it reaches a handler, so this is the
backstop): such a body is rendered with ``\\uXXXX`` escapes instead, which is still JSON.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import JSONResponse


class ApiJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        try:
            return super().render(content)
        except UnicodeEncodeError:
            return json.dumps(content, ensure_ascii=True, allow_nan=False,
                              separators=(",", ":")).encode("ascii")
