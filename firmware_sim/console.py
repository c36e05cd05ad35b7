"""The ``fwsim`` console script's entry point.

It imports the command line itself, so that a Ctrl-C while Python is still importing fwsim
(most of the first tenth of a second of every command) ends the command as one a moment later
does (``fwsim: interrupted``, exit status 130), not with a ``KeyboardInterrupt`` traceback. Only
the interpreter's own start (about 30 ms), this module and the lazy ``firmware_sim/__init__.py``
run before the guard.
"""

from __future__ import annotations

import sys


def main() -> int:
    try:
        from .cli import main as run_command_line
    except KeyboardInterrupt:
        print("fwsim: interrupted", file=sys.stderr)
        return 130
    return run_command_line()


__all__ = ["main"]
