"""The TCP request header parser (SimpleProtocolDispatcher::handle)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transports.softap.tcp import TcpHeader, TcpHeaderParser, encode_request


def parse(data: bytes, max_header_bytes: int = 128) -> tuple[TcpHeaderParser, int]:
    parser = TcpHeaderParser(max_header_bytes)
    return parser, parser.feed(data)


def test_plain_request() -> None:
    parser, used = parse(b'set\n17\n\n{"k":"cc","v":"x"}')
    assert parser.header == TcpHeader("set", 17)
    assert used == len(b"set\n17\n\n")


def test_no_body_and_extra_lines_before_the_blank_one() -> None:
    assert parse(b"version\n0\n\n")[0].header == TcpHeader("version", 0)
    parser, used = parse(b"version\n0\nX-extra\nmore\n\nBODY")
    assert parser.header == TcpHeader("version", 0)
    assert used == len(b"version\n0\nX-extra\nmore\n\n")


def test_incomplete_header_waits() -> None:
    for partial in (b"", b"vers", b"version\n", b"version\n12", b"version\n12\n"):
        parser, used = parse(partial)
        assert parser.header is None and parser.error is None and used == len(partial)


def test_thirty_character_names() -> None:
    name29, name30 = "n" * 29, "n" * 30
    assert parse(f"{name29}\n5\n\n".encode())[0].header == TcpHeader(name29, 5)
    # after 30 characters the device stops reading the name without consuming the newline,
    # which then ends the length: a 30-character name always has length 0
    parser, used = parse(f"{name30}\n5\n\nBODY".encode())
    assert parser.header == TcpHeader(name30, 0) and used == len(name30) + 4
    # 31+ characters: the device stops the name at 30, the rest becomes "length digits"
    header = parse(f"{name30}xy\n5\n\n".encode())[0].header
    assert header is not None and header.name == name30 and header.name_overflow
    assert header.length == (ord("x") - 48) * 10 + (ord("y") - 48)


def test_length_that_is_not_a_number_is_computed_like_the_device() -> None:
    header = parse(b"set\nab\n\n")[0].header
    assert header is not None and header.length == (ord("a") - 48) * 10 + (ord("b") - 48)
    header = parse(b"set\n-1\n\n")[0].header
    assert header is not None and header.length == (ord("-") - 48) * 10 + 1  # -29
    header = parse(b"set\n99999999999\n\n")[0].header
    assert header is not None and -(2**31) <= header.length < 2**31  # 32-bit wrap-around


def test_nul_ends_the_name() -> None:
    header = parse(b"version\x00\n\n")[0].header
    assert header is not None and header.name == "version"


def test_header_size_limit() -> None:
    parser, _ = parse(b"set\n" + b"1" * 200, max_header_bytes=64)
    assert parser.error is not None and parser.header is None and parser.done


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(min_codepoint=1, max_codepoint=255, exclude_characters="\n"),
               min_size=1, max_size=29),
       st.binary(max_size=200), st.lists(st.integers(1, 50), max_size=10))
def test_round_trip_in_any_chunking(name: str, body: bytes, cuts: list[int]) -> None:
    data = encode_request(name, body)
    parser = TcpHeaderParser(512)
    position = 0
    rest = b""
    chunks = []
    for cut in cuts:
        chunks.append(data[position:position + cut])
        position += cut
    chunks.append(data[position:])
    for chunk in chunks:
        if parser.header is None:
            used = parser.feed(chunk)
            rest += chunk[used:]
        else:
            rest += chunk
    assert parser.header == TcpHeader(name, len(body))
    assert rest == body


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    parser = TcpHeaderParser(128)
    used = parser.feed(data)
    assert 0 <= used <= len(data)
    if parser.header is not None:
        assert len(parser.header.name) <= 30
    if parser.error is not None:
        assert parser.header is None


@pytest.mark.parametrize(("name", "body", "expected"), [
    ("version", None, b"version\n0\n\n"),
    ("set", b'{"k":"cc"}', b'set\n10\n\n{"k":"cc"}'),
])
def test_encode_request(name: str, body: bytes | None, expected: bytes) -> None:
    assert encode_request(name, body) == expected
