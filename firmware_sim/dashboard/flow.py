"""The sequence diagram of a device's last flow, for the device page, through
:mod:`firmware_sim.diagram` (the same model and SVG renderer as ``fwsim trace diagram``).

How this works
--------------
*The last flow* of a Particle device starts at the last claim code handed to it (a
``SET_CLAIM_CODE`` control request, from the dashboard, ``fwsim ctl`` or a real USB client),
or, before any, at its last boot, and runs to now; at most :data:`MAX_ROWS` rows are shown (the
latest). Before the records go to :func:`~firmware_sim.diagram.build_diagram` they are put in
the diagram's vocabulary: a control request the device received becomes the *phone*'s step and
its result the phone's answer (whoever carried it - the dashboard acts as a phone would), a REST
call naming the device becomes the *customer*'s, and the device's last boot record is kept
first so the cloud's records find the device's lane.

A ThingsBoard device speaks another vocabulary (claim buttons, MQTT, the customer's claim), so
:func:`button_diagram` builds the model's rows itself: person -> device (the button press),
device -> cloud (claim info), cloud -> device (the acknowledgement), customer -> cloud (the
claim and its answer), with the service's reasons as notes.
"""

from __future__ import annotations

from collections.abc import Sequence

from control_requests import RequestType, ResultCode

from ..diagram import Diagram, Lane, Row, build_diagram
from ..kernel.trace import TraceRecord

#: rows of the diagram at most (the latest; Device OS log lines are rows too)
MAX_ROWS = 150


def _request_name(number: object) -> str:
    try:
        return RequestType(int(str(number))).name
    except ValueError:
        return f"request {number}"


def _result_name(result: object) -> str:
    try:
        return f"{int(str(result))} ({ResultCode(int(str(result))).name})"
    except ValueError:
        return str(result)


def _flow_start(records: Sequence[TraceRecord], name: str) -> int:
    claim = int(RequestType.SET_CLAIM_CODE)
    last_boot = 0
    for index in range(len(records) - 1, -1, -1):
        record = records[index]
        if record.node == name and record.kind == "control.request" \
                and record.fields.get("type") == claim:
            return index
        if not last_boot and record.node == name and record.kind == "device.boot":
            last_boot = index
    return last_boot


def particle_flow(records: Sequence[TraceRecord], name: str) -> list[TraceRecord]:
    """The records of the device's last flow, in the diagram's vocabulary (module header)."""
    start = _flow_start(records, name)
    boot = next((r for r in reversed(records[:start + 1])
                 if r.node == name and r.kind == "device.boot"), None)
    out: list[TraceRecord] = [] if boot is None or records[start] is boot else [boot]
    for record in records[start:]:
        f = record.fields
        if record.node == name and record.kind == "control.request":
            out.append(record._replace(node="phone", layer="phone", kind="phone.step", fields={
                "step": f"{_request_name(f.get('type'))} over {f.get('channel')}"}))
        elif record.node == name and record.kind == "control.done":
            out.append(record._replace(node="phone", layer="phone", kind="phone.result", fields={
                "step": _request_name(f.get("type")), "result": _result_name(f.get("result"))}))
        elif record.kind == "operator.set_claim_code":
            continue  # shown as the phone's control request
        elif record.layer == "http" and record.kind == "http.request":
            out.append(record._replace(node="customer", layer="app", kind="api.call"))
        else:
            out.append(record)
    return out


def device_diagram(records: Sequence[TraceRecord], name: str, *,
                   title: str | None = None) -> Diagram:
    """The diagram of a Particle device's last flow, its latest :data:`MAX_ROWS` rows."""
    diagram = build_diagram(particle_flow(records, name), title=title or f"{name}: last flow")
    return _latest(diagram)


def _latest(diagram: Diagram) -> Diagram:
    if len(diagram.rows) > MAX_ROWS:
        diagram.rows = diagram.rows[-MAX_ROWS:]
    return diagram


def _short(value: object, limit: int = 40) -> str:
    text = str(value)
    return text if len(text) <= limit else text[:limit - 1] + "\u2026"


def button_diagram(records: Sequence[TraceRecord], name: str, node: str, cloud: str
                   ) -> Diagram:
    """The diagram of a ThingsBoard device's claim flow since its last button press (or boot)."""
    start = 0
    for index in range(len(records) - 1, -1, -1):
        if records[index].kind in ("button.pressed", "device.boot") \
                and records[index].node == node:
            start = index
            break
    person, device, service, customer = "person", node, cloud, "customer"
    lanes = {person: Lane(person, "person at the device", "operator"),
             device: Lane(device, name, "device"), service: Lane(service, cloud, "cloud"),
             customer: Lane(customer, "customer", "customer")}
    diagram = Diagram(f"{name}: last claim flow")
    used: set[str] = set()

    def add(record: TraceRecord, kind: str, text: str, source: str, target: str = "",
            style: str = "info") -> None:
        used.update(lane for lane in (source, target) if lane)
        diagram.rows.append(Row(record.t_us, record.seq, kind, text, source, target, style))

    for record in records[start:]:
        f, kind = record.fields, record.kind
        if record.node == node:
            if kind == "device.boot":
                add(record, "note", f"boot ({f.get('uplink')})", device)
            elif kind == "button.pressed":
                add(record, "arrow", "press the claim button", person, device, "request")
            elif kind == "claim.secret":
                secret = "(none)" if not f.get("secret") else "shown as text and QR code"
                add(record, "note", f"new secret {secret}, {int(f.get('duration_ms', 0)) / 1000:g}"
                    " s", device)
            elif kind == "claim.sent":
                add(record, "arrow", f"claim info over {f.get('uplink')}", device, service,
                    "request")
            elif kind == "claim.acked":
                add(record, "arrow", _short(f.get("detail")), service, device, "reply")
            elif kind == "claim.failed":
                add(record, "arrow", f"failed: {_short(f.get('detail'))}", service, device,
                    "alert")
        elif record.node == cloud:
            if kind == "tb.claim.register":
                add(record, "note", f"claim info {f.get('outcome')} ({f.get('reason')})",
                    service, style="info" if f.get("outcome") == "saved" else "alert")
            elif kind == "tb.claim.rejected":
                add(record, "note", f"claim info rejected ({f.get('reason')})", service,
                    style="alert")
            elif kind == "tb.claim.customer":
                ok = f.get("response") == "SUCCESS"
                add(record, "arrow", f"claim as {_short(f.get('user'), 28)}", customer, service,
                    "request")
                add(record, "arrow", f"{f.get('response')} ({f.get('reason')})", service,
                    customer, "reply" if ok else "alert")
            elif kind == "tb.claim.reclaim":
                add(record, "arrow", f"reclaim ({f.get('reason')})", customer, service,
                    "request")
    diagram.lanes = [lane for key, lane in lanes.items() if key in used]
    return _latest(diagram)


__all__ = ["MAX_ROWS", "button_diagram", "device_diagram", "particle_flow"]
