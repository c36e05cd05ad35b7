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

Checkpoints (copying the WAL back into the database file, then syncing it) run in a thread of
their own (:class:`Checkpointer`, its own connection, a ``PASSIVE`` checkpoint every
``CHECKPOINT_INTERVAL_S``), not inside a commit: SQLite's automatic checkpoint ran on the
committing connection every 1,000 pages and stalled the event loop for milliseconds at a time
(the sync), about a third of a served claim's wall time. The committing connection keeps an
automatic checkpoint only as a safety net (``FALLBACK_CHECKPOINT_PAGES``, 80 MiB of WAL), for a
thread that falls behind or fails; a database the thread cannot open keeps SQLite's default.
``PASSIVE`` never waits for or blocks the writer; a commit only appends to the WAL, which SQLite
starts over once a checkpoint has copied all of it. Durability is unchanged: ``synchronous =
NORMAL`` never synced a commit, only checkpoints. ``close()`` stops the thread; closing the last
connection checkpoints the rest.
"""

from __future__ import annotations

import sqlite3
import threading
import weakref
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from firmware_sim.kernel.errors import ConfigurationError
from firmware_sim.kernel.private_files import private_file

#: seconds between two background checkpoints of a file database
CHECKPOINT_INTERVAL_S = 0.2
#: WAL pages (4 KiB each) at which a commit checkpoints after all (SQLite's default: 1,000)
FALLBACK_CHECKPOINT_PAGES = 20_000


class Checkpointer:
    """A daemon thread that checkpoints the WAL of the database at ``path`` (module header)."""

    def __init__(self, path: str, interval_s: float = CHECKPOINT_INTERVAL_S) -> None:
        self.path = path
        self.interval_s = interval_s
        self.done = threading.Event()
        self.checkpoints = 0
        # opened here, so that a database the thread cannot open is known at once
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._thread = threading.Thread(target=self._run, name="fwsim-sqlite-checkpoint",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        db = self._db
        try:
            while not self.done.wait(self.interval_s):
                try:
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.checkpoints += 1
                except sqlite3.Error:
                    pass  # e.g. the file is gone; the next round, or close(), does it
        finally:
            db.close()

    def stop(self) -> None:
        self.done.set()
        if self._thread is not threading.current_thread():
            self._thread.join()


class SqliteDatabase:
    """One SQLite database with a versioned schema (module header); ``what`` names it in
    errors ("cloud database", "ThingsBoard database")."""

    def __init__(self, path: str | Path, migrations: Sequence[str], *, what: str,
                 migrate_to: int | None = None) -> None:
        self.path = str(path)
        self._migrations = migrations
        self._what = what
        self._depth = 0
        self._transaction = _Transaction(self)
        try:
            if self.path != ":memory:":
                # tokens and keys: the owner's alone (and so its -wal and -shm files)
                private_file(self.path)
        except OSError as exc:
            raise ConfigurationError(f"cannot open {what} {self.path}: "
                                     f"{exc.strerror or exc}") from None
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
        self.checkpointer: Checkpointer | None = None
        if self.path != ":memory:":
            try:
                self.checkpointer = Checkpointer(self.path)
            except sqlite3.Error:
                pass  # SQLite's own checkpoints, in the commits, as before
            else:
                # only a safety net now: reached if the thread falls behind or keeps failing
                self._db.execute(f"PRAGMA wal_autocheckpoint = {FALLBACK_CHECKPOINT_PAGES}")
                # a database dropped without close() stops its thread at the next round
                weakref.finalize(self, self.checkpointer.done.set)

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

    def transaction(self) -> _Transaction:
        """Group writes into one transaction (nested calls join the outer one): ``with
        db.transaction(): ...`` commits at the end of the outermost block and rolls back if an
        exception leaves it."""
        return self._transaction

    def on_rollback(self) -> None:
        """Called after a transaction was rolled back (a store's caches may hold its writes)."""

    def _row(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        return self._db.execute(sql, params).fetchone()

    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        return list(self._db.execute(sql, params).fetchall())

    def close(self) -> None:
        if self.checkpointer is not None:
            self.checkpointer.stop()
        self._db.close()


class _Transaction:
    """The context manager of :meth:`SqliteDatabase.transaction` (a class, not a generator:
    it is entered on every store write)."""

    __slots__ = ("db",)

    def __init__(self, db: SqliteDatabase) -> None:
        self.db = db

    def __enter__(self) -> None:
        db = self.db
        if db._depth:
            db._depth += 1
            return
        db._db.execute("BEGIN IMMEDIATE")
        db._depth = 1

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> Literal[False]:
        db = self.db
        if db._depth > 1:  # an inner block: the outermost one commits or rolls back
            db._depth -= 1
            return False
        db._depth = 0
        if kind is not None:
            db._db.execute("ROLLBACK")
            db.on_rollback()
            return False
        db._db.execute("COMMIT")
        return False


__all__ = ["CHECKPOINT_INTERVAL_S", "FALLBACK_CHECKPOINT_PAGES", "Checkpointer", "SqliteDatabase"]
