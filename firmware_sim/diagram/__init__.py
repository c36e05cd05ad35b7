"""Sequence diagrams of fwsim runs: phone, operator, customer, device and cloud, with the Device OS
log beside them, as Mermaid text or a self-contained HTML/SVG page.

A small library over trace records (``fwsim trace diagram``, ``--diagram`` on ``fwsim explore``
and ``fwsim scenario run``, and any later dashboard)::

    from firmware_sim.diagram import build_diagram, to_html, to_mermaid
    diagram = build_diagram(read_jsonl("run.jsonl"), title="resume bug")
    Path("run.html").write_text(to_html(diagram))

:func:`write_diagrams` writes both files next to each other, mode 0600 like the trace they are
drawn from (they show its claim codes).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from ..kernel.errors import ConfigurationError
from ..kernel.private_files import open_private_text
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
    except OSError as exc:
        raise ConfigurationError(f"cannot write the diagram {base}: {exc.strerror or exc}"
                                 ) from None
    write_private_text(mermaid, to_mermaid(diagram))
    write_private_text(html, to_html(diagram, summary=summary))
    return mermaid, html


def write_private_text(path: Path, text: str) -> None:
    """Write a diagram file with mode 0600, as the trace it is drawn from: it shows the claim
    codes. A lone surrogate (a hand-made trace, a non-UTF-8 file name as the title) is written
    as ``\\udcff`` rather than failing. An error names the file."""
    try:
        with open_private_text(path) as stream:
            stream.write(text)
    except OSError as exc:
        raise ConfigurationError(f"cannot write the diagram {path}: {exc.strerror or exc}"
                                 ) from None


__all__ = ["Diagram", "Lane", "Row", "build_diagram", "to_html", "to_mermaid", "to_svg",
           "write_diagrams", "write_private_text"]
