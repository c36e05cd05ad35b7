"""``fwsim trace show|diagram``: read a JSON-lines trace written with ``--trace``; draw it as a
sequence diagram (Mermaid text and a self-contained HTML/SVG page)."""

from __future__ import annotations

import argparse

from ..kernel.trace import TraceRecord, read_jsonl
from ..logdiff.model import log_line_of
from .common import positive_float


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("trace", help="inspect a structured trace file",
                            description="Inspect a JSON-lines trace written by fwsim.")
    cmds = parser.add_subparsers(dest="trace_command", metavar="SUBCOMMAND")
    cmds.required = True
    show = cmds.add_parser("show", help="print a trace file readably",
                           description="Print a trace file, one record per line. Exit status "
                           "2 when --node or --kind names something the trace never holds "
                           "(one line on stderr says so; not checked with --follow).")
    show.add_argument("file", help="trace file (JSON lines)")
    show.add_argument("--node", help="only records of this node")
    show.add_argument("--kind", help="only records of this kind")
    show.add_argument("--log", action="store_true", help="only Device OS log lines, as "
                      "'NODE: 0000015435 [category] LEVEL: message' (not with --kind)")
    show.add_argument("-f", "--follow", action="store_true",
                      help="keep printing records as they are appended (a trace being written "
                      "by `fwsim up/serve/device run --trace`); Ctrl-C stops")
    show.add_argument("--for", dest="duration", type=positive_float, metavar="SECONDS",
                      help="with --follow: stop after this many seconds")
    show.set_defaults(handler=_show)
    diagram = cmds.add_parser(
        "diagram", help="draw a trace as a sequence diagram (Mermaid + offline HTML/SVG)",
        description="Draw the phone, operator, customer, device and cloud of a trace as a "
        "sequence diagram with the Device OS log beside it: STEM.mmd (Mermaid) and STEM.html "
        "(SVG, opens offline). A property violation is the red row.")
    diagram.add_argument("file", help="trace file (JSON lines)")
    diagram.add_argument("-o", "--out", metavar="STEM",
                         help="output path without extension (default: the trace's)")
    diagram.add_argument("--format", choices=["both", "mermaid", "html"], default="both",
                         help="what to write (default both); mermaid with -o - prints it")
    diagram.add_argument("--title", help="diagram title (default: the file name)")
    diagram.add_argument("--no-log", action="store_true", help="leave out the Device OS log")
    diagram.set_defaults(handler=_diagram)


def _show(args: argparse.Namespace) -> int:
    from ..kernel.errors import UsageError

    if args.log and args.kind:
        raise UsageError("--log prints the log records only: it does not combine with --kind")
    if args.duration is not None and not args.follow:
        raise UsageError("--for applies to --follow only")
    if args.follow:
        return _follow(args)
    records = read_jsonl(args.file)
    for wanted, option in ((args.node, "node"), (args.kind, "kind")):
        if wanted is not None:
            present = sorted({getattr(record, option) for record in records})
            if wanted not in present:
                shown = ", ".join(present[:12]) + (", ..." if len(present) > 12 else "")
                raise UsageError(f"no record of {option} {wanted!r} in {args.file} "
                                 f"({option}s: {shown or 'none'})")
    for record in records:
        _print_record(args, record)
    return 0


def _print_record(args: argparse.Namespace, record: TraceRecord) -> None:
    if args.node and record.node != args.node:
        return
    if args.log:
        if record.kind == "log":
            print(f"{record.node}: {log_line_of(record)}", flush=args.follow)
        return
    if args.kind and record.kind != args.kind:
        return
    print(record.summary(), flush=args.follow)


def _follow(args: argparse.Namespace) -> int:
    """``tail -f`` for a trace: whole lines as they are appended, until Ctrl-C or --for."""
    import time

    from ..kernel.errors import ConfigurationError

    deadline = None if args.duration is None else time.monotonic() + args.duration
    try:
        stream = open(args.file, encoding="utf-8")  # noqa: SIM115 - read until stopped
    except OSError as exc:
        raise ConfigurationError(f"cannot read trace file {args.file}: "
                                 f"{exc.strerror or exc}") from None
    pending = ""
    try:
        with stream:
            while deadline is None or time.monotonic() < deadline:
                chunk = stream.readline()
                if not chunk:
                    time.sleep(0.1)
                    continue
                pending += chunk
                if not pending.endswith("\n"):
                    continue  # a line being written: wait for its end
                line, pending = pending.strip(), ""
                if not line:
                    continue
                try:
                    record = TraceRecord.from_json(line)
                except (ValueError, KeyError, TypeError):
                    raise ConfigurationError(f"{args.file}: not a trace line: "
                                             f"{line[:80]!r}") from None
                _print_record(args, record)
    except KeyboardInterrupt:
        pass
    except UnicodeDecodeError:
        raise ConfigurationError(f"{args.file} is not a fwsim trace (not UTF-8 text)") from None
    return 0


def _diagram(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..diagram import build_diagram, to_html, to_mermaid, write_private_text
    from ..kernel.errors import ConfigurationError

    records = read_jsonl(args.file)
    if not records:
        raise ConfigurationError(f"{args.file} holds no trace record: nothing to draw")
    source = Path(args.file)
    title = args.title or source.name
    diagram = build_diagram(records, title=title, include_log=not args.no_log)
    if args.out == "-":
        if args.format != "mermaid":
            raise ConfigurationError("-o - prints Mermaid text: add --format mermaid")
        print(to_mermaid(diagram), end="")
        return 0
    stem = Path(args.out) if args.out else source.with_suffix("")
    written = []
    # mode 0600, as the trace: a diagram shows its claim codes; an error names the file
    if args.format in ("both", "mermaid"):
        path = stem.parent / f"{stem.name}.mmd"
        write_private_text(path, to_mermaid(diagram))
        written.append(path)
    if args.format in ("both", "html"):
        path = stem.parent / f"{stem.name}.html"
        write_private_text(path, to_html(diagram))
        written.append(path)
    rows = len(diagram.rows)
    marks = diagram.violation_rows()
    print(f"{rows} rows, {len(diagram.lanes)} lanes"
          + (f", violation at row {marks[0] + 1} (trace record {diagram.rows[marks[0]].seq})"
             if marks else "") + ": " + ", ".join(str(p) for p in written))
    return 0
