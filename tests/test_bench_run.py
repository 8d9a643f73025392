"""Benchmark runs end to end with a scripted model: scoring, failures, resume after kill -9, reports."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nemo_opt.bench.report import build_report, write_report
from nemo_opt.bench.runner import BenchRunner
from nemo_opt.settings import Settings, load_settings
from nemo_opt.testing import OpenAICompatServer
from tests.scenarios import bench


def _settings(home: Path, url: str, benchmarks: Path) -> Settings:
    return load_settings(
        {
            "home": home,
            "benchmarks_dir": benchmarks,
            "model": f"openai-compatible:scripted@{url}",
            "extractions": 1,
            "optimizers": 1,
            "memory": False,
            "llm_cache": "off",
        },
        environ={},
    )


def test_gold_answers_of_the_fixture_are_hand_checkable() -> None:
    # Finishing 100: t = 30, c = 40 -> 4100 (examples/product_mix.md); finishing 120: t = 51, c = 12 -> 4170.
    assert bench.gold(0) == 4100.0 and bench.gold(2) == 4170.0


def test_a_batch_with_a_failing_item_scores_and_rescored(tmp_path: Path) -> None:
    bench.write_dataset(tmp_path / "benchmarks", 5)
    script = bench.BenchScript(failing={3})
    with OpenAICompatServer(script) as server:
        settings = _settings(tmp_path / "home", server.url, tmp_path / "benchmarks")
        summary = BenchRunner(settings).run("nl4opt", workers=3, preset="strict")
        # Running the same command again finds everything finished (the failing item is not an infrastructure
        # error, so it is not retried) and asks the model nothing.
        requests = len(server.chat_requests)
        again = BenchRunner(settings).run("nl4opt", workers=3)
        assert len(server.chat_requests) == requests
    assert again.bench_run == summary.bench_run and again.attempted == 0 and again.skipped == 5
    runner = BenchRunner(settings)
    # The stored run produces a report.
    report = build_report(runner.store, [summary.bench_run], "strict")
    markdown, html = write_report(report, tmp_path / "report")
    assert "80.0" in markdown.read_text() and "extraction" in markdown.read_text()
    assert html.read_text().count("<svg") >= 2 and "nl4opt" in html.read_text()
    assert summary.total == 5 and summary.attempted == 5 and summary.failed == 1
    assert summary.graded == 5 and summary.correct == 4 and summary.accuracy == pytest.approx(0.8)
    failed = next(r for r in summary.results if r["status"] == "failed")
    assert failed["item_id"] == "nl4opt-0003" and failed["error_category"] == "extraction"
    done = [r for r in summary.results if r["status"] == "done"]
    assert all(r["verified"] == 1 and r["prompt_tokens"] > 0 and r["stage_seconds"]["agents"] > 0 for r in done)
    # Re-scoring under another preset re-runs nothing.
    rescored = runner.score(summary.bench_run, "abs0.1")
    assert rescored.correct == 4 and rescored.preset == "abs0.1"


def _stored(db: Path, bench_run_prefix: str) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        try:
            return int(
                conn.execute(
                    "SELECT COUNT(*) FROM bench_results WHERE bench_run LIKE ?", (bench_run_prefix + "%",)
                ).fetchone()[0]
            )
        except sqlite3.OperationalError:
            return 0


@pytest.mark.slow
def test_resume_after_kill_minus_nine_loses_no_finished_item(tmp_path: Path) -> None:
    benchmarks = tmp_path / "benchmarks"
    bench.write_dataset(benchmarks, 6)
    home = tmp_path / "home"
    script = bench.BenchScript(delay=0.4)
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update(
        NEMO_HOME=str(home),
        NEMO_BENCHMARKS_DIR=str(benchmarks),
        NEMO_EXTRACTIONS="1",
        NEMO_OPTIMIZERS="1",
        NEMO_MEMORY="0",
        NEMO_LLM_CACHE="off",
        NEMO_CROSSCHECK_PROBES="0",
    )
    with OpenAICompatServer(script) as server:
        command = [
            sys.executable,
            "-m",
            "nemo_opt",
            "bench",
            "run",
            "nl4opt",
            "--workers",
            "2",
            "--model",
            f"openai-compatible:scripted@{server.url}",
        ]
        first = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
        )
        deadline = time.monotonic() + 240
        while _stored(home / "nemo.db", "nl4opt-") < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
        finished_before = _stored(home / "nemo.db", "nl4opt-")
        assert 2 <= finished_before < 6
        with sqlite3.connect(home / "nemo.db") as conn:
            done_ids = {r[0] for r in conn.execute("SELECT item_id FROM bench_results")}
        calls_before = dict(script.extractions)
        second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr
    assert _stored(home / "nemo.db", "nl4opt-") == 6
    assert "accuracy 100.0%" in second.stdout
    for item_id in done_ids:  # finished items were not solved again
        k = int(item_id.rsplit("-", 1)[1])
        assert script.extractions[k] == calls_before[k]


def test_the_same_batch_on_a_local_dask_cluster(tmp_path: Path) -> None:
    pytest.importorskip("distributed", reason="the cluster extra is not installed (pip install 'nemo-opt[cluster]')")
    bench.write_dataset(tmp_path / "benchmarks", 3)
    script = bench.BenchScript()
    with OpenAICompatServer(script) as server:
        settings = _settings(tmp_path / "home", server.url, tmp_path / "benchmarks")
        summary = BenchRunner(settings).run("nl4opt", workers=3, cluster="local")
    assert summary.attempted == 3 and summary.correct == 3 and summary.failed == 0
    # The items ran in the cluster's worker processes, not in this one.
    pids = {int(r["worker"].rsplit(":", 1)[1]) for r in summary.results}
    assert os.getpid() not in pids and len(script.extractions) == 3
