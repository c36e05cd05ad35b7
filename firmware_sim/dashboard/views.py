"""View models of the dashboard: what a page shows, computed from the steering state and trace
records, with no I/O (the unit tests drive these directly).

* :class:`DeviceRow` - one line of the device list (and the headline of a device page): name,
  id, profile, firmware, state, the last session kind with counts, the claim code pending
  (masked: only its length is in the row), the claimed flag, owner and product, and a one-line
  :attr:`~DeviceRow.summary` such as ``resumed, claim code pending`` - or, for a device that
  is not running, why and until when (``panicked: setup() raised KeyError: 'x'; resets in
  7 s``, ``off: a power cycle is in progress; boots in 3 s``);
* :func:`dct_dump` - the DCT bytes of the claim code as hex + ASCII lines at their offsets;
* :class:`Reason` and :func:`particle_reasons` / :func:`thingsboard_reasons` - the "why" panel:
  what refused or failed a claim (and what went right), from the trace (Particle) or the
  service's claim history (ThingsBoard);
* :func:`log_entry`, :func:`boot_entry`, :class:`EventRow` - the live log (a separator line
  at every boot) and the event stream.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from control_requests import RequestType, ResultCode

from ..communication.event_names import CLAIM_CODE_EVENT
from ..hal.dct import FIELDS
from ..kernel.trace import TraceRecord

#: the states a device row shows, in the order a device goes through them
STATES = ("off", "panic", "dfu", "listening", "disconnected", "connecting", "handshake",
          "connected", "offline", "idle", "closed")
#: the DCT field of the claim code, and of the claimed flag
CLAIM_CODE_FIELD = FIELDS["claim_code"]
CLAIMED_FIELD = FIELDS["claimed"]
MASK = "\u2022" * 8

_REDEEM_WHY = {
    "unknown_code": "the cloud knows no such claim code (never issued, or issued by another "
                    "cloud or database)",
    "malformed_code": "the code is not 63 characters of the claim-code alphabet",
    "already_used": "the code was already used to claim a device (each code claims once)",
    "expired": "the code's time to live had run out when the device sent it",
    "device_in_other_product": "the code was issued for another product than the device's",
    "product_device_not_in_team": "the device is in a product and the code's creator is not on "
                                  "that product's team",
}
_API_WHY = {
    "not_found": "unknown device, or one this caller may not claim (404)",
    "belongs_to_someone_else": "the device is owned by someone else (403 \"That belongs to "
                               "someone else.\")",
    "transfer_requested": "owned by another developer: a transfer request was made",
    "transfer_not_allowed": "a transfer cannot be requested for this device or by this caller",
}


def mask(length: int) -> str:
    """What a secret of ``length`` characters shows until revealed."""
    return f"{MASK} ({length} chars)" if length else "(empty)"


@dataclass(frozen=True)
class DeviceRow:
    name: str
    device_id: str
    profile: str
    firmware: str
    state: str
    #: "full", "resumed" or None (no session yet, or not a Particle device)
    last_session: str | None
    full: int
    resumed: int
    #: None: unknown (a device in another process); the code itself is never in a row. A
    #: claim button's secret is "pending" while the cloud holds its unexpired claim data
    claim_pending: bool | None
    #: the length of the pending code, or of the secret a claim button shows (0: none)
    claim_length: int
    #: the DCT claimed flag (Particle) or "assigned to a customer" (ThingsBoard)
    claimed: bool | None
    owner: str | None
    product: str | None
    cloud: str = "particle"
    #: which actions the device page offers (``particle``, ``remote``, ``button``)
    kind: str = "particle"
    #: why a device is not running and until when (None: nothing to say), for the summary
    detail: str | None = None

    @property
    def session(self) -> str:
        """``resumed (1 full, 2 resumed)``, or a dash before any session."""
        if self.kind == "button":
            return "\u2014"
        counts = f"{self.full} full, {self.resumed} resumed"
        if self.last_session is None:
            return f"none yet ({counts})" if self.full or self.resumed else "\u2014"
        return f"{self.last_session} ({counts})"

    @property
    def claim(self) -> str:
        """The claim code (or a button's secret) as the list shows it: masked, or why not."""
        if self.claim_pending is None:
            return "unknown"
        if self.claim_length and not self.claim_pending:
            return f"{mask(self.claim_length)}, not registered"
        return mask(self.claim_length) if self.claim_pending else "none"

    @property
    def summary(self) -> str:
        """One line: where the device is and whether a claim is stuck (``resumed, claim code
        pending`` is the forum thread's bug seen from outside)."""
        if self.detail:
            return self.detail
        parts = [self.state]
        if self.state == "connected" and self.last_session is not None:
            parts = [self.last_session]
        if self.claim_pending:
            parts.append("claim secret pending" if self.kind == "button"
                         else "claim code pending")
        return ", ".join(parts)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(session=self.session, claim=self.claim, summary=self.summary,
                    claimed_text=yes_no(self.claimed), owner_text=self.owner or "\u2014",
                    product_text=self.product or "\u2014")
        return data


def _seconds(value: Any) -> str:
    return f"{float(value):.0f} s" if isinstance(value, int | float) else "a moment"


def state_detail(state: Mapping[str, Any]) -> str | None:
    """Why a device is not running and until when, from its steering state: a panic (what
    raised, the panic's name, when it resets itself), or a boot under way (a power cycle or
    reset); None for a running device."""
    panic = state.get("panic")
    if state.get("state") == "panic":
        if not isinstance(panic, Mapping):
            return "panicked (flashing SOS)"
        why = panic.get("why")
        cause = (f"{why.get('where')} raised {why.get('error')}" if isinstance(why, Mapping)
                 else f"panic {panic.get('name')} (code {panic.get('code')})")
        return f"panicked: {cause}; resets in {_seconds(panic.get('resets_in_s'))}"
    boots_in = state.get("boots_in_s")
    if state.get("state") == "off" and boots_in is not None:
        return f"off: booting again in {_seconds(boots_in)} (a power cycle or reset)"
    return None


def uptime_text(state: Mapping[str, Any]) -> str:
    """The session panel's uptime: ms since the boot, ``panic (SOS)`` or ``off``."""
    if state.get("state") == "panic":
        return "panic (SOS)"
    uptime = state.get("uptime_ms")
    return "off" if uptime is None else f"{uptime} ms"


def yes_no(value: bool | None) -> str:
    return "unknown" if value is None else ("yes" if value else "no")


def particle_row(state: Mapping[str, Any], *, owner: str | None,
                 product: str | None) -> DeviceRow:
    """The row of a Particle device from :meth:`~firmware_sim.testbed.steering.Steering.state`
    (``owner``/``product``: display names the caller resolved from the store)."""
    sessions = state.get("sessions") or {}
    code = state.get("claim_code")
    return DeviceRow(detail=state_detail(state),
        name=str(state["name"]), device_id=str(state["device_id"]),
        profile=str(state.get("profile") or "\u2014"),
        firmware=str(state.get("firmware") or "\u2014"), state=str(state["state"]),
        last_session=state.get("last_session"), full=int(sessions.get("full", 0)),
        resumed=int(sessions.get("resumed", 0)),
        claim_pending=bool(state.get("claim_code_pending")),
        claim_length=len(code) if isinstance(code, str) else 0,
        claimed=bool(state.get("claimed_flag")), owner=owner, product=product)


# -- the DCT -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DumpLine:
    offset: str
    hex: str
    ascii: str


def dct_dump(raw: bytes, offset: int, width: int = 16) -> list[DumpLine]:
    """``raw`` as hex-dump lines, each starting at its DCT offset (``0x06e2``)."""
    lines = []
    for start in range(0, len(raw), width):
        chunk = raw[start:start + width]
        lines.append(DumpLine(f"0x{offset + start:04x}", " ".join(f"{b:02x}" for b in chunk),
                              "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in chunk)))
    return lines


def claimed_byte_text(value: int) -> str:
    """The claimed flag's byte and what Device OS reads from it (only ASCII '1' is claimed)."""
    meaning = {0x31: "'1': claimed", 0x00: "not claimed", 0xFF: "erased: not claimed"}
    return f"0x{value:02x} ({meaning.get(value, 'not claimed')})"


# -- why -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reason:
    #: world seconds
    t: float
    #: "refused", "failed", "pending", "ok" or "info" (something done to the device)
    level: str
    title: str
    detail: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def result_name(result: Any) -> str:
    try:
        return ResultCode(int(result)).name
    except (ValueError, TypeError):
        return "unknown result"


def particle_reasons(records: Iterable[TraceRecord], *, name: str, device_id: str,
                     owners: Mapping[str, str] | None = None) -> list[Reason]:
    """Why the device's claims went the way they did, oldest first (``owners``: principal text
    -> display name)."""
    owners = owners or {}
    reasons: list[Reason] = []
    for record in records:
        f, kind, t = record.fields, record.kind, record.t_us / 1e6
        if kind == "claim.redeem" and f.get("device_id") == device_id:
            outcome = str(f.get("outcome"))
            if outcome == "claimed":
                before = str(f.get("previous_owner") or "(none)")
                after = str(f.get("new_owner"))
                reasons.append(Reason(t, "ok", "Claim code accepted by the cloud",
                                      f"owner {owners.get(before, before)} -> "
                                      f"{owners.get(after, after)}"))
            else:
                reasons.append(Reason(t, "refused", f"Claim code refused by the cloud: "
                                      f"{outcome}", _REDEEM_WHY.get(outcome, outcome)))
        elif kind == "claim.api" and f.get("device_id") == device_id:
            outcome = str(f.get("outcome"))
            if outcome not in ("claimed", "already_yours"):
                caller = str(f.get("caller"))
                reasons.append(Reason(t, "refused", f"Claim by device id refused: {outcome}",
                                      f"{owners.get(caller, caller)}: "
                                      f"{_API_WHY.get(outcome, outcome)}"))
        elif kind == "key_change.to_device" and f.get("device_id") == device_id:
            reasons.append(Reason(t, "info", "The cloud sent a key change",
                                  "the device discards its session and reconnects with a full "
                                  "handshake"))
        elif record.node != name:
            continue
        elif kind == "handshake.resumed" and f.get("claim_code_pending"):
            resumes = 1
            if reasons and reasons[-1].level == "pending":  # the same stuck code again
                resumes = int(reasons.pop().detail.split(" ", 1)[0]) + 1
            reasons.append(Reason(
                t, "pending", "Session resumed with a claim code pending: the code was not sent",
                f"{resumes} resumed session{'s' if resumes > 1 else ''} without sending it. "
                f"Device OS publishes {CLAIM_CODE_EVENT} only after a full handshake, never on "
                "a resumed session. Drop the session, send a key change from the cloud (or "
                "run the session-end workaround firmware) to force a full handshake."))
        elif kind == "handshake.full" and f.get("claim_code_pending"):
            reasons.append(Reason(t, "ok", "Full handshake with a claim code pending",
                                  f"the device sends {CLAIM_CODE_EVENT} now"))
        elif kind == "control.done" and f.get("type") == int(RequestType.SET_CLAIM_CODE) \
                and f.get("result") != 0:
            reasons.append(Reason(t, "failed", "The device refused SET_CLAIM_CODE",
                                  f"result {f.get('result')} ({result_name(f.get('result'))})"))
        elif kind == "publish.lost" and f.get("name") == CLAIM_CODE_EVENT:
            reasons.append(Reason(t, "failed", "The claim code publish was lost",
                                  str(f.get("reason") or "no reason recorded")))
    return reasons


def thingsboard_reasons(history: Iterable[Mapping[str, Any]], epoch_ms: int = 0
                        ) -> list[Reason]:
    """The ThingsBoard service's claim history of a device (``service.why(...)["history"]``)
    as reasons: registrations, customer claims and reclaims, each with its reason code;
    ``epoch_ms`` (the service's cloud time at world time 0) turns their times into world
    seconds."""
    reasons = []
    for event in history:
        outcome = str(event.get("outcome"))
        action = str(event.get("action"))
        ok = outcome in ("saved", "SUCCESS", "done")
        level = "ok" if ok else ("failed" if outcome == "rejected" else "refused")
        reasons.append(Reason((float(event.get("ts", 0)) - epoch_ms) / 1000, level,
                              f"{action}: {outcome} ({event.get('reason')})",
                              str(event.get("message") or "")))
    return reasons


# -- log and events ------------------------------------------------------------------------------


def log_entry(record: TraceRecord) -> dict[str, Any]:
    """A Device OS log line of the live log (``0000033624 [comm] INFO: ...``)."""
    f = record.fields
    return {"seq": record.seq, "level": str(f.get("level", "INFO")).lower(),
            "text": f"{int(f.get('uptime_ms', 0)):010d} [{f.get('category')}] "
                    f"{f.get('level')}: {f.get('message')}"}


def boot_entry(record: TraceRecord) -> dict[str, Any]:
    """The separator the live log shows where the device booted (``device.boot``)."""
    f = record.fields
    return {"seq": record.seq, "level": "boot",
            "text": f"\u2500\u2500\u2500\u2500 boot {f.get('boot')} (reset reason "
                    f"{f.get('reset_reason')}) at world {record.t_us / 1e6:.3f} s "
                    "\u2500\u2500\u2500\u2500"}


def button_log_entry(record: TraceRecord) -> dict[str, Any]:
    """A claim button's trace record as a log line (it has no Device OS log)."""
    fields = {k: v for k, v in record.fields.items() if k != "secret"}
    if "secret" in record.fields:
        fields["secret"] = mask(len(str(record.fields["secret"])))
    extras = " ".join(f"{k}={v}" for k, v in fields.items())
    level = "warn" if record.kind in ("claim.failed", "mqtt.refused", "mqtt.closed") else "info"
    return {"seq": record.seq, "level": level,
            "text": f"world {record.t_us / 1e6:9.3f}s [{record.layer}] {record.kind} "
                    f"{extras}".rstrip()}


@dataclass(frozen=True)
class EventRow:
    seq: int
    t: float
    #: "up" (device -> cloud) or "down" (cloud -> device)
    direction: str
    name: str
    data: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def event_data(name: str, data: str, limit: int = 200) -> str:
    """An event's data as the stream panel shows it: a claim code is masked, long data cut."""
    if name == CLAIM_CODE_EVENT and data:
        return mask(len(data))
    return data if len(data) <= limit else data[:limit - 1] + "\u2026"


__all__ = ["CLAIMED_FIELD", "CLAIM_CODE_FIELD", "STATES", "DeviceRow", "DumpLine", "EventRow",
           "Reason", "boot_entry", "button_log_entry", "claimed_byte_text", "dct_dump",
           "event_data", "log_entry", "mask", "particle_reasons", "particle_row", "result_name",
           "state_detail", "thingsboard_reasons", "uptime_text", "yes_no"]
