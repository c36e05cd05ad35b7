"""The fenced code blocks of a Markdown file, for the doc tests."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

_OPENING = re.compile(r"^(\s*>?\s*)```(\S*)\s*$")
_CLOSING = re.compile(r"^\s*>?\s*```\s*$")


def fenced_blocks(path: Path) -> Iterator[tuple[int, str, list[str]]]:
    """``(line of the opening fence, info string, body lines)`` of every fenced block, the
    body without the fence's own indentation or blockquote prefix."""
    lines = path.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        opening = _OPENING.match(lines[index])
        if not opening:
            index += 1
            continue
        prefix, info = opening.group(1), opening.group(2)
        end = index + 1
        while end < len(lines) and not _CLOSING.match(lines[end]):
            end += 1
        body = [line[len(prefix):] if line.startswith(prefix) else line.lstrip("> ")
                for line in lines[index + 1:end]]
        yield index + 1, info, body
        index = end + 1
