"""Properties: what must hold in every run, checked while the run goes.

How this works
--------------
A property is a *checker* fed every trace record as it is emitted (``on_record``); it may
also ask to be woken at a virtual instant (``wake_at(t_us)``; ``at_time(now_us)`` is called
then: "the code must be confirmed by then"), say that nothing it watches can change any more
(``settled``: when every property is settled and the explorer has no action left and nothing
it started is under way, the run ends early), and look at the whole trace at the end
(``finish``). A violation is reported with :meth:`Checker.violate`: the run loop writes
an ``explore.violation`` record (node ``explorer``, layer ``property``) at that point of the
trace, so the diagram and the report point at the step where the property broke, and ends the
run.

Built-in properties (``PROPERTIES``; parameters in brackets):

* ``claim-liveness`` [``within_s`` = 60]: a claim code stored on a device is delivered and
  confirmed (the device clears it on the cloud's ``spark/device/claim/confirm``) within
  ``within_s`` seconds of the next *stable* connection - a connection made after the code was
  stored that stays up ``within_s`` seconds, or, when the code was stored while the device was
  connected, that connection if it stays up ``within_s`` seconds from the storing - unless the
  code was replaced or cleared first. Each violation gets a signature saying why
  (``set-while-connected``, ``resumed-without-code``, ``session-end-lost``,
  ``set-during-handshake``, ``code-refused``, ``confirm-lost``, ...).
* ``ownership``: a device's owner changes only by a valid claim code (issued by the cloud, not
  used before, not expired, its creator becomes the owner) or by an API claim the rules allow
  (the device was unclaimed or already the caller's).
* ``code-once``: a claim code is consumed at most once, and a code the cloud accepted is marked
  consumed.
* ``dct-untorn``: after every boot (and at the end), a device's DCT claim-code field is erased,
  cleared (first byte NUL) or exactly a code that was set - never a mixture of two.
* ``no-lost-publish`` [``event`` = ``spark/device/session/end``]: every publish of that event
  reaches the cloud (not dropped because the device was not connected, not timed out).
* ``safety``: ``ownership`` + ``code-once`` + ``dct-untorn``.

A ThingsBoard world has its own (``tb-claim-liveness``, ``tb-ownership``, ``tb-secret-once``,
``tb-reclaim-by-owner``, ``tb-safety``), registered here by ``thingsboard_properties``.

User properties: a :class:`Checker` subclass (constructed with the property's parameters as
keyword arguments), or a function over the finished trace ``fn(records) -> None | str |
list[str]`` (each string is a violation; such runs last to the horizon), named on the command
line as ``module:attr`` or ``path/to/file.py:attr``.
"""

from __future__ import annotations

import inspect
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..communication.event_names import CLAIM_CODE_EVENT, CLAIM_CONFIRM_EVENT, SESSION_END_EVENT
from ..hal.claim import CLAIM_CODE_SIZE
from ..kernel.errors import ConfigurationError, PowerCut
from ..kernel.trace import TraceRecord
from ..kernel.user_modules import import_location
from ..system.device import Device
from .context import RunContext
from .model import seconds

ViolationSink = Callable[[str, str, str], None]


class Checker:
    """Base class of property checkers (see the module header)."""

    #: set by the run loop: the property's name
    name = "property"

    def start(self, ctx: RunContext) -> None:
        """Called once before the world runs."""
        self.ctx = ctx

    def require_particle_devices(self, ctx: RunContext) -> None:
        """Refuse a world without Particle devices (a ThingsBoard world): the property would
        check nothing there and always pass."""
        if not ctx.testbed.devices:
            raise ConfigurationError(
                f"property {self.name} checks Particle devices; this world has none (its cloud "
                f"is {ctx.scenario.world.cloud or 'none'})")

    def on_record(self, record: TraceRecord) -> None:
        """Called with every trace record as it is emitted."""

    def wake_at(self, t_us: int) -> None:
        """Ask for :meth:`at_time` to be called when the clock reaches ``t_us``."""
        alarm: Callable[[Checker, int], None] | None = getattr(self, "_alarm", None)
        if alarm is not None:
            alarm(self, t_us)

    def at_time(self, now_us: int) -> None:
        """Called at an instant asked for with :meth:`wake_at`."""

    def settled(self) -> bool:
        """True when nothing this property watches can change without a new action."""
        return False

    def finish(self) -> None:
        """Called once at the end of the run."""

    def violate(self, message: str, signature: str = "") -> None:
        """Report a violation (the run loop records it and ends the run)."""
        sink: ViolationSink | None = getattr(self, "_sink", None)
        if sink is None:
            raise ConfigurationError(f"property {self.name}: violate() before start()")
        sink(self.name, message, signature)


def _pending(device: Device) -> str | None:
    try:
        return device.claim.pending_code()
    except PowerCut:  # the DCT lost power mid-write; it is re-read at the next boot
        return None


# -- claim-code liveness ---------------------------------------------------------------------------


@dataclass
class _Obligation:
    device: Device
    code: str | None = None
    set_us: int = 0
    connected_us: int | None = None
    deadline_us: int | None = None
    handshakes: list[tuple[int, str]] = field(default_factory=list)
    session_end_lost: tuple[int, str] | None = None
    sent_us: int | None = None
    redeemed: str | None = None
    confirm_skipped: bool = False
    dct: object = None
    writes: int = -1
    #: the device's cloud connection is up (its last cloud.state was "connected")
    online: bool = False
    #: the code was stored while the device was connected: the obligation started then
    set_while_connected: bool = False


class ClaimLiveness(Checker):
    """``claim-liveness`` (see the module header)."""

    def __init__(self, within_s: float = 60.0) -> None:
        if not within_s > 0:
            raise ConfigurationError("claim-liveness: within_s must be positive")
        self.within_us = round(within_s * 1_000_000)

    def start(self, ctx: RunContext) -> None:
        super().start(ctx)
        self.require_particle_devices(ctx)
        self._devices = {name: _Obligation(device) for name, device in
                         ctx.testbed.devices.items()}
        self._by_id = {ob.device.device_id: ob for ob in self._devices.values()}
        cloud = ctx.testbed.cloud
        self._cloud = cloud.name if cloud is not None else None

    def _refresh(self, ob: _Obligation, now_us: int) -> None:
        dct = ob.device.dct
        if dct is ob.dct and dct.writes == ob.writes:
            return
        ob.dct, ob.writes = dct, dct.writes
        code = _pending(ob.device)
        if code == ob.code:
            return
        ob.code = code
        ob.deadline_us = None
        if code is not None:  # a new obligation: only connections made from now on count
            ob.set_us = now_us
            ob.connected_us = None
            ob.handshakes.clear()
            ob.session_end_lost = None
            ob.sent_us = None
            ob.redeemed = None
            ob.confirm_skipped = False
            ob.set_while_connected = ob.online
            if ob.online:  # stored on a live session: the connection it must go out on is up
                ob.connected_us = now_us
                ob.deadline_us = now_us + self.within_us
                self.wake_at(ob.deadline_us)

    def on_record(self, record: TraceRecord) -> None:
        ob = self._devices.get(record.node)
        if ob is not None:
            now = record.t_us
            self._refresh(ob, now)
            kind = record.kind
            if kind == "cloud.state":
                ob.online = record.fields.get("state") == "connected"
                if ob.online:
                    ob.connected_us = now
                    if ob.code is not None:
                        ob.deadline_us = now + self.within_us
                        self.wake_at(ob.deadline_us)
                else:
                    ob.connected_us = None
                    ob.deadline_us = None
            elif kind in ("handshake.full", "handshake.resumed"):
                ob.handshakes.append((now, kind.split(".")[1]))
            elif kind == "publish.lost" and record.fields.get("name") == SESSION_END_EVENT:
                if ob.session_end_lost is None:
                    ob.session_end_lost = (now, str(record.fields.get("reason", "")))
            elif kind == "log" and str(record.fields.get("message", "")).startswith(
                    f"Send {CLAIM_CODE_EVENT} event"):
                ob.sent_us = now
            elif kind == "device.boot":
                ob.online = False
                ob.connected_us = None
                ob.deadline_us = None
            return
        if record.node == self._cloud:
            device_id = record.fields.get("device_id")
            target = self._by_id.get(str(device_id)) if device_id is not None else None
            if record.kind == "claim.redeem" and target is not None and target.sent_us:
                target.redeemed = str(record.fields.get("outcome"))
            elif record.kind == "endpoint.fault" and str(
                    record.fields.get("fault", "")).endswith(":skip_confirm"):
                for ob in self._devices.values():
                    if ob.redeemed is not None:
                        ob.confirm_skipped = True

    def at_time(self, now_us: int) -> None:
        for ob in self._devices.values():
            if ob.deadline_us is None or ob.deadline_us > now_us:
                continue
            ob.deadline_us = None
            self._refresh(ob, now_us)
            if ob.code is not None and ob.connected_us is not None:
                signature, message = self._diagnose(ob)
                self.violate(message, signature)

    def _diagnose(self, ob: _Obligation) -> tuple[str, str]:
        device = ob.device.name
        on_live_session = ob.set_while_connected and ob.connected_us == ob.set_us
        if on_live_session:
            head = (f"the claim code set on {device} at {seconds(ob.set_us):.3f} s, while it "
                    f"was connected to the cloud, was not confirmed within "
                    f"{self.within_us / 1e6:g} s")
        else:
            head = (f"the claim code set on {device} at {seconds(ob.set_us):.3f} s was not "
                    f"confirmed within {self.within_us / 1e6:g} s of the stable connection "
                    f"made at {seconds(ob.connected_us or 0):.3f} s")
        if ob.sent_us is not None:
            if ob.redeemed is None:
                return "code-not-redeemed", (f"{head}: the device sent it at "
                                             f"{seconds(ob.sent_us):.3f} s but the cloud never "
                                             "redeemed it")
            if ob.redeemed != "claimed":
                return "code-refused", (f"{head}: the device sent it at "
                                        f"{seconds(ob.sent_us):.3f} s and the cloud refused it "
                                        f"({ob.redeemed}), so it never confirms and the device "
                                        "keeps it")
            if ob.confirm_skipped:
                return "confirm-not-sent", f"{head}: the cloud claimed it but sent no confirm"
            return "confirm-lost", (f"{head}: the cloud claimed it but the device never got "
                                    f"{CLAIM_CONFIRM_EVENT}")
        if on_live_session:
            return "set-while-connected", (
                f"{head}: the session that was up never ended, and Device OS publishes "
                f"{CLAIM_CODE_EVENT} only after a full handshake (a new session)")
        before = [h for h in ob.handshakes if h[0] <= (ob.connected_us or 0)]
        if not before:
            return "set-during-handshake", (
                f"{head}: the code was stored after that connection's handshake, when Device "
                "OS had already decided what to publish, and the session never ended")
        at, kind = before[-1]
        if ob.session_end_lost is not None:
            lost_at, reason = ob.session_end_lost
            return "session-end-lost", (
                f"{head}: {SESSION_END_EVENT}, published at {seconds(lost_at):.3f} s while "
                f"the device was not connected ({reason}), was lost, so the connection at "
                f"{seconds(at):.3f} s resumed the session and the code was never sent")
        if kind == "resumed":
            return "resumed-without-code", (
                f"{head}: the connection at {seconds(at):.3f} s resumed the persisted session, "
                f"and Device OS publishes {CLAIM_CODE_EVENT} only after a full handshake")
        return "full-handshake-without-code", (
            f"{head}: the full handshake at {seconds(at):.3f} s did not publish it")

    def settled(self) -> bool:
        for ob in self._devices.values():
            self._refresh(ob, self.ctx.world.clock.now_us)
            if ob.code is not None:
                return False
        return True

    def finish(self) -> None:
        self.at_time(self.ctx.world.clock.now_us)


# -- claim-code safety -----------------------------------------------------------------------------


class _ClaimLedger(Checker):
    """Shared bookkeeping: codes the cloud issued and which code each redemption used."""

    def start(self, ctx: RunContext) -> None:
        super().start(ctx)
        self.require_particle_devices(ctx)
        self.issued: dict[str, str] = {}
        self.queues: dict[str, deque[str]] = {}
        self.consumed: dict[str, tuple[int, str]] = {}
        cloud = ctx.testbed.cloud
        self._cloud_name = cloud.name if cloud is not None else None
        plug = ctx.particle
        self._plug = plug
        if plug is not None:
            plug.subscribe_events(self._event)

    def _event(self, event: Any) -> None:
        if event.name == CLAIM_CODE_EVENT and event.direction == "cloud" and event.device_id:
            self.queues.setdefault(event.device_id, deque()).append(event.data)

    def redeemed_code(self, record: TraceRecord) -> str | None:
        queue = self.queues.get(str(record.fields.get("device_id")))
        return queue.popleft() if queue else None

    def on_record(self, record: TraceRecord) -> None:
        if record.node != self._cloud_name:
            return
        if record.kind == "claim_code.issued":
            self.issued[str(record.fields.get("code"))] = str(record.fields.get("creator"))
        elif record.kind == "claim.redeem":
            self.on_redeem(record, self.redeemed_code(record))

    def on_redeem(self, record: TraceRecord, code: str | None) -> None:
        pass

    def settled(self) -> bool:
        if any(self.queues.values()):
            return False
        return all(_pending(d) is None for d in self.ctx.testbed.devices.values())


class CodeOnce(_ClaimLedger):
    """``code-once`` (see the module header)."""

    def on_redeem(self, record: TraceRecord, code: str | None) -> None:
        if code is None or record.fields.get("outcome") != "claimed":
            return
        device = str(record.fields.get("device_id"))
        earlier = self.consumed.get(code)
        if earlier is not None:
            self.violate(f"claim code {code[:12]}... was consumed twice: at "
                         f"{seconds(earlier[0]):.3f} s by {earlier[1]} and at "
                         f"{seconds(record.t_us):.3f} s by {device}", "consumed-twice")
            return
        self.consumed[code] = (record.t_us, device)
        if self._plug is not None and not self._plug.claim_code_consumed(code):
            self.violate(f"the cloud accepted claim code {code[:12]}... at "
                         f"{seconds(record.t_us):.3f} s but did not mark it consumed",
                         "not-marked-consumed")


class Ownership(_ClaimLedger):
    """``ownership`` (see the module header)."""

    def start(self, ctx: RunContext) -> None:
        super().start(ctx)
        self.owners: dict[str, str | None] = {}
        self._ids = [d.device_id for d in ctx.testbed.devices.values()]
        if self._plug is not None:
            for device_id in self._ids:
                self.owners[device_id] = self._owner(device_id)

    def _owner(self, device_id: str) -> str | None:
        if self._plug is None:
            return None
        owner = self._plug.owner_of(device_id)
        return str(owner) if owner is not None else None

    def on_record(self, record: TraceRecord) -> None:
        super().on_record(record)
        if record.node != self._cloud_name or self._plug is None:
            return
        if record.kind == "claim.api" and record.fields.get("outcome") == "claimed":
            device_id = str(record.fields.get("device_id"))
            caller = str(record.fields.get("caller"))
            before = self.owners.get(device_id)
            if before not in (None, caller):
                self.violate(f"the API let {caller} claim {device_id} at "
                             f"{seconds(record.t_us):.3f} s although {before} owned it",
                             "api-claim-not-allowed")
            self.owners[device_id] = caller
        for device_id in self._ids:
            now = self._owner(device_id)
            if now != self.owners.get(device_id):
                self.violate(f"the owner of {device_id} changed from "
                             f"{self.owners.get(device_id)} to {now} at "
                             f"{seconds(record.t_us):.3f} s without a valid claim code or an "
                             "allowed API claim", "unexplained-owner-change")
                self.owners[device_id] = now

    def on_redeem(self, record: TraceRecord, code: str | None) -> None:
        if record.fields.get("outcome") != "claimed" or code is None:
            return
        device_id = str(record.fields.get("device_id"))
        new_owner = str(record.fields.get("new_owner"))
        problem = ""
        if code not in self.issued:
            problem = "a code the cloud never issued"
        elif code in self.consumed:
            problem = f"a code already used at {seconds(self.consumed[code][0]):.3f} s"
        elif self.issued[code] != new_owner:
            problem = f"a code created by {self.issued[code]}"
        else:
            claim = self._plug.cloud.store.get_claim_code(code) if self._plug else None
            if claim is not None and self._plug is not None and \
                    self._plug.cloud.unix_us > claim.expires_us:
                problem = "an expired code"
        self.consumed.setdefault(code, (record.t_us, device_id))
        if problem:
            self.violate(f"{device_id} now belongs to {new_owner} by {problem}",
                         "invalid-code-claim")
        self.owners[device_id] = new_owner


class DctUntorn(Checker):
    """``dct-untorn`` (see the module header)."""

    def start(self, ctx: RunContext) -> None:
        super().start(ctx)
        self.require_particle_devices(ctx)
        self.legit: dict[str, set[bytes]] = {}
        for name, device in ctx.testbed.devices.items():
            self.legit[name] = {device.claim.stored_code()}
        self._cloud_name = ctx.testbed.cloud.name if ctx.testbed.cloud is not None else None
        self._checked = 0

    def _codes(self) -> set[bytes]:
        return {code.encode("latin-1")[:CLAIM_CODE_SIZE].ljust(CLAIM_CODE_SIZE, b"\x00")
                for code in self.ctx.codes_set}

    def on_record(self, record: TraceRecord) -> None:
        if record.kind == "claim_code.issued" and record.node == self._cloud_name:
            code = str(record.fields.get("code"))
            for legit in self.legit.values():
                legit.add(code.encode("latin-1")[:CLAIM_CODE_SIZE].ljust(CLAIM_CODE_SIZE,
                                                                           b"\x00"))
        elif record.kind == "device.boot" and record.node in self.legit:
            self._check(self.ctx.testbed.devices[record.node], record.t_us)

    def _check(self, device: Device, t_us: int) -> None:
        try:
            raw = device.claim.stored_code()
        except PowerCut:
            return
        if raw[0] in (0x00, 0xFF):
            return
        legit = self.legit[device.name] | self._codes()
        if raw in legit:
            return
        text = raw.split(b"\x00", 1)[0].decode("latin-1")
        self.violate(f"after the boot at {seconds(t_us):.3f} s the DCT of {device.name} holds "
                     f"a torn claim code {text[:20]}...{text[-8:]} ({len(text)} characters): "
                     "neither a code that was set nor a cleared one", "torn-code")

    def settled(self) -> bool:
        return True

    def finish(self) -> None:
        for device in self.ctx.testbed.devices.values():
            self._check(device, self.ctx.world.clock.now_us)


class NoLostPublish(Checker):
    """``no-lost-publish`` (see the module header)."""

    def __init__(self, event: str = SESSION_END_EVENT) -> None:
        self.event = event

    def start(self, ctx: RunContext) -> None:
        super().start(ctx)
        self.require_particle_devices(ctx)
        self._devices = set(ctx.testbed.devices)

    def on_record(self, record: TraceRecord) -> None:
        if record.node not in self._devices:
            return
        if record.kind == "publish.lost" and record.fields.get("name") == self.event:
            reason = str(record.fields.get("reason", ""))
            self.violate(f"{self.event} published by {record.node} at "
                         f"{seconds(record.t_us):.3f} s was lost: the cloud connection was "
                         f"{record.fields.get('cloud_state')} ({reason})",
                         reason.replace(" ", "-"))
        elif record.kind == "coap.timeout" and record.fields.get("what") == f"event {self.event}":
            self.violate(f"{self.event} published by {record.node} was never acknowledged "
                         f"(timed out at {seconds(record.t_us):.3f} s)", "timed-out")


class TraceFunction(Checker):
    """A user function over the finished trace (see the module header)."""

    def __init__(self, function: Callable[[list[TraceRecord]], Any]) -> None:
        self.function = function

    def settled(self) -> bool:
        return False  # the function judges the whole run: it runs to the horizon

    def finish(self) -> None:
        result = self.function(self.ctx.world.trace.records)
        if result is None or result is True:
            return
        if result is False:
            self.violate(f"{self.name} returned False")
            return
        messages = [result] if isinstance(result, str) else result
        if not isinstance(messages, list | tuple) or not all(
                isinstance(m, str) for m in messages):
            from .user_code import PropertyError

            raise PropertyError(f"property {self.name} must return str or None (or a list of "
                                f"str, or a bool), not {type(result).__name__}: "
                                f"{_short_repr(result)}")
        for message in messages:
            self.violate(message)


def _short_repr(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# -- the registry ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PropertySpec:
    """A property to check: its name, parameters and how to make its checker."""

    name: str
    make: Callable[[], Checker]
    params: Mapping[str, Any] = field(default_factory=dict)
    summary: str = ""


@dataclass(frozen=True)
class BuiltinProperty:
    summary: str
    factory: Callable[..., Checker]
    defaults: Mapping[str, Any] = field(default_factory=dict)


PROPERTIES: dict[str, BuiltinProperty] = {
    "claim-liveness": BuiltinProperty(
        "a stored claim code is delivered and confirmed within within_s of the next stable "
        "connection", ClaimLiveness, {"within_s": 60.0}),
    "ownership": BuiltinProperty(
        "ownership changes only by a valid claim code or an allowed API claim", Ownership),
    "code-once": BuiltinProperty("a claim code is consumed at most once", CodeOnce),
    "dct-untorn": BuiltinProperty("the DCT never holds a torn claim code", DctUntorn),
    "no-lost-publish": BuiltinProperty(
        "every publish of the named event reaches the cloud", NoLostPublish,
        {"event": SESSION_END_EVENT}),
}
#: names that stand for several properties
GROUPS: dict[str, tuple[str, ...]] = {"safety": ("ownership", "code-once", "dct-untorn")}
DEFAULT_PROPERTIES = ("claim-liveness", "safety")


def _builtin(name: str, params: Mapping[str, Any]) -> PropertySpec:
    builtin = PROPERTIES[name]
    unknown = set(params) - set(builtin.defaults)
    if unknown:
        raise ConfigurationError(f"property {name}: unknown parameter {sorted(unknown)[0]!r} "
                                 f"(known: {', '.join(builtin.defaults) or 'none'})")
    merged = {**builtin.defaults, **params}
    for key, default in builtin.defaults.items():
        value = merged[key]
        if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            merged[key] = float(value)
        elif not isinstance(value, type(default)) or isinstance(value, bool) != isinstance(
                default, bool):
            raise ConfigurationError(f"property {name}: {key} must be "
                                     f"{type(default).__name__}, not {value!r}")
        elif isinstance(value, str) and not value.strip() and default:  # "" is not a name
            raise ConfigurationError(f"property {name}: {key} must not be empty")
    factory = builtin.factory
    return PropertySpec(name, lambda: factory(**merged), merged, builtin.summary)


def _load_attr(reference: str) -> Any:
    location, _, attr = reference.rpartition(":")
    if not location or not attr:
        raise ConfigurationError(f"unknown property {reference!r}: give a built-in name "
                                 f"({', '.join([*PROPERTIES, *GROUPS])}), module:attr or "
                                 "path/to/file.py:attr")
    module = import_location(location, "property", reference)
    found = getattr(module, attr, None)
    if found is None:
        raise ConfigurationError(f"property {reference!r}: no attribute {attr!r}")
    return found


def user_property(name: str, target: Any, params: Mapping[str, Any] | None = None
                  ) -> PropertySpec:
    """A property from a :class:`Checker` subclass (made with ``params``) or a function over the
    finished trace."""
    params = dict(params or {})
    if inspect.isclass(target) and issubclass(target, Checker):
        cls = target

        def make_checker() -> Checker:
            try:
                return cls(**params)
            except TypeError as exc:
                raise ConfigurationError(f"property {name}: {exc}") from None

        return PropertySpec(name, make_checker, params, (cls.__doc__ or "").strip()
                            .split("\n")[0])
    if inspect.isclass(target):
        raise ConfigurationError(f"property {name}: the class {target.__name__} is not a "
                                 "firmware_sim.explore.Checker subclass")
    if callable(target):
        if not (inspect.isfunction(target) or inspect.ismethod(target)) or not _takes_one(
                target):
            raise ConfigurationError(
                f"property {name}: {getattr(target, '__name__', type(target).__name__)} is not "
                "a property: give a Checker subclass or a Python function fn(records) that "
                "returns None or a violation message (str)")
        if params:
            raise ConfigurationError(f"property {name}: a trace function takes no parameters")
        function = target
        return PropertySpec(name, lambda: TraceFunction(function), {},
                            (getattr(function, "__doc__", None) or "").strip().split("\n")[0])
    raise ConfigurationError(f"property {name}: {target!r} is neither a Checker subclass nor "
                             "a function")


def _takes_one(function: Callable[..., Any]) -> bool:
    """Whether ``function`` can be called with one positional argument (the records)."""
    try:
        inspect.signature(function).bind(())
    except (TypeError, ValueError):
        return False
    return True


def resolve(name: str, params: Mapping[str, Any] | None = None) -> list[PropertySpec]:
    """The property (or group of properties) called ``name``."""
    params = dict(params or {})
    if name in GROUPS:
        if params:
            raise ConfigurationError(f"property group {name} takes no parameters")
        return [_builtin(member, {}) for member in GROUPS[name]]
    if name in PROPERTIES:
        return [_builtin(name, params)]
    return [user_property(name, _load_attr(name), params)]


PropertyLike = str | PropertySpec | type[Checker] | Callable[[list[TraceRecord]], Any]


def resolve_all(items: Iterable[PropertyLike] | Mapping[str, Mapping[str, Any]]
                ) -> list[PropertySpec]:
    """Properties from names (``name`` or ``name:key=value,key=value``), a mapping name ->
    parameters (a scenario file's ``[properties]``), specs, checker classes or functions."""
    out: list[PropertySpec] = []
    if isinstance(items, Mapping):
        for name, params in items.items():
            out.extend(resolve(name, params))
        return _unique(out)
    for item in items:
        if isinstance(item, PropertySpec):
            out.append(item)
        elif isinstance(item, str):
            name, params = parse_property_arg(item)
            out.extend(resolve(name, params))
        else:
            label = getattr(item, "__name__", type(item).__name__)
            out.append(user_property(label, item))
    return _unique(out)


def _unique(specs: Sequence[PropertySpec]) -> list[PropertySpec]:
    seen: dict[str, PropertySpec] = {}
    for spec in specs:
        seen[spec.name] = spec
    return list(seen.values())


def parse_property_arg(text: str) -> tuple[str, dict[str, Any]]:
    """``claim-liveness:within_s=30`` -> ``("claim-liveness", {"within_s": 30.0})``. A user
    property ``module:attr`` keeps its colon; its parameters follow a ``?`` or a second colon
    (``mod:Checker?limit=3``, ``checks.py:Checker:limit=3``)."""
    head, _, tail = text.rpartition(":")
    if "?" in text:
        name, _, raw = text.partition("?")
    elif ":" in text and text.split(":", 1)[0] in {*PROPERTIES, *GROUPS}:
        name, _, raw = text.partition(":")
    elif ":" in head and "=" in tail:
        name, raw = head, tail
    else:
        name, raw = text, ""
    params: dict[str, Any] = {}
    for part in filter(None, raw.split(",")):
        key, eq, value = part.partition("=")
        if not eq or not key:
            raise ConfigurationError(f"property {text!r}: parameters are key=value")
        params[key.strip()] = _parse_value(value.strip())
    return name, params


def _parse_value(text: str) -> Any:
    if text in ("true", "false"):
        return text == "true"
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def property_names() -> list[str]:
    return [*PROPERTIES, *GROUPS]


__all__ = ["DEFAULT_PROPERTIES", "GROUPS", "PROPERTIES", "BuiltinProperty", "Checker",
           "ClaimLiveness", "CodeOnce", "DctUntorn", "NoLostPublish", "Ownership",
           "PropertyLike", "PropertySpec", "TraceFunction", "parse_property_arg",
           "property_names", "resolve", "resolve_all", "user_property"]
