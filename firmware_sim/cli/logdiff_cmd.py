"""``fwsim logdiff REAL.log [--scenario NAME | --trace T.jsonl]``: a real device's serial log
against the model's timeline (docs/logdiff.md).

The model's side is a scenario run here on virtual time (``--seed``, ``--timing``) or the log
records of a trace file. Output: a text report (default), ``--json``, and ``--html FILE`` (a
side-by-side page; ``-`` writes it to stdout). Exit status 0 when the logs agree, 1 when they
differ, 2 on bad input.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from .common import seed_arg

if TYPE_CHECKING:
    from ..logdiff import LogLine


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "logdiff", help="compare a real device's serial log with the model's timeline",
        description="Parse a Device OS serial log (10-digit uptime, [category] LEVEL: message; "
        "other lines are ignored), align it with the model's log by message template, and "
        "report lines only in the real log, lines only in the model, order differences and "
        "timing deltas. Exit status 0 when the logs agree.")
    parser.add_argument("real", metavar="REAL.log", help="the real device's serial log")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--scenario", metavar="NAME",
                        help="run this scenario for the model's side (default: resume-bug)")
    source.add_argument("--trace", metavar="T.jsonl", help="read the model's side from a trace")
    parser.add_argument("--seed", type=seed_arg, default=0, help="scenario seed (default 0)")
    parser.add_argument("--timing", default="thread", metavar="PROFILE",
                        help="scenario timing profile: thread (default) or fast")
    parser.add_argument("--device", metavar="NAME", help="which device's log (default: the "
                        "scenario's device, or the only one in the trace)")
    parser.add_argument("--absolute", action="store_true",
                        help="compare uptimes directly (a log captured from power-up); default: "
                        "intervals between consecutive aligned lines")
    parser.add_argument("--tolerance", type=_fraction, default=0.10, metavar="FRACTION",
                        help="allowed timing deviation as a fraction of the real interval "
                        "(default 0.10)")
    parser.add_argument("--min-tolerance-ms", type=_non_negative, default=20, metavar="MS",
                        help="the deviation always allowed (default 20 ms)")
    parser.add_argument("--strict", action="store_true",
                        help="also count model lines between the aligned lines as differences")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print the report as JSON")
    output.add_argument("--html", metavar="FILE", help="write a side-by-side HTML page "
                        "(- for stdout)")
    parser.set_defaults(handler=_run)


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value <= 10:
        raise argparse.ArgumentTypeError("the tolerance must lie between 0 and 10")
    return value


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return value


def _scenario_log(name: str, seed: int, timing: str, device: str | None
                  ) -> tuple[list[LogLine], str]:
    from ..logdiff import model_log_from_records
    from ..scenarios import get_scenario
    from ..scenarios.base import default_provisioning
    from ..system.timing import timing_profile
    from ..testbed import Testbed

    scenario = get_scenario(name)
    spec = replace(scenario.stage(), seed=seed, timing=timing_profile(timing).name)
    testbed = Testbed(spec)
    try:
        scenario.runner(testbed, default_provisioning)
    finally:
        testbed.close(power_off=False)
    lines, node = model_log_from_records(testbed.world.trace.records,
                                         device or testbed.device.name)
    return lines, f"scenario {name} (seed {seed}, timing {timing}, device {node})"


def _run(args: argparse.Namespace) -> int:
    from ..kernel.errors import UsageError
    from ..logdiff import (
        Sources,
        TimingMode,
        Tolerance,
        diff_logs,
        model_log_from_trace,
        parse_log,
        render_html,
        render_json,
        render_text,
    )

    parsed = parse_log(args.real)
    if not parsed.lines:
        raise UsageError(f"{args.real} holds no Device OS log lines (expected lines like "
                         "'0000012345 [category] INFO: message'; "
                         f"{len(parsed.noise)} other lines)")
    model: list[LogLine]
    if args.trace:
        model, node = model_log_from_trace(args.trace, args.device)
        described = f"trace {args.trace} (device {node})"
    else:
        model, described = _scenario_log(args.scenario or "resume-bug", args.seed, args.timing,
                                         args.device)
    diff = diff_logs(parsed.lines, model,
                     mode=TimingMode.ABSOLUTE if args.absolute else TimingMode.RELATIVE,
                     tolerance=Tolerance(args.tolerance, args.min_tolerance_ms),
                     strict=args.strict)
    sources = Sources(str(args.real), described, len(parsed.noise))
    if args.json:
        sys.stdout.write(render_json(diff, sources) + "\n")
    elif args.html:
        page = render_html(diff, sources)
        if args.html == "-":
            sys.stdout.write(page)
        else:
            _write(Path(args.html), page)
            sys.stdout.write(render_text(diff, sources))
            print(f"HTML report written to {args.html}")
    else:
        sys.stdout.write(render_text(diff, sources))
    return 0 if diff.agree else 1


def _write(path: Path, text: str) -> None:
    from ..kernel.errors import UsageError

    try:
        path.write_text(text, encoding="utf-8", errors="backslashreplace")
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
