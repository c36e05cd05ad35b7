"""Seeds are ASCII decimal (leading zeros allowed) or 0x hex; node names are printable UTF-8."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_sim.kernel.errors import ConfigurationError, UsageError
from firmware_sim.kernel.world import World, check_node_name, parse_seed


@pytest.mark.parametrize(("text", "seed"), [
    ("010", 10), ("0", 0), ("000", 0), (" 42 ", 42), ("0x10", 16), ("0XfF", 255),
    (str(2**63 - 1), 2**63 - 1), (7, 7),
])
def test_seeds_accepted(text: str | int, seed: int) -> None:
    assert parse_seed(text) == seed


@pytest.mark.parametrize("text", ["1_000", "٣", "0o17", "0b1", "+1", "-1", "0x", "1e3", "abc",
                                  "", " ", "0x_1", "１２"])
def test_seeds_refused_with_one_line(text: str) -> None:
    with pytest.raises(ConfigurationError, match="invalid seed") as caught:
        parse_seed(text)
    assert "\n" not in str(caught.value)


@given(st.integers(min_value=0, max_value=2**63 - 1), st.integers(0, 3))
def test_decimal_with_leading_zeros_round_trips(seed: int, zeros: int) -> None:
    assert parse_seed("0" * zeros + str(seed)) == seed
    assert parse_seed(hex(seed)) == seed


@given(st.text(max_size=12))
def test_any_text_is_a_seed_or_a_clear_error(text: str) -> None:
    try:
        seed = parse_seed(text)
    except ConfigurationError as exc:
        assert str(exc).startswith("invalid seed")
    else:
        assert 0 <= seed < 2**63
        assert text.strip().isascii()


@pytest.mark.parametrize("name", ["\udcff", "dev\n2", "a b", "", "x\x00", "tab\t"])
def test_bad_node_names(name: str) -> None:
    with pytest.raises(UsageError, match="invalid node name"):
        check_node_name(name)
    with pytest.raises(UsageError, match="invalid node name"):
        World().add_node(name, object())


@pytest.mark.parametrize("name", ["dev", "p2-1", "élan", "cloud"])
def test_good_node_names(name: str) -> None:
    check_node_name(name)
