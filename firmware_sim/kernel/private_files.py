"""Files only their owner may read: what fwsim writes that holds secrets.

A device's DCT holds its private key (a copy of the file logs in to the cloud as that device),
its Wi-Fi file the passwords, the cloud database access tokens and the server key, a trace the
claim codes it issued. Other local users must not read them, whatever the process's umask: the
files are created with mode 0600 (an existing file is narrowed to it when fwsim rewrites it),
the folders fwsim creates for them with 0700. SQLite creates a database's ``-wal`` and ``-shm``
files with the database file's own mode, so :func:`private_file` before opening covers them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

FILE_MODE = 0o600
DIR_MODE = 0o700


def open_private(path: str | Path, flags: int = os.O_WRONLY | os.O_CREAT | os.O_TRUNC) -> int:
    """``os.open`` with mode 0600; a file that existed with a wider mode is narrowed."""
    fd = os.open(path, flags, FILE_MODE)
    try:
        if os.fstat(fd).st_mode & 0o077:
            os.fchmod(fd, FILE_MODE)
    except OSError:
        os.close(fd)
        raise
    return fd


def open_private_text(path: str | Path, *, buffering: int = -1) -> IO[str]:
    """A UTF-8 text file opened for writing (truncated), mode 0600. A lone surrogate (text
    decoded with ``surrogateescape``, a firmware's odd string) cannot be UTF-8: it is written
    as its escape ``\\udcff`` (``backslashreplace``), which inside a JSON string - the traces -
    is the JSON escape of the same character, so a reader gets it back."""
    return os.fdopen(open_private(path), "w", encoding="utf-8", errors="backslashreplace",
                     buffering=buffering)


def private_file(path: str | Path) -> None:
    """Create ``path`` empty with mode 0600 if it does not exist, else narrow it to 0600."""
    os.close(open_private(path, os.O_WRONLY | os.O_CREAT))


def make_private_dir(path: str | Path) -> None:
    """``mkdir -p``; every folder made here gets mode 0700, the missing parents too (``mkdir``
    with ``parents=True`` makes those with the default mode); existing ones are left alone."""
    target = Path(path)
    missing = [p for p in (target, *target.parents) if not p.exists()]
    for folder in reversed(missing):
        folder.mkdir(mode=DIR_MODE, exist_ok=True)


__all__ = ["DIR_MODE", "FILE_MODE", "make_private_dir", "open_private", "open_private_text",
           "private_file"]
