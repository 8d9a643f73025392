"""The NEMO pipeline for one problem, as the paper draws it::

    D --memory--> examples --extract (n samples, MBR, judge)--> P* --recommend--> solvers
      --agents: simulator ∥ T optimizers, each solution validated by the frozen simulator--> T outcomes
      --consensus--> answer --package--> a model package that re-solves and re-checks itself

Each arrow is a stage object (:mod:`nemo_opt.stages.base`) with its declared inputs, ``run`` and ``load``; they share
one :class:`~nemo_opt.stages.base.RunContext`. A run folder keeps every artifact as soon as it exists, and the run
store records stages and model calls as they happen, so a failure at any point leaves every earlier artifact in
place. :meth:`Pipeline.resume` (``nemo-opt solve --resume RUN``) loads each finished stage whose inputs are
unchanged, runs the rest (a changed input reruns its stage and all after it), and replays the model replies the
run had already received from its journal (:mod:`nemo_opt.llm.journal`).

Run-level limits: the cost ceiling (``max_cost_usd``, checked before each request) and the wall-clock limit
(``run_max_seconds``) stop the run with a message naming the limit; the folder keeps everything and the run can be
resumed with a higher limit.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from nemo_opt import checkpoints
from nemo_opt.exceptions import (
    BadInput,
    NemoError,
    RunTimeLimitReached,
)
from nemo_opt.fsutil import to_jsonable
from nemo_opt.llm.base import LLM
from nemo_opt.llm.cache import ReplyCache
from nemo_opt.llm.journal import ReplyJournal
from nemo_opt.llm.limit import RunModels
from nemo_opt.llm.recorder import Accounting, RecordedLLM
from nemo_opt.llm.registry import NO_MODEL_HELP, create_llm
from nemo_opt.package import PackageStage, check_package_target
from nemo_opt.problem import check_problem
from nemo_opt.result import RunResult, StageTiming, new_run_id, sha256_text
from nemo_opt.settings import MODEL_SETTINGS, SHAPE_SETTINGS, Settings
from nemo_opt.stages.agents import AgentsStage
from nemo_opt.stages.base import EventSink, RunContext, Stage
from nemo_opt.stages.consensus import ConsensusStage
from nemo_opt.stages.extract import ExtractStage
from nemo_opt.stages.recommend import RecommendStage
from nemo_opt.stages.retrieve import MemoryStage
from nemo_opt.store import RunStore, find_run_folder
from nemo_opt.workspace import Workspace

__all__ = ["NO_MODEL_HELP", "STAGES", "Pipeline", "RunTimeLimitReached", "find_run_folder"]

# The stages in order: D -> examples -> P* -> solvers -> (simulator ∥ optimizers) -> answer -> package.
STAGES: tuple[Stage, ...] = (
    MemoryStage(),
    ExtractStage(),
    RecommendStage(),
    AgentsStage(),
    ConsensusStage(),
    PackageStage(),
)

logger = logging.getLogger("nemo_opt.pipeline")


class Pipeline:
    """Solves problems with the configured models, sandbox and run store (one run at a time per instance)."""

    def __init__(
        self,
        settings: Settings,
        *,
        llm_factory: Callable[[str], LLM] | None = None,
        store: RunStore | None = None,
        on_event: EventSink | None = None,
    ) -> None:
        self.settings = settings
        self.store = store or RunStore(settings.store_path)
        self.on_event: EventSink = on_event or (lambda event: None)
        self.models = RunModels(settings, llm_factory or (lambda name: create_llm(name, self.settings)), NO_MODEL_HELP)

    # --- entry points -----------------------------------------------------------------------------------------
    def solve(
        self, problem: str, *, package_dir: Path | None = None, run_id: str | None = None, item_id: str | None = None
    ) -> RunResult:
        """Run the whole pipeline on ``problem``. Never raises for run failures: the result carries the error
        and the folder keeps every artifact. Configuration errors and unusable text (:class:`BadInput`, see
        :func:`nemo_opt.problem.check_problem`) raise before a run folder exists.

        ``item_id`` names the benchmark item being solved, so memory retrieval leaves out its own solution."""
        problem = check_problem(problem, max_chars=self.settings.max_problem_chars)
        check_package_target(package_dir)
        self.models("extract")  # fail fast, before a run folder exists, when nothing is configured
        run_id = run_id or new_run_id(problem)
        workspace = Workspace(self.settings.run_root / run_id)
        workspace.create()
        workspace.write_text("problem.md", problem + "\n")
        settings = {k: getattr(self.settings, k) for k in (*SHAPE_SETTINGS, *MODEL_SETTINGS)}
        meta = {"run_id": run_id, "created_at": time.time(), "problem_sha256": sha256_text(problem)}
        meta.update(package_dir=str(package_dir.resolve()) if package_dir else None, item_id=item_id, settings=settings)
        workspace.write_json(workspace.run_meta, meta)
        self.store.create_run(run_id, workspace.root, problem.splitlines()[0][:120], sha256_text(problem))
        return self._execute(problem, workspace, run_id, package_dir, item_id, resumes=0)

    def resume(self, run: str | Path, *, package_dir: Path | None = None) -> RunResult:
        """Continue a run that was killed or stopped (``run``: its folder, id or id prefix).

        Finished stages whose inputs are unchanged are loaded from the folder, the others run again, and replies
        the run already received are replayed from its journal, so nothing finished is redone or paid for twice.
        The settings that shape the run come from its ``run.json``; models, limits and the sandbox from the
        current configuration (e.g. a higher --max-cost)."""
        workspace = Workspace(find_run_folder(self.store, run))
        meta, problem = checkpoints.read_resumable(workspace)
        run_id = str(meta["run_id"])
        if self.store.get_run(run_id) is None:
            raise BadInput(
                f"Run {run_id} is not in the run store {self.store.path}; resume it with the NEMO_HOME it ran with."
            )
        saved = meta.get("settings", {})
        update = {k: saved[k] for k in SHAPE_SETTINGS if k in saved}
        update.update({k: saved[k] for k in MODEL_SETTINGS if saved.get(k) and not getattr(self.settings, k)})
        self.settings = Settings.model_validate({**self.settings.model_dump(), **update})
        target = package_dir or (Path(meta["package_dir"]) if meta.get("package_dir") else None)
        check_package_target(target)  # run.json is in the run folder: its --out is checked like a new one
        if package_dir is not None:  # a later resume builds where this one was told to
            workspace.write_json(workspace.run_meta, {**meta, "package_dir": str(package_dir.resolve())})
        self.models("extract")
        with workspace.lock():
            resumes = self.store.mark_resumed(run_id)
        return self._execute(problem, workspace, run_id, target, meta.get("item_id"), resumes=resumes)

    # --- the run ----------------------------------------------------------------------------------------------
    def _execute(
        self,
        problem: str,
        workspace: Workspace,
        run_id: str,
        package_dir: Path | None,
        item_id: str | None,
        *,
        resumes: int,
    ) -> RunResult:
        self.models.start(self.settings)
        s = self.settings
        cache = ReplyCache(s.cache_path) if s.llm_cache != "off" else None
        accounting = Accounting()
        if resumes:  # the ceiling is per run: what the run spent before the resume counts
            accounting.cost_usd = float(self.store.llm_totals(run_id)["total"]["cost_usd"] or 0.0)
        journal = ReplyJournal(self.store, run_id, replay=resumes > 0)
        recorder = RecordedLLM(
            self.models("extract"), store=self.store, run_id=run_id, cache=cache, cache_mode=s.llm_cache,
            max_cost_usd=s.max_cost_usd, stage="extract", accounting=accounting, journal=journal,
        )  # fmt: skip
        result = RunResult(run_id=run_id, folder=workspace.root, status="running", resumes=resumes)
        ctx = RunContext(
            s, workspace, self.store, recorder, problem, run_id, result, package_dir or workspace.package_dir,
            item_id, self.on_event, self.models, self.models.remaining_seconds, self.models.interrupted,
        )  # fmt: skip
        with workspace.lock():
            try:
                self._run_stages(ctx, resumed=resumes > 0)
            except KeyboardInterrupt as exc:
                result.record_failure(exc, "interrupted")
                self._finish(ctx)
                raise
            except Exception as exc:  # the run always ends cleanly, with what failed said in its result
                if not isinstance(exc, NemoError):
                    logger.exception("run %s failed with an unexpected error", run_id)
                result.record_failure(exc, str(exc))
            finally:
                if cache is not None:
                    cache.close()
            self._finish(ctx)
        return result

    def _run_stages(self, ctx: RunContext, *, resumed: bool) -> None:
        """Load what is done with unchanged inputs, run what is not; a stage that runs invalidates all after it."""
        ws = ctx.workspace
        finished = checkpoints.finished_stages(ws) if resumed else {}
        rerun = False
        for number, stage in enumerate(STAGES):
            digest = ctx.inputs_digest = checkpoints.inputs_digest(ws, stage.inputs(ctx))
            record = finished.get(stage.name)
            # A record without "inputs" was written before inputs were hashed: it is believed, as it was then.
            same = record is not None and record.get("inputs", digest) == digest
            if not rerun and record is not None and same and stage.load(ctx):
                if "inputs" not in record:
                    checkpoints.mark_finished(ws, stage.name, record, digest)
                now = time.monotonic()
                ctx.timings.append(StageTiming(stage.name, "loaded", now, now))
                message = str(record.get("message", ""))
                ctx.emit(stage.name, "info", f"finished before the resume; loaded from the run folder. {message}")
                continue
            if not rerun:
                checkpoints.unmark(ws, [later.name for later in STAGES[number:]])
                rerun = True
            if checkpoints.started_digest(ws, stage.name) not in (None, digest):
                stage.reset(ctx)
            checkpoints.mark_started(ws, stage.name, digest)
            with self._stage(ctx, stage, digest) as detail:
                stage.run(ctx, detail)

    @contextmanager
    def _stage(self, ctx: RunContext, stage: Stage, digest: str) -> Iterator[dict[str, Any]]:
        if stage.needs_model:
            self.models.check()
        detail: dict[str, Any] = {}
        timing = StageTiming(stage.name, "running", time.monotonic())
        ctx.timings.append(timing)
        self.store.stage_started(ctx.run_id, stage.name)
        ctx.emit(stage.name, "started")
        try:
            yield detail
        except BaseException as exc:
            timing.status, timing.ended = "failed", time.monotonic()
            self.store.stage_finished(ctx.run_id, stage.name, "failed", {"error": str(exc), **to_jsonable(detail)})
            ctx.emit(stage.name, "failed", str(exc))
            raise
        timing.status, timing.ended = "finished", time.monotonic()
        # The folder's list of finished stages is written after the stage's artifacts and before anyone is told.
        checkpoints.mark_finished(ctx.workspace, stage.name, detail, digest)
        self.store.stage_finished(ctx.run_id, stage.name, "finished", to_jsonable(detail))
        ctx.emit(stage.name, "finished", str(detail.get("message", "")))

    def _finish(self, ctx: RunContext) -> None:
        result, recorder = ctx.result, ctx.recorder
        result.seconds = time.monotonic() - self.models.started
        result.llm_wait_seconds = recorder.accounting.wait_seconds()
        result.usage = recorder.accounting.summary()
        result.stages = [{"stage": t.stage, "status": t.status, "seconds": round(t.seconds, 3)} for t in ctx.timings]
        if recorder.journal is not None and recorder.journal.replayed:
            result.notes.append(f"{recorder.journal.replayed} model repl(ies) replayed from the run's journal")
        try:
            ctx.workspace.write_json(ctx.workspace.result, result)
        except OSError as exc:  # e.g. an agent put a folder where result.json goes: the store still gets the result
            result.notes.append(f"result.json could not be written: {exc}")
        self.store.finish_run(
            result.run_id, result.status, result.verified, result.objective, to_jsonable(result), result.level
        )
