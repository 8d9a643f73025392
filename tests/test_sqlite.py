"""The one SQLite helper: statements, versioned migrations, threads and processes, and files made by older code."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from nemo_opt.bench.store import BenchStore, ItemResult
from nemo_opt.embed.cache import CachedEmbedder, text_key
from nemo_opt.embed.lexical import LexicalEmbedder
from nemo_opt.exceptions import ConfigError
from nemo_opt.llm.base import Choice, Completion, Usage
from nemo_opt.llm.cache import ReplyCache
from nemo_opt.memory.store import Exemplar, MemoryStore
from nemo_opt.sqlite import Database, statements
from nemo_opt.store import MIGRATIONS as RUN_STORE_MIGRATIONS
from nemo_opt.store import RunStore

# --- statements -------------------------------------------------------------------------------------------------


def test_statements_end_where_sqlite_sees_an_end() -> None:
    script = """
    CREATE TABLE t (x TEXT, n INTEGER DEFAULT 0);  -- a comment; with a semicolon
    CREATE TRIGGER bump AFTER INSERT ON t BEGIN UPDATE t SET n = n + 1 WHERE rowid = new.rowid; END;
    INSERT INTO t (x) VALUES ('a;b');
    /* block; comment */ INSERT INTO "odd;name" VALUES (1)
    """
    found = [" ".join(s.split()) for s in statements(script)]
    assert len(found) == 4
    assert found[1].startswith("-- a comment; with a semicolon CREATE TRIGGER bump") and found[1].endswith("END;")
    assert found[2] == "INSERT INTO t (x) VALUES ('a;b');"
    assert found[3] == '/* block; comment */ INSERT INTO "odd;name" VALUES (1) ;'
    conn = sqlite3.connect(":memory:")
    conn.execute('CREATE TABLE "odd;name" (v)')
    for statement in statements(script):
        conn.execute(statement)
    assert conn.execute("SELECT x, n FROM t").fetchall() == [("a;b", 1)]
    assert conn.execute('SELECT v FROM "odd;name"').fetchall() == [(1,)]


def test_a_script_ending_inside_a_string_is_refused() -> None:
    with pytest.raises(ValueError, match="ends inside a statement"):
        list(statements("CREATE TABLE a (x); INSERT INTO a VALUES ('open;"))
    assert list(statements("  \n ; ;")) == []


# --- migrations -------------------------------------------------------------------------------------------------

LOGGED = ["CREATE TABLE log (step INTEGER);", "INSERT INTO log VALUES (1);", "INSERT INTO log VALUES (2);"]


def _log(path: Path) -> list[int]:
    with sqlite3.connect(path) as conn:
        return [r[0] for r in conn.execute("SELECT step FROM log ORDER BY rowid")]


def test_migrations_run_once_each_in_order(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    first = Database(path, migrations=LOGGED[:2])
    assert first.version == 2
    first.close()
    again = Database(path, migrations=LOGGED[:2])
    assert again.version == 2
    again.close()
    later = Database(path, migrations=LOGGED)  # a newer release adds a script
    assert later.version == 3
    later.close()
    assert _log(path) == [1, 2]


def test_a_failing_migration_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    broken = Database(path, migrations=[*LOGGED[:2], "CREATE TABLE more (x); INSERT INTO missing VALUES (1);"])
    with pytest.raises(ConfigError, match=r"Cannot open the database .*no such table: missing"):
        broken.conn()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 0
        assert conn.execute("SELECT name FROM sqlite_master").fetchall() == []
    with pytest.raises(ConfigError):  # not remembered as migrated: the next use tries again
        broken.conn()
    fixed = Database(path, migrations=LOGGED)
    assert fixed.version == 3 and _log(path) == [1, 2]


def test_a_file_from_a_newer_release_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "nemo.db"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 9")
    known = len(RUN_STORE_MIGRATIONS)
    with pytest.raises(ConfigError, match=rf"schema version 9, but this nemo-opt knows only {known}.*Upgrade nemo-opt"):
        RunStore(path).recent_runs()


def test_a_file_that_is_not_sqlite_says_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "llm.db"
    path.write_bytes(b"this is not a database, just text" * 100)
    with pytest.raises(ConfigError, match=r"Cannot open the reply cache .*not a database.*llm_cache = 'off'"):
        ReplyCache(path)
    with pytest.raises(ConfigError, match=r"Cannot open the run store .*Set NEMO_HOME"):
        RunStore(path).recent_runs()


_MIGRATE_AT_THE_SIGNAL = """
import sys, time
from pathlib import Path
from nemo_opt.sqlite import Database
path, go, migrations = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:]
database = Database(path, migrations=migrations)
while not go.exists():
    time.sleep(0.001)
database.conn()
"""


def test_processes_opening_one_new_file_at_once_migrate_it_once(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    for trial in range(3):
        path, go = tmp_path / f"race-{trial}.db", tmp_path / f"go-{trial}"
        command = [sys.executable, "-c", _MIGRATE_AT_THE_SIGNAL, str(path), str(go), *LOGGED]
        workers = [subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True) for _ in range(4)]
        time.sleep(0.5)  # let them start and wait
        go.touch()
        errors = [w.communicate(timeout=120)[1] for w in workers]
        assert [w.returncode for w in workers] == [0, 0, 0, 0], errors
        assert _log(path) == [1, 2]


# --- connections ------------------------------------------------------------------------------------------------


def test_connections_use_wal_a_busy_timeout_and_foreign_keys(tmp_path: Path) -> None:
    db = Database(tmp_path / "a.db")
    conn = db.conn()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 30_000
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_threads_write_at_once_and_close_closes_every_thread_connection(tmp_path: Path) -> None:
    db = Database(tmp_path / "a.db", migrations=["CREATE TABLE t (worker INTEGER, i INTEGER);"])
    seen: dict[int, sqlite3.Connection] = {}
    start = threading.Barrier(6)

    def write(worker: int) -> None:
        start.wait()
        seen[worker] = db.conn()
        for i in range(40):
            with db.transaction() as tx:
                tx.execute("INSERT INTO t VALUES (?, ?)", (worker, i))

    threads = [threading.Thread(target=write, args=(w,)) for w in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(c) for c in seen.values()}) == 6  # one connection per thread
    assert db.conn().execute("SELECT COUNT(*) FROM t").fetchone()[0] == 240
    kept = [c for c in seen.values()]
    db.close()
    for conn in kept:  # threads that are gone can still hold theirs; close() closed them all the same
        with pytest.raises(sqlite3.ProgrammingError, match="closed"):
            conn.execute("SELECT 1")
    assert db.conn().execute("SELECT COUNT(*) FROM t").fetchone()[0] == 240  # and the next use reopens


def _open_descriptors(path: Path) -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}").startswith(str(path))
        except OSError:
            continue
    return count


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_a_finished_thread_does_not_keep_its_connection_open(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    db = Database(path, migrations=["CREATE TABLE t (x);"])
    db.conn()

    def one_thread() -> None:
        thread = threading.Thread(target=lambda: db.conn().execute("INSERT INTO t VALUES (1)"))
        thread.start()
        thread.join()

    # SQLite keeps the descriptor of a closed connection for its next open while another one in the process holds
    # the file, so the count after one thread is the baseline.
    one_thread()
    baseline = _open_descriptors(path)
    for _ in range(30):  # e.g. one thread per benchmark item
        one_thread()
    assert _open_descriptors(path) == baseline
    assert db.conn().execute("SELECT COUNT(*) FROM t").fetchone()[0] == 31


# --- files made by the code before the schema was versioned or had its level column -----------------------------

# What the run store wrote up to schema version 3 (before the `level` columns), verbatim.
OLD_RUN_STORE = [
    """
    CREATE TABLE runs (id TEXT PRIMARY KEY, created_at REAL NOT NULL, folder TEXT NOT NULL,
        title TEXT NOT NULL DEFAULT '', problem_sha256 TEXT NOT NULL DEFAULT '', status TEXT NOT NULL DEFAULT 'running',
        verified INTEGER, objective REAL, finished_at REAL, result_json TEXT);
    CREATE TABLE stages (run_id TEXT NOT NULL REFERENCES runs(id), stage TEXT NOT NULL, status TEXT NOT NULL,
        started_at REAL NOT NULL, finished_at REAL, detail_json TEXT, PRIMARY KEY (run_id, stage));
    CREATE TABLE llm_calls (id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT, stage TEXT NOT NULL DEFAULT '',
        template TEXT NOT NULL DEFAULT '', template_version TEXT NOT NULL DEFAULT '', model TEXT NOT NULL,
        prompt_tokens INTEGER NOT NULL DEFAULT 0, completion_tokens INTEGER NOT NULL DEFAULT 0,
        seconds REAL NOT NULL DEFAULT 0, cost_usd REAL, cached INTEGER NOT NULL DEFAULT 0,
        retries INTEGER NOT NULL DEFAULT 0, error TEXT, created_at REAL NOT NULL);
    CREATE INDEX llm_calls_run ON llm_calls(run_id);
    """,
    """
    CREATE TABLE bench_runs (id TEXT PRIMARY KEY, name TEXT NOT NULL, benchmark TEXT NOT NULL,
        dataset_file TEXT NOT NULL, dataset_sha256 TEXT NOT NULL, preset TEXT NOT NULL, config_json TEXT NOT NULL,
        oracle INTEGER NOT NULL DEFAULT 0, created_at REAL NOT NULL);
    CREATE TABLE bench_results (bench_run TEXT NOT NULL REFERENCES bench_runs(id), item_id TEXT NOT NULL,
        gold_kind TEXT NOT NULL, gold_answer REAL, status TEXT NOT NULL, pred_status TEXT, pred_answer REAL,
        pass1_status TEXT, pass1_answer REAL, verified INTEGER, prompt_tokens INTEGER NOT NULL DEFAULT 0,
        completion_tokens INTEGER NOT NULL DEFAULT 0, cost_usd REAL, seconds REAL NOT NULL DEFAULT 0,
        llm_wait_seconds REAL NOT NULL DEFAULT 0, stage_seconds_json TEXT NOT NULL DEFAULT '{}', error TEXT,
        error_category TEXT, run_id TEXT, folder TEXT, worker TEXT, finished_at REAL NOT NULL,
        PRIMARY KEY (bench_run, item_id));
    """,
    """
    ALTER TABLE runs ADD COLUMN resumes INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE runs ADD COLUMN resumed_at REAL;
    CREATE TABLE llm_replies (run_id TEXT NOT NULL, stream TEXT NOT NULL, ordinal INTEGER NOT NULL,
        prefix_sha256 TEXT NOT NULL, reply_json TEXT NOT NULL, created_at REAL NOT NULL,
        PRIMARY KEY (run_id, stream, ordinal));
    """,
]


def _old_run_store(path: Path) -> None:
    """A run store as the code before the `level` columns left it, with a finished run and a bench item."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("BEGIN IMMEDIATE")
    for index, script in enumerate(OLD_RUN_STORE):  # applied the way that code did, split on ';'
        for statement in script.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {index + 1}")
    conn.execute(
        "INSERT INTO runs (id, created_at, folder, title, status, verified, objective, finished_at, result_json) "
        "VALUES ('old-run', 1.0, '/runs/old', 'Old run', 'done', 1, 42.5, 2.0, '{\"answer\": 42.5}')"
    )
    conn.execute("INSERT INTO llm_replies VALUES ('old-run', 'extract', 0, 'abc', '{\"choices\": []}', 1.5)")
    conn.execute(
        "INSERT INTO bench_runs VALUES ('b1', 'nl4opt', 'nl4opt', 'nl4opt.jsonl', 'f00', 'strict', '{}', 0, 1.0)"
    )
    conn.execute(
        "INSERT INTO bench_results (bench_run, item_id, gold_kind, gold_answer, status, pred_answer, verified, "
        "finished_at) VALUES ('b1', 'item-1', 'number', 3.0, 'done', 3.0, 1, 2.0)"
    )
    conn.execute("COMMIT")
    conn.close()


def test_a_run_store_from_before_the_level_columns_opens_and_upgrades(tmp_path: Path) -> None:
    path = tmp_path / "nemo.db"
    _old_run_store(path)
    store = RunStore(path)
    old = store.get_run("old-run")
    assert old is not None and old["objective"] == 42.5 and old["level"] is None and old["resumes"] == 0
    assert store.db.version == len(RUN_STORE_MIGRATIONS)
    assert store.recorded_replies("old-run") == {("extract", 0): ("abc", '{"choices": []}')}
    store.create_run("new-run", tmp_path / "new", "New", "0" * 64)
    store.finish_run("new-run", "done", True, 1.0, {"answer": 1.0}, level="objective-checked")
    new = store.get_run("new-run")
    assert new is not None and new["level"] == "objective-checked"
    bench = BenchStore(store)
    bench.save("b1", ItemResult("item-2", "number", 4.0, "done", pred_answer=4.0, level="verified"))
    levels = {r["item_id"]: r["level"] for r in bench.results("b1")}
    assert levels == {"item-1": None, "item-2": "verified"}
    store.close()
    assert RunStore(path).db.version == len(RUN_STORE_MIGRATIONS)  # opening again changes nothing


def test_a_reply_cache_from_before_versioning_keeps_its_entries(tmp_path: Path) -> None:
    path = tmp_path / "llm.db"
    completion = Completion(choices=(Choice(text="x = 1", finish_reason="stop"),), usage=Usage(3, 2), model="m")
    with sqlite3.connect(path, isolation_level=None) as conn:  # what the cache wrote before it was versioned
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS replies ("
            "key TEXT PRIMARY KEY, created_at TEXT NOT NULL, model TEXT NOT NULL, reply_json TEXT NOT NULL)"
        )
        conn.execute(
            "INSERT INTO replies VALUES ('k1', '2025-01-01T00:00:00+00:00', 'm', ?)",
            (json.dumps(completion.to_dict()),),
        )
    with ReplyCache(path) as cache:
        hit = cache.get("k1")
        assert hit is not None and hit.cached and hit.first.text == "x = 1"
        assert cache.db.version == 1 and cache.stats().entries == 1


def test_a_memory_store_from_before_versioning_is_searched_as_before(tmp_path: Path) -> None:
    path = tmp_path / "memory.db"
    embedder = LexicalEmbedder()
    question = "A bakery makes bread and cakes with 40 kg of flour; maximise profit."
    with sqlite3.connect(path) as conn:  # the schema the memory store created with executescript, unversioned
        conn.executescript(
            """
            CREATE TABLE IF NOT EXISTS exemplars (id TEXT PRIMARY KEY, source TEXT NOT NULL, question TEXT NOT NULL,
                code TEXT NOT NULL, answer REAL, solver TEXT NOT NULL DEFAULT '', tags_json TEXT NOT NULL DEFAULT '{}',
                data_json TEXT, text_hash TEXT NOT NULL UNIQUE, added_at REAL NOT NULL);
            CREATE TABLE IF NOT EXISTS vectors (exemplar_id TEXT NOT NULL REFERENCES exemplars(id) ON DELETE CASCADE,
                embedder TEXT NOT NULL, vec BLOB NOT NULL, PRIMARY KEY (exemplar_id, embedder));
            """
        )
        conn.execute(
            "INSERT INTO exemplars VALUES ('bakery', 'old', ?, 'print(1)', 120.0, 'pulp', '{}', NULL, 'h1', 1.0)",
            (question,),
        )
        stored = embedder.embed([question])[0]
        conn.execute("INSERT INTO vectors VALUES ('bakery', ?, ?)", (embedder.name, stored.tobytes()))
    memory = MemoryStore(path, embedder)
    assert memory.db.version == 1 and memory.count() == 1
    hits, _ = memory.search("bakery bread cakes flour profit", k=1)
    assert [h.exemplar.id for h in hits] == ["bakery"] and hits[0].exemplar.answer == 120.0
    report = memory.add_many([Exemplar("toys", "new", "A toy maker builds trains and cars in 30 hours.", "print(2)")])
    assert report.added == 1 and memory.count() == 2


def test_an_embedding_cache_from_before_versioning_serves_its_vectors(tmp_path: Path) -> None:
    path = tmp_path / "embeddings.db"
    vector = np.array([0.6, 0.8], dtype=np.float32)
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS vectors (model TEXT, key TEXT, dim INTEGER, vec BLOB, PRIMARY KEY (model, key))"
        )
        conn.execute("INSERT INTO vectors VALUES ('fixed', ?, 2, ?)", (text_key("hello"), vector.tobytes()))

    class Refuses:
        name = "fixed"
        dim = 2

        def embed(self, texts: list[str]) -> np.ndarray:
            raise AssertionError(f"asked to embed {texts}, which the cache holds")

    cached = CachedEmbedder(Refuses(), path)
    assert cached.db.version == 1
    assert np.array_equal(cached.embed(["hello"]), vector[None, :])
