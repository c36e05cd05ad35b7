"""The ``fwsim`` command line.

Each command group lives in its own module ``firmware_sim.cli.<name>_cmd`` exposing
``register(subparsers)``; add new groups to ``COMMAND_MODULES``. Errors that fwsim expects
(bad arguments, unknown names, unreadable files, invalid configuration) are printed as one line
``fwsim: error: ...`` with exit status 2 - never a traceback. Set ``FWSIM_DEBUG=1`` to see the
traceback of an unexpected error.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
from collections.abc import Sequence

from ..kernel.errors import FwSimError

COMMAND_MODULES = ["scenario", "trace", "control", "serve", "cloud", "device", "up", "usb", "ble"]
COMMAND_MODULES.append("tb")  # ThingsBoard face (cloud_sim.thingsboard), lazily imported
COMMAND_MODULES.append("explore")  # fwsim explore (firmware_sim.explore)
COMMAND_MODULES.append("logdiff")  # fwsim logdiff (firmware_sim.logdiff)
COMMAND_MODULES.append("ctl")  # fwsim ctl: steering a running up / cloud serve
COMMAND_MODULES.append("fleet")  # fwsim fleet run (firmware_sim.fleet)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


class CliError(FwSimError):
    """A command-line level error, printed as one line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


#: top-level module -> the extra of fwsim that installs it
EXTRAS = {"uvicorn": "cloud", "fastapi": "cloud", "starlette": "cloud", "httpx": "cloud",
          "bleak": "ble", "dbus_fast": "ble", "bumble": "bumble", "serial": "serial",
          "grpc_tools": "dev-proto", "aiohttp": "bench", "hypothesis": "test",
          "schemathesis": "test", "tb_device_mqtt": "test", "tb_rest_client": "test"}


def missing_extra_hint(module: str) -> str:
    """One line naming the extra that installs ``module`` (a missing optional dependency)."""
    top = module.split(".", 1)[0]
    extra = EXTRAS.get(top)
    if extra is None:
        return f"this needs the Python module {top!r}, which is not installed"
    return f"this needs {top}, which is not installed: install fwsim[{extra}] for this"


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole parser, or (``command`` naming one of :data:`COMMAND_MODULES`) a parser with
    only that command: ``main`` builds just what the command line asks for, so ``fwsim
    scenario ...`` does not import the transports' serving code only to define ``serve``'s
    options (about 0.3 s of every start)."""
    from .. import __version__

    parser = _Parser(prog="fwsim", description=(
        "Deterministic simulator of a Particle device's system layer and an emulator of its "
        "cloud."))
    parser.add_argument("--version", action="version", version=f"fwsim {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in [command] if command in COMMAND_MODULES else COMMAND_MODULES:
        module = importlib.import_module(f"{__name__}.{name}_cmd")
        module.register(sub)
    return parser


def _command_of(argv: Sequence[str]) -> str | None:
    """The command an argument list names (its first argument, when that is not an option)."""
    return argv[0] if argv and not argv[0].startswith("-") else None


def _tolerate_surrogates() -> None:
    """Print a lone surrogate (a non-UTF-8 file name, a hand-made trace) as ``\\udcff``
    instead of failing on it."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            # a stream that cannot change its error handler keeps it
            with contextlib.suppress(ValueError, OSError):
                reconfigure(errors="backslashreplace")


def _import_from_current_folder() -> None:
    """``--firmware my_app:App`` / ``--property checks:Class`` find a module in the current
    folder, as ``python -m`` and pytest do (appended: it never shadows an installed module)."""
    try:
        here = os.getcwd()
    except OSError:  # the current folder was removed
        return
    if here not in sys.path and "" not in sys.path:
        sys.path.append(here)


def main(argv: Sequence[str] | None = None) -> int:
    _tolerate_surrogates()
    _import_from_current_folder()
    arguments = list(sys.argv[1:] if argv is None else argv)
    try:
        # building the parser imports every command's module (a third of a second): a Ctrl-C
        # then is an interruption like any other, not a traceback
        parser = build_parser(_command_of(arguments))
        args = parser.parse_args(arguments)
        status: int = args.handler(args)
        return status
    except FwSimError as exc:
        print(f"fwsim: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ModuleNotFoundError as exc:
        print(f"fwsim: error: {missing_extra_hint(exc.name or str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("fwsim: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:
        if os.environ.get("FWSIM_DEBUG"):
            raise
        print(f"fwsim: internal error: {type(exc).__name__}: {exc} "
              "(set FWSIM_DEBUG=1 for the traceback)", file=sys.stderr)
        return EXIT_FAILED


__all__ = ["COMMAND_MODULES", "EXTRAS", "CliError", "build_parser", "main", "missing_extra_hint"]
