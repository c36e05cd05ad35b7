"""Speed of ``fwsim explore`` on one core.

Prints, for the default scenario family (p2-provisioning, default firmware, the claim-liveness
and safety properties, no shrinking):

* explored runs per second of each search strategy (target: >= 200 runs/s for random), and the
  mean simulated seconds per run;
* time to the first violation of the resume bug (claim-liveness, signature
  ``resumed-without-code``) from a cold start of the search, wall seconds (target: < 2 s), for
  several search seeds, and the wall time to shrink it.

    python benchmarks/bench_explore.py [--runs N] [--seeds N]
"""

from __future__ import annotations

import argparse
import statistics
import time

from firmware_sim.explore import explore
from firmware_sim.explore.run import RunOutcome


def throughput(strategy: str, runs: int) -> float:
    report = explore("p2-provisioning", strategy=strategy, runs=runs, seed=1,
                     shrink_failures=False, progress=False)
    rate = report.runs / report.wall_s
    print(f"{strategy:<11} {report.runs:5d} runs in {report.wall_s:6.2f} s: {rate:6.0f} runs/s, "
          f"{report.simulated_s / report.runs:5.1f} simulated s/run, "
          f"{len(report.coverage.states)} states, {len(report.coverage.pairs)} (state, action) "
          "pairs" + ("   (target >= 200 runs/s)" if strategy == "random" else ""))
    return rate


class _Found(Exception):
    pass


def time_to_resume_bug(seed: int) -> tuple[float, int, float]:
    """Wall seconds until a run shows the resume bug, the runs it took, and the wall seconds
    of searching that many runs again with shrinking and the replay file."""
    started = time.perf_counter()
    runs = [0]

    def watch(outcome: RunOutcome) -> None:
        runs[0] += 1
        if any(v.signature == "resumed-without-code" for v in outcome.violations):
            raise _Found

    try:
        explore("p2-provisioning", properties=["claim-liveness"], runs=5000, seed=seed,
                shrink_failures=False, progress=False, on_run=watch)
        first = float("inf")
    except _Found:
        first = time.perf_counter() - started
    again = time.perf_counter()
    explore("p2-provisioning", properties=["claim-liveness"], runs=runs[0], seed=seed,
            progress=False)
    return first, runs[0], time.perf_counter() - again


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1000, help="runs per strategy")
    parser.add_argument("--seeds", type=int, default=10, help="search seeds for the first "
                        "violation")
    args = parser.parse_args()
    print("explored runs per second (p2-provisioning, default firmware, one core):")
    for strategy in ("random", "pct", "exhaustive"):
        throughput(strategy, args.runs)
    throughput("hypothesis", max(50, args.runs // 5))
    print("time to the first resume-bug violation (claim-liveness, resumed-without-code):")
    firsts = []
    for seed in range(args.seeds):
        first, runs, with_shrink = time_to_resume_bug(seed)
        firsts.append(first)
        print(f"  seed {seed}: {first:.3f} s wall ({runs} runs); the same search with "
              f"shrinking: {with_shrink:.3f} s")
    print(f"median {statistics.median(firsts):.3f} s, worst {max(firsts):.3f} s "
          "(target < 2 s)")


if __name__ == "__main__":
    main()
