"""The JSON layer: the device's request rules, raw string values, atoi, json_unescape."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transports.softap.jsonreq import (
    JsonRequestError,
    JsonType,
    c_atoi,
    json_unescape,
    parse_request,
    scan_members,
)

S, P = JsonType.STRING, JsonType.PRIMITIVE
SCHEMA = {"k": S, "v": S, "idx": P}


def test_flat_object_values_are_raw_tokens() -> None:
    assert parse_request(b'{"k":"cc","v":"a\\"b","idx":3}', SCHEMA) == {
        "k": "cc", "v": 'a\\"b', "idx": "3"}
    assert parse_request(b' { "k" : "x\\u00e9" , "idx" : -1.5e3 } ', SCHEMA) == {
        "k": "x\\u00e9", "idx": "-1.5e3"}
    assert parse_request(b"{}", SCHEMA) == {}


def test_last_duplicate_wins() -> None:
    assert parse_request(b'{"k":"a","k":"b"}', SCHEMA) == {"k": "b"}


@pytest.mark.parametrize("body", [
    b"", b"not json", b'{"k":"cc"', b'{"k":"cc"} trailing', b"[1,2]", b'"text"', b"17",
    b'{"k":NaN}', b"{'k':'cc'}", b'{"k":"cc",}',
])
def test_unparseable_bodies(body: bytes) -> None:
    with pytest.raises(JsonRequestError):
        parse_request(body, SCHEMA)


@pytest.mark.parametrize("body", [
    b'{"z":"1"}',                     # unknown key
    b'{"k":1}',                       # a primitive where a string is expected
    b'{"idx":"0"}',                   # a string where a primitive is expected
    b'{"k":{"a":1}}', b'{"k":["a"]}',  # nested values are never accepted
])
def test_wrong_keys_and_types(body: bytes) -> None:
    with pytest.raises(JsonRequestError):
        parse_request(body, SCHEMA)


def test_body_is_a_c_string() -> None:
    assert parse_request(b'{"k":"cc"}\x00garbage', SCHEMA) == {"k": "cc"}
    with pytest.raises(JsonRequestError):
        parse_request(b'{"k":"c\x00c"}', SCHEMA)


@pytest.mark.parametrize(("raw", "value"), [
    ("0", 0), ("42", 42), ("-7", -7), ("1.9", 1), ("true", 0), ("null", 0), ("1e3", 1),
    ("+5", 5), ("99999999999", 2**31 - 1), ("-99999999999", -(2**31)), ("", 0),
])
def test_c_atoi(raw: str, value: int) -> None:
    assert c_atoi(raw) == value


def test_json_unescape() -> None:
    assert json_unescape("a\\r\\nb\\/\\\\\\\"") == 'a\r\nb/\\"'
    assert json_unescape("plain") == "plain"
    assert json_unescape("\\u0041") is None
    assert json_unescape("bad\\x") is None
    assert json_unescape("trailing\\") is None


scalars = st.one_of(st.text(max_size=20), st.integers(-10**12, 10**12), st.booleans(),
                    st.none(), st.floats(allow_nan=False, allow_infinity=False))
flat = st.dictionaries(st.text(max_size=8), scalars, max_size=6)


@settings(max_examples=300, deadline=None)
@given(flat, st.sampled_from([None, 2]), st.booleans())
def test_scanner_agrees_with_json(obj: dict[str, object], indent: int | None,
                                  ascii_only: bool) -> None:
    text = json.dumps(obj, indent=indent, ensure_ascii=ascii_only)
    members = scan_members(text)
    assert [json.loads(f'"{m.key}"') for m in members] == list(obj)
    for member, value in zip(members, obj.values(), strict=True):
        if isinstance(value, str):
            assert member.kind is S
            assert json.loads(f'"{member.raw}"') == value
        else:
            assert member.kind is P
            assert json.loads(member.raw) == value


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80))
def test_arbitrary_bytes_parse_or_fail_cleanly(body: bytes) -> None:
    with contextlib.suppress(JsonRequestError):
        parse_request(body, SCHEMA)


@settings(max_examples=200, deadline=None)
@given(st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=4), inner, max_size=3), max_leaves=8))
def test_any_json_value_parses_or_fails_cleanly(value: object) -> None:
    try:
        result = parse_request(json.dumps(value).encode(), SCHEMA)
    except JsonRequestError:
        return
    assert set(result) <= set(SCHEMA)
