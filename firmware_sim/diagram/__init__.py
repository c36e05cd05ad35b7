"""Sequence diagrams of fwsim runs: phone, operator, customer, device and cloud, with the Device OS
log beside them, as Mermaid text or a self-contained HTML/SVG page.

A small library over trace records (``fwsim trace diagram``, ``--diagram`` on ``fwsim explore``
and ``fwsim scenario run``, and any later dashboard)::

    from firmware_sim.diagram import build_diagram, to_html, to_mermaid
    diagram = build_diagram(read_jsonl("run.jsonl"), title="resume bug")
    Path("run.html").write_text(to_html(diagram))

:func:`write_diagrams` writes both files next to each other.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from ..kernel.errors import ConfigurationError
from ..kernel.trace import TraceRecord
from .mermaid import to_mermaid
from .model import Diagram, Lane, Row, build_diagram
from .svg import to_html, to_svg


def write_diagrams(records: Iterable[TraceRecord], stem: str | Path, *, title: str,
                   summary: Sequence[str] = ()) -> tuple[Path, Path]:
    """Write ``<stem>.mmd`` (Mermaid) and ``<stem>.html`` (SVG inside); returns both paths."""
    diagram = build_diagram(records, title=title)
    base = Path(stem)
    mermaid, html = base.parent / f"{base.name}.mmd", base.parent / f"{base.name}.html"
    try:
        base.parent.mkdir(parents=True, exist_ok=True)
        # backslashreplace: a lone surrogate (a hand-made trace, a non-UTF-8 file name as the
        # title) is written as \udcff rather than failing
        mermaid.write_text(to_mermaid(diagram), encoding="utf-8", errors="backslashreplace")
        html.write_text(to_html(diagram, summary=summary), encoding="utf-8",
                        errors="backslashreplace")
    except OSError as exc:
        raise ConfigurationError(f"cannot write the diagram {base}: {exc.strerror or exc}"
                                 ) from None
    return mermaid, html


__all__ = ["Diagram", "Lane", "Row", "build_diagram", "to_html", "to_mermaid", "to_svg",
           "write_diagrams"]
