"""pytest plugin (registered through the ``pytest11`` entry point).

Fixtures (docs/pytest-plugin.md has each one's defaults and an example):

* ``fwsim_seed`` - the world seed: ``--fwsim-seed N`` (or ``$FWSIM_SEED``), 0 by default; with
  ``--fwsim-seeds 0..99`` every test that uses it runs once per seed;
* ``fwsim_testbed`` - a :class:`~firmware_sim.testbed.Testbed` with ``HomeNet`` in range and the
  Particle cloud, no device yet; ``fwsim_world`` and ``fwsim_cloud`` are its World and its
  :class:`cloud_sim.Cloud`;
* ``fwsim_make_device(name="dev", *, profile="p2", firmware=None, wifi=True, storage=None,
  timing=None, options=None, power_on=False)`` - a device factory (``wifi=True``: it knows
  ``HomeNet``; ``False``: it boots into listening mode; or a list of
  :class:`~firmware_sim.system.network.WifiCredentials`); ``fwsim_device`` is
  ``fwsim_make_device()``;
* ``fwsim_phone(device, carrier="control", *, think_time_s=1.5)`` - a
  :class:`~firmware_sim.testbed.Phone` provisioning ``device`` over ``usb``, ``ble``,
  ``serial``, ``softap`` (a Photon in listening mode), ``softap-http``, ``control`` or
  ``direct``;
* ``fwsim_trace`` - strict queries of the world's trace (:class:`StrictTrace`): an unknown kind
  or field raises :class:`UnknownTraceQuery` listing the known ones, so a misspelt negative
  assertion cannot pass;
* ``fwsim_explore`` - search a scenario for property violations (docs/explore.md).

Options: ``--fwsim-seed N``, ``--fwsim-seeds A..B[,C...]``, ``--fwsim-trace-dir DIR`` (default
``.fwsim-traces``), ``--fwsim-trace-lines N`` (default 40).

When a test that used a testbed fails, the report gets a section with the seed, the command to
rerun with it, each device's Device OS timeline (its last lines) and the last cloud records,
and the full trace is written as JSON lines to the trace directory. A failing test that ran
``fwsim_explore`` gets, per search, its seed, the command to rerun it and the replay command
of each finding. The simulator is imported
inside the fixtures, so loading the plugin costs nothing for test suites that do not use it.
"""

from __future__ import annotations

import ast
import functools
import os
import re
from collections.abc import Generator, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from cloud_sim import Cloud

    from .explore import ExploreReport
    from .kernel.trace import Trace, TraceRecord
    from .kernel.world import World
    from .system.device import Device, FirmwareOptions
    from .testbed import Phone, Testbed

_WORLD_KEY = pytest.StashKey[list[Any]]()
#: the searches a test ran with ``fwsim_explore``: (seed, whether it is the fixture's, report)
_EXPLORE_KEY = pytest.StashKey[list[tuple[int, bool, Any]]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("fwsim", "fwsim device simulator")
    group.addoption("--fwsim-seed", action="store", default=None,
                    help="seed of the fwsim worlds (default: $FWSIM_SEED or 0)")
    group.addoption("--fwsim-seeds", action="store", default=None, metavar="A..B[,C]",
                    help="run every test that uses fwsim_seed once per seed: a range A..B "
                    "(inclusive) and/or single seeds, comma-separated (e.g. 0..99)")
    group.addoption("--fwsim-trace-dir", action="store", default=".fwsim-traces",
                    help="where full traces of failed fwsim tests are written")
    group.addoption("--fwsim-trace-lines", action="store", type=int, default=40,
                    help="trace lines shown per device and for the cloud in a failure report "
                    "(0: none)")


_SEED_KEY = pytest.StashKey[int]()


_SEEDS_KEY = pytest.StashKey[list[int]]()


def pytest_configure(config: pytest.Config) -> None:
    lines = config.getoption("--fwsim-trace-lines", 40)
    if lines is not None and lines < 0:
        raise pytest.UsageError(f"--fwsim-trace-lines: must be 0 or more, not {lines}")
    sweep = config.getoption("--fwsim-seeds", None)
    if sweep is not None:
        from .kernel.errors import ConfigurationError

        try:
            config.stash[_SEEDS_KEY] = parse_seeds(sweep)
        except (ValueError, ConfigurationError) as exc:
            raise pytest.UsageError(f"--fwsim-seeds: {exc}") from None
    raw, source = config.getoption("--fwsim-seed", None), "--fwsim-seed"
    if raw is None:
        # an empty $FWSIM_SEED is unset, as in most shells' "FWSIM_SEED= pytest"
        raw, source = os.environ.get("FWSIM_SEED") or None, "$FWSIM_SEED"
    if raw is None:
        return
    from .kernel.errors import ConfigurationError
    from .kernel.world import parse_seed

    try:
        config.stash[_SEED_KEY] = parse_seed(raw)
    except ConfigurationError as exc:
        raise pytest.UsageError(f"{source}: {exc}") from None


MAX_SEEDS = 100_000


def parse_seeds(text: str) -> list[int]:
    """``"0..3,7"`` -> ``[0, 1, 2, 3, 7]`` (ranges inclusive, at most 100,000 seeds)."""
    from .kernel.world import parse_seed

    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if ".." in part:
            low_text, _, high_text = part.partition("..")
            low, high = parse_seed(low_text.strip()), parse_seed(high_text.strip())
            if high < low:
                raise ValueError(f"empty seed range {part!r}")
            if len(seeds) + (high - low + 1) > MAX_SEEDS:  # before building the list
                raise ValueError(f"at most {MAX_SEEDS} seeds")
            seeds.extend(range(low, high + 1))
        elif part:
            seeds.append(parse_seed(part))
        if len(seeds) > MAX_SEEDS:
            raise ValueError(f"at most {MAX_SEEDS} seeds")
    if not seeds:
        raise ValueError(f"no seed in {text!r}")
    return list(dict.fromkeys(seeds))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    seeds = metafunc.config.stash.get(_SEEDS_KEY, None)
    if seeds is None or "fwsim_seed" not in metafunc.fixturenames:
        return
    metafunc.parametrize("fwsim_seed", seeds, ids=[f"seed{s}" for s in seeds])


@pytest.fixture
def fwsim_seed(request: pytest.FixtureRequest) -> int:
    return request.config.stash.get(_SEED_KEY, 0)


@pytest.fixture
def fwsim_testbed(request: pytest.FixtureRequest, fwsim_seed: int) -> Iterator[Testbed]:
    from .testbed import CloudSpec, Testbed, TestbedSpec

    testbed = Testbed(TestbedSpec(seed=fwsim_seed, cloud=CloudSpec("particle")))
    request.node.stash.setdefault(_WORLD_KEY, []).append(testbed.world)
    yield testbed
    testbed.close(power_off=False)


@pytest.fixture
def fwsim_world(fwsim_testbed: Testbed) -> World:
    return fwsim_testbed.world


@pytest.fixture
def fwsim_cloud(fwsim_testbed: Testbed) -> Cloud:
    from .testbed.clouds.particle import ParticlePlug

    plug = fwsim_testbed.cloud
    assert isinstance(plug, ParticlePlug)
    return plug.cloud


@pytest.fixture
def fwsim_make_device(fwsim_testbed: Testbed) -> Callable[..., Device]:
    """``fwsim_make_device(name="dev", *, profile="p2", firmware=None, wifi=True, storage=None,
    timing=None, options=None, power_on=False)``: a device in the test's testbed, linked to its
    cloud. ``firmware``: a built-in name, ``module:Class``, ``file.py[:Class]`` or a
    ``Firmware`` subclass (None: an empty app); ``wifi``: True (knows ``HomeNet``), False
    (boots into listening mode) or WifiCredentials; ``storage``: a folder for the DCT;
    ``timing``: "thread" or "fast" (None: the testbed's, "thread"); ``options``: a
    ``FirmwareOptions`` or a dict of its fields (``{"send_claim_code_on_resume": True}``)."""
    from .system.network import WifiCredentials
    from .testbed import HOME_NETWORK, DeviceSpec
    from .testbed.testbed import firmware_options

    def make(name: str = "dev", *, profile: str = "p2", firmware: Any = None,
             wifi: bool | Sequence[WifiCredentials] = True, storage: str | Path | None = None,
             timing: str | None = None,
             options: FirmwareOptions | Mapping[str, Any] | None = None, power_on: bool = False,
             **spec: Any) -> Device:
        if wifi is True:
            known: tuple[WifiCredentials, ...] = (
                WifiCredentials(HOME_NETWORK.ssid, HOME_NETWORK.password),)
        elif wifi is False:
            known = ()
        else:
            known = tuple(wifi)
        device = fwsim_testbed.add_device(DeviceSpec(
            name, profile=profile, firmware=firmware, wifi=known, storage_dir=storage,
            timing=timing, options=firmware_options(options), **spec))
        if power_on:
            device.power_on()
        return device

    return make


@pytest.fixture
def fwsim_device(fwsim_make_device: Callable[..., Device]) -> Device:
    """A P2 named ``dev`` that knows ``HomeNet``, linked to the cloud, not powered on."""
    return fwsim_make_device()


@pytest.fixture
def fwsim_phone(fwsim_testbed: Testbed) -> Callable[..., Phone]:
    """``fwsim_phone(device, carrier="control", *, think_time_s=1.5)``: a phone that
    provisions ``device`` over a carrier (``usb``, ``ble``, ``serial``, ``softap``,
    ``softap-http``, ``control``, ``direct``; firmware_sim.testbed.CARRIERS). Queue steps
    (``set_claim_code``, ``join_new_network``, ``start_listening``, ``stop_listening``), then
    ``run()``; each step's result is in ``phone.results``."""
    from .testbed import Phone
    from .testbed import carrier as carrier_factory

    def make(device: Device, carrier: str = "control", *, think_time_s: float = 1.5) -> Phone:
        return Phone(fwsim_testbed.world, carrier_factory(carrier)(device),
                     think_time_s=think_time_s)

    return make


@pytest.fixture
def fwsim_trace(fwsim_testbed: Testbed) -> StrictTrace:
    """Strict queries of the test's trace (:class:`StrictTrace`)."""
    world = fwsim_testbed.world
    return StrictTrace(world.trace, nodes=lambda: world.nodes.keys())


@pytest.fixture
def fwsim_explore(request: pytest.FixtureRequest, fwsim_seed: int
                  ) -> Callable[..., ExploreReport]:
    """``fwsim_explore(scenario="p2-provisioning", *, runs=..., properties=..., strategy=...,
    expect_violation=False, **explore_options)``: run :func:`firmware_sim.explore.explore`
    (seed: ``--fwsim-seed``, unless given) and return its report. Unless
    ``expect_violation`` is true, a violation fails the test with the report; the replay files
    (and diagrams) of what was found are written under ``--fwsim-trace-dir``."""
    from .explore import explore

    def run(scenario: Any = "p2-provisioning", *, expect_violation: bool = False,
            **options: Any) -> ExploreReport:
        own_seed = "seed" not in options
        options.setdefault("seed", fwsim_seed)
        options.setdefault("progress", False)
        out = Path(request.config.getoption("--fwsim-trace-dir")) / _safe_name(
            request.node.nodeid)
        if not expect_violation:
            options.setdefault("out", out)
            options.setdefault("diagram", True)
        report = explore(scenario, **options)
        request.node.stash.setdefault(_EXPLORE_KEY, []).append(
            (options["seed"], own_seed, report))
        if not report.ok and not expect_violation:
            pytest.fail(f"fwsim explore found property violations\n{report.summary()}",
                        pytrace=False)
        return report

    return run


_PLAIN_NODEID = re.compile(r"[A-Za-z0-9_.-]+(?:(?:/|::)[A-Za-z0-9_.-]+)*")


def _safe_name(nodeid: str) -> str:
    """A file name for a test: the node id with ``/``, ``::`` and anything outside
    ``[A-Za-z0-9_.-]`` made ``_``. When that lost more than the path and ``::`` separators
    (parameter ids like ``[a/b]`` and ``[a_b]``) or the name is cut, a short hash of the node
    id is appended, so two tests never share a file."""
    import hashlib

    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid).strip("_")
    if _PLAIN_NODEID.fullmatch(nodeid) and len(safe) <= 150:
        return safe or "test"
    digest = hashlib.sha256(nodeid.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    return f"{safe[:140] or 'test'}-{digest}"


# -- strict trace queries -----------------------------------------------------------------------

_PROJECT_PACKAGES = ("firmware_sim", "cloud_sim", "transports", "control_requests")
_KIND = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$")
_EMITTERS = {"emit", "_emit", "_trace"}


class UnknownTraceQuery(AssertionError):
    """A trace query named a kind or a field fwsim never writes, or a node that is not in the
    world (a typo)."""


@functools.cache
def trace_catalog() -> dict[str, frozenset[str] | None]:
    """Every record kind fwsim's code writes, with its fields (None: open, the call passes
    ``**fields``), read from the sources: calls of ``.emit(kind, ...)``,
    ``trace.emit(node, layer, kind, ...)`` and the ``_emit``/``_trace`` helpers."""
    root = Path(__file__).resolve().parent.parent
    catalog: dict[str, set[str] | None] = {}
    for package in _PROJECT_PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            if "_pb" in path.parts:
                continue
            try:
                tree = ast.parse(path.read_text(encoding="utf-8"))
            except (OSError, SyntaxError):
                continue
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call):
                    continue
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else (
                    func.id if isinstance(func, ast.Name) else None)
                if name not in _EMITTERS or not node.args:
                    continue
                arg = node.args[2] if name == "emit" and len(node.args) >= 3 else node.args[0]
                if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)
                        and _KIND.fullmatch(arg.value)):
                    continue
                fields = catalog.setdefault(arg.value, set())
                if any(kw.arg is None for kw in node.keywords):
                    catalog[arg.value] = None
                elif fields is not None:
                    fields.update(kw.arg for kw in node.keywords if kw.arg is not None)
    return {kind: (frozenset(f) if f is not None else None) for kind, f in catalog.items()}


class StrictTrace:
    """``find``/``count``/``first`` over a trace that refuse unknown kinds and fields.

    A kind is known when fwsim's code writes it (:func:`trace_catalog`) or the trace holds it;
    a field is known for a kind when a call site writes it or a record of that kind in the trace
    has it. A node is known when the world holds it (``nodes``, when given) or a record names
    it. Anything else raises :class:`UnknownTraceQuery` naming the closest known ones -
    ``count("claim.redem") == 0`` or ``count("handshake.full", node="de") == 0`` fails instead
    of passing."""

    def __init__(self, trace: Trace, *,
                 nodes: Callable[[], Iterable[str]] | None = None) -> None:
        self.trace = trace
        self._nodes = nodes

    def known_nodes(self) -> set[str]:
        known = {r.node for r in self.trace.records}
        if self._nodes is not None:
            known.update(self._nodes())
        return known

    def _check_node(self, node: str | None) -> None:
        import difflib

        if node is None:
            return
        known = self.known_nodes()
        if node in known:
            return
        close = difflib.get_close_matches(node, sorted(known), n=5, cutoff=0.5)
        raise UnknownTraceQuery(
            f"unknown node {node!r}" + (f"; did you mean {', '.join(close)}?" if close else "")
            + f" (known nodes: {', '.join(sorted(known)) or 'none'})")

    def known_kinds(self) -> set[str]:
        return set(trace_catalog()) | {r.kind for r in self.trace.records}

    def known_fields(self, kind: str) -> set[str] | None:
        written = trace_catalog().get(kind, frozenset())
        seen = {key for r in self.trace.records if r.kind == kind for key in r.fields}
        return None if written is None else set(written) | seen

    def _check(self, kind: str | None, fields: dict[str, Any]) -> None:
        import difflib

        if kind is not None and kind not in self.known_kinds():
            close = difflib.get_close_matches(kind, sorted(self.known_kinds()), n=5)
            raise UnknownTraceQuery(
                f"unknown trace kind {kind!r}" + (f"; did you mean {', '.join(close)}?"
                                                 if close else "")
                + f" (known kinds: {', '.join(sorted(self.known_kinds()))})")
        if not fields:
            return
        known: set[str] | None = set()
        for candidate in ([kind] if kind is not None else sorted(self.known_kinds())):
            these = self.known_fields(candidate)
            if these is None:
                return
            assert known is not None
            known |= these
        unknown = sorted(set(fields) - (known or set()))
        if unknown:
            raise UnknownTraceQuery(
                f"unknown field{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(repr(name) for name in unknown)} for "
                f"{'kind ' + repr(kind) if kind else 'any kind'} (known: "
                f"{', '.join(sorted(known or ())) or 'none'})")

    def find(self, kind: str | None = None, *, node: str | None = None,
             **fields: Any) -> list[TraceRecord]:
        self._check(kind, fields)
        self._check_node(node)
        return self.trace.find(kind, node=node, **fields)

    def count(self, kind: str | None = None, *, node: str | None = None, **fields: Any) -> int:
        return len(self.find(kind, node=node, **fields))

    def first(self, kind: str | None = None, *, node: str | None = None,
              **fields: Any) -> TraceRecord | None:
        found = self.find(kind, node=node, **fields)
        return found[0] if found else None

    def log_lines(self, node: str | None = None) -> list[str]:
        """The Device OS log of ``node`` (or of every device)."""
        from .services.log import log_lines

        self._check_node(node)
        return log_lines(self.trace.records, node)


# -- the failure report ---------------------------------------------------------------------------


def failure_section(world: World, lines_wanted: int) -> str:
    """Each device's Device OS timeline (last lines) and the last cloud records
    (``lines_wanted`` 0: only how many there are)."""
    from .services.log import format_log_line

    lines_wanted = max(lines_wanted, 0)
    records = world.trace.records
    parts = []
    devices = sorted({r.node for r in records if r.kind == "log"})
    for device in devices:
        timeline = [format_log_line(r) for r in records if r.kind == "log" and r.node == device]
        shown = timeline[len(timeline) - lines_wanted:] if lines_wanted else []
        parts.append(f"Device OS log of {device} (uptime ms; last {len(shown)} of "
                     f"{len(timeline)} lines):\n" + "\n".join(shown))
    cloud_layers = {"cloud", "endpoint", "http"}
    cloud = [r for r in records if r.layer in cloud_layers and r.node not in devices
             and not r.kind.startswith("coap.")]
    if cloud:
        shown_records = cloud[len(cloud) - lines_wanted:] if lines_wanted else []
        parts.append(f"last {len(shown_records)} cloud records (world time):\n"
                     + "\n".join(r.summary() for r in shown_records))
    if not parts:
        tail = world.trace.tail(lines_wanted)
        parts.append(f"last {len(tail)} trace records:\n"
                     + "\n".join(r.summary() for r in tail))
    return "\n\n".join(parts)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Generator[None, Any, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    worlds = item.stash.get(_WORLD_KEY, [])
    searches = item.stash.get(_EXPLORE_KEY, [])
    if not (worlds or searches) or not report.failed:
        return
    import shlex

    from .kernel.errors import ConfigurationError
    from .kernel.trace import JsonlSink

    config = item.config
    swept = _SEEDS_KEY in config.stash
    lines_wanted = int(config.getoption("--fwsim-trace-lines"))
    trace_dir = Path(config.getoption("--fwsim-trace-dir"))
    sections = []
    for index, world in enumerate(worlds):
        path = trace_dir / (f"{_safe_name(item.nodeid)}"
                            f"{'' if len(worlds) == 1 else f'-{index}'}.jsonl")
        written = ""
        try:
            trace_dir.mkdir(parents=True, exist_ok=True)
            sink = JsonlSink(path)  # mode 0600: a trace holds claim codes and tokens
            try:
                for record in world.trace.records:
                    sink.write(record)
            finally:
                sink.close()
            written = f"full trace: {path}"
        except (OSError, ConfigurationError) as exc:
            written = f"full trace not written: {exc}"
        # in a sweep the test's id names its seed ([seedN]): only --fwsim-seeds makes that id
        seed_option = "--fwsim-seeds" if swept else "--fwsim-seed"
        sections.append(
            f"seed: {world.seed}  (rerun: pytest {shlex.quote(item.nodeid)} {seed_option} "
            f"{world.seed})\n{written}\n{failure_section(world, lines_wanted)}")
    for seed, own_seed, found in searches:
        sections.append(explore_section(item.nodeid, seed, own_seed, found,
                                        "--fwsim-seeds" if swept else "--fwsim-seed"))
    report.sections.append(("fwsim", "\n\n".join(sections)))


def explore_section(nodeid: str, seed: int, own_seed: bool, report: ExploreReport,
                    seed_option: str = "--fwsim-seed") -> str:
    """A search's part of the failure report: its seed, how to rerun it, what it found and
    the command replaying each finding."""
    import shlex

    rerun = (f"rerun: pytest {shlex.quote(nodeid)} {seed_option} {seed}" if own_seed
             else "the test gives this seed itself")
    lines = [f"explore {report.scenario} ({report.strategy}), seed: {seed}  ({rerun}); "
             f"{report.runs} run{'' if report.runs == 1 else 's'}, "
             + ("no violation" if report.ok else
                f"{len(report.findings)} distinct violation"
                f"{'' if len(report.findings) == 1 else 's'}")]
    for finding in report.findings:
        lines.append(f"- {finding.name}: {finding.violation.message}")
        replay = finding.files.get("replay")
        if replay is not None:
            lines.append(f"  replay: fwsim scenario run --file {shlex.quote(str(replay))}")
    return "\n".join(lines)
