"""Crash safety: a run killed (``kill -9``) at any stage is continued by ``solve --resume`` without redoing what
finished, and twenty runs at once leave the run store consistent.

The kills are real: a driver process runs the pipeline and sends itself SIGKILL when the chosen stage event
arrives, so nothing gets a chance to clean up. The model is the loopback server in this process, so the
requests of both the killed run and the resumed one can be counted. The scripts answer by conversation
position (the n-th assistant turn gets the n-th reply), so a request that was in flight at the kill and is
sent again gets the same answer, like a deterministic model.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from nemo_opt.llm.base import Message
from nemo_opt.llm.journal import ReplyJournal
from nemo_opt.llm.recorder import RecordedLLM
from nemo_opt.pipeline import Pipeline
from nemo_opt.result import Event
from nemo_opt.settings import Settings
from nemo_opt.store import RunStore
from nemo_opt.testing import OpenAICompatServer, Reply, RoleRouter, ScriptedLLM
from tests.scenarios import EXTRACT, OPTIMIZER, SIMULATOR, call, product_mix, say

REPO = Path(__file__).resolve().parent.parent
PROBLEM = (REPO / "examples" / "product_mix.md").read_text()

DRIVER = """
import os, signal, sys
from pathlib import Path
from nemo_opt.pipeline import Pipeline
from nemo_opt.settings import load_settings

stage, status, problem, run_id = sys.argv[1:5]

def kill_at(event):
    if event.stage == stage and event.status == status:
        os.kill(os.getpid(), signal.SIGKILL)

Pipeline(load_settings(), on_event=kill_at).solve(Path(problem).read_text(), run_id=run_id)
raise SystemExit("the kill point was never reached")
"""


def by_position(replies: list[Reply]) -> Any:
    """A script answering the n-th assistant turn of a conversation with ``replies[n]``."""

    def script(messages: list[dict[str, Any]], tools: Any) -> Reply:
        return replies[sum(1 for m in messages if m["role"] == "assistant")]

    return script


def _extract_and_model() -> RoleRouter:
    """One extraction and an optimizer that writes the right model and submits (for runs without a simulator)."""
    optimizer = [
        say("", call("write_file", path="model.py", content=product_mix.RIGHT_MODEL)),
        say("", call("submit", summary="model")),
    ]
    return RoleRouter({EXTRACT: by_position([product_mix.EXTRACTION]), OPTIMIZER: by_position(optimizer)})


def requests_of(server: OpenAICompatServer, marker: str) -> int:
    return sum(1 for r in server.chat_requests if marker in json.dumps(r["messages"][0]))


def env_for(home: Path, url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update(
        NEMO_HOME=str(home),
        NEMO_MODEL=f"openai-compatible:scripted@{url}",
        NEMO_LLM_CACHE="off",
        NEMO_EXTRACTIONS="1",
        NEMO_OPTIMIZERS="1",
        NEMO_MEMORY="0",
        COLUMNS="200",
        PYTHONPATH=str(REPO / "src"),
        **extra,
    )
    return env


def mtimes(folder: Path, names: list[str]) -> dict[str, int]:
    return {name: (folder / name).stat().st_mtime_ns for name in names}


# --- the journal ------------------------------------------------------------------------------------------------
def test_journal_replays_a_runs_replies_at_any_temperature(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "nemo.db")
    store.create_run("r1", tmp_path, "t", "x")
    model = ScriptedLLM([Reply("first"), Reply("second"), Reply("third")])
    recorder = RecordedLLM(model, store=store, run_id="r1", stage="optimizer_1", journal=ReplyJournal(store, "r1"))
    system, task = Message("system", "Role: optimizer agent"), Message("user", "solve it")
    conversation = [system, task]
    for _ in range(2):
        reply = recorder.complete(conversation, temperature=0.9)
        conversation += [reply.first.as_message(), Message("tool", f"took {time.monotonic()} s")]
    assert len(model.requests) == 2

    # The resumed run: same task, different command output (timings); nothing reaches the model.
    fresh = ScriptedLLM([Reply("new")])
    resumed = RecordedLLM(
        fresh, store=store, run_id="r1", stage="optimizer_1", journal=ReplyJournal(store, "r1", replay=True)
    )
    conversation = [system, task]
    texts = []
    for _ in range(2):
        reply = resumed.complete(conversation, temperature=0.9)
        texts.append(reply.first.text)
        assert reply.cached
        conversation += [reply.first.as_message(), Message("tool", "took 0.5 s")]
    assert texts == ["first", "second"] and fresh.requests == []
    # Past the journal, the model is asked again.
    assert resumed.complete(conversation, temperature=0.9).first.text == "new" and len(fresh.requests) == 1

    # A different task (prefix) in the same stream is not served from the journal: it diverged.
    other = RecordedLLM(
        ScriptedLLM([Reply("asked")]),
        store=store,
        run_id="r1",
        stage="optimizer_1",
        journal=ReplyJournal(store, "r1", replay=True),
    )
    assert other.complete([system, Message("user", "another task")], temperature=0.9).first.text == "asked"
    assert store.recorded_replies("r1").keys() == {("optimizer_1", 0)}  # the stale rest was dropped


# --- a fast resume, in process ------------------------------------------------------------------------------------
class Crash(BaseException):
    """Stands in for a kill in an in-process run: nothing catches it, so nothing is cleaned up or finished."""


def crash_at(stage: str, status: str) -> Any:
    def hook(event: Event) -> None:
        if event.stage == stage and event.status == status:
            raise Crash(stage)

    return hook


def test_resume_after_extract_does_not_extract_again(settings: Settings) -> None:
    settings.simulate = False
    router = _extract_and_model()
    with OpenAICompatServer(router) as server:
        settings.model = f"openai-compatible:scripted@{server.url}"
        with pytest.raises(Crash):
            Pipeline(settings, on_event=crash_at("extract", "finished")).solve(PROBLEM, run_id="killed-run")
        folder = settings.run_root / "killed-run"
        assert not (folder / "result.json").exists()
        assert RunStore(settings.store_path).get_run("killed-run")["status"] == "running"  # type: ignore[index]
        before = mtimes(folder, ["spec.json", "data.json", "extract/candidate_0.json", "extract/extraction.json"])
        events: list[Event] = []
        started = time.monotonic()
        result = Pipeline(settings, on_event=events.append).resume("killed-run")
        seconds = time.monotonic() - started
        assert requests_of(server, EXTRACT) == 1 and requests_of(server, OPTIMIZER) == 2
    assert result.error is None, result.error
    assert result.status == "optimal" and result.objective == pytest.approx(product_mix.EXPECTED_OBJECTIVE)
    assert mtimes(folder, list(before)) == before
    assert any(e.stage == "extract" and "loaded from the run folder" in e.message for e in events)
    # memory (off) and extract loaded, recommend ran
    assert [(s["stage"], s["status"]) for s in result.stages][:3] == [
        ("memory", "loaded"),
        ("extract", "loaded"),
        ("recommend", "finished"),
    ]
    row = RunStore(settings.store_path).get_run("killed-run")
    assert row is not None and row["resumes"] == 1 and row["status"] == "optimal"
    assert json.loads((folder / "result.json").read_text())["resumes"] == 1
    print(f"resume after extract (in process): {seconds:.2f}s")


def test_finished_run_is_not_resumed(settings: Settings) -> None:
    settings.simulate = False
    optimizer = [
        say("", call("write_file", path="model.py", content=product_mix.RIGHT_MODEL)),
        say("", call("submit", summary="model")),
    ]
    router = RoleRouter({EXTRACT: [product_mix.EXTRACTION], OPTIMIZER: optimizer})
    with OpenAICompatServer(router) as server:
        settings.model = f"openai-compatible:scripted@{server.url}"
        result = Pipeline(settings).solve(PROBLEM)
        from nemo_opt.exceptions import BadInput

        with pytest.raises(BadInput, match="already finished"):
            Pipeline(settings).resume(result.run_id)


# --- real kills -------------------------------------------------------------------------------------------------
KILL_POINTS = {
    # stage event at which the driver kills itself, and the files whose stage must not be redone
    "after-extract": (("extract", "finished"), ["spec.json", "data.json", "extract/extraction.json"]),
    "during-agents": (("simulator", "info"), ["spec.json", "simulator/simulator.py", "simulator/test_simulator.py"]),
    "after-consensus": (
        ("consensus", "finished"),
        ["spec.json", "simulator/simulator.py", ".nemo/checkpoints/outcome_1.json", "consensus.json"],
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_kill_9_then_resume_continues_from_the_last_finished_stage(tmp_path: Path, point: str) -> None:
    (stage, status), kept = KILL_POINTS[point]
    router = RoleRouter(
        {
            EXTRACT: by_position([product_mix.EXTRACTION]),
            SIMULATOR: by_position(product_mix.SIMULATOR),
            OPTIMIZER: by_position(product_mix.OPTIMIZER),
        }
    )
    problem = tmp_path / "problem.md"
    problem.write_text(PROBLEM)
    home = tmp_path / "home"
    with OpenAICompatServer(router) as server:
        env = env_for(home, server.url)
        killed = subprocess.run(
            [sys.executable, "-c", DRIVER, stage, status, str(problem), "run-1"],
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
            cwd=tmp_path,
        )
        assert killed.returncode == -9, killed.stderr
        folder = home / "runs" / "run-1"
        assert not (folder / "result.json").exists()
        before = mtimes(folder, kept)
        counts = {marker: requests_of(server, marker) for marker in (EXTRACT, SIMULATOR, OPTIMIZER)}
        started = time.monotonic()
        resumed = subprocess.run(
            [sys.executable, "-m", "nemo_opt", "solve", "--resume", "run-1"],
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
            cwd=tmp_path,
        )
        seconds = time.monotonic() - started
        after = {marker: requests_of(server, marker) for marker in (EXTRACT, SIMULATOR, OPTIMIZER)}
    assert resumed.returncode == 0, resumed.stderr
    assert "verified" in resumed.stderr and "4100" in resumed.stderr
    assert mtimes(folder, kept) == before, "a finished stage's artifact was rewritten"
    assert after[EXTRACT] == counts[EXTRACT] == 1, "extraction was asked again"
    if point != "after-extract":  # the simulator had been accepted: it is loaded, not asked again
        assert after[SIMULATOR] == counts[SIMULATOR]
    if point == "after-consensus":
        assert after == counts, "the resume sent model requests although only packaging was left"
    # Replies received before the kill were replayed, not asked again: at most the one in flight is repeated.
    total_optimizer_replies = len(product_mix.OPTIMIZER)
    assert after[OPTIMIZER] <= total_optimizer_replies + 1
    result = json.loads((folder / "result.json").read_text())
    assert result["verified"] and result["resumes"] == 1 and result["error"] is None
    assert (folder / "package" / "model.py").exists()
    with sqlite3.connect(home / "nemo.db") as db:
        status_row = db.execute("SELECT status, resumes FROM runs WHERE id='run-1'").fetchone()
        stage_rows = db.execute("SELECT stage, status FROM stages WHERE run_id='run-1'").fetchall()
    assert status_row == ("optimal", 1)
    assert {s for s, st in stage_rows if st == "finished"} >= {"extract", "recommend", "agents", "consensus", "package"}
    print(f"resume after kill {point}: {seconds:.1f}s (process start included)")


# --- many runs at once ------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_twenty_concurrent_solves_leave_the_run_store_consistent(settings: Settings) -> None:
    settings.simulate = False
    router = _extract_and_model()
    results: list[Any] = []
    errors: list[BaseException] = []

    def one(k: int) -> None:
        try:
            # Each run has its own Pipeline and RunStore object (its own SQLite connections), as processes would.
            results.append(Pipeline(settings.model_copy()).solve(PROBLEM, run_id=f"concurrent-{k:02d}"))
        except BaseException as exc:
            errors.append(exc)

    with OpenAICompatServer(router) as server:
        settings.model = f"openai-compatible:scripted@{server.url}"
        started = time.monotonic()
        threads = [threading.Thread(target=one, args=(k,)) for k in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=600)
        seconds = time.monotonic() - started
    assert not errors, errors
    assert len(results) == 20
    assert all(r.error is None and r.status == "optimal" for r in results), [r.error for r in results]
    with sqlite3.connect(settings.store_path) as db:
        runs = db.execute("SELECT id, status, finished_at FROM runs").fetchall()
        stages = db.execute("SELECT run_id, stage, status, started_at, finished_at FROM stages").fetchall()
        calls = db.execute("SELECT run_id, COUNT(*) FROM llm_calls GROUP BY run_id").fetchall()
        replies = db.execute("SELECT run_id, COUNT(*) FROM llm_replies GROUP BY run_id").fetchall()
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert len(runs) == 20 and all(status == "optimal" and finished for _, status, finished in runs)
    assert len(stages) == 20 * 6  # memory (off), extract, recommend, agents, consensus, package
    assert all(st == "finished" and f is not None and f >= s for _, _, st, s, f in stages)
    assert sorted(n for _, n in calls) == [3] * 20 and sorted(n for _, n in replies) == [3] * 20
    print(f"20 concurrent solves: {seconds:.1f}s")


@pytest.mark.bwrap
def test_an_unisolated_attempt_caps_every_later_one(settings: Settings) -> None:
    """Checkpoints written while agents ran unsandboxed are never believed above objective-checked, even when
    the resume runs under bubblewrap (an agent could have forged them)."""
    from nemo_opt.sandbox import bwrap_available

    if not bwrap_available():
        pytest.skip("bubblewrap is not usable here")
    router = RoleRouter(
        {
            EXTRACT: by_position([product_mix.EXTRACTION]),
            SIMULATOR: by_position(product_mix.SIMULATOR),
            OPTIMIZER: by_position(product_mix.OPTIMIZER),
        }
    )
    with OpenAICompatServer(router) as server:
        settings.model = f"openai-compatible:scripted@{server.url}"
        settings.sandbox = "plain"
        with pytest.raises(Crash):
            Pipeline(settings, on_event=crash_at("consensus", "started")).solve(PROBLEM, run_id="plain-then-bwrap")
        settings.sandbox = "bwrap"
        result = Pipeline(settings).resume("plain-then-bwrap")
    assert result.error is None, result.error
    assert result.level == "objective-checked" and "sandbox" in result.level_reason
    assert RunStore(settings.store_path).was_unisolated("plain-then-bwrap")


def test_a_run_folder_from_before_input_hashes_resumes_without_redoing_its_stages(settings: Settings) -> None:
    settings.simulate = False
    router = _extract_and_model()
    with OpenAICompatServer(router) as server:
        settings.model = f"openai-compatible:scripted@{server.url}"
        with pytest.raises(Crash):
            Pipeline(settings, on_event=crash_at("consensus", "started")).solve(PROBLEM, run_id="legacy-run")
        folder = settings.run_root / "legacy-run"
        stages = json.loads((folder / ".nemo" / "stages.json").read_text())
        legacy = {
            "finished": {k: {kk: vv for kk, vv in v.items() if kk != "inputs"} for k, v in stages["finished"].items()}
        }
        (folder / ".nemo" / "stages.json").write_text(json.dumps(legacy))  # as the release before wrote it
        result = Pipeline(settings).resume("legacy-run")
        assert requests_of(server, EXTRACT) == 1 and requests_of(server, OPTIMIZER) == 2
    assert result.error is None and result.objective == pytest.approx(product_mix.EXPECTED_OBJECTIVE)
    assert [s["status"] for s in result.stages][:4] == ["loaded"] * 4
    assert all("inputs" in d for d in json.loads((folder / ".nemo" / "stages.json").read_text())["finished"].values())
