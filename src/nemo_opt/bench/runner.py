"""Run a benchmark: every item through the pipeline (or its reference program, in oracle mode), resumably.

A bench run's identity is the dataset (name and content hash) plus every setting that changes answers (models,
n, T, R, switches, tolerances): running the same command again resumes it, skipping finished items. Each item's
result is written to SQLite as soon as it exists, so a killed run (even ``kill -9``) loses only the items in
flight. One item failing never stops the others. Items run concurrently in threads (they mostly wait on the
model), or on a Dask cluster with ``cluster``.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from typing import Any

from nemo_opt.bench.datasets import BenchItem, Dataset, load_dataset
from nemo_opt.bench.scoring import is_correct
from nemo_opt.bench.store import BenchStore, ItemResult
from nemo_opt.exceptions import BadInput
from nemo_opt.pipeline import Pipeline
from nemo_opt.result import RunResult
from nemo_opt.settings import MODEL_SETTINGS, SHAPE_SETTINGS, Settings
from nemo_opt.store import RunStore

__all__ = ["FAILURES", "RETRIED", "BenchRunner", "BenchSummary", "bench_config", "bench_run_id", "solve_item"]

# Failures worth another attempt when the same command runs again: the service or the harness, not the item.
RETRIED = {"model service", "crash", "interrupted"}
# Every failure category (``--retry-failed`` attempts them all again).
FAILURES = RETRIED | {"execution", "timeout", "extraction", "bad input", "cost", "config"}


def bench_config(settings: Settings, dataset: Dataset, oracle: bool) -> dict[str, Any]:
    """What identifies a bench run besides its dataset."""
    config = {name: getattr(settings, name) for name in (*MODEL_SETTINGS, *SHAPE_SETTINGS)}
    return {"dataset": dataset.name, "dataset_sha256": dataset.sha256, "oracle": oracle, "settings": config}


def bench_run_id(dataset: Dataset, config: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()
    return f"{dataset.name.replace(':', '-')}-{digest[:10]}"


def _category(result: RunResult) -> str:
    """The failure category of a failed run: from the type of what stopped it (see nemo_opt.exceptions)."""
    return result.error_category or "execution"


def solve_item(
    settings_data: dict[str, Any], item_data: dict[str, Any], bench_run: str, oracle: bool
) -> dict[str, Any]:
    """Solve one item and return its :class:`ItemResult` as a dict (a plain function: it runs on cluster workers)."""
    settings = Settings.model_validate(settings_data)
    item = BenchItem(**item_data)
    base = ItemResult(item.id, item.gold, item.answer, "failed", worker=f"{socket.gethostname()}:{os.getpid()}")
    started = time.monotonic()
    try:
        if oracle:
            from nemo_opt.bench.oracle import solve_reference

            reference = solve_reference(item, settings, base)
            # A reference program gives one answer: it is its own pass@1, and nothing validated it.
            reference.pass1_status, reference.pass1_answer = reference.pred_status, reference.pred_answer
            return asdict(reference)
        run_id = f"{bench_run}-{item.id}"
        result = Pipeline(settings).solve(item.question, run_id=run_id, item_id=item.id)
    except Exception as exc:  # one item's crash must not stop the batch; it is recorded with its traceback
        base.error = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=6)}"
        base.error_category = "crash"
        base.seconds = time.monotonic() - started
        return asdict(base)
    usage = result.usage or {}
    base.status = "failed" if result.error else "done"
    base.pred_status, base.pred_answer = result.status, result.objective
    base.pass1_status = str(result.pass_at_1.get("status")) if result.pass_at_1 else None
    pass1 = result.pass_at_1.get("objective") if result.pass_at_1 else None
    base.pass1_answer = float(pass1) if isinstance(pass1, int | float) else None
    base.verified = result.verified
    base.level = result.level
    base.prompt_tokens = int(usage.get("prompt_tokens") or 0)
    base.completion_tokens = int(usage.get("completion_tokens") or 0)
    cost = usage.get("cost_usd")
    base.cost_usd = float(cost) if isinstance(cost, int | float) else None
    base.seconds, base.llm_wait_seconds = result.seconds, result.llm_wait_seconds
    base.stage_seconds = {s["stage"]: float(s["seconds"]) for s in result.stages}
    base.error = result.error
    base.error_category = _category(result) if result.error else None
    base.run_id, base.folder = result.run_id, str(result.folder)
    return asdict(base)


def _crash_result(call: tuple[Any, ...], error: str) -> dict[str, Any]:
    """The result of an item whose task failed on a cluster worker outside ``solve_item``'s own guard."""
    item = BenchItem(**call[1])
    failed = ItemResult(item.id, item.gold, item.answer, "failed", error=error, error_category="crash")
    return asdict(failed)


@dataclass
class BenchSummary:
    """Where a bench run stands."""

    bench_run: str
    name: str
    preset: str
    total: int
    skipped: int
    attempted: int = 0
    graded: int = 0
    correct: int = 0
    failed: int = 0
    seconds: float = 0.0
    results: list[dict[str, Any]] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        return self.correct / self.graded if self.graded else 0.0


class BenchRunner:
    """Runs benchmark items through the pipeline and stores their results."""

    def __init__(self, settings: Settings, store: RunStore | None = None) -> None:
        self.settings = settings
        self.store = BenchStore(store or RunStore(settings.store_path))

    def run(
        self,
        name: str,
        *,
        limit: int | None = None,
        ids: list[str] | None = None,
        workers: int = 4,
        preset: str = "strict",
        cluster: str | None = None,
        oracle: bool = False,
        retry_failed: bool = False,
        on_start: Callable[[int], None] | None = None,
        on_result: Callable[[dict[str, Any]], None] | None = None,
    ) -> BenchSummary:
        """Run (or resume) ``name``; ``on_start`` gets the number of items to do, ``on_result`` each result."""
        is_correct(preset, "number", 0.0, "optimal", 0.0)  # rejects an unknown preset before any work
        dataset = load_dataset(name, self.settings.benchmarks_dir)
        items = dataset.items
        if ids:
            wanted = set(ids)
            unknown = wanted - {item.id for item in items}
            if unknown:
                raise BadInput(f"{dataset.name} has no item(s) {', '.join(sorted(unknown)[:5])}.")
            items = [item for item in items if item.id in wanted]
        if limit is not None:
            items = items[:limit]
        config = bench_config(self.settings, dataset, oracle)
        run_id = bench_run_id(dataset, config)
        self.store.ensure_run(
            run_id,
            name=dataset.name,
            benchmark=dataset.benchmark,
            dataset_file=str(dataset.path),
            dataset_sha256=dataset.sha256,
            preset=preset,
            config=config,
            oracle=oracle,
        )
        done = self.store.finished_ids(run_id, FAILURES if retry_failed else RETRIED)
        todo = [item for item in items if item.id not in done]
        summary = BenchSummary(run_id, dataset.name, preset, total=len(items), skipped=len(items) - len(todo))
        if on_start is not None:
            on_start(len(todo))
        started = time.monotonic()
        settings_data = self.settings.model_dump(mode="json")
        calls = [(settings_data, asdict(item), run_id, oracle) for item in todo]
        for result in self._execute(calls, workers, cluster):
            self.store.save(run_id, ItemResult(**result))
            summary.attempted += 1
            if on_result is not None:
                on_result(result)
        summary.seconds = time.monotonic() - started
        return self.score(run_id, preset, summary, {item.id for item in items})

    def _execute(self, calls: list[tuple[Any, ...]], workers: int, cluster: str | None) -> Iterator[dict[str, Any]]:
        if cluster:
            from nemo_opt.bench.distributed import map_on_cluster

            yield from map_on_cluster(solve_item, calls, cluster, workers, on_error=_crash_result)
            return
        with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="nemo-bench") as pool:
            futures = [pool.submit(solve_item, *call) for call in calls]
            for future in as_completed(futures):
                yield future.result()

    def score(
        self, run_id: str, preset: str, summary: BenchSummary | None = None, only: set[str] | None = None
    ) -> BenchSummary:
        """Scores of the stored results of ``run_id`` under ``preset`` (nothing is re-run)."""
        row = self.store.get_run(run_id)
        if row is None:
            raise BadInput(f"No bench run '{run_id}'. List them with: nemo-opt bench list")
        results = [r for r in self.store.results(run_id) if only is None or r["item_id"] in only]
        summary = summary or BenchSummary(run_id, row["name"], preset, total=len(results), skipped=0)
        summary.preset, summary.results = preset, results
        summary.graded = summary.correct = summary.failed = 0
        for result in results:
            verdict = is_correct(
                preset, result["gold_kind"], result["gold_answer"], result["pred_status"], result["pred_answer"]
            )
            result["correct"] = verdict
            result["pass1_correct"] = is_correct(
                preset, result["gold_kind"], result["gold_answer"], result["pass1_status"], result["pass1_answer"]
            )
            summary.failed += result["status"] == "failed"
            if verdict is not None:
                summary.graded += 1
                summary.correct += int(verdict)
        return summary
