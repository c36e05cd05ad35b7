"""``fwsim scenario list|run``."""

from __future__ import annotations

import argparse
import sys

from .common import seed_arg


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("scenario", help="list and run the claim-code scenarios",
                            description="Reproducible claim-code scenarios.")
    cmds = parser.add_subparsers(dest="scenario_command", metavar="SUBCOMMAND")
    cmds.required = True
    lst = cmds.add_parser("list", help="list the scenarios", description="List the scenarios.")
    lst.set_defaults(handler=_list)
    run = cmds.add_parser("run", help="run one scenario and print its Device OS timeline",
                          description="Run a scenario on virtual time, print the Device OS log "
                          "timeline and a one-line verdict. Exit status 0 when the scenario "
                          "reproduces its expected behaviour.")
    run.add_argument("name", nargs="?", help="scenario name (see `fwsim scenario list`)")
    run.add_argument("--all", action="store_true", help="run every scenario, one after another")
    run.add_argument("--seed", type=seed_arg, default=0, help="world seed (default 0)")
    run.add_argument("--trace", metavar="FILE.jsonl", help="write the full structured trace")
    run.add_argument("--quiet", action="store_true", help="print only the verdict")
    run.set_defaults(handler=_run)


def _list(args: argparse.Namespace) -> int:
    from ..scenarios import SCENARIOS

    width = max(len(name) for name in SCENARIOS)
    for name, scenario in SCENARIOS.items():
        print(f"{name:<{width}}  {scenario.summary}")
    return 0


def _run(args: argparse.Namespace) -> int:
    from ..kernel.errors import UsageError
    from ..scenarios import SCENARIOS

    if args.all == (args.name is not None):
        raise UsageError("give a scenario name or --all (see `fwsim scenario list`)")
    if not args.all:
        return _run_one(args.name, args.seed, args.trace, args.quiet)
    if args.trace:
        raise UsageError("--trace needs a single scenario")
    failures = [name for name in SCENARIOS
                if _run_one(name, args.seed, None, args.quiet) != 0]
    print(f"{len(SCENARIOS) - len(failures)}/{len(SCENARIOS)} scenarios reproduced their "
          "expected behaviour" + (f"; failed: {', '.join(failures)}" if failures else ""))
    return 1 if failures else 0


def _run_one(name: str, seed: int, trace: str | None, quiet: bool) -> int:
    from ..scenarios import get_scenario

    scenario = get_scenario(name)
    result = scenario.run(seed, trace_path=trace)
    out = sys.stdout
    if not quiet:
        print(f"# scenario {result.name}, seed {result.seed}, device {result.device.name} "
              f"({result.device.profile.name}, id {result.device.device_id})", file=out)
        for line in result.timeline:
            print(line, file=out)
        print("#", file=out)
        for check in result.checks:
            print(f"# [{'ok' if check.ok else 'FAILED'}] {check.description}", file=out)
        if trace:
            print(f"# trace written to {trace}", file=out)
    status = "PASS" if result.passed else "FAIL"
    print(f"{status} {result.name} (seed {result.seed}): {result.verdict}", file=out)
    return 0 if result.passed else 1
