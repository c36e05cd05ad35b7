"""SVG and self-contained HTML of a :class:`~firmware_sim.diagram.model.Diagram`.

The SVG needs nothing but a browser: lanes are columns with a header, every row is one line
(times on the left, the Device OS log lines in a column on the right), arrows carry their label,
notes are boxes, the row of a violation is red and spans every lane. Each row is a ``<g>`` with
``id="seq-N"`` (N: the trace record's sequence number), so ``diagram.html#seq-N`` opens at the
step a report names. A row holds one thing, so an arrow's label may run past the arrow's ends
and a note's box over the log column; what is still too long is cut, and the full text is the
row's tooltip (``<title>``).
:func:`to_html` wraps the SVG with a title, summary lines, a legend and the Mermaid source, with
no script and no external resource.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from .mermaid import to_mermaid
from .model import Diagram

TIME_W = 86
LANE_W = 178
LOG_W = 620
HEAD_H = 54
ROW_H = 20
#: the advance of one character of the 11 px monospace font (0.6 em): labels are cut to it
CHAR_W = 6.7

_COLORS = {"request": "#1f5fa8", "reply": "#2e7d32", "alert": "#c62828", "info": "#455a64",
           "step": "#6a1b9a", "violation": "#b71c1c"}
_LANE_FILL = {"explorer": "#f3e5f5", "phone": "#e3f2fd", "operator": "#fff3e0",
              "customer": "#e8f5e9", "device": "#eceff1", "cloud": "#e0f7fa"}


def _fit(text: str, width: float) -> str:
    limit = max(4, int(width / CHAR_W))
    return text if len(text) <= limit else text[:limit - 1] + "…"


def to_svg(diagram: Diagram) -> str:
    lanes = diagram.lanes
    centers = {lane.id: TIME_W + i * LANE_W + LANE_W / 2 for i, lane in enumerate(lanes)}
    lanes_right = TIME_W + len(lanes) * LANE_W
    log_x = lanes_right + 16
    width = int(log_x + LOG_W)
    height = HEAD_H + len(diagram.rows) * ROW_H + ROW_H
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="DejaVu Sans Mono, Menlo, Consolas, '
           f'monospace" font-size="11">',
           "<defs>"]
    for style, color in _COLORS.items():
        out.append(f'<marker id="head-{style}" viewBox="0 0 10 10" refX="9" refY="5" '
                   f'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
                   f'<path d="M0,0 L10,5 L0,10 z" fill="{color}"/></marker>')
    out.append("</defs>")
    out.append(f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>')
    for lane in lanes:
        x = centers[lane.id]
        fill = _LANE_FILL.get(lane.kind, "#f5f5f5")
        out.append(f'<line x1="{x:.1f}" y1="{HEAD_H - 8}" x2="{x:.1f}" y2="{height - 4}" '
                   f'stroke="#b0bec5" stroke-dasharray="4 3"/>')
        out.append(f'<rect x="{x - LANE_W / 2 + 6:.1f}" y="8" width="{LANE_W - 12}" height="32" '
                   f'rx="5" fill="{fill}" stroke="#78909c"/>')
        out.append(f'<text x="{x:.1f}" y="28" text-anchor="middle" font-weight="bold">'
                   f'{escape(_fit(lane.title, LANE_W - 16))}</text>')
    out.append('<text x="8" y="28" font-weight="bold">time (s)</text>')
    if any(row.kind == "log" for row in diagram.rows):
        out.append(f'<text x="{log_x:.1f}" y="28" font-weight="bold">Device OS log</text>')
    last_time = None
    for index, row in enumerate(diagram.rows):
        y = HEAD_H + index * ROW_H + ROW_H / 2
        color = _COLORS.get(row.style, _COLORS["info"])
        tip = escape(f"t={row.t_us / 1e6:.6f}s seq={row.seq}: {row.text}")
        out.append(f'<g id="seq-{row.seq}"><title>{tip}</title>')
        if row.style == "violation":
            out.append(f'<rect x="2" y="{y - ROW_H / 2 + 1:.1f}" width="{width - 4}" '
                       f'height="{ROW_H - 2}" fill="#ffebee" stroke="{color}"/>')
        time_text = f"{row.t_us / 1e6:.3f}"
        if time_text != last_time:
            out.append(f'<text x="8" y="{y + 4:.1f}" fill="#607d8b">{time_text}</text>')
            last_time = time_text
        if row.kind == "arrow" and row.source in centers and row.target in centers:
            x1, x2 = centers[row.source], centers[row.target]
            if x1 == x2:
                x2 = x1 + 30
            dash = ' stroke-dasharray="5 3"' if row.style == "reply" else ""
            out.append(f'<line x1="{x1:.1f}" y1="{y + 5:.1f}" x2="{x2:.1f}" y2="{y + 5:.1f}" '
                       f'stroke="{color}" stroke-width="1.4"{dash} '
                       f'marker-end="url(#head-{row.style if row.style in _COLORS else "info"})"'
                       "/>")
            # an arrow's row holds nothing else: its label may reach past the arrow's ends
            middle = (x1 + x2) / 2
            room = 2 * min(middle - TIME_W, width - 8 - middle)
            span = max(abs(x2 - x1), min(LANE_W * 2, room))
            out.append(f'<text x="{(x1 + x2) / 2:.1f}" y="{y + 1:.1f}" text-anchor="middle" '
                       f'fill="{color}">{escape(_fit(row.text, span))}</text>')
        elif row.kind == "note" and row.source in centers:
            x = centers[row.source]
            if row.style == "violation":
                out.append(f'<text x="{TIME_W + 4}" y="{y + 4:.1f}" fill="{color}" '
                           f'font-weight="bold">{escape(_fit(row.text, width - TIME_W - 8))}'
                           "</text>")
            else:
                left = x - LANE_W / 2 + 4
                # a note's row has no log line: its box may run on over the log column
                box_w = min(max(len(row.text) * CHAR_W + 12, 60), width - left - 8)
                out.append(f'<rect x="{left:.1f}" y="{y - ROW_H / 2 + 2:.1f}" '
                           f'width="{box_w:.1f}" height="{ROW_H - 4}" rx="3" fill="#fffde7" '
                           f'stroke="{color}"/>')
                out.append(f'<text x="{left + 5:.1f}" y="{y + 4:.1f}" fill="{color}">'
                           f"{escape(_fit(row.text, box_w - 8))}</text>")
        elif row.kind == "log":
            if row.source in centers:
                out.append(f'<circle cx="{centers[row.source]:.1f}" cy="{y:.1f}" r="2.5" '
                           'fill="#90a4ae"/>')
            out.append(f'<text x="{log_x:.1f}" y="{y + 4:.1f}" fill="#37474f">'
                       f"{escape(_fit(row.text, LOG_W - 8))}</text>")
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out) + "\n"


_CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #263238; }
h1 { font-size: 1.3em; } .summary { font-family: monospace; white-space: pre-wrap; }
.legend span { display: inline-block; margin-right: 1.2em; }
.scroll { overflow-x: auto; border: 1px solid #cfd8dc; }
details pre { background: #f5f5f5; padding: 0.8em; overflow-x: auto; }
"""


def to_html(diagram: Diagram, *, summary: Sequence[str] = ()) -> str:
    """A self-contained HTML page: title, summary lines, legend, the SVG, the Mermaid text."""
    legend = "".join(f'<span style="color:{_COLORS[k]}">&#9632; {label}</span>' for k, label in (
        ("request", "request"), ("reply", "reply"), ("alert", "loss / RST / fault"),
        ("step", "explorer step"), ("violation", "property violated")))
    jump = ""
    violations = diagram.violation_rows()
    if violations:
        row = diagram.rows[violations[0]]
        jump = (f'<p><a href="#seq-{row.seq}">Jump to the violation</a> '
                f"(t={row.t_us / 1e6:.6f} s, trace record {row.seq})</p>")
    lines = "\n".join(escape(line) for line in summary)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{escape(diagram.title)}</title><style>{_CSS}</style></head><body>\n"
            f"<h1>{escape(diagram.title)}</h1>\n"
            + (f'<div class="summary">{lines}</div>\n' if lines else "")
            + jump + f'<p class="legend">{legend}</p>\n'
            f'<div class="scroll">\n{to_svg(diagram)}</div>\n'
            "<details><summary>Mermaid source</summary><pre>"
            f"{escape(to_mermaid(diagram))}</pre></details>\n</body></html>\n")


__all__ = ["to_html", "to_svg"]
