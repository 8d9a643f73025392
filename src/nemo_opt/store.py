"""The run store: one SQLite file (WAL mode) with runs, their stages, every model call and every reply.

The replies (``llm_replies``) are the journal a resumed run replays (see :mod:`nemo_opt.llm.journal`).

Each thread gets its own connection, so concurrent agents and benchmark workers can write at once.
The schema is versioned with ``PRAGMA user_version``; :data:`MIGRATIONS` upgrades old files in place (both through
:class:`nemo_opt.sqlite.Database`). Add a change as a new script at the end; never edit one that has shipped.
"""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nemo_opt.exceptions import BadInput
from nemo_opt.sqlite import Database

__all__ = ["LLMCallRecord", "RunStore", "find_run_folder"]

MIGRATIONS: list[str] = [
    """
    CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        created_at REAL NOT NULL,
        folder TEXT NOT NULL,
        title TEXT NOT NULL DEFAULT '',
        problem_sha256 TEXT NOT NULL DEFAULT '',
        status TEXT NOT NULL DEFAULT 'running',
        verified INTEGER,
        objective REAL,
        finished_at REAL,
        result_json TEXT
    );
    CREATE TABLE stages (
        run_id TEXT NOT NULL REFERENCES runs(id),
        stage TEXT NOT NULL,
        status TEXT NOT NULL,
        started_at REAL NOT NULL,
        finished_at REAL,
        detail_json TEXT,
        PRIMARY KEY (run_id, stage)
    );
    CREATE TABLE llm_calls (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id TEXT,
        stage TEXT NOT NULL DEFAULT '',
        template TEXT NOT NULL DEFAULT '',
        template_version TEXT NOT NULL DEFAULT '',
        model TEXT NOT NULL,
        prompt_tokens INTEGER NOT NULL DEFAULT 0,
        completion_tokens INTEGER NOT NULL DEFAULT 0,
        seconds REAL NOT NULL DEFAULT 0,
        cost_usd REAL,
        cached INTEGER NOT NULL DEFAULT 0,
        retries INTEGER NOT NULL DEFAULT 0,
        error TEXT,
        created_at REAL NOT NULL
    );
    CREATE INDEX llm_calls_run ON llm_calls(run_id);
    """,
    """
    CREATE TABLE bench_runs (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        benchmark TEXT NOT NULL,
        dataset_file TEXT NOT NULL,
        dataset_sha256 TEXT NOT NULL,
        preset TEXT NOT NULL,
        config_json TEXT NOT NULL,
        oracle INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL
    );
    CREATE TABLE bench_results (
        bench_run TEXT NOT NULL REFERENCES bench_runs(id),
        item_id TEXT NOT NULL,
        gold_kind TEXT NOT NULL,
        gold_answer REAL,
        status TEXT NOT NULL,
        pred_status TEXT,
        pred_answer REAL,
        pass1_status TEXT,
        pass1_answer REAL,
        verified INTEGER,
        prompt_tokens INTEGER NOT NULL DEFAULT 0,
        completion_tokens INTEGER NOT NULL DEFAULT 0,
        cost_usd REAL,
        seconds REAL NOT NULL DEFAULT 0,
        llm_wait_seconds REAL NOT NULL DEFAULT 0,
        stage_seconds_json TEXT NOT NULL DEFAULT '{}',
        error TEXT,
        error_category TEXT,
        run_id TEXT,
        folder TEXT,
        worker TEXT,
        finished_at REAL NOT NULL,
        PRIMARY KEY (bench_run, item_id)
    );
    """,
    """
    ALTER TABLE runs ADD COLUMN resumes INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE runs ADD COLUMN resumed_at REAL;
    CREATE TABLE llm_replies (
        run_id TEXT NOT NULL,
        stream TEXT NOT NULL,
        ordinal INTEGER NOT NULL,
        prefix_sha256 TEXT NOT NULL,
        reply_json TEXT NOT NULL,
        created_at REAL NOT NULL,
        PRIMARY KEY (run_id, stream, ordinal)
    );
    """,
    """
    ALTER TABLE runs ADD COLUMN level TEXT;
    ALTER TABLE bench_results ADD COLUMN level TEXT;
    """,
    # Whether any attempt at a run's agents ran without isolation (the plain sandbox): its checkpoints could have
    # been written by agents' code, so no later attempt believes them above objective-checked.
    """
    ALTER TABLE runs ADD COLUMN unisolated INTEGER NOT NULL DEFAULT 0;
    """,
]


@dataclass(frozen=True)
class LLMCallRecord:
    """One model call as logged."""

    run_id: str | None
    stage: str
    template: str
    template_version: str
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    cost_usd: float | None = None
    cached: bool = False
    retries: int = 0
    error: str | None = None


class RunStore:
    """Access to the SQLite run store at ``path`` (created on first use)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = Database(
            path, migrations=MIGRATIONS, what="the run store", remedy="Set NEMO_HOME to a writable folder."
        )

    def _connect(self) -> sqlite3.Connection:
        """This thread's connection (the schema is brought up to date on first use)."""
        return self.db.conn()

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:
        """A write transaction."""
        return self.db.transaction()

    def close(self) -> None:
        """Close this thread's connection."""
        self.db.close()

    # --- runs ---------------------------------------------------------------------------------------------
    def create_run(self, run_id: str, folder: Path, title: str, problem_sha256: str) -> None:
        with self._tx() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO runs (id, created_at, folder, title, problem_sha256) VALUES (?, ?, ?, ?, ?)",
                (run_id, time.time(), str(folder), title, problem_sha256),
            )

    def finish_run(
        self,
        run_id: str,
        status: str,
        verified: bool | None,
        objective: float | None,
        result: Any,
        level: str | None = None,
    ) -> None:
        with self._tx() as conn:
            conn.execute(
                "UPDATE runs SET status=?, verified=?, level=?, objective=?, finished_at=?, result_json=? WHERE id=?",
                (
                    status,
                    None if verified is None else int(verified),
                    level,
                    objective,
                    time.time(),
                    json.dumps(result),
                    run_id,
                ),
            )

    def mark_resumed(self, run_id: str) -> int:
        """Set a killed or failed run running again and count the resume; returns how many resumes it has had."""
        with self._tx() as conn:
            conn.execute(
                "UPDATE runs SET status='running', finished_at=NULL, resumes=resumes+1, resumed_at=? WHERE id=?",
                (time.time(), run_id),
            )
            row = conn.execute("SELECT resumes FROM runs WHERE id=?", (run_id,)).fetchone()
        return int(row["resumes"]) if row else 0

    def mark_unisolated(self, run_id: str) -> None:
        """Record that an attempt at the run's agents runs without isolation (kept for every later attempt)."""
        with self._tx() as conn:
            conn.execute("UPDATE runs SET unisolated=1 WHERE id=?", (run_id,))

    def was_unisolated(self, run_id: str) -> bool:
        row = self._connect().execute("SELECT unisolated FROM runs WHERE id=?", (run_id,)).fetchone()
        return bool(row["unisolated"]) if row else False

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        row = self._connect().execute("SELECT * FROM runs WHERE id=?", (run_id,)).fetchone()
        return dict(row) if row else None

    def find_runs(self, prefix: str) -> list[dict[str, Any]]:
        rows = self._connect().execute(
            "SELECT * FROM runs WHERE id LIKE ? ORDER BY created_at DESC", (prefix.replace("%", "") + "%",)
        )
        return [dict(r) for r in rows]

    def recent_runs(self, limit: int = 20) -> list[dict[str, Any]]:
        rows = self._connect().execute("SELECT * FROM runs ORDER BY created_at DESC LIMIT ?", (limit,))
        return [dict(r) for r in rows]

    # --- stages -------------------------------------------------------------------------------------------
    def stage_started(self, run_id: str, stage: str) -> None:
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO stages (run_id, stage, status, started_at) VALUES (?, ?, 'running', ?) "
                "ON CONFLICT(run_id, stage) DO UPDATE SET status='running', started_at=excluded.started_at, "
                "finished_at=NULL, detail_json=NULL",
                (run_id, stage, time.time()),
            )

    def stage_finished(self, run_id: str, stage: str, status: str, detail: Any = None) -> None:
        with self._tx() as conn:
            conn.execute(
                "UPDATE stages SET status=?, finished_at=?, detail_json=? WHERE run_id=? AND stage=?",
                (status, time.time(), json.dumps(detail), run_id, stage),
            )

    def stages(self, run_id: str) -> list[dict[str, Any]]:
        rows = self._connect().execute("SELECT * FROM stages WHERE run_id=? ORDER BY started_at", (run_id,))
        return [dict(r) for r in rows]

    # --- model calls --------------------------------------------------------------------------------------
    def log_llm_call(self, record: LLMCallRecord) -> None:
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO llm_calls (run_id, stage, template, template_version, model, prompt_tokens, "
                "completion_tokens, seconds, cost_usd, cached, retries, error, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.run_id,
                    record.stage,
                    record.template,
                    record.template_version,
                    record.model,
                    record.prompt_tokens,
                    record.completion_tokens,
                    record.seconds,
                    record.cost_usd,
                    int(record.cached),
                    record.retries,
                    record.error,
                    time.time(),
                ),
            )

    # --- reply journal ------------------------------------------------------------------------------------
    def record_reply(self, run_id: str, stream: str, ordinal: int, prefix_sha256: str, reply_json: str) -> None:
        """Keep the reply a stream got for its ``ordinal``-th call (committed before the caller uses it)."""
        with self._tx() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO llm_replies (run_id, stream, ordinal, prefix_sha256, reply_json, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (run_id, stream, ordinal, prefix_sha256, reply_json, time.time()),
            )

    def recorded_replies(self, run_id: str) -> dict[tuple[str, int], tuple[str, str]]:
        """{(stream, ordinal): (prefix_sha256, reply_json)} of every reply the run received."""
        rows = self._connect().execute(
            "SELECT stream, ordinal, prefix_sha256, reply_json FROM llm_replies WHERE run_id=?", (run_id,)
        )
        return {(r["stream"], int(r["ordinal"])): (r["prefix_sha256"], r["reply_json"]) for r in rows}

    def drop_replies(self, run_id: str, stream: str, from_ordinal: int) -> None:
        """Forget a stream's replies from ``from_ordinal`` on (they answered a conversation that went otherwise)."""
        with self._tx() as conn:
            conn.execute(
                "DELETE FROM llm_replies WHERE run_id=? AND stream=? AND ordinal>=?", (run_id, stream, from_ordinal)
            )

    def llm_calls(self, run_id: str) -> list[dict[str, Any]]:
        rows = self._connect().execute("SELECT * FROM llm_calls WHERE run_id=? ORDER BY id", (run_id,))
        return [dict(r) for r in rows]

    def llm_totals(self, run_id: str) -> dict[str, Any]:
        """Summed tokens, cost and seconds of a run's model calls, per stage and overall."""
        rows = (
            self._connect()
            .execute(
                "SELECT stage, COUNT(*) AS calls, SUM(prompt_tokens) AS prompt_tokens, "
                "SUM(completion_tokens) AS completion_tokens, SUM(seconds) AS seconds, SUM(cost_usd) AS cost_usd, "
                "SUM(cost_usd IS NULL AND cached = 0) AS unpriced, SUM(cached) AS cached "
                "FROM llm_calls WHERE run_id=? GROUP BY stage",
                (run_id,),
            )
            .fetchall()
        )
        per_stage = {r["stage"]: {k: v for k, v in dict(r).items() if k != "stage"} for r in rows}
        total: dict[str, Any] = {
            key: sum((s[key] or 0) for s in per_stage.values())
            for key in ("calls", "prompt_tokens", "completion_tokens", "seconds", "unpriced", "cached")
        }
        costs = [s["cost_usd"] for s in per_stage.values() if s["cost_usd"] is not None]
        total["cost_usd"] = sum(costs) if costs else None
        return {"total": total, "per_stage": per_stage}


def find_run_folder(store: RunStore, run: str | Path) -> Path:
    """The folder of run ``run``: a run folder, a run id, or an unambiguous prefix of one."""
    candidate = Path(run).expanduser()
    if (candidate / "problem.md").exists() or (candidate / "result.json").exists():
        return candidate.resolve()
    matches = store.find_runs(str(run))
    if not matches:
        raise BadInput(f"No run matches '{run}'. List runs with: nemo-opt runs")
    if len(matches) > 1 and matches[0]["id"] != str(run):
        ids = ", ".join(m["id"] for m in matches[:5])
        raise BadInput(f"'{run}' matches several runs ({ids}); give more of the id.")
    return Path(matches[0]["folder"])
