"""``fwsim tb``: the emulated ThingsBoard (serve, why, press, scenario).

The commands live in :mod:`cloud_sim.thingsboard.cli` (also ``python -m cloud_sim.thingsboard``),
imported only when ``fwsim tb`` runs, so the rest of the CLI works without the ``thingsboard``
extra.
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("tb", help="the emulated ThingsBoard (claiming)",
                            description="The emulated ThingsBoard: serve it, ask a running "
                            "server why a claim failed, press a simulated button, run the "
                            "claiming scenarios.")
    commands = parser.add_subparsers(dest="tb_command", metavar="SUBCOMMAND")
    commands.required = True
    try:
        from cloud_sim.thingsboard.cli import add_commands
    except ImportError as exc:  # the thingsboard extra is not installed
        missing = str(exc)
        parser.set_defaults(handler=lambda args: _missing(missing))
        return
    add_commands(commands)


def _missing(reason: str) -> int:
    from . import CliError

    raise CliError(f"fwsim tb needs the thingsboard extra (pip install 'fwsim[thingsboard]'): "
                   f"{reason}")
