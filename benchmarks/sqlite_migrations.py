"""Why nemo-opt's SQLite migrations run statement by statement inside one transaction, not through executescript.

Three checks, on real files in a temporary folder:

1. ``executescript`` inside an open ``BEGIN IMMEDIATE`` transaction: is the transaction still open afterwards?
   (On Python 3.11 it is not: executescript COMMITs first.)
2. A race: N processes open one fresh file at the same moment and migrate it. The migration is not idempotent
   (it appends a row to a log table), so the log counts how often it ran. Scheme "executescript": read
   ``user_version``, then ``executescript("BEGIN IMMEDIATE; <script>; PRAGMA user_version = 1; COMMIT;")`` (the
   only way to run a whole script in one transaction with executescript). Scheme "Database":
   :class:`nemo_opt.sqlite.Database`, which reads the version and applies the script under one write lock.
3. Splitting a script on ';' versus :func:`nemo_opt.sqlite.statements`, on a trigger and a string holding ';'.
4. N processes open one fresh file at the same moment and each runs ``PRAGMA journal_mode=WAL`` once, with a
   30 s busy timeout: how many get "database is locked" anyway (Database retries this step).

    python benchmarks/sqlite_migrations.py --processes 4 --trials 20
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sqlite3
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from nemo_opt.sqlite import Database, statements  # noqa: E402

MIGRATION = "CREATE TABLE IF NOT EXISTS log (pid INTEGER); INSERT INTO log VALUES (1);"
TRICKY = """
CREATE TABLE t (x TEXT, n INTEGER DEFAULT 0);
CREATE TRIGGER bump AFTER INSERT ON t BEGIN UPDATE t SET n = n + 1 WHERE rowid = new.rowid; END;
INSERT INTO t (x) VALUES ('a;b');
"""


def _executescript_scheme(path: str, barrier: mp.synchronize.Barrier) -> None:
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    barrier.wait()
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version < 1:
        conn.executescript(f"BEGIN IMMEDIATE; {MIGRATION} PRAGMA user_version = 1; COMMIT;")
    conn.close()


def _database_scheme(path: str, barrier: mp.synchronize.Barrier) -> None:
    db = Database(Path(path), migrations=[MIGRATION])
    barrier.wait()
    db.conn()
    db.close()


def _wal_once(path: str, barrier: mp.synchronize.Barrier) -> None:
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    barrier.wait()
    try:
        conn.execute("PRAGMA journal_mode=WAL")
    except sqlite3.OperationalError:
        sys.exit(1)  # counted by race()
    conn.execute("CREATE TABLE IF NOT EXISTS log (pid INTEGER)")
    conn.close()


def race(scheme: str, processes: int, trials: int, folder: Path) -> tuple[list[int], int]:
    """How many times the migration ran, per trial, and how many processes failed."""
    target = {"executescript": _executescript_scheme, "Database": _database_scheme, "wal": _wal_once}[scheme]
    counts, failed = [], 0
    for trial in range(trials):
        path = folder / f"{scheme}-{trial}.db"
        barrier = mp.Barrier(processes)
        workers = [mp.Process(target=target, args=(str(path), barrier)) for _ in range(processes)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
            failed += worker.exitcode != 0
        with sqlite3.connect(path) as conn:
            counts.append(int(conn.execute("SELECT COUNT(*) FROM log").fetchone()[0]))
    return counts, failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--trials", type=int, default=20)
    args = parser.parse_args()
    print(f"Python {sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        conn = sqlite3.connect(folder / "tx.db", isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        before = conn.in_transaction
        conn.executescript("CREATE TABLE probe (x);")
        print(f"1. executescript inside BEGIN IMMEDIATE: in_transaction {before} before, {conn.in_transaction} after")
        conn.close()
        for scheme in ("executescript", "Database"):
            counts, failed = race(scheme, args.processes, args.trials, folder)
            more = sum(c > 1 for c in counts)
            print(
                f"2. {scheme}: {args.processes} processes x {args.trials} trials; migration ran "
                f"{min(counts)}..{max(counts)} times per file, more than once in {more} of {args.trials} trials; "
                f"{failed} of {args.processes * args.trials} processes failed"
            )
        naive = sqlite3.connect(":memory:")
        try:
            for piece in TRICKY.split(";"):
                if piece.strip():
                    naive.execute(piece)
            print("3. split on ';': ran")
        except sqlite3.Error as exc:
            print(f"3. split on ';': fails ({exc})")
        split = sqlite3.connect(":memory:")
        for statement in statements(TRICKY):
            split.execute(statement)
        print(f"3. statements(): ran; row {tuple(split.execute('SELECT x, n FROM t').fetchone())}")
        _, failed = race("wal", args.processes, args.trials, folder)
        total = args.processes * args.trials
        print(f"4. PRAGMA journal_mode=WAL on a fresh file, no retry: {failed} of {total} processes failed")


if __name__ == "__main__":
    main()
