"""``serialReadLine`` semantics (Device OS ``spark_wiring_stream.cpp``)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from transports.serial import LineReader, c_string


def feed(reader: LineReader, data: bytes) -> tuple[bytes, bytes | None, int]:
    """Echo, line and how many bytes were consumed."""
    echo = b""
    for index, byte in enumerate(data):
        out, line = reader.feed(byte)
        echo += out
        if line is not None:
            return echo, line, index + 1
    return echo, None, len(data)


def test_cr_or_lf_ends_the_line_without_echo() -> None:
    assert feed(LineReader(32), b"Net1\nrest") == (b"Net1", b"Net1", 5)
    assert feed(LineReader(32), b"Net1\r\n") == (b"Net1", b"Net1", 5)
    assert feed(LineReader(32), b"\n") == (b"", b"", 1)


def test_a_full_buffer_ends_the_line_with_the_next_byte_whatever_it_is() -> None:
    code = b"a" * 63
    assert feed(LineReader(63), code + b"Z\n") == (code, code, 64)  # 'Z' consumed, not echoed
    assert feed(LineReader(1), b"33\n") == (b"3", b"3", 2)
    assert feed(LineReader(1), b"3\x08") == (b"3", b"3", 2)  # even a backspace


def test_backspace_and_delete() -> None:
    assert feed(LineReader(10), b"ab\x08c\x7f\x7fd\n") == (b"ab\x08c\x7f\x7fd", b"d", 8)
    assert feed(LineReader(10), b"\x08\x7fx\n") == (b"x", b"x", 4)  # nothing to delete: silent


def test_ctrl_c_nul_and_non_ascii_are_ordinary_characters() -> None:
    assert feed(LineReader(10), b"a\x03\xff\x00b\n") == (b"a\x03\xff\x00b", b"a\x03\xff\x00b", 6)
    assert c_string(b"a\x03\xff\x00b") == b"a\x03\xff"


@given(st.binary(max_size=100), st.integers(0, 70))
def test_the_line_never_exceeds_max_len(data: bytes, max_len: int) -> None:
    reader = LineReader(max_len)
    _, line, consumed = feed(reader, data)
    assert consumed <= len(data)
    if line is not None:
        assert len(line) <= max_len and b"\r" not in line and b"\n" not in line
