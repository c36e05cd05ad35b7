"""``explore()``: search a scenario for property violations, shrink them, write replay files.

How this works
--------------
1. Load the scenario (a built-in name, a TOML file, or a :class:`ScenarioFile`), apply overrides
   (firmware, firmware options), resolve the properties (the scenario's ``[properties]`` unless
   given).
   ``out`` is checked (and made) now, so a bad folder fails before the search.
2. Run the strategy's plans until the budget (runs or wall seconds) is spent - or, with
   ``stop_at_first``, until the first violation, or until Ctrl-C (``KeyboardInterrupt``: the
   report is marked ``interrupted`` and keeps what was found). Every run is independent and
   deterministic; coverage (abstract states at decision points, (state, action) pairs) and
   violations by property are counted. A firmware that raises is a violation of
   ``firmware-raised`` (``user_code``).
3. For each distinct (property, signature) keep the first failing run and shrink it (the
   Hypothesis strategy's first key is shrunk by Hypothesis itself) - not after a Ctrl-C, and a
   Ctrl-C while shrinking keeps the rest unshrunk.
4. With ``out``: for each finding write ``<property>-<signature>.toml`` (the replay file: the
   world, the seed, the shrunk schedule, the properties and the expected violation), the trace
   of its replay ``.jsonl`` (what ``fwsim scenario run --file`` writes, byte for byte) and, with
   ``diagram``, ``.mmd`` and ``.html`` sequence diagrams.
"""

from __future__ import annotations

import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import IO, Any

from ..apps import resolve_firmware
from ..kernel.errors import ConfigurationError
from ..kernel.output_paths import output_folder
from ..kernel.trace import read_jsonl
from .model import Coverage, Violation, seconds
from .properties import DEFAULT_PROPERTIES, PropertyLike, PropertySpec, resolve_all
from .run import RunOutcome, execute
from .scenario_file import ExploreDesc, ScenarioFile, dump, firmware_options, load, loads
from .shrink import schedule_size, shrink
from .strategies import STRATEGIES, hypothesis_search, make_strategy
from .thingsboard_properties import TB_DEFAULT_PROPERTIES
from .user_code import FIRMWARE_RAISED

DEFAULT_SCENARIO = "p2-provisioning"
DEFAULT_RUNS = 200


# -- scenarios -------------------------------------------------------------------------------------


def builtin_scenarios() -> dict[str, str]:
    """Built-in scenario files: name -> TOML text (``firmware_sim/scenarios/toml``)."""
    out: dict[str, str] = {}
    # the ThingsBoard exploration scenarios live beside the explorer's ThingsBoard vocabulary
    for folder in (resources.files("firmware_sim.scenarios") / "toml",
                   resources.files("firmware_sim.explore") / "scenarios"):
        for entry in sorted(folder.iterdir(), key=lambda e: e.name):
            if entry.name.endswith(".toml"):
                out[entry.name.removesuffix(".toml")] = entry.read_text(encoding="utf-8")
    return out


def load_scenario(ref: str | Path | ScenarioFile) -> ScenarioFile:
    """A built-in scenario by name, a scenario file by path, or a :class:`ScenarioFile`."""
    if isinstance(ref, ScenarioFile):
        return ref
    text = str(ref)
    builtins = builtin_scenarios()
    if text in builtins:
        return loads(builtins[text], f"{text}.toml")
    if text.endswith(".toml") or Path(text).exists():
        return load(text)
    raise ConfigurationError(f"unknown scenario {text!r}: give a built-in name "
                             f"({', '.join(builtins)}) or a .toml file")


def with_firmware(scenario: ScenarioFile, firmware: str | None = None,
                  options: Mapping[str, Any] | None = None) -> ScenarioFile:
    """Every device of ``scenario`` runs ``firmware`` and/or with these firmware options."""
    if firmware is None and not options:
        return scenario
    if not scenario.world.devices:
        raise ConfigurationError(f"scenario {scenario.name} has no Particle device: firmware and "
                                 "firmware options do not apply")
    if firmware is not None:
        resolve_firmware(firmware)  # a clear error now, not in the first run
    devices = []
    for device in scenario.world.devices:
        merged = {**device.options, **(options or {})}
        firmware_options(merged, where=f"device {device.name}")
        devices.append(replace(device, firmware=firmware or device.firmware, options=merged))
    return replace(scenario, world=replace(scenario.world, devices=tuple(devices)))


# -- the report ------------------------------------------------------------------------------------


@dataclass
class Finding:
    """One distinct violation (property, signature): its first run and its shrunk replay."""

    key: tuple[str, str]
    run_index: int
    first: RunOutcome
    violation: Violation
    scenario: ScenarioFile
    before: int
    after: int
    shrink_runs: int
    #: who shrunk it ("fwsim", "hypothesis", ...); None: not shrunk (``--no-shrink``, Ctrl-C)
    shrunk_by: str | None = "fwsim"
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def name(self) -> str:
        prop, signature = self.key
        return f"{prop}-{signature}" if signature else prop

    @property
    def file_stem(self) -> str:
        """:attr:`name` as a file name: a user property's ``module:attr`` or ``checks.py:Mine``
        keeps letters, digits, ``.``, ``-`` and ``_``; anything else becomes ``_``."""
        return re.sub(r"[^A-Za-z0-9._-]+", "_", self.name).strip("._") or "finding"

    def steps(self) -> list[str]:
        return self.scenario.schedule.describe()


@dataclass
class ExploreReport:
    scenario: str
    strategy: str
    seed: int
    properties: list[str]
    runs: int = 0
    wall_s: float = 0.0
    simulated_s: float = 0.0
    coverage: Coverage = field(default_factory=Coverage)
    violating_runs: Counter[str] = field(default_factory=Counter)
    signatures: Counter[tuple[str, str]] = field(default_factory=Counter)
    findings: list[Finding] = field(default_factory=list)
    exhausted: bool | None = None
    first_violation_s: float | None = None
    first_violation_run: int | None = None
    #: the search was stopped with Ctrl-C (SIGINT): the findings are the ones found until then
    interrupted: bool = False
    #: wall seconds spent shrinking the findings and writing their files (after ``wall_s``)
    shrink_s: float = 0.0
    write_s: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.violating_runs

    def found(self, prop: str, signature: str | None = None) -> bool:
        return any(k[0] == prop and (signature is None or k[1] == signature)
                   for k in self.signatures)

    def finding(self, prop: str, signature: str | None = None) -> Finding:
        for item in self.findings:
            if item.key[0] == prop and (signature is None or item.key[1] == signature):
                return item
        raise KeyError((prop, signature))

    def summary(self) -> str:
        rate = self.runs / self.wall_s if self.wall_s > 0 else 0.0
        # the search's time, then what shrinking and writing the findings added
        after = ", ".join(
            ([f"shrinking {self.shrink_s:.2f} s"]
             if any(f.shrunk_by is not None for f in self.findings) else [])
            + ([f"writing {self.write_s:.2f} s"] if self.write_s else []))
        after = f"; then {after}" if after else ""
        lines = [f"explored {self.scenario} with {self.strategy} (seed {self.seed}): "
                 f"{_runs(self.runs)} in {self.wall_s:.2f} s ({rate:.0f} runs/s), "
                 f"{self.simulated_s:.0f} simulated seconds{after}",
                 f"coverage: {len(self.coverage.states)} distinct states, "
                 f"{len(self.coverage.pairs)} distinct (state, action) pairs"
                 + ("" if self.exhausted is None else
                    f"; search space {'exhausted' if self.exhausted else 'NOT exhausted'}"),
                 f"properties: {', '.join(self.properties)}"]
        if self.interrupted:
            lines.insert(0, f"interrupted after {_runs(self.runs)} (Ctrl-C): what was found "
                         "so far follows" + (", not shrunk" if self.findings else ""))
        if self.ok:
            lines.append(f"no violation in {_runs(self.runs)}")
        else:
            by_prop = ", ".join(f"{p}: {_runs(n)}" for p, n in sorted(self.violating_runs.items()))
            lines.append(f"violations: {by_prop}")
            if self.first_violation_s is not None:
                lines.append(f"first violation after {self.first_violation_s:.3f} s wall "
                             f"(run {self.first_violation_run})")
        for found in self.findings:
            if found.shrunk_by is None:
                shrunk = (f"not shrunk{' (interrupted)' if self.interrupted else ''}: "
                          f"{found.after} actions+faults")
            else:
                shrunk = (f"shrunk by {found.shrunk_by} from {found.before} to {found.after} "
                          f"actions+faults ({found.shrink_runs} replays)")
            lines.append(f"- {found.name}: {_runs(self.signatures[found.key])}; {shrunk}")
            lines.append(f"    {found.violation.message}")
            for step in found.steps():
                lines.append(f"    {step}")
            what = ("the firmware raised" if found.key[0] == FIRMWARE_RAISED
                    else "property broke")
            lines.append(f"    {what} at t={seconds(found.violation.t_us):.6f} s, "
                         f"trace record {found.violation.seq}")
            for label, path in found.files.items():
                lines.append(f"    {label}: {path}")
            if "replay" in found.files:
                lines.append(f"    replay: fwsim scenario run --file {found.files['replay']}")
        return "\n".join(lines)


def _runs(count: int) -> str:
    return f"{count} run{'' if count == 1 else 's'}"


def _duration(seconds_left: float) -> str:
    whole = max(0, round(seconds_left))
    return f"{whole} s" if whole < 120 else f"{whole // 60} min {whole % 60:02d} s"


class Progress:
    """A one-line progress bar on a terminal (nothing when ``stream`` is not a TTY unless
    forced): runs done of the budget with an ETA (``--runs``) or the seconds spent of the
    budget (``--seconds``), then what the explorer is doing after the search (shrinking,
    writing). :meth:`done` ends the line, so what is printed next starts on its own."""

    def __init__(self, total: int | None, seconds_budget: float | None,
                 stream: IO[str] | None, label: str) -> None:
        self.total = total
        self.seconds = seconds_budget
        self.stream = stream
        self.label = label
        self.started = time.perf_counter()
        self._last = 0.0
        self._width = 0

    def _show(self, text: str) -> None:
        assert self.stream is not None
        # blanks over the rest of a longer previous line (no terminal escape: a log file too)
        self.stream.write(f"\r{text}{' ' * max(0, self._width - len(text))}")
        self.stream.flush()
        self._width = len(text)

    def update(self, runs: int, violating: int, *, force: bool = False) -> None:
        if self.stream is None:
            return
        now = time.perf_counter()
        if not force and now - self._last < 0.1:
            return
        self._last = now
        elapsed = now - self.started
        fraction = (runs / self.total if self.total else
                    elapsed / self.seconds if self.seconds else 0.0)
        fraction = min(1.0, fraction)
        bar = "#" * int(fraction * 30)
        rate = runs / elapsed if elapsed > 0 else 0.0
        if self.total:
            done = f"{runs}/{self.total} runs"
            left = (self.total - runs) / rate if rate > 0 else None
            budget = f", ETA {_duration(left)}" if left is not None and runs < self.total else ""
        else:
            done = _runs(runs)
            budget = (f", {min(elapsed, self.seconds):.0f}/{self.seconds:g} s"
                      if self.seconds else "")
        self._show(f"{self.label} [{bar:<30}] {done}, {violating} violating, "
                   f"{rate:.0f} runs/s{budget}")

    def status(self, text: str) -> None:
        """What the explorer does now (after the search), on the same line."""
        if self.stream is not None:
            self._show(f"{self.label}: {text}")

    def done(self) -> None:
        if self.stream is not None and self._width:
            self.stream.write("\n")
            self.stream.flush()
            self._width = 0


# -- explore ---------------------------------------------------------------------------------------


def explore(scenario: str | Path | ScenarioFile = DEFAULT_SCENARIO, *,
            properties: Iterable[PropertyLike] | None = None, strategy: str = "random",
            runs: int | None = None, seconds: float | None = None, seed: int = 0,
            out: str | Path | None = None, diagram: bool = False, shrink_failures: bool = True,
            stop_at_first: bool = False, firmware: str | None = None,
            options: Mapping[str, Any] | None = None, depth: int | None = None,
            pct_depth: int = 3, progress: IO[str] | bool | None = None,
            on_run: Callable[[RunOutcome], None] | None = None) -> ExploreReport:
    """Search ``scenario`` for violations of ``properties`` (see the module header)."""
    if strategy not in STRATEGIES:
        raise ConfigurationError(f"unknown strategy {strategy!r} (known: "
                                 f"{', '.join(STRATEGIES)})")
    if runs is not None and seconds is not None:
        raise ConfigurationError("give a budget in runs or in seconds, not both")
    if runs is not None and runs < 1:
        raise ConfigurationError("runs must be at least 1")
    if seconds is not None and not seconds > 0:
        raise ConfigurationError("seconds must be positive")
    if runs is None and seconds is None:
        runs = DEFAULT_RUNS
    base = with_firmware(load_scenario(scenario), firmware, options)
    explore_desc = base.explore or ExploreDesc()
    if depth is not None:
        if depth < 1:
            raise ConfigurationError("depth must be at least 1")
        explore_desc = replace(explore_desc, max_actions=depth)
    base = replace(base, explore=explore_desc)
    if properties is None:
        defaults = (TB_DEFAULT_PROPERTIES if base.world.cloud == "thingsboard"
                    else DEFAULT_PROPERTIES)
        specs = resolve_all(base.properties) if base.properties else resolve_all(defaults)
    else:
        specs = resolve_all(properties)
    if not specs:
        raise ConfigurationError("no property to check")
    report = ExploreReport(base.name, strategy, seed, [s.name for s in specs])
    stream: IO[str] | None
    if progress is True:
        stream = sys.stderr
    elif progress is None:
        stream = sys.stderr if sys.stderr.isatty() else None
    elif progress is False:
        stream = None
    else:
        stream = progress
    # a bad --out fails now, not after the search
    out_folder = output_folder(out) if out is not None else None
    bar = Progress(runs, seconds, stream, f"explore {base.name} ({strategy})")
    violating = [0]
    started = time.perf_counter()
    deadline = started + seconds if seconds is not None else None
    first_runs: dict[tuple[str, str], tuple[int, RunOutcome]] = {}

    def count(outcome: RunOutcome) -> None:
        index = report.runs
        report.runs += 1
        report.simulated_s += outcome.end_us / 1e6
        report.coverage.update(outcome.coverage)
        for prop in {v.prop for v in outcome.violations}:
            report.violating_runs[prop] += 1
        for key in {v.key for v in outcome.violations}:
            report.signatures[key] += 1
            first_runs.setdefault(key, (index, outcome))
        if outcome.violations:
            violating[0] += 1
        if outcome.violations and report.first_violation_s is None:
            report.first_violation_s = time.perf_counter() - started
            report.first_violation_run = index
        if on_run is not None:
            on_run(outcome)
        bar.update(report.runs, violating[0])

    def out_of_budget() -> bool:
        if stop_at_first and first_runs:
            return True
        if deadline is not None:
            return time.perf_counter() >= deadline
        return report.runs >= (runs or 0)

    hypothesis_shrunk: dict[tuple[str, str], tuple[RunOutcome, int]] = {}
    try:
        if strategy == "hypothesis":
            chunk = 0
            while not out_of_budget():
                remaining = (runs - report.runs) if runs is not None else 100
                result = hypothesis_search(base, specs, runs=remaining,
                                           seed=seed * 1_000 + chunk, on_outcome=count,
                                           should_stop=out_of_budget,
                                           known=frozenset(first_runs) - {None})
                if result.key is not None and result.shrunk is not None:
                    hypothesis_shrunk.setdefault(result.key, (result.shrunk, result.shrink_runs))
                elif runs is not None:
                    break  # Hypothesis ran its examples and found nothing new
                chunk += 1
        else:
            plans = make_strategy(strategy, seed, explore_desc, pct_depth=pct_depth)
            for plan in plans.plans():
                if out_of_budget():
                    break
                outcome = execute(base, specs, decider=plan.decider, seed=plan.seed,
                                  tiebreak=plan.tiebreak)
                plans.feedback(plan, outcome)
                count(outcome)
            report.exhausted = plans.exhausted
        bar.update(report.runs, violating[0], force=True)
    except KeyboardInterrupt:
        # Ctrl-C: keep what was found (unshrunk: shrinking could take as long again)
        report.interrupted = True
    finally:
        bar.done()  # a message printed next (an error, "interrupted") starts on its own line
    report.wall_s = time.perf_counter() - started
    try:
        _findings(report, base, specs, first_runs, hypothesis_shrunk,
                  shrink_failures=shrink_failures, bar=bar)
        report.shrink_s = time.perf_counter() - started - report.wall_s
        written = time.perf_counter()
        for number, finding in enumerate(report.findings, 1):
            finding.scenario = _replay_file(finding, report, specs)
            if out_folder is not None:
                bar.status(f"writing {number}/{len(report.findings)} {finding.name}")
                _write(finding, out_folder, diagram)
        report.write_s = time.perf_counter() - written if out_folder is not None else 0.0
    finally:
        bar.done()
    return report


def _findings(report: ExploreReport, base: ScenarioFile, specs: list[PropertySpec],
              first_runs: Mapping[tuple[str, str], tuple[int, RunOutcome]],
              hypothesis_shrunk: Mapping[tuple[str, str], tuple[RunOutcome, int]], *,
              shrink_failures: bool, bar: Progress) -> None:
    """One :class:`Finding` per distinct violation, shrunk unless ``shrink_failures`` is false
    or the search was interrupted; a Ctrl-C while shrinking keeps the rest unshrunk."""
    for number, (key, (index, outcome)) in enumerate(first_runs.items(), 1):
        violation = next(v for v in outcome.violations if v.key == key)
        final = base.with_run(seed=outcome.seed, tiebreak=outcome.tiebreak,
                              schedule=outcome.schedule)
        finding = Finding(key, index, outcome, violation, final,
                          schedule_size(outcome.schedule), schedule_size(outcome.schedule), 0,
                          shrunk_by=None)
        if key in hypothesis_shrunk:
            shrunk, used = hypothesis_shrunk[key]
            finding.scenario = base.with_run(seed=shrunk.seed, tiebreak=shrunk.tiebreak,
                                             schedule=shrunk.schedule)
            finding.violation = next(v for v in shrunk.violations if v.key == key)
            finding.after, finding.shrink_runs, finding.shrunk_by = (
                schedule_size(shrunk.schedule), used, "hypothesis")
        if shrink_failures and not report.interrupted:
            label = f"shrinking {number}/{len(first_runs)} {finding.name}"
            replays = [0]

            def progress(label: str = label, replays: list[int] = replays) -> None:
                replays[0] += 1
                if replays[0] % 5 == 1:
                    bar.status(f"{label} ({replays[0]} replays)")

            bar.status(label)
            try:
                shrunk_result = shrink(base, specs, outcome if key not in hypothesis_shrunk
                                       else hypothesis_shrunk[key][0], key, on_run=progress)
            except KeyboardInterrupt:
                report.interrupted = True
            else:
                finding.scenario = shrunk_result.scenario
                finding.violation = shrunk_result.violation
                finding.after = shrunk_result.after
                finding.shrink_runs += shrunk_result.runs
                finding.shrunk_by = ("hypothesis, then fwsim"
                                     if finding.shrunk_by == "hypothesis" else "fwsim")
        report.findings.append(finding)
    report.findings.sort(key=lambda f: f.key)


def _replay_file(finding: Finding, report: ExploreReport, specs: list[PropertySpec]
                 ) -> ScenarioFile:
    prop, signature = finding.key
    notes: tuple[str, ...] = (
        f"Found by fwsim explore: scenario {report.scenario}, strategy {report.strategy}, "
        f"seed {report.seed}, run {finding.run_index}.",
        (f"The firmware raised {signature}: " if prop == FIRMWARE_RAISED else
         f"Property {prop} broke{f' ({signature})' if signature else ''}: ")
        + finding.violation.message,
        (f"Shrunk by {finding.shrunk_by} from {finding.before} to {finding.after} actions and "
         f"fault firings ({finding.shrink_runs} replays)." if finding.shrunk_by is not None else
         f"Not shrunk: {finding.after} actions and fault firings."),
        "Replay it (byte-identical trace): fwsim scenario run --file <this file> --trace T.jsonl",
    )
    replayable = {s.name: dict(s.params) for s in specs if _resolvable(s.name)}
    if prop not in replayable and prop != FIRMWARE_RAISED:
        notes = (*notes, f"Property {prop} is a Python object, not named in this file: replay "
                 "it with firmware_sim.explore.execute(load(<this file>), [<the property>]).")
    return replace(finding.scenario, name=finding.name, notes=notes,
                   description=f"{prop} violated: {signature or 'see the message'}",
                   properties=replayable, expect=finding.key, explore=None)


def _resolvable(name: str) -> bool:
    from .properties import GROUPS, PROPERTIES

    return name in PROPERTIES or name in GROUPS or ":" in name


def _write(finding: Finding, out: Path, diagram: bool) -> None:
    stem = out / finding.file_stem
    replay = dump(finding.scenario, stem.parent / f"{stem.name}.toml")
    finding.files["replay"] = replay
    trace = stem.parent / f"{stem.name}.jsonl"
    outcome = execute(finding.scenario, resolve_all(finding.scenario.properties),
                      trace_path=trace)
    finding.files["trace"] = trace
    if finding.key[0] in (*finding.scenario.properties, FIRMWARE_RAISED) and not any(
            v.key == finding.key for v in outcome.violations):
        raise ConfigurationError(f"the replay of {replay} did not reproduce {finding.name}")
    if diagram:
        from ..diagram import write_diagrams

        world = finding.scenario.world
        what = (f"{world.devices[0].firmware} firmware" if world.devices
                else f"{world.cloud}, {len(world.buttons)} claim button(s)")
        mermaid, html = write_diagrams(
            read_jsonl(trace), stem, title=f"{finding.name} ({what})",
            summary=[finding.violation.describe(), *finding.scenario.schedule.describe()])
        finding.files["mermaid"] = mermaid
        finding.files["html"] = html


__all__ = ["DEFAULT_RUNS", "DEFAULT_SCENARIO", "ExploreReport", "Finding", "Progress",
           "builtin_scenarios", "explore", "load_scenario", "with_firmware"]
