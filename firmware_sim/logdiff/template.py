"""Message templates: what stays the same when the same line is logged on two devices.

A template is the message with its variable parts replaced by placeholders, so that
``Send spark/device/claim/code event for code xxxxxxxx5GvuPJ...`` on the forum's P2 and the same
line with fwsim's code compare equal:

* a 24-hex-digit device id -> ``<id>``;
* a long token (16 characters or more, containing a digit, no spaces): a claim code, a key,
  a base64 blob -> ``<token>``;
* a hexadecimal number (``0x1f``) or a decimal number, signed or not, with or without
  decimals -> ``<n>``.

The category and the level are part of the key (``[system] INFO: ...``): the same text at
another level is another line (issue 15's ERROR vs WARN).
"""

from __future__ import annotations

import re

from .parse import LogLine

_LONG_TOKEN = re.compile(r"(?<!\S)(?=\S*\d)\S{16,}")
_DEVICE_ID = re.compile(r"\b[0-9a-fA-F]{24}\b")
_NUMBER = re.compile(r"0x[0-9a-fA-F]+|-?\b\d+(?:\.\d+)?\b")


def message_template(message: str) -> str:
    text = _DEVICE_ID.sub("<id>", message)
    text = _LONG_TOKEN.sub("<token>", text)
    return _NUMBER.sub("<n>", text)


def line_template(line: LogLine) -> str:
    return f"[{line.category}] {line.level}: {message_template(line.message)}"


__all__ = ["line_template", "message_template"]
