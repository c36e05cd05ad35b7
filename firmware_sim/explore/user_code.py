"""Exceptions a user's own code raises inside a run, named by the user's file and line.

A run calls two kinds of user code: firmware (``--firmware my_fw:App``, a scenario file's
``firmware = "app.py:App"``) and properties (``--property checks:Mine``). When either raises,
fwsim names the user's frame - the deepest frame of the traceback in the file that defines the
firmware class or the property - instead of reporting an fwsim "internal error":

* a firmware that raises is a firmware bug the run found: the run loop records it as a violation
  of the always-checked pseudo-property :data:`FIRMWARE_RAISED` (signature: the exception's
  class), so ``fwsim explore`` reports and shrinks it like any finding and writes its replay
  file; ``fwsim scenario run`` prints it as one line (exit status 2) unless the file expects it;
* a property that raises, or a trace function that returns something else than None, a bool, a
  str or a list of str, is a mistake in the property: :class:`PropertyError` (one line, exit
  status 2).
"""

from __future__ import annotations

import inspect
import os
import traceback

from ..kernel.errors import ConfigurationError

#: the pseudo-property a firmware exception violates (always checked, never named in a file's
#: ``[properties]``)
FIRMWARE_RAISED = "firmware-raised"


class PropertyError(ConfigurationError):
    """A user property raised or returned something it must not (one line, exit status 2)."""


def source_file(target: object) -> str | None:
    """The real path of the file defining ``target`` (a class or function); None for fwsim's own
    code, built-ins and anything without a Python source file."""
    module = getattr(target, "__module__", None) or ""
    if module == "firmware_sim" or module.startswith("firmware_sim."):
        return None
    try:
        found = inspect.getsourcefile(target)  # type: ignore[arg-type]
    except TypeError:
        return None
    return os.path.realpath(found) if found else None


def user_frame(exc: BaseException, source: str | None) -> str | None:
    """``file.py:LINE, in FUNCTION`` of the deepest frame of ``exc`` in ``source``."""
    if source is None:
        return None
    found = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if os.path.realpath(frame.filename) == source:
            found = frame
    if found is None:
        return None
    return f"{os.path.basename(found.filename)}:{found.lineno}, in {found.name}"


def raised(what: str, exc: BaseException, where: str | None) -> str:
    """``firmware my_fw:App raised ZeroDivisionError: division by zero (my_fw.py:29, in f)``."""
    return (f"{what} raised {type(exc).__name__}: {exc}"
            + (f" ({where})" if where else ""))


__all__ = ["FIRMWARE_RAISED", "PropertyError", "raised", "source_file", "user_frame"]
