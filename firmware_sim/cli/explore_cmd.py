"""``fwsim explore``: search a scenario's orders and faults for property violations."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .common import positive_float, positive_int, seed_arg


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "explore", help="search interleavings and faults for property violations",
        description="Run a scenario many times, each time with other actions, orders, waits "
        "and faults, check properties, shrink every distinct violation to a minimal schedule "
        "and write it as a replay file (fwsim scenario run --file). Exit status 1 when a "
        "property was violated (or the firmware raised); Ctrl-C stops the search, prints "
        "what was found so far and writes it unshrunk to --out (exit status 130). See "
        "docs/explore.md.")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--scenario", metavar="NAME",
                        help="a built-in exploration scenario (default p2-provisioning; "
                        "--list shows them)")
    source.add_argument("--file", metavar="F.toml", help="a scenario file with an [explore] "
                        "table")
    parser.add_argument("--property", action="append", metavar="NAME", dest="properties",
                        help="a property to check (repeatable): a built-in name, "
                        "name:key=value,..., module:attr or file.py:attr; default: the "
                        "scenario's [properties]")
    parser.add_argument("--strategy", default="random",
                        choices=["random", "pct", "exhaustive", "hypothesis"],
                        help="search strategy (default random)")
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--runs", type=positive_int, metavar="N",
                        help="budget in runs (default 200)")
    budget.add_argument("--seconds", type=positive_float, metavar="S",
                        help="budget in wall-clock seconds")
    parser.add_argument("--seed", type=seed_arg, default=0, help="search seed (default 0)")
    parser.add_argument("--out", metavar="DIR", help="write replay files (.toml) and their "
                        "traces (.jsonl) here")
    parser.add_argument("--diagram", action="store_true",
                        help="with --out: also write sequence diagrams (.mmd, .html)")
    parser.add_argument("--firmware", metavar="REF", help="run this firmware on every device "
                        "(built-in name, module:Class, path/to/app.py[:Class])")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="a firmware option for every device, e.g. "
                        "send_claim_code_on_resume=true (repeatable)")
    parser.add_argument("--depth", type=positive_int, metavar="D",
                        help="most actions per run (the exhaustive search's depth)")
    parser.add_argument("--pct-depth", type=positive_int, default=3, metavar="D",
                        help="PCT priority change points + 1 (default 3)")
    parser.add_argument("--stop-at-first", action="store_true",
                        help="stop searching at the first violation")
    parser.add_argument("--no-shrink", action="store_true", help="do not shrink violations")
    progress = parser.add_mutually_exclusive_group()
    progress.add_argument("--progress", action="store_true", default=None,
                          help="always show the progress bar (default: on a terminal)")
    progress.add_argument("--no-progress", action="store_false", dest="progress")
    parser.add_argument("--list", action="store_true",
                        help="list the built-in scenarios, actions and properties, then exit")
    parser.set_defaults(handler=_explore)






def parse_options(items: list[str]) -> dict[str, Any]:
    from ..kernel.errors import UsageError

    options: dict[str, Any] = {}
    for item in items:
        key, eq, raw = item.partition("=")
        if not eq or not key.strip():
            raise UsageError(f"--option {item!r}: expected KEY=VALUE")
        value: Any = raw.strip()
        if value.lower() in ("true", "false"):
            value = value.lower() == "true"
        else:
            for cast in (int, float):
                try:
                    value = cast(value)
                    break
                except ValueError:
                    continue
        options[key.strip()] = value
    return options


def _list() -> int:
    from ..explore import ACTIONS, PROPERTIES, builtin_scenarios, loads
    from ..explore.properties import GROUPS

    print("scenarios:")
    for name, text in builtin_scenarios().items():
        scenario = loads(text, name)
        marker = "" if scenario.explore is not None else "  (replay only)"
        print(f"  {name:<30} {scenario.description}{marker}")
    print("actions:")
    for name, action in sorted(ACTIONS.items()):
        print(f"  {name:<30} {action.summary}")
    print("properties:")
    for name, prop in PROPERTIES.items():
        params = ", ".join(f"{k}={v}" for k, v in prop.defaults.items())
        print(f"  {name:<30} {prop.summary}{f' [{params}]' if params else ''}")
    for name, members in GROUPS.items():
        print(f"  {name:<30} {' + '.join(members)}")
    return 0


def _explore(args: argparse.Namespace) -> int:
    from ..explore import DEFAULT_SCENARIO, explore

    if args.list:
        return _list()
    if args.diagram and not args.out:
        from ..kernel.errors import UsageError

        raise UsageError("--diagram needs --out DIR")
    report = explore(args.file or args.scenario or DEFAULT_SCENARIO,
                     properties=args.properties, strategy=args.strategy, runs=args.runs,
                     seconds=args.seconds, seed=args.seed, out=args.out, diagram=args.diagram,
                     shrink_failures=not args.no_shrink, stop_at_first=args.stop_at_first,
                     firmware=args.firmware, options=parse_options(args.option) or None,
                     depth=args.depth, pct_depth=args.pct_depth, progress=args.progress)
    print(report.summary(), file=sys.stdout)
    if report.interrupted:
        return 130  # Ctrl-C, as the shell reports a SIGINT (128 + 2)
    return 0 if report.ok else 1
