"""``fwsim logdiff``: a real device's serial log against the model's timeline.

``parse`` reads Device OS log lines out of a noisy serial capture, ``template`` turns messages
into templates (ids, codes and numbers as placeholders), ``align`` pairs the two logs by
template and judges the timing, ``report`` renders the result as text, JSON or an HTML page,
``model`` reads the model's side out of a trace (``fwsim logdiff --scenario`` runs the
scenario in the CLI, which builds the world). See docs/logdiff.md.
"""

from .align import LogDiff, Pair, TimingMode, Tolerance, diff_logs
from .model import log_nodes, model_log_from_records, model_log_from_trace
from .parse import LogLine, ParsedLog, parse_lines, parse_log, parse_text
from .report import Sources, render_html, render_json, render_text, to_dict
from .template import line_template, message_template

__all__ = [
    "LogDiff",
    "LogLine",
    "Pair",
    "ParsedLog",
    "Sources",
    "TimingMode",
    "Tolerance",
    "diff_logs",
    "line_template",
    "log_nodes",
    "message_template",
    "model_log_from_records",
    "model_log_from_trace",
    "parse_lines",
    "parse_log",
    "parse_text",
    "render_html",
    "render_json",
    "render_text",
    "to_dict",
]
