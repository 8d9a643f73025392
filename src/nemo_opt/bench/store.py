"""Benchmark runs and their per-item results in the run store (SQLite, written as each item finishes)."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from nemo_opt.store import RunStore

__all__ = ["BenchStore", "ItemResult"]


@dataclass
class ItemResult:
    """Everything kept about one benchmark item's run."""

    item_id: str
    gold_kind: str
    gold_answer: float | None
    status: str  # "done" (the pipeline finished, whatever its answer) or "failed"
    pred_status: str | None = None
    pred_answer: float | None = None
    pass1_status: str | None = None
    pass1_answer: float | None = None
    verified: bool | None = None
    level: str | None = None  # verified, objective-checked or unverified (None: oracle runs, nothing validated)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None
    seconds: float = 0.0
    llm_wait_seconds: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    error_category: str | None = None
    run_id: str | None = None
    folder: str | None = None
    worker: str | None = None


class BenchStore:
    """Bench tables of a :class:`RunStore`."""

    def __init__(self, store: RunStore) -> None:
        self.store = store

    def ensure_run(
        self,
        run_id: str,
        *,
        name: str,
        benchmark: str,
        dataset_file: str,
        dataset_sha256: str,
        preset: str,
        config: dict[str, Any],
        oracle: bool,
    ) -> dict[str, Any]:
        """Create the bench run unless it exists; return its row (a re-run of the same command resumes it)."""
        with self.store._tx() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO bench_runs (id, name, benchmark, dataset_file, dataset_sha256, preset, "
                "config_json, oracle, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    name,
                    benchmark,
                    dataset_file,
                    dataset_sha256,
                    preset,
                    json.dumps(config),
                    int(oracle),
                    time.time(),
                ),
            )
        row = self.get_run(run_id)
        assert row is not None
        return row

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        row = self.store._connect().execute("SELECT * FROM bench_runs WHERE id = ?", (run_id,)).fetchone()
        return dict(row) if row else None

    def find_runs(self, prefix: str) -> list[dict[str, Any]]:
        rows = self.store._connect().execute(
            "SELECT * FROM bench_runs WHERE id LIKE ? ORDER BY created_at DESC", (prefix.replace("%", "") + "%",)
        )
        return [dict(r) for r in rows]

    def recent_runs(self, limit: int = 20) -> list[dict[str, Any]]:
        rows = self.store._connect().execute("SELECT * FROM bench_runs ORDER BY created_at DESC LIMIT ?", (limit,))
        return [dict(r) for r in rows]

    def save(self, bench_run: str, result: ItemResult) -> None:
        """Store one item's result (replacing an earlier attempt of the same item)."""
        data = asdict(result)
        data["stage_seconds_json"] = json.dumps(data.pop("stage_seconds"))
        data["verified"] = None if result.verified is None else int(result.verified)
        columns = ["bench_run", *data.keys(), "finished_at"]
        values = [bench_run, *data.values(), time.time()]
        with self.store._tx() as conn:
            conn.execute(
                f"INSERT OR REPLACE INTO bench_results ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                values,
            )

    def results(self, bench_run: str) -> list[dict[str, Any]]:
        rows = self.store._connect().execute(
            "SELECT * FROM bench_results WHERE bench_run = ? ORDER BY item_id", (bench_run,)
        )
        out = []
        for row in rows:
            data = dict(row)
            data["stage_seconds"] = json.loads(data.pop("stage_seconds_json") or "{}")
            out.append(data)
        return out

    def finished_ids(self, bench_run: str, retry: set[str]) -> set[str]:
        """Items with a stored result, except those whose error category is in ``retry``."""
        rows = self.store._connect().execute(
            "SELECT item_id, error_category FROM bench_results WHERE bench_run = ?", (bench_run,)
        )
        return {r["item_id"] for r in rows if r["error_category"] not in retry}
