"""Issue 16's performance targets, and the one line each benchmark prints about them.

A benchmark prints its figures as before, then one ``target`` line per figure the issue sets
a bound on, with the bound, what this run measured and whether the run met it. A run of
another size (say 2,000 devices where the target is for 10,000) says so instead of a verdict.
One run decides nothing on a noisy machine: the lines say what this run measured, no more.

Sizes are MiB as ``ru_maxrss / 1024`` (the unit of the issue's own figures), so "2 GB" is
2,048 of them.
"""

from __future__ import annotations

#: 10,000 devices claimed by claim code in one world: wall seconds, peak RSS (MiB)
WORLD_10K_WALL_S, WORLD_10K_RSS_MB = 5.0, 256
#: 100,000 devices in one process: wall seconds, peak RSS (MiB)
WORLD_100K_WALL_S, WORLD_100K_RSS_MB = 60.0, 2048
#: ``fwsim fleet run``: devices/s with 2 shards over 1 shard, at least
SHARD_RATIO = 1.6
#: REST claims at 10 and 50 clients: requests/s at least, p99 ms below, errors
CLAIMS_PER_S, CLAIM_P99_MS, CLAIM_LEVELS = 2000.0, 50.0, (10, 50)
#: BLE handshake CPU per side over the OpenSSL floor, at most
BLE_FLOOR_RATIO = 5.0
#: scenario speed over real time, at least
SCENARIO_SPEED = 10_000.0


def target_line(what: str, bound: str, measured: str, met: bool) -> str:
    """``target <what> <bound>: measured <measured> -> met|NOT met``."""
    return f"  target {what} {bound}: measured {measured} -> {'met' if met else 'NOT met'}"


def world_lines(devices: int, wall_s: float, rss_mb: int) -> list[str]:
    """The one-world targets, for a run of ``devices`` devices."""
    bounds = {10_000: (WORLD_10K_WALL_S, WORLD_10K_RSS_MB),
              100_000: (WORLD_100K_WALL_S, WORLD_100K_RSS_MB)}.get(devices)
    if bounds is None:
        return ["  target: issue 16 bounds one world of 10,000 and of 100,000 devices "
                f"(this run: {devices:,})"]
    wall_bound, rss_bound = bounds
    return [target_line(f"{devices:,} devices in one world, wall", f"< {wall_bound:g} s",
                        f"{wall_s:.2f} s", wall_s < wall_bound),
            target_line(f"{devices:,} devices in one world, peak RSS", f"< {rss_bound:,} MB",
                        f"{rss_mb:,} MB", rss_mb < rss_bound)]


def shard_line(ratio: float, shards: int, base: int) -> str:
    if (shards, base) != (2, 1):
        return f"  target: issue 16 bounds 2 shards over 1 (this ratio: {shards} over {base})"
    return target_line("fwsim fleet run, 2 shards over 1 shard", f">= {SHARD_RATIO:g}x",
                       f"{ratio:.2f}x", ratio >= SHARD_RATIO)


def claim_line(clients: int, rate: float, p99_ms: float, errors: int) -> str | None:
    """The REST claims target for a row at ``clients`` clients (None: no target there)."""
    if clients not in CLAIM_LEVELS:
        return None
    return target_line(f"REST claims at {clients} clients",
                       f">= {CLAIMS_PER_S:,.0f}/s, p99 < {CLAIM_P99_MS:g} ms, 0 errors",
                       f"{rate:,.0f}/s, p99 {p99_ms:.1f} ms, {errors} errors",
                       rate >= CLAIMS_PER_S and p99_ms < CLAIM_P99_MS and errors == 0)


def ble_line(side: str, ratio: float) -> str:
    return target_line(f"BLE handshake CPU, {side} side", f"<= {BLE_FLOOR_RATIO:g}x the "
                       "OpenSSL floor", f"{ratio:.1f}x", ratio <= BLE_FLOOR_RATIO)


def scenario_line(speed: float) -> str:
    return target_line("scenario speed", f">= {SCENARIO_SPEED:,.0f}x real time",
                       f"{speed:,.0f}x", speed >= SCENARIO_SPEED)
