"""``fwsim trace show``: read a JSON-lines trace written with ``--trace``."""

from __future__ import annotations

import argparse

from ..kernel.trace import read_jsonl
from ..services.log import format_log_line


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("trace", help="inspect a structured trace file",
                            description="Inspect a JSON-lines trace written by fwsim.")
    cmds = parser.add_subparsers(dest="trace_command", metavar="SUBCOMMAND")
    cmds.required = True
    show = cmds.add_parser("show", help="print a trace file readably",
                           description="Print a trace file, one record per line.")
    show.add_argument("file", help="trace file (JSON lines)")
    show.add_argument("--node", help="only records of this node")
    show.add_argument("--kind", help="only records of this kind")
    show.add_argument("--log", action="store_true", help="only Device OS log lines")
    show.set_defaults(handler=_show)


def _show(args: argparse.Namespace) -> int:
    for record in read_jsonl(args.file):
        if args.node and record.node != args.node:
            continue
        if args.log:
            if record.kind == "log":
                print(f"{record.node}: {format_log_line(record)}")
            continue
        if args.kind and record.kind != args.kind:
            continue
        print(record.summary())
    return 0
