"""Loading a user's Python code named on the command line or in a scenario file: a dotted
module name (imported as usual) or a path to a ``.py`` file (loaded under a private module
name). Every failure is a :class:`~.errors.ConfigurationError` with a one-line message."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from .errors import ConfigurationError

#: the start of the name of a module loaded from a file by :func:`load_file`
USER_MODULE_PREFIX = "fwsim_user_"


def load_file(path: Path, what: str) -> ModuleType:
    """Execute the Python file ``path`` as a module named ``fwsim_user_<what>_<hash>`` (the
    hash of its absolute path: the same name in every process); ``what`` ("firmware",
    "property") names the kind of thing in messages."""
    if not path.is_file():
        raise ConfigurationError(f"{what} file {str(path)!r} not found")
    digest = hashlib.sha256(str(path.resolve()).encode("utf-8", "surrogateescape")).hexdigest()
    name = f"{USER_MODULE_PREFIX}{what}_{digest[:16]}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ConfigurationError(f"{what} file {str(path)!r} is not a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(name, None)
        raise ConfigurationError(f"{what} file {str(path)!r} failed to load: "
                                 f"{type(exc).__name__}: {exc}") from None
    return module


def import_location(location: str, what: str, reference: str) -> ModuleType:
    """The module at ``location`` (a ``.py`` path or a dotted name) that ``reference`` (the
    user's whole text, for messages) points into."""
    if location.endswith(".py"):
        return load_file(Path(location), what)
    try:
        return importlib.import_module(location)
    except ImportError as exc:
        raise ConfigurationError(f"{what} {reference!r}: cannot import {location!r}: {exc}"
                                 ) from None
