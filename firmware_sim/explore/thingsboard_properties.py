"""Properties of a ThingsBoard world: claim liveness, claim safety, who may unassign a device.

How this works
--------------
Every checker here keeps its own *ledger* of the world, built only from trace records: the
presses of each claim button (``claim.secret``: the secret on its display, the claim window it
announced), what the service did with each press's claim info (``tb.claim.register``: cached,
or not and why), the customers' claims and reclaims (``tb.claim.customer``,
``tb.claim.reclaim``) and the explorer's steps (which secret a customer typed, as a fingerprint;
the tenant's ``claimingData``). From those it models ThingsBoard's documented claiming rules -
one cached entry per device written with putIfAbsent, evicted by a failed attempt, a claim or a
reclaim, gone after the cache's time-to-live; the ``claimingData`` attribute read only when
nothing is cached; a device assigned by a matching claim, unassigned by a reclaim - and judges
what the service answered against that model (never against the service's own reason codes).

* ``tb-claim-liveness`` [``allow`` = ""]: a customer claim with the secret a button displays,
  made within the claim window (``durationMs``) of the press that displayed it - or with the
  key of a live ``claimingData`` attribute - succeeds. When it does not, the violation's
  signature names the rule that stopped it: ``kept-first-secret`` (a second press while the
  first one's claim data was cached: putIfAbsent keeps the first secret),
  ``evicted-by-failed-attempt`` (a wrong key or a late claim evicted the cached data),
  ``evicted-by-reclaim``, ``cache-ttl-expired`` (the cache forgot the entry before the window
  ended), ``already-assigned``, ``claiming-not-allowed`` (``allowClaimingByDefault`` false and no
  ``claimingAllowed``), ``cache-disabled``, ``cache-shadows-claiming-data`` (cached device data
  hides the attribute), ``claim-before-registration``, ``claim-info-lost`` - or ``unexplained``
  when no documented rule accounts for it. ``allow`` lists signatures to accept (comma
  separated): the rules you already design around.
* ``tb-ownership``: a device is assigned to a customer only by a claim that matches live claim
  data (the device's cached data, else the ``claimingData`` attribute: the same secret, before
  its expiry) while the device is unassigned, and its assignment never changes otherwise.
* ``tb-secret-once``: a piece of claim data (one press's secret, one ``claimingData`` key)
  assigns a device at most once.
* ``tb-reclaim-by-owner``: only a user of the customer a device is assigned to, or the tenant
  administrator, unassigns it (ThingsBoard lets any customer user of the tenant do it: its claim
  permission skips the customer-ownership check).
* ``tb-safety`` = ``tb-ownership`` + ``tb-secret-once`` + ``tb-reclaim-by-owner``.

All are settled at any time (nothing is judged at a deadline): a run ends a second after its
last action, when every claim message has long arrived.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..kernel.errors import ConfigurationError
from ..kernel.trace import TraceRecord
from .context import RunContext
from .model import seconds
from .properties import GROUPS, PROPERTIES, BuiltinProperty, Checker
from .thingsboard_world import TENANT_ADMIN_EMAIL, customer_of

if TYPE_CHECKING:
    from ..testbed.clouds.thingsboard import ThingsBoardPlug

#: actions whose step record says which secret a customer typed (``given``)
CLAIM_ACTIONS = ("tb.customer_claim", "tb.cache_evict")


@dataclass
class Press:
    """One press of a claim button, and what became of its claim info."""

    number: int
    device: str
    secret_fp: str
    t_us: int
    window_us: int
    #: ("saved" | "not_saved" | "rejected", service reason) once the service got it
    registration: tuple[str, str] | None = None
    #: the press whose cached data a not-saved registration found (putIfAbsent)
    kept_behind: Press | None = None
    lost: str | None = None

    def describe(self) -> str:
        return f"the press at {seconds(self.t_us):.3f} s"


@dataclass
class ClaimData:
    """A cached entry (from a press) or a ``claimingData`` attribute, as the ledger sees it."""

    ident: str
    secret_fp: str
    expiration_ms: int
    written_us: int
    press: Press | None = None


@dataclass
class Removal:
    cause: str
    t_us: int
    detail: str
    data: ClaimData


@dataclass
class DeviceLedger:
    name: str
    presses: list[Press] = field(default_factory=list)
    cached: ClaimData | None = None
    attribute: ClaimData | None = None
    claiming_allowed: bool = False
    owner: str | None = None
    #: when the device was last assigned (by a claim the ledger saw)
    owned_since_us: int | None = None
    removals: list[Removal] = field(default_factory=list)
    #: every piece of claim data the device ever had (cached or as the attribute)
    history: list[ClaimData] = field(default_factory=list)
    #: the secret fingerprint and choice of the explorer's claim step now running
    typed: tuple[str, str] | None = None


class TbLedger(Checker):
    """The ledger every ThingsBoard property keeps (see the module header); subclasses judge."""

    def start(self, ctx: RunContext) -> None:
        super().start(ctx)
        plug = ctx.thingsboard
        if plug is None:
            cloud = ctx.scenario.world.cloud or "none"
            raise ConfigurationError(f"property {self.name} checks a thingsboard world; this "
                                     f"world's cloud is {cloud}")
        self.plug: ThingsBoardPlug = plug
        settings = plug.service.settings
        self.ttl_us = settings.cache_ttl_minutes * 60_000_000
        self.cache_enabled = settings.cache_enabled
        self.default_window_us = settings.claim_duration_ms * 1000
        self.by_default = settings.allow_claiming_by_default
        self.service_node = plug.service.name
        self.nodes = {button.node: name for name, button in plug.buttons.items()}
        self.devices = {name: DeviceLedger(name, owner=customer_of(plug, name))
                        for name in plug.buttons}
        self.presses = 0
        self.attributes_set = 0

    def settled(self) -> bool:
        return True

    # -- the model -----------------------------------------------------------------------------

    def now_ms(self, t_us: int) -> int:
        return self.plug.service.epoch_ms + t_us // 1000

    def live_cached(self, dev: DeviceLedger, t_us: int) -> ClaimData | None:
        data = dev.cached
        if data is not None and t_us - data.written_us >= self.ttl_us:
            dev.cached = None
            dev.removals.append(Removal("ttl", data.written_us + self.ttl_us,
                                        "the claimDevices cache's time-to-live", data))
            return None
        return data

    def claim_data(self, dev: DeviceLedger, t_us: int) -> tuple[ClaimData | None, str | None]:
        """What a claim now reads: the cached entry, else the attribute (B7's order)."""
        cached = self.live_cached(dev, t_us)
        if cached is not None:
            return cached, "cache"
        if dev.attribute is not None:
            return dev.attribute, "attribute"
        return None, None

    def customer_title(self, email: str) -> str | None:
        user = self.plug.service.store.find_user(email)
        if user is None or user.customer_id is None:
            return None
        customer = self.plug.service.store.get_customer(user.customer_id)
        return customer.title if customer is not None else None

    # -- records -------------------------------------------------------------------------------

    def on_record(self, record: TraceRecord) -> None:
        node = record.node
        if node in self.nodes:
            self._button(self.devices[self.nodes[node]], record)
        elif node == self.service_node:
            self._service(record)
        elif node == "explorer" and record.kind == "explore.step":
            self._step(record)

    def _button(self, dev: DeviceLedger, record: TraceRecord) -> None:
        f = record.fields
        if record.kind == "claim.secret":
            from ..testbed.clouds.thingsboard import fingerprint

            self.presses += 1
            duration = int(f.get("duration_ms", 0))
            window_us = duration * 1000 if duration > 0 else self.default_window_us
            dev.presses.append(Press(self.presses, dev.name, fingerprint(str(f.get("secret", ""))),
                                     record.t_us, window_us))
        elif record.kind == "claim.failed":
            for press in reversed(dev.presses):
                if press.registration is None and press.lost is None:
                    press.lost = (f"its claim message failed at {seconds(record.t_us):.3f} s "
                                  f"({f.get('detail')})")
                    break

    def _step(self, record: TraceRecord) -> None:
        f = record.fields
        action = f.get("action")
        dev = self.devices.get(str(f.get("button", "")))
        if dev is None:
            if len(self.devices) != 1 or f.get("button") is not None:
                return
            dev = next(iter(self.devices.values()))
        if action in CLAIM_ACTIONS and "given" in f:
            dev.typed = (str(f["given"]), str(f.get("secret", "wrong")))
        elif action == "tb.claiming_data":
            if "key" in f:
                self.attributes_set += 1
                dev.attribute = ClaimData(f"claimingData #{self.attributes_set}", str(f["key"]),
                                          int(f.get("expiration_time_ms", 0)), record.t_us)
                dev.history.append(dev.attribute)
            elif f.get("skipped") is None:
                dev.attribute = None
        elif action == "tb.allow_claiming" and f.get("skipped") is None:
            dev.claiming_allowed = True

    def _service(self, record: TraceRecord) -> None:
        f = record.fields
        dev = self.devices.get(str(f.get("device", "")))
        if dev is None:
            return
        kind = record.kind
        if kind in ("tb.claim.register", "tb.claim.rejected"):
            press = next((p for p in dev.presses if p.registration is None and p.lost is None),
                         None)
            if press is None:
                return
            if kind == "tb.claim.rejected":
                press.registration = ("rejected", str(f.get("reason")))
                return
            press.registration = (str(f.get("outcome")), str(f.get("reason")))
            live = self.live_cached(dev, record.t_us)
            if f.get("outcome") == "saved":
                dev.cached = ClaimData(f"press #{press.number}", str(f.get("secret")),
                                       int(f.get("expiration_time_ms") or 0), record.t_us, press)
                dev.history.append(dev.cached)
            else:
                press.kept_behind = live.press if live is not None else None
        elif kind == "tb.claim.customer":
            data, source = self.claim_data(dev, record.t_us)
            typed, dev.typed = dev.typed, None
            self.judge_claim(dev, record, data, source, typed)
            response = f.get("response")
            if data is not None:
                if response == "FAILURE":
                    if source == "cache":
                        dev.cached = None
                        why = ("an expired" if self.now_ms(record.t_us) > data.expiration_ms
                               else "a wrong-key")
                        dev.removals.append(Removal(
                            "failed-attempt", record.t_us,
                            f"{why} claim by {f.get('user')} at {seconds(record.t_us):.3f} s",
                            data))
                else:  # SUCCESS or CLAIMED: the claim data is used up (B4, B9)
                    if dev.cached is not None:
                        dev.removals.append(Removal("claimed", record.t_us, "a claim", dev.cached))
                    dev.cached = None
                    dev.attribute = None
                    dev.claiming_allowed = False
                    if response == "SUCCESS":
                        dev.owner = self.customer_title(str(f.get("user")))
                        dev.owned_since_us = record.t_us
        elif kind == "tb.claim.reclaim":
            self.judge_reclaim(dev, record)
            cached = self.live_cached(dev, record.t_us)
            if cached is not None:
                dev.cached = None
                dev.removals.append(Removal("reclaim", record.t_us,
                                            f"a reclaim by {f.get('user')} at "
                                            f"{seconds(record.t_us):.3f} s", cached))
            if dev.owner is not None:
                dev.owner = None
                if not self.by_default:
                    dev.claiming_allowed = True
        if kind.startswith("tb.claim."):
            self.after_service(dev, record)

    # -- what subclasses judge -----------------------------------------------------------------

    def judge_claim(self, dev: DeviceLedger, record: TraceRecord, data: ClaimData | None,
                    source: str | None, typed: tuple[str, str] | None) -> None:
        """A customer claim, before the ledger applies it."""

    def judge_reclaim(self, dev: DeviceLedger, record: TraceRecord) -> None:
        """A reclaim, before the ledger applies it."""

    def after_service(self, dev: DeviceLedger, record: TraceRecord) -> None:
        """After the ledger applied a claim record of the service."""


# -- liveness --------------------------------------------------------------------------------------

LIVENESS_SIGNATURES = (
    "kept-first-secret", "evicted-by-failed-attempt", "evicted-by-reclaim", "cache-ttl-expired",
    "already-assigned", "claiming-not-allowed", "cache-disabled", "cache-shadows-claiming-data",
    "claim-before-registration", "claim-info-lost", "claim-info-rejected", "unexplained")


class TbClaimLiveness(TbLedger):
    """``tb-claim-liveness`` (see the module header)."""

    def __init__(self, allow: str = "") -> None:
        parts = {part.strip() for part in allow.replace("+", ",").split(",") if part.strip()}
        if "documented" in parts:  # every documented rule: only "unexplained" is a violation
            parts = (parts - {"documented"}) | (set(LIVENESS_SIGNATURES) - {"unexplained"})
        self.allow = parts
        unknown = sorted(self.allow - set(LIVENESS_SIGNATURES))
        if unknown:
            raise ConfigurationError(f"tb-claim-liveness: allow: unknown signature "
                                     f"{unknown[0]!r} (known: documented, "
                                     f"{', '.join(LIVENESS_SIGNATURES)})")

    def judge_claim(self, dev: DeviceLedger, record: TraceRecord, data: ClaimData | None,
                    source: str | None, typed: tuple[str, str] | None) -> None:
        if typed is None:
            return  # not the explorer's claim: nobody knows which secret was typed
        response = str(record.fields.get("response"))
        if response == "SUCCESS":
            return
        given, _ = typed
        now = record.t_us
        if dev.owner is not None and dev.owner == self.customer_title(
                str(record.fields.get("user"))):
            return  # the device is already the claimer's: CLAIMED is what they want
        press = dev.presses[-1] if dev.presses else None
        expected: str | None = None
        if press is not None and press.secret_fp == given and now <= press.t_us + press.window_us:
            if self._used(dev, press):
                return  # a claim used this press's secret: it is spent (tb-secret-once)
            expected = (f"{dev.name} displayed that secret at {seconds(press.t_us):.3f} s with a "
                        f"{press.window_us / 1e6:g} s claim window")
            signature, why = self._diagnose_press(dev, press, data, now)
        elif dev.attribute is not None and dev.attribute.secret_fp == given and \
                self.now_ms(now) <= dev.attribute.expiration_ms:
            expected = (f"the tenant set {dev.name}'s claimingData with that key at "
                        f"{seconds(dev.attribute.written_us):.3f} s, valid until "
                        f"{dev.attribute.expiration_ms}")
            signature, why = self._diagnose_attribute(dev, data, source)
        if expected is None:
            return
        if signature == "unexplained":
            why = (f"{why}; the service answered {response} "
                   f"({record.fields.get('reason')}) and no documented rule explains it")
        if signature in self.allow:
            return
        self.violate(f"customer claim of {dev.name} at {seconds(now):.3f} s by "
                     f"{record.fields.get('user')} with the right secret answered {response}: "
                     f"{expected}, but {why}", signature)

    @staticmethod
    def _used(dev: DeviceLedger, press: Press) -> bool:
        if dev.owned_since_us is not None and dev.owned_since_us >= press.t_us:
            return True
        return any(r.cause == "claimed" and r.data.press is press for r in dev.removals)

    def _diagnose_press(self, dev: DeviceLedger, press: Press, data: ClaimData | None,
                        now: int) -> tuple[str, str]:
        if dev.owner is not None:
            return "already-assigned", (
                f"the device already belongs to {dev.owner}: ThingsBoard refuses claim info from "
                "an assigned device and answers CLAIMED to a claim; it must be reclaimed first")
        if press.registration is None:
            if press.lost is not None:
                return "claim-info-lost", f"the button's claim info never reached ThingsBoard: " \
                                          f"{press.lost}"
            return "claim-before-registration", (
                "the claim came before the button's claim info reached ThingsBoard")
        outcome, reason = press.registration
        if outcome == "rejected":
            return "claim-info-rejected", f"ThingsBoard rejected the claim info ({reason})"
        if outcome != "saved":
            first = press.kept_behind
            if first is not None:
                return "kept-first-secret", (
                    f"the claim data of {first.describe()} was still cached when {press.describe()}"
                    " sent its new secret: ThingsBoard caches device claim info with putIfAbsent, "
                    "so the first secret and expiry stay until that entry is evicted and the "
                    "secret on the display is not the one ThingsBoard holds")
            if not self.cache_enabled:
                return "cache-disabled", ("the claimDevices cache is disabled (time-to-live or "
                                          "maximum size 0), so device claim info is dropped")
            if not self.by_default and not dev.claiming_allowed:
                return "claiming-not-allowed", (
                    "allowClaimingByDefault is false and the device has no SERVER attribute "
                    "claimingAllowed = true, so ThingsBoard ignored its claim info (it still "
                    "acknowledged it)")
            return "unexplained", f"ThingsBoard did not cache the press's claim info ({reason})"
        removal = next((r for r in reversed(dev.removals) if r.data.press is press), None)
        if data is not None and data.press is press:
            return "unexplained", "the press's claim data is still cached"
        if removal is None:
            return "unexplained", "the press's claim data is gone for no documented reason"
        if removal.cause == "failed-attempt":
            return "evicted-by-failed-attempt", (
                f"{removal.detail} evicted the press's cached claim data: one failed attempt "
                "evicts it, and the device must send its claim info again")
        if removal.cause == "reclaim":
            return "evicted-by-reclaim", (f"{removal.detail} evicted the press's cached claim "
                                          "data, even though the device was not assigned")
        if removal.cause == "ttl":
            return "cache-ttl-expired", (
                f"the claimDevices cache dropped the entry at {seconds(removal.t_us):.3f} s, "
                f"after its {self.ttl_us / 60e6:g} min time-to-live and before the claim window "
                "ended: the cache's time-to-live bounds the claim window")
        return "unexplained", f"the press's claim data was used by {removal.detail}"

    def _diagnose_attribute(self, dev: DeviceLedger, data: ClaimData | None,
                            source: str | None) -> tuple[str, str]:
        if dev.owner is not None:
            return "already-assigned", (f"the device already belongs to {dev.owner}: ThingsBoard "
                                        "answers CLAIMED; it must be reclaimed first")
        if source == "cache" and data is not None:
            return "cache-shadows-claiming-data", (
                f"claim data of {data.press.describe() if data.press else 'the device'} was "
                "cached, and ThingsBoard reads the claimingData attribute only when nothing is "
                "cached for the device")
        return "unexplained", "the claimingData attribute should have matched"


# -- safety ----------------------------------------------------------------------------------------


class TbOwnership(TbLedger):
    """``tb-ownership`` (see the module header)."""

    def judge_claim(self, dev: DeviceLedger, record: TraceRecord, data: ClaimData | None,
                    source: str | None, typed: tuple[str, str] | None) -> None:
        if record.fields.get("response") != "SUCCESS":
            return
        user = record.fields.get("user")
        head = f"{dev.name} was assigned to {user} at {seconds(record.t_us):.3f} s"
        if dev.owner is not None:
            self.violate(f"{head} although it belonged to {dev.owner}", "claimed-while-assigned")
        elif data is None:
            self.violate(f"{head} with no claim data (nothing cached, no claimingData)",
                         "claimed-without-claim-data")
        elif typed is not None and typed[0] != data.secret_fp:
            self.violate(f"{head} with a secret that does not match the claim data of "
                         f"{data.ident} ({source})", "claimed-with-wrong-secret")
        elif self.now_ms(record.t_us) > data.expiration_ms:
            self.violate(f"{head} with the claim data of {data.ident}, which expired at "
                         f"{data.expiration_ms}", "claimed-expired-data")

    def after_service(self, dev: DeviceLedger, record: TraceRecord) -> None:
        actual = customer_of(self.plug, dev.name)
        if actual != dev.owner:
            self.violate(f"{dev.name} is now assigned to {actual} (was {dev.owner}) at "
                         f"{seconds(record.t_us):.3f} s without a matching claim or a reclaim",
                         "unexplained-owner-change")
            dev.owner = actual


class TbSecretOnce(TbLedger):
    """``tb-secret-once`` (see the module header)."""

    def start(self, ctx: RunContext) -> None:
        super().start(ctx)
        self.used: dict[str, int] = {}

    def judge_claim(self, dev: DeviceLedger, record: TraceRecord, data: ClaimData | None,
                    source: str | None, typed: tuple[str, str] | None) -> None:
        if record.fields.get("response") != "SUCCESS":
            return
        if typed is not None and (data is None or data.secret_fp != typed[0]):
            # the service took claim data the ledger no longer holds: the latest with that secret
            data = next((d for d in reversed(dev.history) if d.secret_fp == typed[0]), None)
        if data is None:
            return
        key = f"{dev.name}:{data.ident}"
        if key in self.used:
            self.violate(f"the claim data of {data.ident} assigned {dev.name} a second time at "
                         f"{seconds(record.t_us):.3f} s (first at "
                         f"{seconds(self.used[key]):.3f} s)", "secret-reused")
            return
        self.used[key] = record.t_us


class TbReclaimByOwner(TbLedger):
    """``tb-reclaim-by-owner`` (see the module header)."""

    def judge_reclaim(self, dev: DeviceLedger, record: TraceRecord) -> None:
        if dev.owner is None:
            return
        email = str(record.fields.get("user"))
        if email == TENANT_ADMIN_EMAIL:
            return
        title = self.customer_title(email)
        if title != dev.owner:
            self.violate(f"{email} ({title}) unassigned {dev.name} from {dev.owner} at "
                         f"{seconds(record.t_us):.3f} s: ThingsBoard's claim permission skips the "
                         "customer-ownership check, so any customer user of the tenant can "
                         "reclaim any of its devices by name", "reclaimed-by-other-customer")


TB_PROPERTIES: dict[str, BuiltinProperty] = {
    "tb-claim-liveness": BuiltinProperty(
        "ThingsBoard: a claim with the displayed secret within the press's window (or a live "
        "claimingData key) succeeds; a violation names the rule that stopped it",
        TbClaimLiveness, {"allow": ""}),
    "tb-ownership": BuiltinProperty(
        "ThingsBoard: a device is assigned only by a claim matching live claim data while "
        "unassigned", TbOwnership),
    "tb-secret-once": BuiltinProperty(
        "ThingsBoard: one press's secret (or claimingData key) assigns a device at most once",
        TbSecretOnce),
    "tb-reclaim-by-owner": BuiltinProperty(
        "ThingsBoard: only the owning customer or the tenant admin unassigns a device",
        TbReclaimByOwner),
}
TB_GROUPS = {"tb-safety": ("tb-ownership", "tb-secret-once", "tb-reclaim-by-owner")}
TB_DEFAULT_PROPERTIES = ("tb-claim-liveness", "tb-safety")

for _name, _builtin in TB_PROPERTIES.items():
    if _name in PROPERTIES:
        raise ConfigurationError(f"property {_name!r} is already registered")
    PROPERTIES[_name] = _builtin
GROUPS.update(TB_GROUPS)


__all__ = ["LIVENESS_SIGNATURES", "TB_DEFAULT_PROPERTIES", "TB_GROUPS", "TB_PROPERTIES",
           "TbClaimLiveness", "TbLedger", "TbOwnership", "TbReclaimByOwner", "TbSecretOnce"]
