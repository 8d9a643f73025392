"""The NEMO pipeline for one problem: extract, recommend, simulate ∥ optimize, validate/repair, consensus, package.

Everything a run produces is written to its folder as soon as it exists (each file atomically), and the run
store records stages and model calls as they happen, so a failure at any point leaves every earlier artifact
in place. A run killed at any point (even by ``kill -9``) is continued with :meth:`Pipeline.resume`
(``nemo-opt solve --resume RUN``): the stages that finished are loaded from the folder (see
:mod:`nemo_opt.checkpoints`), the unfinished stage runs again, and the model replies the run had already
received are replayed from the run's reply journal (see :mod:`nemo_opt.llm.journal`) instead of being asked
again.

Run-level limits: the cost ceiling (``max_cost_usd``, enforced before each request) and the wall-clock limit
(``run_max_seconds``) stop the run with a message naming the limit; the folder keeps everything and the run
can be resumed with a higher limit.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from nemo_opt import checkpoints
from nemo_opt.agent.base import Agent
from nemo_opt.agent.loop import AgentLimits, ToolLoopAgent
from nemo_opt.embed import make_embedder
from nemo_opt.exceptions import (
    BadInput,
    ConfigError,
    CostCeilingReached,
    ModelNotConfigured,
    NemoError,
    RunFailure,
    UserError,
)
from nemo_opt.fsutil import to_jsonable
from nemo_opt.llm.base import LLM, Completion, Message, ToolSpec
from nemo_opt.llm.cache import ReplyCache
from nemo_opt.llm.journal import ReplyJournal
from nemo_opt.llm.limit import LimitedLLM
from nemo_opt.llm.recorder import Accounting, RecordedLLM
from nemo_opt.llm.registry import create_llm
from nemo_opt.memory import open_memory
from nemo_opt.memory.growth import exemplar_from_package
from nemo_opt.package import build_package
from nemo_opt.problem import check_problem
from nemo_opt.result import Event, RunResult, StageTiming, new_run_id, sha256_text
from nemo_opt.sandbox import sandbox_from_settings
from nemo_opt.sandbox.base import Sandbox
from nemo_opt.sandbox.local import SubprocessSandbox
from nemo_opt.settings import Settings
from nemo_opt.solution import VerificationLevel
from nemo_opt.solvers.registry import available_solvers
from nemo_opt.spec import ProblemSpec, data_from_spec
from nemo_opt.stages.consensus import Consensus, decide
from nemo_opt.stages.extract import extract
from nemo_opt.stages.optimize import (
    OptimizerOutcome,
    optimizer_task,
    outcome_dict,
    report_line,
    revalidate,
    run_optimizer,
)
from nemo_opt.stages.recommend import Recommendation, recommend
from nemo_opt.stages.referee import Referee
from nemo_opt.stages.retrieve import Retrieval, retrieve
from nemo_opt.stages.simulate import SimulatorAgentGate, simulator_task
from nemo_opt.stages.validate import PLAIN_CAP
from nemo_opt.store import RunStore
from nemo_opt.workspace import Workspace

__all__ = ["NO_MODEL_HELP", "STAGES", "Pipeline", "RunTimeLimitReached", "find_run_folder"]

NO_MODEL_HELP = (
    "No model is configured. Either export an API key and name a model, e.g.\n"
    "  export OPENAI_API_KEY=...   and   nemo-opt solve problem.md --model openai:gpt-4.1\n"
    "or point at a local OpenAI-compatible server (llama.cpp, vLLM, Ollama, LM Studio):\n"
    "  nemo-opt solve problem.md --model openai-compatible:qwen@http://127.0.0.1:8080/v1\n"
    'The model can also be set once with NEMO_MODEL or `model = "..."` in nemo.toml.'
)

# The stages in order; a resume loads the finished ones and runs the rest.
STAGES = ("memory", "extract", "recommend", "agents", "consensus", "package")
# Settings that shape what a run computes: a resumed run takes them from run.json, so it continues the same
# run. Everything else (model endpoints, limits, sandbox, cache) comes from the configuration of the resume.
SHAPE_SETTINGS = (
    "memory",
    "memory_k",
    "memory_pool",
    "memory_lambda",
    "extractions",
    "mbr",
    "mbr_top_q",
    "mbr_weights",
    "extract_temperature",
    "optimizers",
    "agent_temperature",
    "agent_protocol",
    "repair_rounds",
    "atol",
    "rtol",
    "simulate",
    "solvers",
    "crosscheck_probes",
)
MODEL_SETTINGS = ("model", "extract_model", "judge_model", "simulator_model", "optimizer_model")

logger = logging.getLogger("nemo_opt.pipeline")

LLMFactory = Callable[[str], LLM]
EventSink = Callable[[Event], None]


class RunTimeLimitReached(RunFailure):
    """The run used up its wall-clock limit (``run_max_seconds``); no further model call is made."""


class _DeadlineLLM:
    """Refuses to start a model call once the run's wall-clock limit has passed."""

    def __init__(self, inner: LLM, check: Callable[[], None]) -> None:
        self.inner = inner
        self.name = inner.name
        self._check = check

    def complete(
        self,
        messages: list[Message],
        *,
        tools: list[ToolSpec] | None = None,
        temperature: float = 0.0,
        n: int = 1,
        max_tokens: int | None = None,
    ) -> Completion:
        self._check()
        return self.inner.complete(messages, tools=tools, temperature=temperature, n=n, max_tokens=max_tokens)


def find_run_folder(store: RunStore, run: str | Path) -> Path:
    """The folder of run ``run``: a run folder, a run id, or an unambiguous prefix of one."""
    candidate = Path(run).expanduser()
    if (candidate / "problem.md").exists():
        return candidate.resolve()
    matches = store.find_runs(str(run))
    if not matches:
        raise BadInput(f"No run matches '{run}'. List runs with: nemo-opt runs")
    if len(matches) > 1 and matches[0]["id"] != str(run):
        ids = ", ".join(m["id"] for m in matches[:5])
        raise BadInput(f"'{run}' matches several runs ({ids}); give more of the id.")
    return Path(matches[0]["folder"])


class Pipeline:
    """Solves problems with the configured models, sandbox and run store (one run at a time per instance)."""

    def __init__(
        self,
        settings: Settings,
        *,
        llm_factory: LLMFactory | None = None,
        store: RunStore | None = None,
        on_event: EventSink | None = None,
    ) -> None:
        self.settings = settings
        self.llm_factory: LLMFactory = llm_factory or (lambda name: create_llm(name, self.settings))
        self.store = store or RunStore(settings.store_path)
        self.on_event: EventSink = on_event or (lambda event: None)
        self._llms: dict[str, LLM] = {}
        self._started = time.monotonic()
        self._run_id = ""
        # Set on Ctrl-C or SIGTERM while agents work in other threads: none of them starts another model call.
        self._interrupted = threading.Event()

    # --- helpers ----------------------------------------------------------------------------------------------
    def _model(self, stage: Any) -> LLM:
        name = self.settings.model_for(stage)
        if not name:
            raise ModelNotConfigured(NO_MODEL_HELP)
        if name not in self._llms:
            guarded = _DeadlineLLM(self.llm_factory(name), self._check_deadline)
            self._llms[name] = LimitedLLM(guarded, self.settings.llm_concurrency)
        return self._llms[name]

    def _remaining_seconds(self) -> float | None:
        limit = self.settings.run_max_seconds
        return None if limit is None else limit - (time.monotonic() - self._started)

    def _check_deadline(self) -> None:
        if self._interrupted.is_set():
            raise RunFailure("the run was interrupted; no further model call is made")
        remaining = self._remaining_seconds()
        if remaining is not None and remaining <= 0:
            limit = self.settings.run_max_seconds
            raise RunTimeLimitReached(
                f"The run reached its wall-clock limit of {limit:g} s (run_max_seconds) after "
                f"{time.monotonic() - self._started:.1f} s; no further model call is made. Raise "
                "NEMO_RUN_MAX_SECONDS or --max-seconds to allow more."
            )

    @contextmanager
    def _stage(
        self, workspace: Workspace, run_id: str, stage: str, timings: list[StageTiming], *, guard: bool = True
    ) -> Iterator[dict[str, Any]]:
        if guard:
            self._check_deadline()
        detail: dict[str, Any] = {}
        timing = StageTiming(stage, "running", time.monotonic())
        timings.append(timing)
        self.store.stage_started(run_id, stage)
        self.on_event(Event(stage, "started"))
        try:
            yield detail
        except BaseException as exc:
            timing.status, timing.ended = "failed", time.monotonic()
            self.store.stage_finished(run_id, stage, "failed", {"error": str(exc), **to_jsonable(detail)})
            self.on_event(Event(stage, "failed", str(exc)))
            raise
        timing.status, timing.ended = "finished", time.monotonic()
        # The folder's list of finished stages is written after the stage's artifacts and before anyone is told.
        checkpoints.mark_finished(workspace, stage, detail)
        self.store.stage_finished(run_id, stage, "finished", to_jsonable(detail))
        self.on_event(Event(stage, "finished", str(detail.get("message", ""))))

    def _loaded(self, stage: str, timings: list[StageTiming], finished: dict[str, Any]) -> None:
        """Record that ``stage`` finished before this resume and was loaded, not run."""
        now = time.monotonic()
        timings.append(StageTiming(stage, "loaded", now, now))
        message = str((finished.get(stage) or {}).get("message", ""))
        self.on_event(Event(stage, "info", f"finished before the resume; loaded from the run folder. {message}"))

    def _check_package_target(self, target: Path | None) -> None:
        if target is None or not target.exists():
            return
        if not target.is_dir():
            raise BadInput(f"--out {target} exists and is not a folder. Choose a new folder name.")
        entries = list(target.iterdir())
        if entries and not (target / "report.json").exists():
            raise BadInput(f"--out {target} is a non-empty folder that is not a nemo-opt package; choose another.")

    # --- the run ----------------------------------------------------------------------------------------------
    def solve(
        self, problem: str, *, package_dir: Path | None = None, run_id: str | None = None, item_id: str | None = None
    ) -> RunResult:
        """Run the whole pipeline on ``problem``. Never raises for run failures: the result carries the error
        and the folder keeps every artifact. Configuration errors and unusable text (:class:`BadInput`, see
        :func:`nemo_opt.problem.check_problem`) raise before a run folder exists.

        ``item_id`` names the benchmark item being solved, so memory retrieval leaves out its own solution."""
        problem = check_problem(problem, max_chars=self.settings.max_problem_chars)
        self._check_package_target(package_dir)
        self._model("extract")  # fail fast, before a run folder exists, when nothing is configured
        run_id = run_id or new_run_id(problem)
        workspace = Workspace(self.settings.run_root / run_id)
        workspace.create()
        workspace.write_text("problem.md", problem + "\n")
        workspace.write_json(
            workspace.run_meta,
            {
                "run_id": run_id,
                "created_at": time.time(),
                "problem_sha256": sha256_text(problem),
                "package_dir": str(package_dir.resolve()) if package_dir else None,
                "item_id": item_id,
                "settings": {k: getattr(self.settings, k) for k in (*SHAPE_SETTINGS, *MODEL_SETTINGS)},
            },
        )
        self.store.create_run(run_id, workspace.root, problem.splitlines()[0][:120], sha256_text(problem))
        return self._execute(problem, workspace, run_id, package_dir, item_id, resumes=0)

    def resume(self, run: str | Path, *, package_dir: Path | None = None) -> RunResult:
        """Continue a run that was killed or stopped (``run``: its folder, id or id prefix).

        Finished stages are loaded from the folder, the unfinished one runs again, and replies the run already
        received are replayed from its journal, so nothing finished is redone or paid for twice. The settings
        that shape the run come from its ``run.json``; models, limits and the sandbox from the current
        configuration (e.g. a higher --max-cost)."""
        workspace = Workspace(find_run_folder(self.store, run))
        if not workspace.exists(workspace.run_meta):
            raise BadInput(f"{workspace.root} has no run.json, so it cannot be resumed (it predates resume support).")
        try:
            meta = workspace.read_json(workspace.run_meta)
            run_id = str(meta["run_id"])
            problem = workspace.read_text(workspace.problem).removesuffix("\n")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise BadInput(
                f"{workspace.root} cannot be resumed: its run.json or problem.md is unusable ({exc})."
            ) from exc
        if sha256_text(problem) != meta["problem_sha256"]:
            raise BadInput(f"{workspace.problem} was changed after the run started; start a new run instead.")
        if workspace.exists(workspace.result):
            previous = workspace.read_json(workspace.result)
            if not previous.get("error"):
                raise BadInput(
                    f"Run {run_id} already finished ({previous.get('status')}); nothing to resume. "
                    f"See: nemo-opt show {run_id}"
                )
        if self.store.get_run(run_id) is None:
            raise BadInput(
                f"Run {run_id} is not in the run store {self.store.path}; resume it with the NEMO_HOME it ran with."
            )
        saved = meta.get("settings", {})
        update = {k: saved[k] for k in SHAPE_SETTINGS if k in saved}
        update.update({k: saved[k] for k in MODEL_SETTINGS if saved.get(k) and not getattr(self.settings, k)})
        self.settings = Settings.model_validate({**self.settings.model_dump(), **update})
        self._llms.clear()
        target = package_dir or (Path(meta["package_dir"]) if meta.get("package_dir") else None)
        self._check_package_target(target)  # run.json is in the run folder: its --out is checked like a new one
        self._model("extract")
        with workspace.lock():
            resumes = self.store.mark_resumed(run_id)
        return self._execute(problem, workspace, run_id, target, meta.get("item_id"), resumes=resumes)

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
        self._started, self._run_id = time.monotonic(), run_id
        self._interrupted.clear()
        cache = ReplyCache(self.settings.cache_path) if self.settings.llm_cache != "off" else None
        accounting = Accounting()
        if resumes:
            # The ceiling is per run: what the run spent before the resume counts.
            accounting.cost_usd = float(self.store.llm_totals(run_id)["total"]["cost_usd"] or 0.0)
        recorder = RecordedLLM(
            self._model("extract"),
            store=self.store,
            run_id=run_id,
            cache=cache,
            cache_mode=self.settings.llm_cache,
            max_cost_usd=self.settings.max_cost_usd,
            stage="extract",
            accounting=accounting,
            journal=ReplyJournal(self.store, run_id, replay=resumes > 0),
        )
        result = RunResult(run_id=run_id, folder=workspace.root, status="running", resumes=resumes)
        timings: list[StageTiming] = []
        with workspace.lock():
            finished = checkpoints.finished_stages(workspace) if resumes else {}
            try:
                self._run(problem, workspace, recorder, result, timings, package_dir, item_id, finished)
            except UserError as exc:
                result.status, result.error = "failed", str(exc)
                result.error_kind = "bad_input" if isinstance(exc, BadInput) else "config"
            except (CostCeilingReached, RunTimeLimitReached) as exc:
                result.status, result.error_kind = "failed", "run_failure"
                result.error = (
                    f"{exc} Everything so far is kept in {workspace.root}; continue it with: "
                    f"nemo-opt solve --resume {run_id}"
                )
            except (RunFailure, NemoError) as exc:
                result.status, result.error, result.error_kind = "failed", str(exc), "run_failure"
            except Exception as exc:  # a defect, or agent output no check foresaw: the run still ends cleanly
                logger.exception("run %s failed with an unexpected error", run_id)
                result.status, result.error_kind = "failed", "internal"
                result.error = (
                    f"internal error: {type(exc).__name__}: {exc}. Everything so far is kept in {workspace.root}; "
                    "please report this with the run folder."
                )
            except KeyboardInterrupt:
                result.status, result.error, result.error_kind = "failed", "interrupted", "interrupted"
                self._finish(result, workspace, recorder, timings)
                raise
            finally:
                if cache is not None:
                    cache.close()
            self._finish(result, workspace, recorder, timings)
        return result

    def _finish(
        self, result: RunResult, workspace: Workspace, recorder: RecordedLLM, timings: list[StageTiming]
    ) -> None:
        result.seconds = time.monotonic() - self._started
        result.llm_wait_seconds = recorder.accounting.wait_seconds()
        result.usage = recorder.accounting.summary()
        result.stages = [{"stage": t.stage, "status": t.status, "seconds": round(t.seconds, 3)} for t in timings]
        if recorder.journal is not None and recorder.journal.replayed:
            result.notes.append(f"{recorder.journal.replayed} model repl(ies) replayed from the run's journal")
        try:
            workspace.write_json(workspace.result, result)
        except OSError as exc:  # e.g. an agent put a folder where result.json goes: the store still gets the result
            result.notes.append(f"result.json could not be written: {exc}")
        self.store.finish_run(
            result.run_id, result.status, result.verified, result.objective, to_jsonable(result), result.level
        )

    def _run(
        self,
        problem: str,
        workspace: Workspace,
        recorder: RecordedLLM,
        result: RunResult,
        timings: list[StageTiming],
        package_dir: Path | None,
        item_id: str | None,
        finished: dict[str, Any],
    ) -> None:
        s = self.settings
        run_id = result.run_id
        retrieval = Retrieval()
        if "memory" in finished:
            retrieval = checkpoints.load_retrieval(workspace)
            self._loaded("memory", timings, finished)
        elif s.memory and s.memory_k > 0:
            with self._stage(workspace, run_id, "memory", timings) as detail:
                retrieval = retrieve(problem, workspace, s, item_id=item_id)
                checkpoints.save_retrieval(workspace, retrieval)
                detail.update(chosen=[h.exemplar.id for h in retrieval.hits], excluded=retrieval.excluded)
                detail["message"] = ", ".join(h.exemplar.id for h in retrieval.hits) or "no exemplar"
        if "extract" in finished:
            spec = ProblemSpec.model_validate(workspace.read_json("spec.json"))
            self._loaded("extract", timings, finished)
        else:
            spec = self._extract(problem, workspace, recorder, timings, run_id)
        if "recommend" in finished:
            rec = checkpoints.load_recommendation(workspace)
            self._loaded("recommend", timings, finished)
        else:
            rec = self._recommend(spec, workspace, recorder, timings, run_id)
        sandbox = sandbox_from_settings(s, workspace.root)
        containment = (
            sandbox.describe_containment()
            if sandbox.name == "plain"
            else "no network, each agent writes only its own folder, the referee runs apart"
        )
        self.on_event(Event("sandbox", "info", f"{sandbox.name}: {containment}"))
        referee = Referee(workspace, sandbox, data_from_spec(spec), timeout=s.sandbox_timeout)
        outcomes = self._agents(
            problem, spec, rec, workspace, sandbox, referee, recorder, result, timings, retrieval, "agents" in finished
        )
        if not referee.isolated:
            # Whatever was validated or loaded back from a checkpoint (which an agent's code could have written
            # here): without isolation no level above objective-checked is believed.
            for outcome in outcomes:
                outcome.cap(VerificationLevel.OBJECTIVE_CHECKED, PLAIN_CAP)
        if "agents" in finished:
            self._loaded("agents", timings, finished)
        if "consensus" in finished:
            consensus = checkpoints.load_consensus(workspace, outcomes)
            self._loaded("consensus", timings, finished)
        else:
            with self._stage(workspace, run_id, "consensus", timings, guard=False) as detail:
                consensus = decide(outcomes, s.atol, s.rtol)
                checkpoints.save_consensus(workspace, consensus)
                detail.update(votes=consensus.votes, cluster=consensus.cluster)
                detail["message"] = (
                    f"{consensus.status.value}, objective {consensus.objective}, {consensus.level.value}"
                )
        result.status = consensus.status.value
        result.objective, result.verified = consensus.objective, consensus.verified
        result.level, result.level_reason = consensus.level.value, consensus.level_reason
        result.pass_at_1 = consensus.pass_at_1
        result.optimizers = [outcome_dict(o) for o in outcomes]
        if consensus.chosen is None or consensus.chosen.final_snapshot is None:
            fatal = next((o.fatal for o in outcomes if o.fatal), None)
            notes = "; ".join(f"{o.name}: {o.note}" for o in outcomes)
            raise RunFailure(fatal or f"No optimizer produced an accepted model ({notes}).")
        target = package_dir or workspace.package_dir
        if "package" in finished and (target / "report.json").exists():
            result.package = target
            self._loaded("package", timings, finished)
        else:
            with self._stage(workspace, run_id, "package", timings, guard=False) as detail:
                report = self._report(result, workspace, recorder, timings, rec, consensus)
                result.package = self._build_package(workspace, spec, consensus, referee, target, report)
                detail["message"] = str(result.package)
        # Only top-level results become examples: memory must not learn from an answer that was not fully checked.
        if s.memory_grow and result.verified and result.package is not None and consensus.chosen is not None:
            exemplar = exemplar_from_package(
                result.run_id, problem, result.package, result.objective, consensus.chosen.solver
            )
            added = open_memory(s).add_many([exemplar]).added
            self.on_event(Event("memory", "info", "run added to memory" if added else "already in memory"))

    def _extract(
        self, problem: str, workspace: Workspace, recorder: RecordedLLM, timings: list[StageTiming], run_id: str
    ) -> ProblemSpec:
        s = self.settings
        with self._stage(workspace, run_id, "extract", timings) as detail:
            use_mbr = s.mbr and s.extractions > 1
            extraction = extract(
                problem,
                recorder,
                workspace,
                samples=s.extractions,
                temperature=s.extract_temperature,
                embedder=make_embedder(s) if use_mbr else None,
                judge=recorder.for_stage("judge", self._model("judge")) if use_mbr else None,
                top_q=s.mbr_top_q,
                weights=s.mbr_weights,
            )
            spec = extraction.spec
            workspace.write_json("spec.json", spec.model_dump(mode="json"))
            workspace.write_json("data.json", data_from_spec(spec))
            record = {
                "chosen": extraction.chosen,
                "candidates": len(extraction.candidates),
                "dropped": extraction.dropped,
                "method": extraction.selection.get("method"),
            }
            workspace.write_json(workspace.extract_dir / "extraction.json", record)
            detail.update(chosen=extraction.chosen, dropped=extraction.dropped, method=record["method"])
            detail["message"] = (
                f"{len(spec.variables)} variable group(s), {len(spec.constraints)} constraint group(s); "
                f"candidate {extraction.chosen} of {len(extraction.candidates)} ({record['method']})"
            )
        return spec

    def _recommend(
        self, spec: ProblemSpec, workspace: Workspace, recorder: RecordedLLM, timings: list[StageTiming], run_id: str
    ) -> Recommendation:
        s = self.settings
        with self._stage(workspace, run_id, "recommend", timings) as detail:
            installed = available_solvers()
            allowed = [b for b in installed if not s.solvers or b.name in s.solvers]
            if not allowed:
                names = ", ".join(b.name for b in installed) or "none"
                raise ConfigError(f"None of the solvers {s.solvers} is installed and usable here (installed: {names}).")
            rec = recommend(spec, allowed, llm=recorder.for_stage("recommend"))
            if not rec.ranking:
                raise RunFailure("No solver is installed. Install one, e.g. pip install highspy pulp.")
            workspace.write_json("recommendation.json", rec)
            detail.update(
                problem_class=rec.problem_class.value, ranking=rec.ranking, reason=rec.reason, decided_by=rec.decided_by
            )
            notes = f"; {'; '.join(rec.notes)}" if rec.notes else ""
            ranked = ", ".join(rec.ranking[:4])
            detail["message"] = f"{rec.problem_class.value} ({rec.reason}; by {rec.decided_by}): {ranked}{notes}"
        return rec

    def _build_package(
        self,
        workspace: Workspace,
        spec: ProblemSpec,
        consensus: Consensus,
        referee: Referee,
        target: Path,
        report: dict[str, Any],
    ) -> Path:
        """Build the package in a sibling folder, then move it into place, so a kill never leaves half of one."""
        assert consensus.chosen is not None and consensus.chosen.final_snapshot is not None
        staging = target.with_name(f".{target.name}.partial")
        if staging.exists():
            shutil.rmtree(staging)
        build_package(
            workspace,
            spec,
            consensus.chosen.final_snapshot,
            staging,
            referee=referee.current,
            status=consensus.status,
            objective=consensus.objective,
            level=consensus.level,
            atol=self.settings.atol,
            rtol=self.settings.rtol,
            report=report,
        )
        if target.exists():
            shutil.rmtree(target)
        staging.replace(target)
        return target

    def _agents(
        self,
        problem: str,
        spec: ProblemSpec,
        rec: Recommendation,
        workspace: Workspace,
        sandbox: SubprocessSandbox,
        referee: Referee,
        recorder: RecordedLLM,
        result: RunResult,
        timings: list[StageTiming],
        retrieval: Retrieval,
        stage_finished: bool = False,
    ) -> list[OptimizerOutcome]:
        """The simulator agent and T optimizer agents, all at once in one workspace, each writing only its own
        folder (its sandbox is scoped to it); the referee judges them apart from all of them.

        On a resume, optimizers that had finished are loaded from their checkpoints and an accepted
        simulator from the referee's frozen version; only the rest run (replaying the replies they had received)."""
        s = self.settings
        remaining = self._remaining_seconds()
        agent_seconds = s.agent_max_seconds if remaining is None else max(1.0, min(s.agent_max_seconds, remaining))
        limits = AgentLimits(
            s.agent_max_steps, s.agent_max_tokens, agent_seconds, s.sandbox_timeout, s.agent_observation_chars
        )

        def make_agent(stage: str, role: Any, scoped: Sandbox) -> Agent:
            llm = recorder.for_stage(stage, self._model(role))
            if s.agent_backend == "mini-swe-agent":
                from nemo_opt.agent.external import MiniSweAgent  # optional extra: imported only when chosen

                return MiniSweAgent(llm, scoped, workspace, limits=limits, temperature=s.agent_temperature)
            return ToolLoopAgent(
                llm, scoped, workspace, protocol=s.agent_protocol, limits=limits, temperature=s.agent_temperature
            )

        gate: SimulatorAgentGate | None = None
        capable = rec.ranking
        outcomes = [
            OptimizerOutcome(
                name=f"optimizer_{k}",
                index=k,
                solver=capable[(k - 1) % len(capable)],
                workdir=workspace.optimizer_dir(k),
            )
            for k in range(1, s.optimizers + 1)
        ]
        pending = [o for o in outcomes if not checkpoints.load_outcome(workspace, o, keep_failed=stage_finished)]
        if stage_finished:
            referee.restore()
            return outcomes
        if s.simulate:
            task = simulator_task(spec, problem, workspace, referee, protocol=s.agent_protocol)
            simulator_sandbox = sandbox.scoped([workspace.make_dirs(workspace.simulator_dir)])
            gate = checkpoints.CheckpointedSimulatorGate(
                make_agent("simulator", "simulator", simulator_sandbox),
                task,
                workspace,
                referee,
                s.repair_rounds,
                self.on_event,
                recorder.journal,
            )
            gate.restore()
        stops: list[RunFailure] = []
        checks: dict[str, Any] = {
            "atol": s.atol,
            "rtol": s.rtol,
            "probes": s.crosscheck_probes,
            "time_limit": s.sandbox_timeout,
        }

        def optimize(outcome: OptimizerOutcome) -> OptimizerOutcome:
            own = sandbox.scoped([workspace.make_dirs(outcome.workdir)])
            task = optimizer_task(
                outcome.index,
                spec,
                problem,
                workspace,
                own,
                rec,
                outcome.solver,
                protocol=s.agent_protocol,
                timeout=s.sandbox_timeout,
                memory_note=retrieval.note(workspace.optimizer_dir(outcome.index)),
            )
            try:
                run_optimizer(
                    task,
                    make_agent(outcome.name, "optimizer", own),
                    outcome,
                    spec,
                    workspace,
                    referee,
                    gate,
                    repair_rounds=s.repair_rounds,
                    on_report=lambda report: self.on_event(Event(report.optimizer, "info", report_line(report))),
                    **checks,
                )
            except RunFailure as exc:  # the model service or a budget failed: this optimizer stops, others go on
                outcome.fatal = outcome.note = str(exc)
                if isinstance(exc, CostCeilingReached | RunTimeLimitReached):
                    stops.append(exc)
            except Exception as exc:  # whatever else one optimizer's work caused, the others go on
                logger.exception("%s stopped by an unexpected error", outcome.name)
                outcome.note = f"stopped by an unexpected error: {type(exc).__name__}: {exc}"
                outcome.level, outcome.verified = VerificationLevel.UNVERIFIED, False
            # Kept for the record; a resume that runs this stage again retries the optimizers that failed.
            checkpoints.save_outcome(workspace, outcome)
            return outcome

        with (
            ThreadPoolExecutor(max_workers=1 + len(outcomes), thread_name_prefix="nemo-agent") as pool,
            self._stage(workspace, result.run_id, "agents", timings) as detail,
        ):
            sim_future = pool.submit(gate.run) if gate is not None and not gate.done.is_set() else None
            futures = [pool.submit(optimize, o) for o in pending]
            try:
                for future in futures:
                    future.result()
                if sim_future is not None:
                    sim_future.result()
            except KeyboardInterrupt:
                # The pool waits for its threads on the way out: let them end at their next model call.
                self._interrupted.set()
                raise
            if gate is not None and isinstance(gate.error, CostCeilingReached | RunTimeLimitReached):
                stops.append(gate.error)
            if stops:  # a run-level limit stopped the agents: the stage is not finished, a resume continues it
                raise stops[0]
            if referee.current is not None:
                self._final_referee_check(outcomes, spec, workspace, referee, checks)
            detail["simulator"] = "off" if gate is None else (gate.wait() or "accepted")
            detail["referee"] = referee.history
            detail["message"] = "; ".join(f"{o.name}: {o.status.value} {o.level.value}" for o in outcomes)
        return outcomes

    def _final_referee_check(
        self,
        outcomes: list[OptimizerOutcome],
        spec: ProblemSpec,
        workspace: Workspace,
        referee: Referee,
        checks: dict[str, Any],
    ) -> None:
        """Before anything is called verified: the final frozen simulator's own tests pass again (in isolation),
        and every optimizer that passed with an earlier version of it is judged again with this one."""
        assert referee.current is not None
        version = referee.current.number
        for outcome in outcomes:
            last = outcome.reports[-1] if outcome.reports else None
            if last is not None and last.passed and last.referee_version != version:
                self.on_event(Event(outcome.name, "info", f"judged again with the repaired simulator (v{version})"))
                try:
                    revalidate(outcome, spec, workspace, referee, **checks)
                except Exception as exc:  # judged again or not at all: never kept at a level it may not have
                    logger.exception("judging %s again failed", outcome.name)
                    outcome.cap(VerificationLevel.UNVERIFIED, f"could not be judged with the repaired simulator: {exc}")
                checkpoints.save_outcome(workspace, outcome)
        tests = referee.run_tests()
        if isinstance(tests, str) or not tests.ok:
            why = tests if isinstance(tests, str) else f"{tests.describe()}: {tests.output[-500:]}"
            for outcome in outcomes:
                if outcome.level is not VerificationLevel.UNVERIFIED:
                    outcome.level = VerificationLevel.UNVERIFIED
                    outcome.level_reason = f"the frozen simulator's own tests no longer pass ({why})"
                    outcome.verified = False
                    checkpoints.save_outcome(workspace, outcome)

    def _report(
        self,
        result: RunResult,
        workspace: Workspace,
        recorder: RecordedLLM,
        timings: list[StageTiming],
        rec: Recommendation,
        consensus: Consensus,
    ) -> dict[str, Any]:
        return {
            "run_id": result.run_id,
            "result": {
                "status": result.status,
                "objective": result.objective,
                "verified": result.verified,
                "level": consensus.level.value,
                "level_reason": consensus.level_reason,
                "pass_at_1": result.pass_at_1,
                "chosen_optimizer": consensus.chosen.name if consensus.chosen else None,
                "votes": consensus.votes,
            },
            "recommendation": to_jsonable(rec),
            "stages": [{"stage": t.stage, "status": t.status, "seconds": round(t.seconds, 3)} for t in timings],
            "optimizers": result.optimizers,
            "usage": recorder.accounting.summary(),
            "llm": self.store.llm_totals(result.run_id),
            "seconds": sum(t.seconds for t in timings if t.stage in {"extract", "recommend", "agents", "consensus"}),
            "llm_wait_seconds": recorder.accounting.wait_seconds(),
            "settings": {
                k: getattr(self.settings, k)
                for k in (
                    "model",
                    "extractions",
                    "optimizers",
                    "repair_rounds",
                    "atol",
                    "rtol",
                    "agent_protocol",
                    "sandbox",
                )
            },
            "workspace": str(workspace.root),
        }
