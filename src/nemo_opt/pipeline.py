"""The NEMO pipeline for one problem: extract, recommend, simulate ∥ optimize, validate/repair, consensus, package.

Everything a run produces is written to its folder as soon as it exists, and the run store records stages
and model calls as they happen, so a failure at any point leaves every earlier artifact in place.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from nemo_opt.agent.loop import AgentLimits, ToolLoopAgent
from nemo_opt.embed import make_embedder
from nemo_opt.exceptions import BadInput, ConfigError, ModelNotConfigured, NemoError, RunFailure, UserError
from nemo_opt.fsutil import atomic_write_json, to_jsonable
from nemo_opt.llm.base import LLM
from nemo_opt.llm.cache import ReplyCache
from nemo_opt.llm.limit import LimitedLLM
from nemo_opt.llm.recorder import RecordedLLM
from nemo_opt.llm.registry import create_llm
from nemo_opt.memory import open_memory
from nemo_opt.memory.growth import exemplar_from_package
from nemo_opt.package import build_package
from nemo_opt.result import Event, RunResult, StageTiming, new_run_id, sha256_text
from nemo_opt.sandbox import sandbox_from_settings
from nemo_opt.sandbox.base import Sandbox
from nemo_opt.settings import Settings
from nemo_opt.solvers.registry import available_solvers
from nemo_opt.spec import ProblemSpec, data_from_spec
from nemo_opt.stages.consensus import Consensus, decide
from nemo_opt.stages.extract import extract
from nemo_opt.stages.optimize import OptimizerOutcome, optimizer_task, outcome_dict, report_line, run_optimizer
from nemo_opt.stages.recommend import Recommendation, recommend
from nemo_opt.stages.retrieve import Retrieval, retrieve
from nemo_opt.stages.simulate import SimulatorAgentGate, simulator_task
from nemo_opt.stages.validate import install_harness
from nemo_opt.store import RunStore
from nemo_opt.workspace import Workspace

__all__ = ["NO_MODEL_HELP", "Pipeline"]

NO_MODEL_HELP = (
    "No model is configured. Either export an API key and name a model, e.g.\n"
    "  export OPENAI_API_KEY=...   and   nemo-opt solve problem.md --model openai:gpt-4.1\n"
    "or point at a local OpenAI-compatible server (llama.cpp, vLLM, Ollama, LM Studio):\n"
    "  nemo-opt solve problem.md --model openai-compatible:qwen@http://127.0.0.1:8080/v1\n"
    'The model can also be set once with NEMO_MODEL or `model = "..."` in nemo.toml.'
)

LLMFactory = Callable[[str], LLM]
EventSink = Callable[[Event], None]


class Pipeline:
    """Solves problems with the configured models, sandbox and run store."""

    def __init__(
        self,
        settings: Settings,
        *,
        llm_factory: LLMFactory | None = None,
        store: RunStore | None = None,
        on_event: EventSink | None = None,
    ) -> None:
        self.settings = settings
        self.llm_factory: LLMFactory = llm_factory or (lambda name: create_llm(name, settings))
        self.store = store or RunStore(settings.store_path)
        self.on_event: EventSink = on_event or (lambda event: None)
        self._llms: dict[str, LLM] = {}

    # --- helpers ----------------------------------------------------------------------------------------------
    def _model(self, stage: Any) -> LLM:
        name = self.settings.model_for(stage)
        if not name:
            raise ModelNotConfigured(NO_MODEL_HELP)
        if name not in self._llms:
            self._llms[name] = LimitedLLM(self.llm_factory(name), self.settings.llm_concurrency)
        return self._llms[name]

    @contextmanager
    def _stage(self, run_id: str, stage: str, timings: list[StageTiming]) -> Iterator[dict[str, Any]]:
        detail: dict[str, Any] = {}
        timing = StageTiming(stage, "running", time.monotonic())
        timings.append(timing)
        self.store.stage_started(run_id, stage)
        self.on_event(Event(stage, "started"))
        try:
            yield detail
        except BaseException as exc:
            timing.status, timing.ended = "failed", time.monotonic()
            self.store.stage_finished(run_id, stage, "failed", {"error": str(exc), **detail})
            self.on_event(Event(stage, "failed", str(exc)))
            raise
        timing.status, timing.ended = "finished", time.monotonic()
        self.store.stage_finished(run_id, stage, "finished", to_jsonable(detail))
        self.on_event(Event(stage, "finished", str(detail.get("message", ""))))

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
        """Run the whole pipeline on ``problem`` (already checked text). Never raises for run failures:
        the result carries the error and the folder keeps every artifact. Configuration errors raise.

        ``item_id`` names the benchmark item being solved, so memory retrieval leaves out its own solution."""
        self._check_package_target(package_dir)
        extract_llm = self._model("extract")  # fail fast, before a run folder exists, when nothing is configured
        run_id = run_id or new_run_id(problem)
        workspace = Workspace(self.settings.run_root / run_id)
        workspace.create()
        workspace.write_text("problem.md", problem + "\n")
        self.store.create_run(run_id, workspace.root, problem.splitlines()[0][:120], sha256_text(problem))
        started = time.monotonic()
        cache = ReplyCache(self.settings.cache_path) if self.settings.llm_cache != "off" else None
        recorder = RecordedLLM(
            extract_llm,
            store=self.store,
            run_id=run_id,
            cache=cache,
            cache_mode=self.settings.llm_cache,
            max_cost_usd=self.settings.max_cost_usd,
            stage="extract",
        )
        result = RunResult(run_id=run_id, folder=workspace.root, status="running")
        timings: list[StageTiming] = []
        try:
            self._run(problem, workspace, recorder, result, timings, package_dir, item_id)
        except UserError as exc:
            result.status, result.error = "failed", str(exc)
            result.error_kind = "bad_input" if isinstance(exc, BadInput) else "config"
        except (RunFailure, NemoError) as exc:
            result.status, result.error, result.error_kind = "failed", str(exc), "run_failure"
        except KeyboardInterrupt:
            result.status, result.error, result.error_kind = "failed", "interrupted", "interrupted"
            self._finish(result, workspace, recorder, timings, started)
            raise
        self._finish(result, workspace, recorder, timings, started)
        return result

    def _finish(
        self, result: RunResult, workspace: Workspace, recorder: RecordedLLM, timings: list[StageTiming], started: float
    ) -> None:
        result.seconds = time.monotonic() - started
        result.llm_wait_seconds = recorder.accounting.wait_seconds()
        result.usage = recorder.accounting.summary()
        result.stages = [{"stage": t.stage, "status": t.status, "seconds": round(t.seconds, 3)} for t in timings]
        atomic_write_json(workspace.result, result)
        self.store.finish_run(result.run_id, result.status, result.verified, result.objective, to_jsonable(result))

    def _run(
        self,
        problem: str,
        workspace: Workspace,
        recorder: RecordedLLM,
        result: RunResult,
        timings: list[StageTiming],
        package_dir: Path | None,
        item_id: str | None,
    ) -> None:
        s = self.settings
        retrieval = Retrieval()
        if s.memory and s.memory_k > 0:
            with self._stage(result.run_id, "memory", timings) as detail:
                retrieval = retrieve(problem, workspace, s, item_id=item_id)
                detail.update(chosen=[h.exemplar.id for h in retrieval.hits], excluded=retrieval.excluded)
                detail["message"] = ", ".join(h.exemplar.id for h in retrieval.hits) or "no exemplar"
        with self._stage(result.run_id, "extract", timings) as detail:
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
            detail.update(
                chosen=extraction.chosen, dropped=extraction.dropped, method=extraction.selection.get("method")
            )
            detail["message"] = (
                f"{len(spec.variables)} variable group(s), {len(spec.constraints)} constraint group(s); "
                f"candidate {extraction.chosen} of {len(extraction.candidates)} ({extraction.selection.get('method')})"
            )
        with self._stage(result.run_id, "recommend", timings) as detail:
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
        install_harness(workspace)
        sandbox = sandbox_from_settings(s, workspace.root)
        containment = (
            sandbox.describe_containment() if sandbox.name == "plain" else "no network, only the workspace writable"
        )
        self.on_event(Event("sandbox", "info", f"{sandbox.name}: {containment}"))
        outcomes = self._agents(problem, spec, rec, workspace, sandbox, recorder, result, timings, retrieval)
        with self._stage(result.run_id, "consensus", timings) as detail:
            consensus = decide(outcomes, s.atol, s.rtol)
            result.status = consensus.status.value
            result.objective, result.verified = consensus.objective, consensus.verified
            result.pass_at_1 = consensus.pass_at_1
            detail.update(votes=consensus.votes, cluster=consensus.cluster)
            detail["message"] = f"{result.status}, objective {result.objective}, verified {result.verified}"
        result.optimizers = [outcome_dict(o) for o in outcomes]
        if consensus.chosen is None or consensus.chosen.final_snapshot is None:
            fatal = next((o.fatal for o in outcomes if o.fatal), None)
            notes = "; ".join(f"{o.name}: {o.note}" for o in outcomes)
            raise RunFailure(fatal or f"No optimizer produced an accepted model ({notes}).")
        with self._stage(result.run_id, "package", timings) as detail:
            report = self._report(result, workspace, recorder, timings, rec, consensus)
            result.package = build_package(
                workspace,
                spec,
                consensus.chosen.final_snapshot,
                package_dir or workspace.package_dir,
                status=consensus.status,
                objective=consensus.objective,
                verified=consensus.verified,
                atol=s.atol,
                rtol=s.rtol,
                report=report,
            )
            detail["message"] = str(result.package)
        if s.memory_grow and result.verified and result.package is not None:
            exemplar = exemplar_from_package(
                result.run_id, problem, result.package, result.objective, consensus.chosen.solver
            )
            added = open_memory(s).add_many([exemplar]).added
            self.on_event(Event("memory", "info", "run added to memory" if added else "already in memory"))

    def _agents(
        self,
        problem: str,
        spec: ProblemSpec,
        rec: Recommendation,
        workspace: Workspace,
        sandbox: Sandbox,
        recorder: RecordedLLM,
        result: RunResult,
        timings: list[StageTiming],
        retrieval: Retrieval,
    ) -> list[OptimizerOutcome]:
        """The simulator agent and T optimizer agents, all at once in one workspace."""
        s = self.settings
        limits = AgentLimits(
            s.agent_max_steps, s.agent_max_tokens, s.agent_max_seconds, s.sandbox_timeout, s.agent_observation_chars
        )

        def make_agent(stage: str, role: Any) -> ToolLoopAgent:
            llm = recorder.for_stage(stage, self._model(role))
            return ToolLoopAgent(
                llm, sandbox, workspace, protocol=s.agent_protocol, limits=limits, temperature=s.agent_temperature
            )

        gate: SimulatorAgentGate | None = None
        if s.simulate:
            task = simulator_task(
                spec, problem, workspace, sandbox, protocol=s.agent_protocol, timeout=s.sandbox_timeout
            )
            gate = SimulatorAgentGate(
                make_agent("simulator", "simulator"), task, workspace, s.repair_rounds, self.on_event
            )
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

        def optimize(outcome: OptimizerOutcome) -> OptimizerOutcome:
            task = optimizer_task(
                outcome.index,
                spec,
                problem,
                workspace,
                sandbox,
                rec,
                outcome.solver,
                protocol=s.agent_protocol,
                timeout=s.sandbox_timeout,
                memory_note=retrieval.note(workspace.optimizer_dir(outcome.index)),
            )
            try:
                return run_optimizer(
                    task,
                    make_agent(outcome.name, "optimizer"),
                    outcome,
                    spec,
                    workspace,
                    sandbox,
                    gate,
                    repair_rounds=s.repair_rounds,
                    atol=s.atol,
                    rtol=s.rtol,
                    timeout=s.sandbox_timeout,
                    probes=s.crosscheck_probes,
                    on_report=lambda report: self.on_event(Event(report.optimizer, "info", report_line(report))),
                )
            except RunFailure as exc:  # the model service or a budget failed: this optimizer stops, others go on
                outcome.fatal = outcome.note = str(exc)
                return outcome

        with (
            ThreadPoolExecutor(max_workers=1 + len(outcomes), thread_name_prefix="nemo-agent") as pool,
            self._stage(result.run_id, "agents", timings) as detail,
        ):
            sim_future = pool.submit(gate.run) if gate else None
            futures = [pool.submit(optimize, o) for o in outcomes]
            finished = [f.result() for f in futures]
            if sim_future is not None:
                sim_future.result()
            detail["simulator"] = "off" if gate is None else (gate.wait() or "accepted")
            detail["message"] = "; ".join(
                f"{o.name}: {o.status.value}{' verified' if o.verified else ''}" for o in finished
            )
        return finished

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
