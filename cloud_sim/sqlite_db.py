"""What both SQLite stores (the Particle cloud's, the emulated ThingsBoard's) do alike: open
the database, migrate its schema, group writes into transactions.

How this works
--------------
The schema version lives in SQLite's ``PRAGMA user_version``. ``migrations[i]`` takes a
database from version ``i`` to ``i + 1``; opening applies every missing migration in order, each
in its own transaction, so an old database is upgraded in place. A database written by a newer
fwsim (a version above ``len(migrations)``) is refused with a :class:`ConfigurationError` rather
than guessed at, as is a file that is not an SQLite database.

The connection runs in autocommit mode; a write commits on its own unless it runs inside
``transaction()``, which wraps the writes in one ``BEGIN IMMEDIATE``/``COMMIT`` (rolled back if
the block raises; nested calls join the outer one; ``on_rollback`` runs after a rollback, so a
store can forget what it cached from the uncommitted writes). A file database uses WAL
journaling with ``synchronous = NORMAL``. A store is used from one thread at a time (the
emulator's event loop), so the connection is opened with ``check_same_thread=False``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from firmware_sim.kernel.errors import ConfigurationError


class SqliteDatabase:
    """One SQLite database with a versioned schema (module header); ``what`` names it in
    errors ("cloud database", "ThingsBoard database")."""

    def __init__(self, path: str | Path, migrations: Sequence[str], *, what: str,
                 migrate_to: int | None = None) -> None:
        self.path = str(path)
        self._migrations = migrations
        self._what = what
        self._depth = 0
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None,
                                       check_same_thread=False)
            self._db.execute("PRAGMA foreign_keys = ON")
            if self.path != ":memory:":
                self._db.execute("PRAGMA journal_mode = WAL")
                self._db.execute("PRAGMA synchronous = NORMAL")
            self._migrate(len(migrations) if migrate_to is None else migrate_to)
        except sqlite3.DatabaseError as exc:
            raise ConfigurationError(f"cannot open {what} {self.path}: {exc}") from None

    @property
    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self, target: int) -> None:
        current, newest = self.schema_version, len(self._migrations)
        if current > newest:
            raise ConfigurationError(
                f"{self._what} {self.path} has schema version {current}, newer than this "
                f"fwsim understands ({newest})")
        for version in range(current, min(target, newest)):
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for statement in self._migrations[version].split(";"):
                    if statement.strip():
                        self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version = {version + 1}")
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes into one transaction (nested calls join the outer one)."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._db.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield
        except BaseException:
            self._depth = 0
            self._db.execute("ROLLBACK")
            self.on_rollback()
            raise
        self._depth = 0
        self._db.execute("COMMIT")

    def on_rollback(self) -> None:
        """Called after a transaction was rolled back (a store's caches may hold its writes)."""

    def _row(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        return self._db.execute(sql, params).fetchone()

    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        return list(self._db.execute(sql, params).fetchall())

    def close(self) -> None:
        self._db.close()


__all__ = ["SqliteDatabase"]
