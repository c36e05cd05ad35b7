"""Renderings of a :class:`~firmware_sim.logdiff.align.LogDiff`: text, JSON and an HTML page
with the two logs side by side.

All three carry the same facts: the pairs (real and model uptime, the intervals compared, the
delta and the allowed deviation), the lines only in the real log, the order differences, the
lines only in the model (and how many fall within the aligned span), and the verdict. Every
piece of log text in the HTML page is escaped.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from typing import Any

from .align import LogDiff, Pair, TimingMode
from .parse import LogLine


@dataclass(frozen=True)
class Sources:
    """Where each side came from (printed in every rendering)."""

    real: str
    model: str
    noise_lines: int = 0


def _line(line: LogLine) -> dict[str, Any]:
    return {"uptime_ms": line.uptime_ms, "category": line.category, "level": line.level,
            "message": line.message, "line": line.number, "text": line.render()}


def _pair(pair: Pair) -> dict[str, Any]:
    return {"template": pair.template, "real": _line(pair.real), "model": _line(pair.model),
            "offset_ms": pair.offset_ms, "real_interval_ms": pair.real_ms,
            "model_interval_ms": pair.model_ms, "delta_ms": pair.delta_ms,
            "allowed_ms": pair.allowed_ms, "timing_ok": pair.timing_ok}


def to_dict(diff: LogDiff, sources: Sources) -> dict[str, Any]:
    return {
        "real": sources.real, "model": sources.model,
        "real_lines": len(diff.real), "model_lines": len(diff.model),
        "noise_lines": sources.noise_lines,
        "timing": {"mode": diff.mode.value, "tolerance": diff.tolerance.relative,
                   "min_tolerance_ms": diff.tolerance.min_ms},
        "strict": diff.strict,
        "pairs": [_pair(p) for p in diff.pairs],
        "only_real": [_line(x) for x in diff.only_real],
        "order_differences": [{"real": _line(r), "model": _line(m)}
                              for r, m in diff.order_differences],
        "timing_differences": [_pair(p) for p in diff.timing_differences],
        "only_model": [_line(x) for x in diff.only_model],
        "only_model_in_span": [_line(x) for x in diff.only_model_in_span],
        "agree": diff.agree,
    }


def render_json(diff: LogDiff, sources: Sources) -> str:
    return json.dumps(to_dict(diff, sources), indent=1, sort_keys=True)


def _timing_text(pair: Pair, mode: TimingMode) -> str:
    if pair.delta_ms is None or pair.allowed_ms is None:
        return "anchor"
    what = "uptime" if mode is TimingMode.ABSOLUTE else "interval"
    verdict = "ok" if pair.timing_ok else "OFF"
    return (f"{what} {pair.real_ms} vs {pair.model_ms} ms, delta {pair.delta_ms:+d} ms "
            f"(allowed +-{pair.allowed_ms:.0f}) {verdict}")


def render_text(diff: LogDiff, sources: Sources) -> str:
    out = [f"real:  {sources.real} ({len(diff.real)} log lines, {sources.noise_lines} other "
           "lines ignored)",
           f"model: {sources.model} ({len(diff.model)} log lines)",
           f"timing: {diff.mode.value}, tolerance {diff.tolerance.relative:.0%} "
           f"(at least {diff.tolerance.min_ms} ms)", ""]
    out.append(f"aligned {len(diff.pairs)} of {len(diff.real)} real lines:")
    for pair in diff.pairs:
        out.append(f"  real {pair.real.uptime_ms:010d}  model {pair.model.uptime_ms:010d}  "
                   f"{pair.template}")
        out.append(f"      {_timing_text(pair, diff.mode)}")
    sections: list[tuple[str, list[str]]] = [
        ("only in the real log", [x.render() for x in diff.only_real]),
        ("order differences (present in both, in another order)",
         [f"real {r.render()}  |  model {m.render()}" for r, m in diff.order_differences]),
        ("timing differences", [f"{p.template}: {_timing_text(p, diff.mode)}"
                                for p in diff.timing_differences]),
    ]
    for title, items in sections:
        out.append(f"{title}: {len(items) if items else 'none'}")
        out.extend(f"  {item}" for item in items)
    out.append(f"only in the model: {len(diff.only_model)} lines "
               f"({len(diff.only_model_in_span)} within the aligned span)")
    out.extend(f"  {x.render()}" for x in diff.only_model_in_span)
    out.append("")
    out.append("verdict: AGREE" if diff.agree else "verdict: DIFFER")
    return "\n".join(out) + "\n"


_STYLE = """
body { font-family: sans-serif; margin: 1em; }
table { border-collapse: collapse; width: 100%; font-family: monospace; font-size: 12px; }
td, th { border: 1px solid #ccc; padding: 2px 6px; vertical-align: top; text-align: left; }
tr.pair td { background: #eefaee; } tr.off td { background: #fff2cc; }
tr.real td.real { background: #fde2e2; } tr.order td { background: #f3e5f5; }
tr.model td { color: #777; } .verdict { font-weight: bold; }
"""


def render_html(diff: LogDiff, sources: Sources) -> str:
    """A standalone page: real log on the left, model on the right, in model order."""
    rows: list[tuple[int, int, str, str, str, str]] = []  # (model index, real index, ...)
    real_index = {id(line): k for k, line in enumerate(diff.real)}
    model_index = {id(line): k for k, line in enumerate(diff.model)}
    for pair in diff.pairs:
        css = "pair" if pair.timing_ok else "pair off"
        rows.append((model_index[id(pair.model)], real_index[id(pair.real)], css,
                     pair.real.render(), pair.model.render(), _timing_text(pair, diff.mode)))
    for line in diff.only_model:
        rows.append((model_index[id(line)], -1, "model", "", line.render(), "only in the model"))
    for real, model in diff.order_differences:
        rows.append((model_index[id(model)], real_index[id(real)], "order", real.render(),
                     model.render(), f"order differs (real line {real.number})"))
    for line in diff.only_real:
        # placed after the model line paired with the nearest earlier real line
        before = [p for p in diff.pairs if p.real.number < line.number]
        at = model_index[id(before[-1].model)] if before else -1
        rows.append((at, real_index[id(line)], "real", line.render(), "",
                     "only in the real log"))
    rows.sort(key=lambda row: (row[0], row[1]))
    body = "\n".join(
        f'<tr class="{css}"><td class="real">{html.escape(left)}</td>'
        f'<td class="model">{html.escape(right)}</td><td>{html.escape(note)}</td></tr>'
        for _m, _r, css, left, right, note in rows)
    verdict = "AGREE" if diff.agree else "DIFFER"
    return (
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>fwsim logdiff</title>"
        f"<style>{_STYLE}</style></head><body>\n<h1>fwsim logdiff</h1>\n"
        f"<p>real: {html.escape(sources.real)} ({len(diff.real)} lines, "
        f"{sources.noise_lines} other lines ignored)<br>model: {html.escape(sources.model)} "
        f"({len(diff.model)} lines)<br>timing: {diff.mode.value}, tolerance "
        f"{diff.tolerance.relative:.0%} (at least {diff.tolerance.min_ms} ms)</p>\n"
        f"<p class=\"verdict\">verdict: {verdict} - {len(diff.pairs)} aligned, "
        f"{len(diff.only_real)} only in the real log, {len(diff.order_differences)} order "
        f"differences, {len(diff.timing_differences)} timing differences, "
        f"{len(diff.only_model)} only in the model</p>\n"
        "<table><tr><th>real device</th><th>model</th><th>note</th></tr>\n"
        f"{body}\n</table></body></html>\n")


__all__ = ["Sources", "render_html", "render_json", "render_text", "to_dict"]
