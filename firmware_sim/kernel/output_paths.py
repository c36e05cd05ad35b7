"""Where fwsim writes its outputs (``--out DIR``, ``--trace F``, ``--diagram STEM``): checked
before a run or a search starts, so a bad path is a one-line error up front instead of after
minutes of searching, and it says what is wrong ("not a directory") rather than the errno of
the call that tripped on it ("File exists")."""

from __future__ import annotations

from pathlib import Path

from .errors import ConfigurationError
from .private_files import make_private_dir


def _not_a_folder(path: Path) -> Path | None:
    """The first component of ``path`` (itself included) that exists but is not a folder."""
    for part in [*reversed(path.parents), path]:
        if part.exists() and not part.is_dir():
            return part
    return None


def output_folder(path: str | Path, what: str = "--out") -> Path:
    """Create the folder ``path`` (mode 0700 for the parts made here: what fwsim writes into it
    holds claim codes) or check that it is one."""
    folder = Path(path)
    blocker = _not_a_folder(folder)
    if blocker is not None:
        where = "" if blocker == folder else f": {blocker}"
        raise ConfigurationError(f"{what} {folder}{where} is not a directory")
    try:
        make_private_dir(folder)
    except OSError as exc:
        raise ConfigurationError(f"{what} {folder}: cannot create the folder: "
                                 f"{exc.strerror or exc}") from None
    return folder


def check_output_file(path: str | Path, what: str) -> None:
    """Fail now when ``path`` cannot be a file fwsim writes: a part of its folder is a file, or
    it is itself a folder (its missing folders are made by the writer or reported by it)."""
    target = Path(path)
    blocker = _not_a_folder(target.parent)
    if blocker is not None:
        raise ConfigurationError(f"cannot write {what} {target}: {blocker} is not a directory")
    if target.is_dir():
        raise ConfigurationError(f"cannot write {what} {target}: it is a directory")


__all__ = ["check_output_file", "output_folder"]
