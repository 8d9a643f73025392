"""Every SQLite file of nemo-opt is opened here: one connection per thread, WAL, a busy timeout, versioned schema.

The run store, the reply cache, the memory store and the embedding cache are each a :class:`Database`. A thread
gets its own connection on first use (autocommit; :meth:`Database.transaction` groups writes), so agents and
benchmark workers write at once; other processes queue behind the busy timeout instead of failing.

The schema is a list of migration scripts; ``PRAGMA user_version`` counts how many a file has had. On first use
the pending ones are applied in order, all of them in one ``BEGIN IMMEDIATE`` transaction that also reads the
version, so two processes opening an old file at once apply each script exactly once, and a script that fails
leaves the file as it was.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from nemo_opt.exceptions import ConfigError

__all__ = ["Database", "statements"]

BUSY_TIMEOUT_SECONDS = 30.0


def statements(script: str) -> Iterator[str]:
    """The statements of an SQL script, cut where SQLite's own tokenizer sees one end.

    ``sqlite3.complete_statement`` is SQLite's ``sqlite3_complete`` (what its shell uses to know a statement is
    finished): a ``;`` inside a string, a quoted name, a comment or a trigger's ``BEGIN ... END`` does not end one.
    ``executescript`` would run a script whole, but on Python 3.11 it first COMMITs the open transaction
    (benchmarks/sqlite_migrations.py: ``in_transaction`` True before, False after), which would release the write
    lock between reading ``user_version`` and applying the script. In that script's race (4 processes open one fresh
    file at once, 100 trials) the executescript scheme ran a migration up to 4 times, more than once in 21 trials;
    :class:`Database` ran it exactly once in every trial.
    """
    *pieces, last = script.split(";")
    pending = ""
    for piece in pieces:
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \t\r\n;"):
                yield pending
            pending = ""
    rest = pending + last  # a last statement may lack its ';'
    if rest.strip():
        if not sqlite3.complete_statement(rest + "\n;"):
            raise ValueError(f"the SQL script ends inside a statement (open string, comment or BEGIN): {rest[:80]!r}")
        yield rest + "\n;"


class _Owned:
    """A thread's connection, held in that thread's locals: it is closed when the thread ends (or the
    :class:`Database` is dropped).

    A connection is in a reference cycle with its own statement cache, so it would only be closed when the garbage
    collector gets to it; one thread per benchmark item would pile up open files until then. This holder is in
    no cycle, so it goes (closing the connection) as soon as the thread's locals do.
    """

    __slots__ = ("__weakref__", "conn", "generation")

    def __init__(self, conn: sqlite3.Connection, generation: int) -> None:
        self.conn = conn
        self.generation = generation

    def __del__(self) -> None:
        self.conn.close()


class Database:
    """A SQLite file opened lazily, once per thread, in WAL mode (readers never block the writer).

    ``migrations`` are applied on first use (see the module docstring). ``what`` names the file in errors
    ("the run store") and ``remedy`` says what the user can do about a file that cannot be opened.
    """

    def __init__(
        self,
        path: Path,
        *,
        migrations: Sequence[str] = (),
        what: str = "the database",
        remedy: str = "Check that its folder is writable.",
        timeout: float = BUSY_TIMEOUT_SECONDS,
    ) -> None:
        self.path = path
        self.migrations = list(migrations)
        self.what = what
        self.remedy = remedy
        self.timeout = timeout
        self._local = threading.local()
        self._lock = threading.Lock()
        self._migrated = False
        # The connections of threads still running, so close() can close those of other threads too.
        self._open: weakref.WeakSet[_Owned] = weakref.WeakSet()
        self._generation = 0

    def conn(self) -> sqlite3.Connection:
        """This thread's connection (autocommit; use :meth:`transaction` to group writes)."""
        owned: _Owned | None = getattr(self._local, "owned", None)
        if owned is not None and owned.generation == self._generation:
            return owned.conn
        conn = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # check_same_thread=False only so close() may close another thread's connection; each thread still
            # uses its own. The timeout is SQLite's busy timeout: a writer waits this long for the lock.
            conn = sqlite3.connect(
                self.path,
                timeout=self.timeout,
                isolation_level=None,
                check_same_thread=False,
            )
            conn.row_factory = sqlite3.Row
            self._use_wal(conn)
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            with self._lock:
                if not self._migrated:
                    self._migrate(conn)
                    self._migrated = True
                owned = _Owned(conn, self._generation)
                self._open.add(owned)
                self._local.owned = owned
        except BaseException as exc:
            if conn is not None:
                conn.close()
            if isinstance(exc, OSError | sqlite3.Error):
                raise ConfigError(f"Cannot open {self.what} {self.path}: {exc}. {self.remedy}") from exc
            raise
        return conn

    def _use_wal(self, conn: sqlite3.Connection) -> None:
        """Switch the file to WAL (kept in the file, so later opens find it set), waiting out other openers.

        Switching needs an exclusive lock and SQLite may refuse it at once, without calling the busy handler,
        while another process opens the same new file: in benchmarks/sqlite_migrations.py (4 processes open one
        fresh file at once, 100 trials, 30 s busy timeout) 13 of 400 got "database is locked" from this one
        statement, so it is retried until the busy timeout; with the retry none of 400 failed.
        """
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                if str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                    conn.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if ("locked" not in str(exc) and "busy" not in str(exc)) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def _migrate(self, conn: sqlite3.Connection) -> None:
        """Apply the pending migrations in one write transaction (the version is read under the same lock)."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if version > len(self.migrations):
                raise ConfigError(
                    f"{self.what} {self.path} has schema version {version}, but this nemo-opt knows only "
                    f"{len(self.migrations)}: it was written by a newer nemo-opt. Upgrade nemo-opt, or move the file "
                    "away to start a new one."
                )
            for index in range(version, len(self.migrations)):
                for statement in statements(self.migrations[index]):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {index + 1}")
        except BaseException:
            if conn.in_transaction:  # SQLite may have rolled back already (e.g. on a full disk)
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @property
    def version(self) -> int:
        """The file's schema version (how many migrations it has had)."""
        return int(self.conn().execute("PRAGMA user_version").fetchone()[0])

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction, taken immediately so concurrent writers queue instead of failing later."""
        conn = self.conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            if conn.in_transaction:  # SQLite may have rolled back already (e.g. on a full disk)
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def close(self) -> None:
        """Close every connection this database opened, in any thread; the next use opens a new one."""
        with self._lock:
            owned, self._open = list(self._open), weakref.WeakSet()
            self._generation += 1
        for holder in owned:
            holder.conn.close()
