"""Mermaid ``sequenceDiagram`` text of a :class:`~firmware_sim.diagram.model.Diagram`.

Arrows become messages (``->>`` requests, ``-->>`` replies, ``-x`` alerts), notes become
``Note over``, log lines become ``Note right of <device>``; every line starts with a comment
``%% t=... seq=...`` so a report's "step" can be found in the text. Mermaid's special
characters in labels (``;``, ``#``, ``:`` in participant names) are written as entity codes.
"""

from __future__ import annotations

import re

from .model import Diagram

_ARROWS = {"request": "->>", "reply": "-->>", "alert": "-x", "info": "->>"}


def _id(lane_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", lane_id) or "lane"


def _label(text: str) -> str:
    return (text.replace("#", "#35;").replace(";", "#59;").replace("\n", " ")
            .replace("%%", "#37;#37;"))


def to_mermaid(diagram: Diagram, *, log: bool = True) -> str:
    lines = ["sequenceDiagram", f"    %% {_label(diagram.title)}"]
    for lane in diagram.lanes:
        lines.append(f"    participant {_id(lane.id)} as {_label(lane.title)}")
    for row in diagram.rows:
        stamp = f"    %% t={row.t_us / 1e6:.6f}s seq={row.seq}"
        if row.kind == "arrow":
            arrow = _ARROWS.get(row.style, "->>")
            lines.append(stamp)
            lines.append(f"    {_id(row.source)}{arrow}{_id(row.target)}: {_label(row.text)}")
        elif row.kind == "note":
            lines.append(stamp)
            prefix = "⚠ " if row.style == "violation" else ""
            lines.append(f"    Note over {_id(row.source)}: {prefix}{_label(row.text)}")
        elif row.kind == "log" and log:
            lines.append(f"    Note right of {_id(row.source)}: {_label(row.text)}")
    return "\n".join(lines) + "\n"


__all__ = ["to_mermaid"]
