"""A sequence diagram read from trace records: lanes, arrows, notes and Device OS log lines.

How this works
--------------
:func:`build_diagram` walks the records of one run in order and turns the ones a person wants
to see into rows:

* arrows between lanes - the phone's requests and their results, the operator's and the
  customer's actions, what the cloud received from the device (DTLS hello, HELLO, the resume
  ping, published events) and sent to it (RST, events such as ``spark/device/claim/confirm``);
* notes - the explorer's steps and hooks, boots and resets, lost publishes, dropped or delayed
  datagrams, the cloud's session drops, claim redemptions and fault firings, and in red the
  ``explore.violation`` record where a property broke;
* log rows - each Device OS log line of a device, shown beside the diagram;
* for a ThingsBoard world: each claim button is a device lane (press, the secret it displays,
  its claim message and the server's acknowledgement, MQTT connects), the service a cloud lane
  (what it did with the claim data, and why), and each customer user a customer lane (claim and
  reclaim requests with the service's response and reason).

Lanes appear in a fixed order (explorer, phone, operator, customer, devices, clouds), only when
used. Every row keeps the trace ``seq`` and ``t_us`` of its record, so a report can point at a
row. The renderers (``mermaid.py``, ``svg.py``) only read this model; a dashboard can reuse it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ..kernel.trace import TraceRecord

DEVICE_LAYERS = frozenset({"system", "cloud", "comm", "net", "events", "control", "listening",
                           "log", "udp"})
CLOUD_LAYERS = frozenset({"endpoint", "cloud"})
#: a ThingsBoard world: the claim buttons' layers and the service's
BUTTON_LAYERS = frozenset({"button", "mqtt"})
TB_LAYERS = frozenset({"tb", "tb.mqtt", "tb.http", "tb.coap"})


@dataclass(frozen=True)
class Lane:
    id: str
    title: str
    kind: str  # explorer, phone, operator, customer, device, cloud


@dataclass(frozen=True)
class Row:
    t_us: int
    seq: int
    #: "arrow", "note", "log"
    kind: str
    text: str
    source: str = ""
    target: str = ""
    #: "request", "reply", "alert", "violation", "step", "info"
    style: str = "info"


@dataclass
class Diagram:
    title: str
    lanes: list[Lane] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)

    def lane(self, lane_id: str) -> Lane | None:
        return next((lane for lane in self.lanes if lane.id == lane_id), None)

    def violation_rows(self) -> list[int]:
        """Indexes of the rows where a property broke."""
        return [i for i, row in enumerate(self.rows) if row.style == "violation"]

    def row_of_seq(self, seq: int) -> int | None:
        """The index of the row made from trace record ``seq`` (None if it made none)."""
        return next((i for i, row in enumerate(self.rows) if row.seq == seq), None)


_ORDER = ("explorer", "phone", "operator", "customer", "device", "cloud")


def _short(text: object, limit: int = 48) -> str:
    value = str(text)
    return value if len(value) <= limit else value[:limit - 3] + "..."


class _Builder:
    def __init__(self, title: str, include_log: bool) -> None:
        self.diagram = Diagram(title)
        self.include_log = include_log
        self.lanes: dict[str, Lane] = {}
        self.devices: set[str] = set()
        self.device_ids: dict[str, str] = {}
        self.clouds: set[str] = set()
        self.buttons: set[str] = set()
        self.tb: str | None = None

    def lane(self, lane_id: str, kind: str, title: str | None = None) -> str:
        if lane_id not in self.lanes:
            self.lanes[lane_id] = Lane(lane_id, title or lane_id, kind)
        return lane_id

    def add(self, record: TraceRecord, kind: str, text: str, source: str = "",
            target: str = "", style: str = "info") -> None:
        self.diagram.rows.append(Row(record.t_us, record.seq, kind, text, source, target, style))

    def device_for(self, record: TraceRecord) -> str:
        device_id = record.fields.get("device_id")
        if device_id is not None and str(device_id) in self.device_ids:
            return self.device_ids[str(device_id)]
        if len(self.devices) == 1:
            return next(iter(self.devices))
        return self.lane(f"device {device_id}", "device")

    def feed(self, record: TraceRecord) -> None:
        node, layer, kind, f = record.node, record.layer, record.kind, record.fields
        if node not in self.devices and (layer == "endpoint" or (
                layer in CLOUD_LAYERS and node not in ("phone", "operator", "explorer"))):
            self.clouds.add(node)
        elif layer in DEVICE_LAYERS and node not in ("phone", "operator", "explorer"):
            self.devices.add(node)
            self.clouds.discard(node)
        if kind == "device.boot":
            self.device_ids[str(f.get("device_id"))] = node
            self.lane(node, "device", f"{node} ({f.get('profile', 'device')})")
        if layer in BUTTON_LAYERS:
            self._button(record)
            return
        if layer in TB_LAYERS:
            self._thingsboard(record)
            return
        if node == "explorer":
            self._explorer(record)
        elif node == "phone":
            self._phone(record)
        elif layer == "operator":
            self._operator(record)
        elif layer == "app" and kind == "api.call":
            customer = self.lane(node, "customer")
            cloud = self.lane(next(iter(sorted(self.clouds)), "cloud"), "cloud")
            self.add(record, "arrow", f"{f.get('method')} {f.get('path')} -> {f.get('status')}",
                     customer, cloud, "request")
        elif node in self.clouds:
            self._cloud(record)
        elif node in self.devices:
            self._device(record)
        elif layer == "link":
            self._link(record)

    def _explorer(self, record: TraceRecord) -> None:
        f = record.fields
        lane = self.lane("explorer", "explorer")
        if record.kind == "explore.step":
            args = " ".join(f"{k}={_short(v, 32)}" for k, v in f.items()
                            if k not in ("index", "action", "code"))
            self.add(record, "note", f"step {f.get('index')}: {f.get('action')} {args}".strip(),
                     lane, style="step")
        elif record.kind == "explore.hook":
            self.add(record, "note", f"app hook on {f.get('event')}: publish "
                     f"{f.get('published')} ({'sent' if f.get('sent') else 'LOST'})", lane,
                     style="step")
        elif record.kind == "explore.violation":
            sig = f" [{f.get('signature')}]" if f.get("signature") else ""
            self.add(record, "note", f"VIOLATION {f.get('property')}{sig}: {f.get('message')}",
                     lane, style="violation")

    def _phone(self, record: TraceRecord) -> None:
        f = record.fields
        phone = self.lane("phone", "phone")
        device = self._only_device()
        if record.kind == "phone.step":
            self.add(record, "arrow", str(f.get("step")), phone, device, "request")
        elif record.kind == "phone.result":
            self.add(record, "arrow", f"{f.get('step')} -> {f.get('result')}", device, phone,
                     "reply")

    def _only_device(self) -> str:
        if self.devices:
            return self.lane(sorted(self.devices)[0], "device")
        return self.lane("device", "device")

    def _operator(self, record: TraceRecord) -> None:
        f = record.fields
        operator = self.lane(record.node, "operator")
        what = record.kind.removeprefix("operator.")
        args = " ".join(f"{k}={v}" for k, v in f.items() if k != "device" and v is not None)
        text = f"{what} {args}".strip()
        if what.startswith("cloud_") and what not in ("cloud_connect", "cloud_disconnect"):
            cloud = self.lane(next(iter(sorted(self.clouds)), "cloud"), "cloud")
            self.add(record, "arrow", text, operator, cloud, "request")
        elif "device" in f:
            self.add(record, "arrow", text, operator, self.lane(str(f["device"]), "device"),
                     "request")
        else:
            self.add(record, "note", text, operator)

    def _cloud(self, record: TraceRecord) -> None:
        f, kind = record.fields, record.kind
        cloud = self.lane(record.node, "cloud")
        if kind == "dtls.client_hello":
            self.add(record, "arrow", "DTLS ClientHello", self.device_for(record), cloud,
                     "request")
        elif kind == "handshake.full":
            self.add(record, "arrow", "HELLO (full handshake)", self.device_for(record), cloud,
                     "request")
        elif kind == "session.resumed":
            self.add(record, "arrow", "ping on a persisted session (resumed)",
                     self.device_for(record), cloud, "request")
        elif kind == "event":
            self.add(record, "arrow", f"publish {f.get('name')}", self.device_for(record), cloud,
                     "request")
        elif kind == "session.unknown":
            self.add(record, "arrow", "RST (unknown session)", cloud, self._only_device(),
                     "alert")
        elif kind == "event.to_device":
            self.add(record, "arrow", str(f.get("name")), cloud, self.device_for(record),
                     "reply")
        elif kind == "key_change.to_device":
            self.add(record, "arrow", "key change: discard the session", cloud,
                     self.device_for(record), "alert")
        elif kind == "session.dropped":
            self.add(record, "note", f"session dropped ({f.get('reason')})", cloud)
        elif kind == "claim.redeem":
            owner = f" -> owner {f.get('new_owner')}" if f.get("new_owner") else ""
            self.add(record, "note", f"claim code redeemed: {f.get('outcome')}{owner}", cloud,
                     style="alert" if f.get("outcome") != "claimed" else "info")
        elif kind == "claim_code.issued":
            self.add(record, "note", f"claim code issued for {f.get('creator')}", cloud)
        elif kind == "endpoint.fault":
            self.add(record, "note", f"fault {f.get('fault')}", cloud, style="alert")
        elif kind == "endpoint.restart":
            self.add(record, "note", f"cloud restarted ({f.get('sessions')} sessions lost)",
                     cloud, style="alert")
        elif kind == "claim.api":
            self.add(record, "note", f"API claim by {f.get('caller')}: {f.get('outcome')}",
                     cloud)
        elif kind.endswith(".undeliverable"):
            # the cloud had something for the device (spark/device/claim/confirm, a key change,
            # a signal) but no session to send it on: it is lost, the cause of code-refused
            what = f.get("name") or kind.removesuffix(".undeliverable").replace("_", " ")
            reason = f.get("reason") or "no session to send on"
            self.add(record, "note", f"{what} to {self.device_for(record)} NOT SENT: {reason}",
                     cloud, style="alert")

    def _device(self, record: TraceRecord) -> None:
        f, kind, node = record.fields, record.kind, record.node
        if kind == "log":
            if self.include_log:
                self.lane(node, "device")
                uptime = f.get("uptime_ms", 0)
                uptime = uptime if isinstance(uptime, int) else 0  # a hand-made trace
                text = (f"{uptime:010d} [{f.get('category')}] "
                        f"{f.get('level')}: {f.get('message')}")
                self.add(record, "log", text, node)
            return
        if kind in ("device.boot", "device.reset", "device.power_off"):
            detail = f.get("reset_reason") or f.get("reason") or ""
            self.add(record, "note", f"{kind.removeprefix('device.')} {detail}".strip(),
                     self.lane(node, "device"))
        elif kind == "publish.lost":
            self.add(record, "note", f"publish {f.get('name')} LOST ({f.get('reason')})",
                     self.lane(node, "device"), style="alert")
        elif kind == "cloud.state" and f.get("state") in ("connected", "disconnected"):
            self.add(record, "note", f"cloud {f.get('state')}", self.lane(node, "device"))

    def _button_lane(self, name: object) -> str:
        """A claim button's lane (trace nodes spell its name with dashes, the service with
        spaces)."""
        node = str(name).replace(" ", "-")
        self.buttons.add(node)
        return self.lane(node, "device")

    def _tb_lane(self) -> str:
        return self.lane(self.tb or "thingsboard", "cloud")

    def _button(self, record: TraceRecord) -> None:
        f, kind = record.fields, record.kind
        button = self._button_lane(record.node)
        if kind == "button.pressed":
            self.add(record, "note", "button pressed", button, style="step")
        elif kind == "claim.secret":
            self.add(record, "note", f"displays secret {f.get('secret')!r} for "
                     f"{f.get('duration_ms')} ms", button)
        elif kind == "claim.sent":
            self.add(record, "arrow", f"claim ({f.get('uplink')}, {f.get('size')} bytes)",
                     button, self._tb_lane(), "request")
        elif kind in ("claim.acked", "claim.failed"):
            self.add(record, "arrow", str(f.get("detail")), self._tb_lane(), button,
                     "reply" if kind == "claim.acked" else "alert")
        elif kind in ("mqtt.refused", "mqtt.disconnected_by_server", "mqtt.closed",
                      "device.off"):
            self.add(record, "note", kind.replace("_", " "), button, style="alert")

    def _thingsboard(self, record: TraceRecord) -> None:
        f, kind = record.fields, record.kind
        self.tb = self.tb or record.node
        service = self._tb_lane()
        if kind == "tb.mqtt.connected":
            self.add(record, "arrow", "MQTT CONNECT -> accepted", self._button_lane(
                f.get("device")), service, "request")
        elif kind == "tb.mqtt.refused":
            self.add(record, "note", f"MQTT connection refused ({f.get('reason', '')})".strip(),
                     service, style="alert")
        elif kind == "tb.claim.register":
            saved = f.get("outcome") == "saved"
            self.add(record, "note", f"{f.get('device')}: claim data {f.get('outcome')} "
                     f"({f.get('reason')})", service, style="info" if saved else "alert")
        elif kind in ("tb.claim.rejected", "tb.claim.bodyless"):
            self.add(record, "note", f"{f.get('device')}: claim {kind.rsplit('.', 1)[1]} "
                     f"({f.get('reason')})", service, style="alert")
        elif kind in ("tb.claim.customer", "tb.claim.reclaim"):
            customer = self.lane(str(f.get("user") or "customer"), "customer")
            if kind == "tb.claim.customer":
                text = f"claim {f.get('device')} -> {f.get('response')} ({f.get('reason')})"
                style = "request" if f.get("response") == "SUCCESS" else "alert"
            else:
                text, style = f"reclaim {f.get('device')} -> {f.get('reason')}", "request"
            self.add(record, "arrow", text, customer, service, style)

    def _link(self, record: TraceRecord) -> None:
        f = record.fields
        if record.kind not in ("datagram.lost", "datagram.delayed"):
            return
        direction = str(f.get("direction", ""))
        toward_cloud = direction.endswith(".a")
        device, cloud = self._only_device(), self.lane(next(iter(sorted(self.clouds)), "cloud"),
                                                       "cloud")
        what = "lost" if record.kind == "datagram.lost" else f"delayed {f.get('extra_s')} s"
        by = " (fault)" if f.get("fault") else ""
        self.add(record, "note", f"datagram {'to cloud' if toward_cloud else 'to device'} "
                 f"{what}{by}", device if toward_cloud else cloud, style="alert")

    def finish(self) -> Diagram:
        lanes = list(self.lanes.values())
        lanes.sort(key=lambda lane: (_ORDER.index(lane.kind) if lane.kind in _ORDER else 9,
                                     lane.id))
        self.diagram.lanes = lanes
        return self.diagram


def build_diagram(records: Iterable[TraceRecord], *, title: str = "fwsim run",
                  include_log: bool = True) -> Diagram:
    """The sequence diagram of a run's trace records (see the module header)."""
    builder = _Builder(title, include_log)
    for record in records:
        builder.feed(record)
    return builder.finish()


__all__ = ["Diagram", "Lane", "Row", "build_diagram"]
