"""The agents stage: the simulator agent and T optimizer agents at once, in one workspace, judged by the referee.

Each agent writes only its own folder (its sandbox is scoped to it): the simulator agent ``simulator/``, optimizer
k ``optimizers/opt_k/``. The referee (:mod:`nemo_opt.stages.referee`) freezes the accepted simulator and judges
every solution apart from all of them.

The T optimizers differ for a reason (``optimizer_diversity``, on by default): optimizer 1 samples greedily
(temperature 0) with every retrieved example, so pass@1 is the greedy answer; optimizer k > 1 samples at
``agent_temperature`` with its own subset of the examples (all but one, a different one each; whole-file
optimizers, which see no examples, sample 0.3 warmer each after the second); and the optimizers
are dealt the *capable* solvers of the recommendation in turn. Off, every optimizer gets the same request at
``agent_temperature`` apart from its folder (the ablation).

Checkpoints inside the stage keep accepted work: the simulator once accepted (see
:class:`~nemo_opt.stages.simulate.SimulatorAgentGate`) and each optimizer's final outcome
(``.nemo/checkpoints/outcome_<k>.json``: outside every agent's folder, so no agent can write a verdict a resume
would believe). A resume runs only the optimizers that had not finished, replaying the replies they had received.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from nemo_opt.agent import make_agent
from nemo_opt.agent.base import Agent
from nemo_opt.agent.loop import AgentLimits
from nemo_opt.exceptions import CostCeilingReached, RunFailure, RunTimeLimitReached, failure_category
from nemo_opt.sandbox import sandbox_from_settings
from nemo_opt.sandbox.base import Sandbox
from nemo_opt.settings import Settings
from nemo_opt.solution import SolveStatus, ValidationReport, VerificationLevel
from nemo_opt.spec import ProblemSpec, data_from_spec
from nemo_opt.stages.base import BaseStage, RunContext
from nemo_opt.stages.context import names_key
from nemo_opt.stages.optimize import (
    Checks,
    Judging,
    OptimizerOutcome,
    optimizer_task,
    outcome_dict,
    report_line,
    revalidate,
    run_optimizer,
)
from nemo_opt.stages.referee import Referee
from nemo_opt.stages.retrieve import Retrieval
from nemo_opt.stages.simulate import SimulatorAgentGate, simulator_task
from nemo_opt.stages.trace import trace_numbers
from nemo_opt.stages.validate import PLAIN_CAP
from nemo_opt.workspace import Workspace

__all__ = ["AgentsStage", "final_referee_check", "load_outcome", "save_outcome", "variant"]

logger = logging.getLogger("nemo_opt.stages.agents")

# Limits that stop the whole stage (a resume continues it), not just the optimizer that met them.
_RUN_LIMITS = (CostCeilingReached, RunTimeLimitReached)


class AgentsStage(BaseStage):
    """P*, its recommendation and the examples -> T judged optimizer outcomes (``ctx.outcomes``)."""

    name = "agents"

    def inputs(self, ctx: RunContext) -> list[Path]:
        ws = ctx.workspace
        return [ws.spec, ws.data, ws.root / "recommendation.json", ws.checkpoints / "memory.json"]

    # --- what every path through the stage sets up -------------------------------------------------------------
    def _prepare(self, ctx: RunContext) -> list[OptimizerOutcome]:
        s, ws = ctx.settings, ctx.workspace
        sandbox = ctx.sandbox = sandbox_from_settings(s, ws.root)
        containment = (
            sandbox.describe_containment()
            if not sandbox.enforces_scope
            else "no network, each agent writes only its own folder, the referee runs apart"
        )
        ctx.emit("sandbox", "info", f"{sandbox.name}: {containment}")
        ctx.referee = Referee(ws, sandbox, data_from_spec(ctx.need_spec()), timeout=s.sandbox_timeout, rtol=s.rtol)
        if not ctx.referee.isolated:  # recorded before any agent runs, where no agent's file decides it
            ctx.store.mark_unisolated(ctx.run_id)
        dealt = ctx.need_recommendation().dealt
        if not s.optimizer_diversity:  # the ablation: every optimizer gets the first capable solver
            dealt = dealt[:1]
        if s.agent_protocol == "files" and "cbc" in dealt:
            # Whole-file agents write a PuLP body that the harness finishes (export, CBC, solution.json): the
            # library a small coder model knows best, and the shortest prompt. They differ by temperature.
            dealt = ["cbc"]
        return [
            OptimizerOutcome(
                name=f"optimizer_{k}", index=k, solver=dealt[(k - 1) % len(dealt)], workdir=ws.optimizer_dir(k)
            )
            for k in range(1, s.optimizers + 1)
        ]

    def _finish(self, ctx: RunContext, outcomes: list[OptimizerOutcome]) -> None:
        ctx.outcomes = outcomes
        if not ctx.need_referee().isolated or ctx.store.was_unisolated(ctx.run_id):
            # Whatever was validated or loaded back from a checkpoint (which an agent's code could have written,
            # in this attempt or an earlier one): without isolation no level above objective-checked is believed.
            for outcome in outcomes:
                outcome.cap(VerificationLevel.OBJECTIVE_CHECKED, PLAIN_CAP)
        spec = ctx.need_spec()
        trace = trace_numbers(spec, ctx.problem)
        if not trace.clean:
            # When the simulator and a model both read data.json's numbers and those do not trace to the text,
            # their agreement may rest on a shared wrong number, so it proves less than "verified" says. Code
            # that takes every number from the text (the whole-file agents' way) shares none.
            why = f"P*'s numbers do not all trace to the problem text ({trace.message()})"
            referee = ctx.need_referee().current
            simulator = b"".join(referee.simulator.values()) if referee is not None else b""
            simulator_reads = _reads_parameters(simulator.decode("utf-8", "replace"), spec)
            for outcome in outcomes:
                source = _model_source(ctx.workspace, outcome)  # unreadable: take it to share them (cautious)
                if simulator_reads and (source is None or _reads_parameters(source, spec)):
                    outcome.cap(VerificationLevel.OBJECTIVE_CHECKED, why)

    def load(self, ctx: RunContext) -> bool:
        outcomes = self._prepare(ctx)
        if not all(load_outcome(ctx.workspace, o, keep_failed=True, inputs=ctx.inputs_digest) for o in outcomes):
            return False
        if ctx.settings.simulate and not ctx.need_referee().restore():
            return False  # the frozen simulator is missing or fails its hashes: judge again rather than believe
        self._finish(ctx, outcomes)
        return True

    def reset(self, ctx: RunContext) -> None:
        """An attempt with other inputs (an edited P*, other examples) left agents' work: set it aside, whole,
        under ``superseded/<time>/`` (moved, never followed or copied), so this attempt starts clean."""
        ws = ctx.workspace
        parent = ws.root / "superseded"
        if parent.is_symlink() or (parent.exists() and not parent.is_dir()):
            ws.remove(parent)  # the host's folder: whatever else stands there is removed, never followed
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target = next(parent / f"{stamp}-{n}" for n in range(1, 10_000) if not (parent / f"{stamp}-{n}").exists())
        moved = []
        for folder in (ws.simulator_dir, ws.root / "optimizers", ws.internal / "referee", ws.checkpoints):
            if folder.is_symlink() or folder.exists():
                target.mkdir(parents=True, exist_ok=True)
                name = folder.relative_to(ws.root).as_posix().replace("/", "_")
                shutil.move(str(folder), str(target / name))
                moved.append(name)
        ws.make_dirs(ws.checkpoints)
        memory = target / ".nemo_checkpoints" / "memory.json"
        try:  # the memory stage's own checkpoint stays (through the door: a planted link is refused)
            if moved:
                ws.copy(ws.relative(memory), ws.checkpoints / "memory.json")
        except OSError:
            pass  # no usable checkpoint: the next resume runs the memory stage again
        if moved:
            ctx.emit("agents", "info", f"inputs changed since the last attempt: set aside {', '.join(moved)}")

    # --- the run -------------------------------------------------------------------------------------------------
    def run(self, ctx: RunContext, detail: dict[str, Any]) -> None:
        s, ws = ctx.settings, ctx.workspace
        outcomes = self._prepare(ctx)
        referee, sandbox = ctx.need_referee(), ctx.sandbox
        assert sandbox is not None
        digest = ctx.inputs_digest
        pending = [o for o in outcomes if not load_outcome(ws, o, inputs=digest)]
        gate: SimulatorAgentGate | None = None
        if s.simulate:
            task = simulator_task(
                ctx.need_spec(),
                ctx.problem,
                ws,
                referee,
                protocol=s.agent_protocol,
                memory_note=self._memory(ctx, ws.root, None) if s.memory_simulator else "",
            )
            own = sandbox.scoped([ws.make_dirs(ws.simulator_dir)])
            agent = self._agent(ctx, "simulator", "simulator", own, s.agent_temperature)
            gate = SimulatorAgentGate(agent, task, ws, referee, s.repair_rounds, ctx.on_event, ctx.recorder.journal)
            gate.restore()
        judging = Judging(
            ctx.need_spec(),
            ws,
            referee,
            gate,
            Checks.from_settings(s),
            s.repair_rounds,
            lambda report: ctx.emit(report.optimizer, "info", report_line(report)),
        )
        stops: list[RunFailure] = []

        def optimize(outcome: OptimizerOutcome) -> None:
            self._optimize(ctx, outcome, judging, stops, digest)

        with ThreadPoolExecutor(max_workers=1 + len(outcomes), thread_name_prefix="nemo-agent") as pool:
            sim_future = pool.submit(gate.run) if gate is not None and not gate.done.is_set() else None
            futures = [pool.submit(optimize, o) for o in pending]
            try:
                for future in futures:
                    future.result()
                if sim_future is not None:
                    sim_future.result()
            except KeyboardInterrupt:
                # The pool waits for its threads on the way out: let them end at their next model call.
                ctx.interrupted.set()
                raise
        if gate is not None and isinstance(gate.error, _RUN_LIMITS):
            stops.append(gate.error)
        if stops:  # a run-level limit stopped the agents: the stage is not finished, a resume continues it
            raise stops[0]
        if referee.current is not None:
            final_referee_check(outcomes, judging, ctx.emit)
        self._finish(ctx, outcomes)
        detail["simulator"] = "off" if gate is None else (gate.wait() or "accepted")
        detail["referee"] = referee.history
        detail["message"] = "; ".join(f"{o.name}: {o.status.value} {o.level.value}" for o in outcomes)

    def _optimize(
        self, ctx: RunContext, outcome: OptimizerOutcome, judging: Judging, stops: list[RunFailure], digest: str
    ) -> None:
        """One optimizer from task to verdict (in a worker thread); its failure never stops the others."""
        s, ws = ctx.settings, ctx.workspace
        assert ctx.sandbox is not None
        own = ctx.sandbox.scoped([ws.make_dirs(outcome.workdir)])
        temperature, subset = variant(outcome.index, s, ctx.retrieval)
        task = optimizer_task(
            outcome,
            ctx.need_spec(),
            ctx.problem,
            ws,
            own,
            ctx.need_recommendation(),
            protocol=s.agent_protocol,
            timeout=s.sandbox_timeout,
            memory_note=self._memory(ctx, outcome.workdir, subset) if s.memory_optimizers else "",
        )
        try:
            run_optimizer(task, self._agent(ctx, outcome.name, "optimizer", own, temperature), outcome, judging)
        except RunFailure as exc:  # the model service or a budget failed: this optimizer stops, others go on
            outcome.fatal = outcome.note = str(exc)
            outcome.fatal_category = failure_category(exc)
            if isinstance(exc, _RUN_LIMITS):
                stops.append(exc)
        except Exception as exc:  # whatever else one optimizer's work caused, the others go on
            logger.exception("%s stopped by an unexpected error", outcome.name)
            outcome.note = f"stopped by an unexpected error: {type(exc).__name__}: {exc}"
            outcome.level, outcome.verified = VerificationLevel.UNVERIFIED, False
        # Kept for the record; a resume that runs this stage again retries the optimizers that failed.
        save_outcome(ws, outcome, inputs=digest)

    @staticmethod
    def _memory(ctx: RunContext, workdir: Path, subset: list[int] | None) -> str:
        return ctx.retrieval.note(workdir, subset=subset) if ctx.retrieval is not None else ""

    @staticmethod
    def _agent(ctx: RunContext, stage: str, role: str, sandbox: Sandbox, temperature: float) -> Agent:
        s = ctx.settings
        remaining = ctx.remaining_seconds()
        seconds = s.agent_max_seconds if remaining is None else max(1.0, min(s.agent_max_seconds, remaining))
        steps = s.simulator_max_steps if role == "simulator" and s.simulator_max_steps else s.agent_max_steps
        limits = AgentLimits(steps, s.agent_max_tokens, seconds, s.sandbox_timeout, s.agent_observation_chars)
        return make_agent(
            s.agent_backend,
            ctx.llm(stage, role),
            sandbox,
            ctx.workspace,
            limits=limits,
            temperature=temperature,
            protocol=s.agent_protocol,
        )


def _reads_parameters(code: str, spec: ProblemSpec) -> bool:
    """Whether ``code`` names a parameter of P* (``data["cost"]``, ``data.get('cost')``) rather than only sets."""
    return any(names_key(code, p.name) for p in spec.parameters)


def _model_source(workspace: Workspace, outcome: OptimizerOutcome) -> str | None:
    """The final model.py of ``outcome`` (through the door), or None when it cannot be read."""
    snapshot = outcome.final_snapshot
    try:
        return workspace.read_text(snapshot / "model.py") if snapshot is not None else ""
    except (OSError, ValueError):
        return None


def variant(index: int, settings: Settings, retrieval: Retrieval | None) -> tuple[float, list[int] | None]:
    """How optimizer ``index`` (1-based) differs from the others: its temperature, and the examples it sees (None:
    all of them). See the module docstring."""
    if not settings.optimizer_diversity:
        return settings.agent_temperature, None
    subset = retrieval.subset(index, settings.optimizers) if retrieval is not None else None
    if index == 1:
        return 0.0, subset
    if settings.agent_protocol == "files":
        # Whole-file optimizers see the same prompt (no examples each): at 0.0 and 0.3 a 1.5B model wrote the
        # same model three times, so each further optimizer samples 0.3 warmer, up to 1.0.
        return min(1.0, settings.agent_temperature + 0.3 * (index - 2)), subset
    return settings.agent_temperature, subset


def final_referee_check(
    outcomes: list[OptimizerOutcome], judging: Judging, emit: Callable[[str, str, str], None] | None = None
) -> None:
    """Before anything is called verified: the final frozen simulator's own tests pass again (in isolation), and
    every optimizer that passed with an earlier version of it is judged again with this one (``emit`` sees
    progress as ``(source, kind, message)``)."""
    referee, ws = judging.referee, judging.workspace
    assert referee.current is not None
    version = referee.current.number
    for outcome in outcomes:
        last = outcome.reports[-1] if outcome.reports else None
        if last is not None and last.passed and last.referee_version != version:
            if emit is not None:
                emit(outcome.name, "info", f"judged again with the repaired simulator (v{version})")
            try:
                revalidate(outcome, judging)
            except Exception as exc:  # judged again or not at all: never kept at a level it may not have
                logger.exception("judging %s again failed", outcome.name)
                outcome.cap(VerificationLevel.UNVERIFIED, f"could not be judged with the repaired simulator: {exc}")
            save_outcome(ws, outcome)
    tests = referee.run_tests()
    if isinstance(tests, str) or not tests.ok:
        why = tests if isinstance(tests, str) else f"{tests.describe()}: {tests.output[-500:]}"
        for outcome in outcomes:
            if outcome.level is not VerificationLevel.UNVERIFIED:
                outcome.cap(VerificationLevel.UNVERIFIED, f"the frozen simulator's own tests no longer pass ({why})")
                save_outcome(ws, outcome)


# --- optimizer checkpoints -----------------------------------------------------------------------------------------
def _outcome_path(workspace: Workspace, outcome: OptimizerOutcome) -> Path:
    return workspace.checkpoints / f"outcome_{outcome.index}.json"


def save_outcome(workspace: Workspace, outcome: OptimizerOutcome, *, inputs: str | None = None) -> None:
    """The optimizer's final state, with ``fatal`` set when a failure stopped it, and the hash of the stage inputs
    it was computed from (``inputs``; kept from the saved file when not given)."""
    path = _outcome_path(workspace, outcome)
    if inputs is None and workspace.exists(path):
        inputs = str(workspace.read_json(path).get("inputs") or "")
    data = outcome_dict(outcome)
    data.update(
        index=outcome.index,
        accepted_rounds=outcome.accepted_rounds,
        usage_tokens=outcome.usage_tokens,
        fatal=outcome.fatal,
        fatal_category=outcome.fatal_category,
        inputs=inputs or "",
    )
    workspace.write_json(path, data)


def load_outcome(
    workspace: Workspace, outcome: OptimizerOutcome, *, keep_failed: bool = False, inputs: str | None = None
) -> bool:
    """Fill ``outcome`` from its checkpoint; False when the optimizer has to run (again).

    An optimizer stopped by a failure (model service, cost or time limit) runs again unless ``keep_failed``
    (its stage finished, so its failure is part of the run's record). With ``inputs``, a checkpoint computed
    from other stage inputs (recorded in it) is not loaded."""
    path = _outcome_path(workspace, outcome)
    if not workspace.exists(path):
        return False
    data = workspace.read_json(path)
    if data.get("fatal") and not keep_failed:
        return False
    if inputs is not None and data.get("inputs") and data["inputs"] != inputs:
        return False
    outcome.fatal = str(data.get("fatal") or "")
    outcome.fatal_category = str(data.get("fatal_category") or "")
    outcome.solver = data["solver"]
    outcome.status = SolveStatus(data["status"])
    outcome.objective = data["objective"]
    outcome.verified = bool(data["verified"])
    outcome.level = VerificationLevel(data.get("level", VerificationLevel.UNVERIFIED.value))
    outcome.level_reason = str(data.get("level_reason", ""))
    outcome.note = data["note"]
    outcome.reports = [ValidationReport.model_validate(r) for r in data["reports"]]
    outcome.accepted_rounds = [int(r) for r in data["accepted_rounds"]]
    outcome.usage_tokens = int(data.get("usage_tokens", 0))
    outcome.refused = dict(data.get("refused_files", {}))
    return True
