"""The model's side of a log comparison: the Device OS log lines of one device of a fwsim trace.

A trace (``fwsim scenario run --trace T.jsonl``, or the records of a world in memory) holds the
device log as records of kind ``log``; :func:`model_log_from_records` turns those of one node
into :class:`~firmware_sim.logdiff.parse.LogLine` values exactly as the serial log handler
renders them. ``fwsim logdiff --scenario`` runs the scenario itself (the CLI is the one place
that builds worlds for it).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ..kernel.errors import UsageError
from ..kernel.trace import TraceRecord, read_jsonl
from ..services.log import format_log_line
from .parse import LogLine, parse_lines


def log_nodes(records: Iterable[TraceRecord]) -> list[str]:
    """The nodes that wrote log lines, in order of their first line."""
    seen: dict[str, None] = {}
    for record in records:
        if record.kind == "log":
            seen.setdefault(record.node, None)
    return list(seen)


def log_line_of(record: TraceRecord) -> str:
    """The serial log line of a ``log`` record; :class:`UsageError` when the record lacks the
    fields a log line needs (a hand-made or damaged trace)."""
    fields = record.fields
    uptime = fields.get("uptime_ms")
    missing = [key for key in ("category", "level", "message") if key not in fields]
    whole = isinstance(uptime, int) and not isinstance(uptime, bool) and uptime >= 0
    if not whole or missing:
        problem = "no whole uptime_ms" if not whole else "no " + ", ".join(missing)
        raise UsageError(f"trace record {record.seq} is not a Device OS log record ({problem}: "
                         "it needs uptime_ms, category, level and message)")
    return format_log_line(record)


def model_log_from_records(records: list[TraceRecord], node: str | None = None
                           ) -> tuple[list[LogLine], str]:
    """``(lines, node)``: the log of ``node`` (None: the only device that logged)."""
    nodes = log_nodes(records)
    if node is None:
        if not nodes:
            raise UsageError("the trace holds no device log lines")
        if len(nodes) > 1:
            raise UsageError(f"the trace holds the logs of {', '.join(nodes)}: "
                             "choose one with --device")
        node = nodes[0]
    elif node not in nodes:
        raise UsageError(f"no log lines of device {node!r} in the trace "
                         f"(devices: {', '.join(nodes) or 'none'})")
    rendered = [log_line_of(r) for r in records if r.kind == "log" and r.node == node]
    return parse_lines(rendered).lines, node


def model_log_from_trace(path: str | Path, node: str | None = None) -> tuple[list[LogLine], str]:
    return model_log_from_records(read_jsonl(path), node)


__all__ = ["log_line_of", "log_nodes", "model_log_from_records", "model_log_from_trace"]
