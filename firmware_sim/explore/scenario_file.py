"""Scenario files: a world, timed actions, fault firings and properties, in human-readable TOML.

One format serves three uses: the replay files ``fwsim explore`` writes for what it found, the
scenarios users write without Python (``fwsim scenario run --file F.toml``), and the built-in
exploration scenarios (``firmware_sim/explore/scenarios/*.toml``; those add an ``[explore]``
table: which actions the explorer may take, how long it may wait, which faults it may fire).
docs/explore.md describes every key; in short::

    [scenario]
    name = "resume-bug"
    seed = 7                       # the world seed: tie-breaks, claim codes, session ids
    horizon_s = 150.0              # virtual seconds the run lasts at most
    tiebreak = "seeded"            # or "pct" with pct = { seed = 1, depth = 3 }

    [world]
    cloud = "particle"
    link = { latency_s = 0.09, loss = 0.0 }

    [[world.access_points]]
    ssid = "HomeNet"
    password = "home-pass-1"

    [[world.devices]]
    name = "p2"
    firmware = "default"           # built-in name, module:Class or path/to/app.py[:Class]
    wifi = ["HomeNet"]
    options = { send_claim_code_on_resume = false }

    [properties]                   # checked while the run goes; the first violation ends it
    claim-liveness = { within_s = 60.0 }

    [[steps]]
    at = 20.0
    do = "phone.provision"
    network = "NewNet"

    [[faults]]
    point = "link:cloud-link-2:drop"
    occurrence = 3

    [expect]                       # optional: the run passes when exactly this happens
    violation = "claim-liveness"
    signature = "resumed-without-code"

A ``cloud = "thingsboard"`` world has ``[[world.buttons]]`` (claim buttons: name, transport,
secret, duration_ms, press_on_boot) instead of devices, and ``[world.thingsboard]`` (the
service's ``ThingsBoardSettings`` fields).

Unknown keys are errors (a typo must not be silently ignored); every error names the file, the
table and the key in one line.
"""

from __future__ import annotations

import dataclasses
import re
import textwrap
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import Any

from ..kernel.errors import ConfigurationError
from ..system.device import FirmwareOptions
from ..system.network import WifiCredentials
from ..system.radio import AccessPoint
from ..testbed import CloudSpec, DeviceSpec, LinkSpec, TestbedSpec
from .model import (
    ACTION_PARAMS,
    NO_SCHEDULE,
    SEEDED,
    WAIT,
    FaultFiring,
    ParamValue,
    Schedule,
    Step,
    TiebreakPolicy,
    micros,
    seconds,
)
from .tomlio import TomlWriter

#: default virtual length of a run
DEFAULT_HORIZON_S = 150.0
#: the longest run a scenario file may ask for: one virtual day (the catalog's run 120-300 s; a
#: quiet world takes about 5 wall seconds per virtual day, so nothing runs unbounded)
MAX_HORIZON_S = 86_400.0


@dataclass(frozen=True)
class DeviceDesc:
    name: str = "p2"
    profile: str = "p2"
    firmware: str = "default"
    device_id: str | None = None
    serial_number: str | None = None
    mobile_secret: str | None = None
    #: SSIDs of the world's access points the device knows at first boot
    wifi: tuple[str, ...] = ()
    #: ``FirmwareOptions`` fields (nested option tables as dicts)
    options: Mapping[str, Any] = field(default_factory=dict)
    power_on: bool = True


@dataclass(frozen=True)
class ButtonDesc:
    """A claim-button device of a ``thingsboard`` world (``firmware_sim.claim_button``): a
    device of the demo tenant linked to the emulated service over ``transport``."""

    name: str = "Claim Button 1"
    #: ``mqtt``, ``http`` or ``coap``
    transport: str = "mqtt"
    #: ``random``, ``fixed`` (``fixed_secret``) or ``empty`` (``SecretMode``)
    secret: str = "random"
    fixed_secret: str = ""
    duration_ms: int = 30_000
    #: the firmware sends claim info at boot (else only when the button is pressed)
    press_on_boot: bool = True
    power_on: bool = True


@dataclass(frozen=True)
class ApDesc:
    ssid: str
    password: str | None = None
    rssi: int = -50
    channel: int = 6


@dataclass(frozen=True)
class WorldDesc:
    cloud: str | None = "particle"
    access_points: tuple[ApDesc, ...] = ()
    devices: tuple[DeviceDesc, ...] = ()
    latency_s: float = 0.09
    loss: float = 0.0
    #: the timing profile of every device (``TestbedSpec.timing``: ``thread``, ``fast``;
    #: None: the testbed's default)
    timing: str | None = None
    #: claim buttons (``thingsboard`` cloud only)
    buttons: tuple[ButtonDesc, ...] = ()
    #: ``ThingsBoardSettings`` fields of a ``thingsboard`` cloud (claim rules, cache)
    thingsboard: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ExploreDesc:
    """What the explorer may do in a scenario."""

    #: action names (see ``fwsim explore --list-actions``)
    actions: tuple[str, ...] = ()
    #: parameter menus that replace an action's defaults: action -> param -> values
    params: Mapping[str, Mapping[str, tuple[ParamValue, ...]]] = field(default_factory=dict)
    #: seconds the explorer may wait before its next action
    waits: tuple[float, ...] = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0)
    max_actions: int = 4
    #: no action after this virtual time (the rest of the horizon lets properties settle)
    until_s: float = 60.0
    #: fault points the explorer may fire by itself (``*`` matches any part)
    faults: tuple[str, ...] = ()
    fault_probability: float = 0.02
    max_faults: int = 2


@dataclass(frozen=True)
class ScenarioFile:
    name: str
    world: WorldDesc
    description: str = ""
    seed: int = 0
    horizon_s: float = DEFAULT_HORIZON_S
    tiebreak: TiebreakPolicy = SEEDED
    #: property name (built-in or ``module:attr``) -> parameters
    properties: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    schedule: Schedule = NO_SCHEDULE
    #: (property, signature) the run should end with; None: no expectation
    expect: tuple[str, str] | None = None
    explore: ExploreDesc | None = None
    #: comment lines written at the top of the file
    notes: tuple[str, ...] = ()

    def with_run(self, *, seed: int, tiebreak: TiebreakPolicy, schedule: Schedule,
                 name: str | None = None) -> ScenarioFile:
        return replace(self, seed=seed, tiebreak=tiebreak, schedule=schedule,
                       name=name or self.name)

    # -- the world -----------------------------------------------------------------------------

    def testbed_spec(self, **extra: Any) -> TestbedSpec:
        world = self.world
        points = {ap.ssid: AccessPoint(ap.ssid, ap.password, channel=ap.channel, rssi=ap.rssi)
                  for ap in world.access_points}
        devices = []
        for desc in world.devices:
            wifi = []
            for ssid in desc.wifi:
                point = points.get(ssid)
                if point is None:
                    raise ConfigurationError(f"device {desc.name}: wifi {ssid!r} is not one of "
                                             "the world's access points")
                wifi.append(WifiCredentials(ssid, point.password))
            devices.append(DeviceSpec(
                desc.name, profile=desc.profile, firmware=desc.firmware,
                options=firmware_options(desc.options, where=f"device {desc.name}"),
                device_id=desc.device_id, serial_number=desc.serial_number,
                mobile_secret=desc.mobile_secret, wifi=tuple(wifi)))
        cloud = CloudSpec(world.cloud) if world.cloud is not None else None
        if world.cloud == "thingsboard":
            from ..testbed.clouds.thingsboard import TbCloudSettings, ThingsBoardSettings

            service = _dataclass_from(ThingsBoardSettings, world.thingsboard, "world.thingsboard")
            # nobody logs in during a run: no password hashing (~40 ms a world)
            cloud = CloudSpec("thingsboard", settings=TbCloudSettings(service=service,
                                                                      demo_logins=False))
        if world.timing is not None:
            extra = {**extra, **_timing(world.timing)}
        return TestbedSpec(seed=self.seed, devices=tuple(devices),
                           access_points=tuple(points.values()), cloud=cloud,
                           link=LinkSpec(latency_s=world.latency_s, loss=world.loss), **extra)


def _timing(timing: str) -> dict[str, Any]:
    """``[world] timing``: the testbed's timing profile (``TestbedSpec.timing``)."""
    if "timing" not in {f.name for f in dataclasses.fields(TestbedSpec)}:
        raise ConfigurationError(f"timing = {timing!r}: this fwsim's testbed has no timing "
                                 "setting")
    return {"timing": timing}


def firmware_options(options: Mapping[str, Any], *, where: str = "") -> FirmwareOptions | None:
    """``FirmwareOptions`` from a table of its fields (nested dataclasses as tables, enums by
    value); None when the table is empty (the defaults)."""
    if not options:
        return None
    built: FirmwareOptions = _dataclass_from(FirmwareOptions, options, where or "options")
    return built


def _dataclass_from(cls: Any, table: Mapping[str, Any], where: str) -> Any:
    base = cls()
    fields = {f.name: f for f in dataclasses.fields(cls)}
    changes: dict[str, Any] = {}
    for name, raw in table.items():
        if name not in fields:
            raise ConfigurationError(f"{where}: unknown option {name!r} (known: "
                                     f"{', '.join(fields)})")
        current = getattr(base, name)
        if dataclasses.is_dataclass(current) and isinstance(raw, Mapping):
            changes[name] = _dataclass_from(type(current), raw, f"{where}.{name}")
        elif current is None and isinstance(raw, Mapping):
            raise ConfigurationError(f"{where}.{name}: a table is not supported here; set the "
                                     "timing profile with [world] timing")
        elif isinstance(current, Enum):
            try:
                changes[name] = type(current)(raw)
            except ValueError:
                known = ", ".join(str(m.value) for m in type(current))
                raise ConfigurationError(f"{where}.{name}: {raw!r} is not one of {known}"
                                         ) from None
        elif isinstance(current, tuple) and isinstance(raw, list):
            changes[name] = tuple(raw)
        elif current is not None and not isinstance(raw, type(current)) and not (
                isinstance(current, float) and isinstance(raw, int)
                and not isinstance(raw, bool)):
            raise ConfigurationError(f"{where}.{name}: expected {type(current).__name__}, got "
                                     f"{raw!r}")
        else:
            changes[name] = float(raw) if isinstance(current, float) else raw
    return replace(base, **changes)


# -- reading ---------------------------------------------------------------------------------------


class _Table:
    """A TOML table being read: typed getters, and unknown keys are errors."""

    def __init__(self, data: Mapping[str, Any], where: str, source: str) -> None:
        self.data = data
        self.where = where
        self.source = source
        self.used: set[str] = set()

    def _error(self, message: str) -> ConfigurationError:
        return ConfigurationError(f"{self.source}: [{self.where}] {message}")

    def get(self, name: str, kind: type | tuple[type, ...], default: Any = None) -> Any:
        self.used.add(name)
        if name not in self.data:
            return default
        item = self.data[name]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if float in kinds and isinstance(item, int) and not isinstance(item, bool):
            return float(item)
        if isinstance(item, bool) and bool not in kinds:
            raise self._error(f"{name} must be {_names(kinds)}, not {item!r}")
        if not isinstance(item, kinds):
            raise self._error(f"{name} must be {_names(kinds)}, not {item!r}")
        return item

    def require(self, name: str, kind: type | tuple[type, ...]) -> Any:
        if name not in self.data:
            raise self._error(f"{name} is required")
        return self.get(name, kind)

    def table(self, name: str) -> _Table:
        return _Table(self.get(name, dict, {}), f"{self.where}.{name}" if self.where else name,
                      self.source)

    def tables(self, name: str) -> list[_Table]:
        items = self.get(name, list, [])
        out = []
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                raise self._error(f"{name}[{index}] must be a table")
            out.append(_Table(item, f"{name}[{index}]", self.source))
        return out

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise self._error(f"unknown key {unknown[0]!r}")


def _names(kinds: tuple[type, ...]) -> str:
    return " or ".join({str: "a string", int: "an integer", float: "a number", bool: "true/false",
                        list: "an array", dict: "a table"}.get(k, k.__name__) for k in kinds)


def _scalar(item: Any, where: str, source: str) -> ParamValue:
    if isinstance(item, str | int | float | bool):
        return item
    raise ConfigurationError(f"{source}: [{where}] parameters must be strings, numbers or "
                             f"true/false, not {item!r}")


#: the fault points a ``[[faults]]`` firing may name (docs/explore.md, "Fault points")
FAULT_POINT = re.compile(
    r"link:[^:]+:(drop|delay)|stream:[^:]+:reset"
    r"|endpoint:[^:]+:(forget_session|drop_ack|skip_confirm)"
    r"|dct:[^:]+:power_cut:(begin|done|commit|sync|sync-dir|modify:\d+|persist:\d+)")
FAULT_POINT_FORMS = ("link:<link>:drop, link:<link>:delay, stream:<link>:reset, "
                     "endpoint:<cloud>:forget_session, endpoint:<cloud>:drop_ack, "
                     "endpoint:<cloud>:skip_confirm, dct:<device>:power_cut:<step> with step "
                     "begin, modify:<n>, persist:<n>, sync, sync-dir, commit or done")


def _check_step_params(action: str, names: list[str], where: str) -> None:
    """A step's parameters must be ones its action reads (an action not registered yet, e.g.
    one a user module adds, is checked when the run looks it up)."""
    allowed = ACTION_PARAMS.get(action)
    if allowed is None:
        if action == WAIT and names:
            raise ConfigurationError(f"{where} a wait step takes no parameters (got "
                                     f"{', '.join(names)})")
        return
    for name in names:
        if name not in allowed:
            raise ConfigurationError(f"{where} unknown parameter {name!r} of {action} "
                                     f"(allowed: {', '.join(allowed)})")


def loads(text: str, source: str = "<scenario>") -> ScenarioFile:
    """Parse a scenario file's text; ``ConfigurationError`` (one line) for anything wrong."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{source}: not valid TOML: {exc}") from None
    root = _Table(data, "", source)
    head = root.table("scenario")
    name = head.get("name", str, Path(source).stem)
    seed = head.get("seed", int, 0)
    if seed < 0:
        raise ConfigurationError(f"{source}: [scenario] seed must not be negative")
    horizon = head.get("horizon_s", float, DEFAULT_HORIZON_S)
    if not horizon > 0:
        raise ConfigurationError(f"{source}: [scenario] horizon_s must be positive")
    if not horizon <= MAX_HORIZON_S:
        raise ConfigurationError(f"{source}: [scenario] horizon_s must be at most "
                                 f"{MAX_HORIZON_S:g} (one virtual day), not {horizon:g}")
    tiebreak_kind = head.get("tiebreak", str, "seeded")
    if tiebreak_kind not in ("seeded", "pct"):
        raise ConfigurationError(f"{source}: [scenario] tiebreak must be \"seeded\" or \"pct\"")
    pct = head.table("pct")
    tiebreak = TiebreakPolicy(tiebreak_kind, pct.get("seed", int, 0), pct.get("depth", int, 3))
    pct.done()
    description = head.get("description", str, "")
    head.done()
    world = _world(root.table("world"))
    props = root.table("properties")
    properties: dict[str, dict[str, Any]] = {}
    for prop_name in props.data:
        params = props.get(prop_name, dict)
        properties[prop_name] = dict(params)
    props.done()
    steps = []
    for table in root.tables("steps"):
        at = table.require("at", float)
        action = table.require("do", str)
        params = tuple(sorted((k, _scalar(v, table.where, source))
                              for k, v in table.data.items() if k not in ("at", "do")))
        if at < 0:
            raise ConfigurationError(f"{source}: [{table.where}] at must not be negative")
        _check_step_params(action, [k for k, _ in params], f"{source}: [{table.where}]")
        steps.append(Step(micros(at), action, params))
    faults = []
    for table in root.tables("faults"):
        point = table.require("point", str)
        occurrence = table.require("occurrence", int)
        table.done()
        if occurrence < 1:
            raise ConfigurationError(f"{source}: [{table.where}] occurrence counts from 1")
        if not FAULT_POINT.fullmatch(point):
            raise ConfigurationError(f"{source}: [{table.where}] unknown fault point {point!r} "
                                     f"(known: {FAULT_POINT_FORMS})")
        faults.append(FaultFiring(point, occurrence))
    expect_table = root.table("expect")
    violation = expect_table.get("violation", str)
    signature = expect_table.get("signature", str, "")
    expect_table.done()
    explore = _explore(root.table("explore")) if "explore" in data else None
    root.done()
    return ScenarioFile(name, world, description, seed, horizon, tiebreak, properties,
                        Schedule(tuple(sorted(steps, key=lambda s: s.at_us)), tuple(faults)),
                        (violation, signature) if violation else None, explore)


def load(path: str | Path) -> ScenarioFile:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"cannot read scenario file {path}: {exc.strerror or exc}"
                                 ) from None
    except UnicodeDecodeError:
        raise ConfigurationError(f"scenario file {path} is not UTF-8 text") from None
    return loads(text, str(path))


def _world(table: _Table) -> WorldDesc:
    cloud = table.get("cloud", str, "particle")
    if cloud == "none":
        cloud = None
    link = table.table("link")
    latency = link.get("latency_s", float, 0.09)
    loss = link.get("loss", float, 0.0)
    link.done()
    points = []
    for ap in table.tables("access_points"):
        points.append(ApDesc(ap.require("ssid", str), ap.get("password", str),
                             ap.get("rssi", int, -50), ap.get("channel", int, 6)))
        ap.done()
    devices = []
    for dev in table.tables("devices"):
        wifi = dev.get("wifi", list, [])
        if not all(isinstance(s, str) for s in wifi):
            raise ConfigurationError(f"{dev.source}: [{dev.where}] wifi must list SSIDs")
        devices.append(DeviceDesc(
            dev.get("name", str, "p2"), dev.get("profile", str, "p2"),
            dev.get("firmware", str, "default"), dev.get("device_id", str),
            dev.get("serial_number", str), dev.get("mobile_secret", str), tuple(wifi),
            dict(dev.get("options", dict, {})), dev.get("power_on", bool, True)))
        dev.done()
    timing = table.get("timing", str)
    buttons = tuple(_button(b) for b in table.tables("buttons"))
    thingsboard = dict(table.get("thingsboard", dict, {}))
    table.done()
    if cloud == "thingsboard":
        from ..testbed.clouds.thingsboard import ThingsBoardSettings

        _dataclass_from(ThingsBoardSettings, thingsboard, f"{table.source}: [world.thingsboard]")
        if devices:
            raise ConfigurationError(f"{table.source}: [world] the thingsboard cloud has no "
                                     "endpoint for Particle devices: give [[world.buttons]]")
        if not buttons:
            raise ConfigurationError(f"{table.source}: [world] needs at least one "
                                     "[[world.buttons]]")
    elif buttons or thingsboard:
        raise ConfigurationError(f"{table.source}: [world] buttons and thingsboard need "
                                 'cloud = "thingsboard"')
    elif not devices:
        raise ConfigurationError(f"{table.source}: [world] needs at least one [[world.devices]]")
    return WorldDesc(cloud, tuple(points), tuple(devices), latency, loss, timing, buttons,
                     thingsboard)


def _button(table: _Table) -> ButtonDesc:
    base = ButtonDesc()
    desc = ButtonDesc(table.get("name", str, base.name),
                      table.get("transport", str, base.transport),
                      table.get("secret", str, base.secret),
                      table.get("fixed_secret", str, base.fixed_secret),
                      table.get("duration_ms", int, base.duration_ms),
                      table.get("press_on_boot", bool, base.press_on_boot),
                      table.get("power_on", bool, base.power_on))
    table.done()
    if desc.transport not in ("mqtt", "http", "coap"):
        raise table._error(f"transport must be mqtt, http or coap, not {desc.transport!r}")
    if desc.secret not in ("random", "fixed", "empty"):
        raise table._error(f"secret must be random, fixed or empty, not {desc.secret!r}")
    if desc.secret == "fixed" and not desc.fixed_secret:
        raise table._error('secret = "fixed" needs fixed_secret')
    if not desc.name.strip():
        raise table._error("name must not be empty")
    return desc


def _explore(table: _Table) -> ExploreDesc:
    base = ExploreDesc()
    actions = table.get("actions", list, [])
    waits = table.get("waits", list, list(base.waits))
    faults = table.get("faults", list, [])
    params_table = table.table("params")
    params: dict[str, dict[str, tuple[ParamValue, ...]]] = {}
    for action in params_table.data:
        menus = params_table.get(action, dict)
        params[action] = {}
        for pname, menu in menus.items():
            if not isinstance(menu, list) or not menu:
                raise ConfigurationError(f"{table.source}: [explore.params] {action}.{pname} "
                                         "must be a non-empty array")
            params[action][pname] = tuple(_scalar(v, "explore.params", table.source)
                                          for v in menu)
    params_table.done()
    desc = ExploreDesc(
        tuple(str(a) for a in actions), params,
        tuple(float(w) for w in waits), table.get("max_actions", int, base.max_actions),
        table.get("until_s", float, base.until_s), tuple(str(f) for f in faults),
        table.get("fault_probability", float, base.fault_probability),
        table.get("max_faults", int, base.max_faults))
    table.done()
    if not desc.waits or any(not w > 0 for w in desc.waits):
        raise ConfigurationError(f"{table.source}: [explore] waits must be positive seconds")
    if desc.max_actions < 1:
        raise ConfigurationError(f"{table.source}: [explore] max_actions must be at least 1")
    if not 0 <= desc.fault_probability <= 1:
        raise ConfigurationError(f"{table.source}: [explore] fault_probability must be 0..1")
    return desc


# -- writing ---------------------------------------------------------------------------------------


def dumps(scenario: ScenarioFile) -> str:
    out = TomlWriter()
    for note in scenario.notes:
        out.comment("\n".join(textwrap.wrap(note, 96, subsequent_indent="  ")) or "")
    out.table("scenario")
    out.pair("name", scenario.name)
    if scenario.description:
        out.pair("description", scenario.description)
    out.pair("seed", scenario.seed)
    out.pair("horizon_s", float(scenario.horizon_s))
    out.pair("tiebreak", scenario.tiebreak.kind)
    if scenario.tiebreak.kind == "pct":
        out.pair("pct", {"seed": scenario.tiebreak.seed, "depth": scenario.tiebreak.depth})
    world = scenario.world
    out.table("world")
    out.pair("cloud", world.cloud if world.cloud is not None else "none")
    out.pair("link", {"latency_s": float(world.latency_s), "loss": float(world.loss)})
    if world.timing is not None:
        out.pair("timing", world.timing)
    for ap in world.access_points:
        out.table("world.access_points", array=True)
        out.pairs({"ssid": ap.ssid, "password": ap.password, "rssi": ap.rssi,
                   "channel": ap.channel})
    for dev in world.devices:
        out.table("world.devices", array=True)
        out.pairs({"name": dev.name, "profile": dev.profile, "firmware": dev.firmware,
                   "device_id": dev.device_id, "serial_number": dev.serial_number,
                   "mobile_secret": dev.mobile_secret, "wifi": list(dev.wifi)})
        if dev.options:
            out.pair("options", dict(dev.options))
        if not dev.power_on:
            out.pair("power_on", False)
    if world.thingsboard:
        out.table("world.thingsboard")
        out.pairs(dict(world.thingsboard))
    for button in world.buttons:
        out.table("world.buttons", array=True)
        out.pairs({"name": button.name, "transport": button.transport, "secret": button.secret,
                   "duration_ms": button.duration_ms, "press_on_boot": button.press_on_boot})
        if button.fixed_secret:
            out.pair("fixed_secret", button.fixed_secret)
        if not button.power_on:
            out.pair("power_on", False)
    if scenario.properties:
        out.table("properties")
        for name, params in scenario.properties.items():
            out.pair(name, dict(params))
    for step in scenario.schedule.steps:
        out.table("steps", array=True)
        out.pair("at", seconds(step.at_us))
        out.pair("do", step.action)
        for pname, pvalue in step.params:
            out.pair(pname, pvalue)
    for firing in scenario.schedule.faults:
        out.table("faults", array=True)
        out.pair("point", firing.point)
        out.pair("occurrence", firing.occurrence)
    if scenario.expect is not None:
        out.table("expect")
        out.pair("violation", scenario.expect[0])
        if scenario.expect[1]:
            out.pair("signature", scenario.expect[1])
    if scenario.explore is not None:
        ex = scenario.explore
        out.table("explore")
        out.pairs({"actions": list(ex.actions), "waits": list(ex.waits),
                   "max_actions": ex.max_actions, "until_s": float(ex.until_s),
                   "faults": list(ex.faults), "fault_probability": ex.fault_probability,
                   "max_faults": ex.max_faults})
        if ex.params:
            out.table("explore.params")
            for action, menus in ex.params.items():
                out.pair(action, {k: list(v) for k, v in menus.items()})
    return out.text()


def dump(scenario: ScenarioFile, path: str | Path) -> Path:
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(dumps(scenario), encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"cannot write {target}: {exc.strerror or exc}") from None
    return target


__all__ = ["DEFAULT_HORIZON_S", "MAX_HORIZON_S", "ApDesc", "ButtonDesc", "DeviceDesc",
           "ExploreDesc", "ScenarioFile", "WorldDesc", "dump", "dumps", "firmware_options",
           "load", "loads"]
