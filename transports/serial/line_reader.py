"""``serialReadLine`` of Device OS wiring (``spark_wiring_stream.cpp``), one byte at a time.

How this works
--------------
The console's prompts read a line into a buffer of ``max_len`` characters:

* a byte that arrives when the buffer already holds ``max_len`` characters, or a CR or LF,
  ends the line; that byte is consumed and **not** echoed (so the 64th character of a claim
  code silently ends a 63-character line);
* backspace (0x08) or DEL (0x7F) removes the last character and is echoed; on an empty buffer it
  is ignored without echo;
* any other byte - NUL, Ctrl-C (0x03), non-ASCII - is stored and echoed as is. There is no way to
  abort a prompt: Ctrl-C is just a character.

The C code then works with the buffer as a C string, so the line's text stops at the first NUL
(:func:`c_string`).
"""

from __future__ import annotations

__all__ = ["LineReader", "c_string"]

_CR, _LF, _BS, _DEL = 0x0D, 0x0A, 0x08, 0x7F


def c_string(raw: bytes) -> bytes:
    """The C-string view of a buffer: everything before the first NUL."""
    return raw.split(b"\x00", 1)[0]


class LineReader:
    def __init__(self, max_len: int) -> None:
        if max_len < 0:
            raise ValueError("max_len must be >= 0")
        self.max_len = max_len
        self._buffer = bytearray()

    def feed(self, byte: int) -> tuple[bytes, bytes | None]:
        """Process one byte: ``(echo, line)``; ``line`` is not None once the line ended."""
        if len(self._buffer) == self.max_len or byte in (_CR, _LF):
            return b"", bytes(self._buffer)
        if byte in (_BS, _DEL):
            if not self._buffer:
                return b"", None
            del self._buffer[-1]
            return bytes([byte]), None
        self._buffer.append(byte)
        return bytes([byte]), None
