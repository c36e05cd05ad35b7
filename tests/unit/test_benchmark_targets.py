"""The verdict lines the benchmarks print about issue 16's bounds (benchmarks/targets.py)."""

from __future__ import annotations

from benchmarks.targets import (
    ble_line,
    claim_line,
    scenario_line,
    shard_line,
    world_lines,
)


def test_one_world_verdicts_for_the_sizes_the_issue_bounds() -> None:
    fast, slow = world_lines(10_000, 4.99, 255), world_lines(10_000, 36.8, 256)
    assert [line.endswith("-> met") for line in fast] == [True, True]
    assert [line.endswith("-> NOT met") for line in slow] == [True, True]
    assert "measured 36.80 s" in slow[0] and "< 5 s" in slow[0]
    big = world_lines(100_000, 423.0, 1937)
    assert big[0].endswith("NOT met") and big[1].endswith("-> met") and "< 2,048 MB" in big[1]
    [other] = world_lines(2_000, 1.0, 10)
    assert "this run: 2,000" in other and "met" not in other


def test_rest_claim_verdicts() -> None:
    assert claim_line(1, 5000, 1, 0) is None  # no bound at one client
    assert str(claim_line(10, 2000, 49.9, 0)).endswith("-> met")
    assert str(claim_line(10, 1999, 10, 0)).endswith("NOT met")
    assert str(claim_line(50, 2500, 50.0, 0)).endswith("NOT met")
    assert str(claim_line(50, 2500, 10, 1)).endswith("NOT met")


def test_ratio_verdicts() -> None:
    assert shard_line(1.6, 2, 1).endswith("-> met") and shard_line(1.59, 2, 1).endswith("NOT met")
    assert "met" not in shard_line(3.0, 4, 1)
    assert ble_line("client", 5.0).endswith("-> met")
    assert ble_line("server", 5.01).endswith("NOT met")
    assert scenario_line(10_000).endswith("-> met") and scenario_line(9_999).endswith("NOT met")
