"""``fwsim scenario list|run``: the built-in stories, and scenario files (``--file F.toml``: a
world, timed actions, fault firings and properties in TOML; what ``fwsim explore`` writes)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..kernel.errors import UsageError
from .common import BUILTIN_NAMES, add_timing_argument, seed_arg


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("scenario", help="list and run the claim-code scenarios",
                            description="Reproducible claim-code scenarios.")
    cmds = parser.add_subparsers(dest="scenario_command", metavar="SUBCOMMAND")
    cmds.required = True
    lst = cmds.add_parser("list", help="list the scenarios", description="List the scenarios.")
    lst.add_argument("--files", action="store_true",
                     help="list the built-in scenario files instead (fwsim scenario run --file "
                     "NAME, fwsim explore --scenario NAME)")
    lst.set_defaults(handler=_list)
    run = cmds.add_parser("run", help="run one scenario and print its Device OS timeline",
                          description="Run a scenario on virtual time, print the Device OS log "
                          "timeline and a one-line verdict. Exit status 0 when the scenario "
                          "reproduces its expected behaviour.")
    run.add_argument("name", nargs="?", help="scenario name (see `fwsim scenario list`)")
    run.add_argument("--all", action="store_true", help="run every scenario, one after another")
    run.add_argument("--file", metavar="F.toml",
                     help="run a scenario file (a replay file of fwsim explore, your own, or a "
                     "built-in one by name; docs/explore.md); its seed is the file's unless "
                     "--seed is given")
    run.add_argument("--seed", type=seed_arg, default=None, help="world seed (default 0)")
    run.add_argument("--diagram", metavar="STEM",
                     help="write the run's sequence diagram as STEM.mmd and STEM.html")
    run.add_argument("--trace", metavar="FILE.jsonl", help="write the full structured trace")
    run.add_argument("--trace-dir", metavar="DIR",
                     help="write each scenario's trace as DIR/NAME.jsonl (with --all; the "
                     "folder is created)")
    run.add_argument("--firmware", metavar="NAME|MODULE:CLASS|FILE.py",
                     help="run the scenario's device with this application firmware instead "
                     "of its own (Particle scenarios; the checks stay the scenario's): a "
                     "built-in name (" + ", ".join(BUILTIN_NAMES) + "), module:Class or "
                     "file.py[:Class]. With --all the ThingsBoard scenarios are skipped. An "
                     "exception the firmware raises ends the run with a one-line error naming "
                     "its file and line (exit status 2)")
    run.add_argument("--json", action="store_true",
                     help="print one JSON document (verdict, checks, seed, timings) instead of "
                     "the timeline")
    run.add_argument("--quiet", action="store_true", help="print only the verdict")
    add_timing_argument(run)
    run.set_defaults(handler=_run)


def _list(args: argparse.Namespace) -> int:
    from ..explore import builtin_scenarios, loads
    from ..scenarios import CATALOG

    if args.files:
        files = {name: loads(text, name) for name, text in builtin_scenarios().items()}
        width = max(len(name) for name in files)
        for name, scenario_file in files.items():
            print(f"{name:<{width}}  {scenario_file.description}")
        return 0
    width = max(len(name) for name in CATALOG)
    for name, scenario in CATALOG.items():
        print(f"{name:<{width}}  {scenario.summary}")
    return 0


def _run(args: argparse.Namespace) -> int:
    import json

    from ..kernel.errors import UsageError
    from ..scenarios import CATALOG

    if args.file is not None:
        if args.all or args.name is not None:
            raise UsageError("give a scenario name, --all or --file, not several")
        if args.json or args.trace_dir or args.firmware:
            raise UsageError("--json, --trace-dir and --firmware apply to catalog scenarios, "
                             "not to --file")
        _check_outputs(args.trace, None, args.diagram)
        return _run_file(args.file, args.seed, args.trace, args.diagram, args.quiet)
    seed = 0 if args.seed is None else args.seed
    if args.all == (args.name is not None):
        raise UsageError("give a scenario name, --all or --file (see `fwsim scenario list`)")
    names = list(CATALOG) if args.all else [args.name]
    if args.all and (args.trace or args.diagram):
        raise UsageError("--trace and --diagram need a single scenario (--trace-dir DIR "
                         "writes one trace per scenario)")
    if args.trace and args.trace_dir:
        raise UsageError("give --trace or --trace-dir, not both")
    _check_outputs(args.trace, args.trace_dir, args.diagram)
    reports = []
    for name in names:
        trace = args.trace
        if args.trace_dir:
            from pathlib import Path

            trace = str(Path(args.trace_dir) / f"{name}.jsonl")
        reports.append(_run_one(name, seed, trace, args.quiet or args.json, args.diagram,
                                args.timing, firmware=args.firmware, show=not args.json,
                                skip_foreign=args.all))
    failures = [r["name"] for r in reports if not r["passed"]]
    if args.json:
        document: dict[str, object] = reports[0] if not args.all else {
            "seed": seed, "timing": args.timing, "total": len(reports),
            "passed": len(reports) - len(failures), "failed": failures, "scenarios": reports}
        print(json.dumps(document, indent=2))
    elif args.all:
        print(f"{len(reports) - len(failures)}/{len(reports)} scenarios reproduced their "
              "expected behaviour" + (f"; failed: {', '.join(failures)}" if failures else ""))
    return 1 if failures else 0


def _with_firmware(story: Any, firmware: str) -> Any:
    """``story`` with every device running ``firmware`` (a Particle scenario only)."""
    from dataclasses import replace

    from ..kernel.errors import UsageError
    from ..scenarios import Scenario

    if not isinstance(story, Scenario):
        raise UsageError(f"scenario {story.name} has no Particle device: --firmware does not "
                         "apply")
    stage = story.stage

    def staged() -> Any:
        spec = stage()
        return replace(spec, devices=tuple(replace(d, firmware=firmware)
                                           for d in spec.devices))

    return replace(story, stage=staged)


class FirmwareError(UsageError):
    """The user's ``--firmware`` raised: reported with its file and line (exit status 2)."""


def _check_outputs(trace: str | None, trace_dir: str | None, diagram: str | None) -> None:
    """A trace or diagram path that cannot be written fails before the run, in one line."""
    from ..kernel.output_paths import check_output_file, output_folder

    if trace:
        check_output_file(trace, "trace file")
    if trace_dir:
        output_folder(trace_dir, "--trace-dir")
    if diagram:
        for suffix in (".mmd", ".html"):
            check_output_file(f"{diagram}{suffix}", "the diagram")


def _run_one(name: str, seed: int, trace: str | None, quiet: bool,
             diagram: str | None = None, timing: str | None = None, *,
             firmware: str | None = None, show: bool = True,
             skip_foreign: bool = False) -> dict[str, Any]:
    import time

    from ..apps import resolve_firmware
    from ..explore.user_code import raised, source_file, user_frame
    from ..kernel.errors import FwSimError
    from ..scenarios import Scenario, get_story

    story = get_story(name)
    user_code: str | None = None
    if firmware is not None:
        if not isinstance(story, Scenario) and skip_foreign:
            reason = "no Particle device: --firmware applies to Particle scenarios"
            if show:
                print(f"SKIP {name} (seed {seed}): {reason}")
            return {"name": name, "seed": seed, "passed": True, "skipped": reason,
                    "verdict": None, "checks": [], "wall_seconds": 0.0, "trace": None,
                    "firmware": firmware}
        story = _with_firmware(story, firmware)
        # a bad reference is a one-line error before the run
        user_code = source_file(resolve_firmware(firmware))
    started = time.perf_counter()
    try:
        result = (story.run(seed, trace_path=trace, timing=timing)
                  if isinstance(story, Scenario) else story.run(seed, trace_path=trace))
    except FwSimError:
        raise
    except Exception as exc:
        where = user_frame(exc, user_code)
        if where is None:
            raise
        raise FirmwareError(raised(f"firmware {firmware}", exc, where)) from None
    wall = time.perf_counter() - started
    report: dict[str, Any] = {"name": result.name, "seed": result.seed, "passed": True,
                              "skipped": result.skipped, "verdict": None, "checks": [],
                              "wall_seconds": round(wall, 3), "trace": trace,
                              "firmware": firmware}
    if result.skipped is not None:
        if show:
            print(f"SKIP {result.name} (seed {result.seed}): {result.skipped}")
        return report
    report.update(passed=result.passed, verdict=result.verdict,
                  checks=[{"description": c.description, "ok": c.ok} for c in result.checks],
                  simulated_seconds=round(result.world.now, 6),
                  timing=timing if isinstance(story, Scenario) else None)
    if diagram:
        from ..diagram import write_diagrams

        paths = write_diagrams(result.world.trace.records, diagram,
                               title=f"scenario {name} (seed {seed})", summary=[result.verdict])
        report["diagram"] = [str(p) for p in paths]
        if not quiet:
            print(f"# diagram written to {paths[0]} and {paths[1]}")
    if not show:
        return report
    out = sys.stdout
    if not quiet:
        print(f"# scenario {result.name}, seed {result.seed}, {result.header}"
              + (f", firmware {firmware}" if firmware else ""), file=out)
        for line in result.timeline:
            print(line, file=out)
        print("#", file=out)
        for check in result.checks:
            print(f"# [{'ok' if check.ok else 'FAILED'}] {check.description}", file=out)
        if trace:
            print(f"# trace written to {trace}", file=out)
    status = "PASS" if result.passed else "FAIL"
    failed = [c.description for c in result.checks if not c.ok]
    print(f"{status} {result.name} (seed {result.seed}): "
          + (result.verdict if result.passed else
             f"expected: {result.verdict}; failed checks: {'; '.join(failed)}"), file=out)
    return report


def _run_file(path: str, seed: int | None, trace: str | None, diagram: str | None,
              quiet: bool) -> int:
    """Replay a scenario file: same file, same seed, byte-identical trace."""
    from dataclasses import replace

    from ..explore import execute, load_scenario, resolve_all
    from ..explore.user_code import FIRMWARE_RAISED
    from ..services.log import log_lines

    scenario = load_scenario(path)
    if seed is not None:
        scenario = replace(scenario, seed=seed)
    properties = resolve_all(scenario.properties)
    if scenario.expect is not None:
        names = [spec.name for spec in properties]
        if scenario.expect[0] not in (*names, FIRMWARE_RAISED):
            raise UsageError(f"{path}: [expect] violation: unknown property "
                             f"{scenario.expect[0]!r} (the file's [properties]: "
                             f"{', '.join(names) or 'none'})")
    outcome = execute(scenario, properties, trace_path=trace, keep_records=True)
    expected = scenario.expect[0] if scenario.expect is not None else None
    for violation in outcome.violations:
        if violation.prop == FIRMWARE_RAISED and expected != FIRMWARE_RAISED:
            raise FirmwareError(violation.message)
    records = outcome.records
    out = sys.stdout
    if not quiet:
        print(f"# scenario file {path}: {scenario.name}, seed {scenario.seed}, "
              f"tie-breaks {scenario.tiebreak.describe()}", file=out)
        for step in scenario.schedule.describe():
            print(f"# {step}", file=out)
        for line in log_lines(records):
            print(line, file=out)
        print("#", file=out)
        for violation in outcome.violations:
            print(f"# [VIOLATION] {violation.describe()} (trace record {violation.seq})",
                  file=out)
        if trace:
            print(f"# trace written to {trace}", file=out)
    if diagram:
        from ..diagram import write_diagrams

        paths = write_diagrams(records, diagram, title=f"{scenario.name} (seed {scenario.seed})",
                               summary=[v.describe() for v in outcome.violations])
        if not quiet:
            print(f"# diagram written to {paths[0]} and {paths[1]}", file=out)
    keys = [v.key for v in outcome.violations]
    if scenario.expect is not None:
        prop, signature = scenario.expect
        passed = any(k[0] == prop and (not signature or k[1] == signature) for k in keys)
        what = f"{prop}{f' ({signature})' if signature else ''}"
        verdict = (f"reproduced: {what} violated" if passed
                   else f"NOT reproduced: expected {what} to be violated")
    else:
        passed = not keys
        verdict = "no property violated" if passed else (
            f"violated: {', '.join(k[0] for k in keys)}")
    print(f"{'PASS' if passed else 'FAIL'} {scenario.name} (seed {scenario.seed}): {verdict}",
          file=out)
    return 0 if passed else 1
