"""What a resumed run reads back from its folder: the artifacts of every stage that finished.

A stage counts as finished once its artifacts are written (each atomically) and it is listed in
``.nemo/stages.json``, which is written last. So after a ``kill -9`` the folder holds, for every finished stage,
complete artifacts, and for the stage in flight at most some partial work that the resumed run redoes.

Inside the agents stage, finer checkpoints keep accepted work: the simulator once accepted (its frozen version
is in ``.nemo/referee/``, see :mod:`nemo_opt.stages.referee`, and its conversation is saved, so a repair
interrupted by the kill is rolled back to the accepted version), and each optimizer's final outcome
(``.nemo/checkpoints/outcome_<k>.json``: outside the optimizer's own folder, so no agent can write a verdict
that a resume would believe).

Everything is read and written through the workspace's safe door.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nemo_opt.agent.base import Agent, AgentResult, AgentStatus, AgentTask
from nemo_opt.fsutil import to_jsonable
from nemo_opt.llm.base import Message, Usage
from nemo_opt.llm.journal import ReplyJournal
from nemo_opt.memory.store import Exemplar, Hit
from nemo_opt.result import Event
from nemo_opt.solution import SolveStatus, ValidationReport, VerificationLevel
from nemo_opt.solvers.registry import ProblemClass
from nemo_opt.stages.consensus import Consensus
from nemo_opt.stages.optimize import OptimizerOutcome, outcome_dict
from nemo_opt.stages.recommend import Recommendation
from nemo_opt.stages.referee import Referee
from nemo_opt.stages.retrieve import Retrieval
from nemo_opt.stages.simulate import SimulatorAgentGate
from nemo_opt.workspace import Workspace

__all__ = [
    "CheckpointedSimulatorGate",
    "finished_stages",
    "load_consensus",
    "load_outcome",
    "load_recommendation",
    "load_retrieval",
    "mark_finished",
    "save_consensus",
    "save_outcome",
    "save_retrieval",
]


# --- stages ---------------------------------------------------------------------------------------------------
def finished_stages(workspace: Workspace) -> dict[str, Any]:
    """{stage: detail} of the stages that finished, in the order they finished."""
    if not workspace.exists(workspace.stages_file):
        return {}
    data = workspace.read_json(workspace.stages_file)
    return dict(data.get("finished", {})) if isinstance(data, dict) else {}


def mark_finished(workspace: Workspace, stage: str, detail: Any) -> None:
    """Add ``stage`` to the finished stages (after its artifacts are written)."""
    finished = finished_stages(workspace)
    finished[stage] = to_jsonable(detail)
    workspace.write_json(workspace.stages_file, {"finished": finished})


def unmark(workspace: Workspace, stages: list[str]) -> None:
    """Forget ``stages`` (a stage that runs again invalidates what follows it)."""
    finished = {k: v for k, v in finished_stages(workspace).items() if k not in stages}
    workspace.write_json(workspace.stages_file, {"finished": finished})


# --- memory -----------------------------------------------------------------------------------------------------
def save_retrieval(workspace: Workspace, retrieval: Retrieval) -> None:
    """The chosen exemplars in full, so a resume needs neither the memory store nor the embedder."""
    workspace.write_json(
        workspace.checkpoints / "memory.json",
        {
            "hits": [to_jsonable(h) for h in retrieval.hits],
            "paths": [workspace.rel(p) for p in retrieval.paths],
            "excluded": retrieval.excluded,
        },
    )


def load_retrieval(workspace: Workspace) -> Retrieval:
    path = workspace.checkpoints / "memory.json"
    if not workspace.exists(path):
        return Retrieval()
    data = workspace.read_json(path)
    hits = [
        Hit(exemplar=Exemplar(**h["exemplar"]), similarity=float(h["similarity"]), score=float(h["score"]))
        for h in data["hits"]
    ]
    paths = [workspace.root / p for p in data["paths"]]
    return Retrieval(hits, paths, {str(k): int(v) for k, v in data.get("excluded", {}).items()})


# --- recommendation ---------------------------------------------------------------------------------------------
def load_recommendation(workspace: Workspace) -> Recommendation:
    data = workspace.read_json("recommendation.json")
    data["problem_class"] = ProblemClass(data["problem_class"])
    data["alternatives"] = [ProblemClass(a) for a in data.get("alternatives", [])]
    fields = Recommendation.__dataclass_fields__
    return Recommendation(**{k: v for k, v in data.items() if k in fields})


# --- optimizers -------------------------------------------------------------------------------------------------
def _outcome_path(workspace: Workspace, outcome: OptimizerOutcome) -> Path:
    return workspace.checkpoints / f"outcome_{outcome.index}.json"


def save_outcome(workspace: Workspace, outcome: OptimizerOutcome) -> None:
    """The optimizer's final state, with ``fatal`` set when a failure stopped it."""
    data = outcome_dict(outcome)
    data.update(
        index=outcome.index,
        accepted_rounds=outcome.accepted_rounds,
        usage_tokens=outcome.usage_tokens,
        fatal=outcome.fatal,
    )
    workspace.write_json(_outcome_path(workspace, outcome), data)


def load_outcome(workspace: Workspace, outcome: OptimizerOutcome, *, keep_failed: bool = False) -> bool:
    """Fill ``outcome`` from its checkpoint; False when the optimizer has to run (again).

    An optimizer stopped by a failure (model service, cost or time limit) runs again unless ``keep_failed``
    (its stage finished, so its failure is part of the run's record)."""
    path = _outcome_path(workspace, outcome)
    if not workspace.exists(path):
        return False
    data = workspace.read_json(path)
    if data.get("fatal") and not keep_failed:
        return False
    outcome.fatal = str(data.get("fatal") or "")
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


# --- consensus --------------------------------------------------------------------------------------------------
def save_consensus(workspace: Workspace, consensus: Consensus) -> None:
    workspace.write_json(
        "consensus.json",
        {
            "status": consensus.status.value,
            "objective": consensus.objective,
            "verified": consensus.verified,
            "level": consensus.level.value,
            "level_reason": consensus.level_reason,
            "chosen": consensus.chosen.name if consensus.chosen else None,
            "votes": consensus.votes,
            "cluster": consensus.cluster,
            "pass_at_1": consensus.pass_at_1,
        },
    )


def load_consensus(workspace: Workspace, outcomes: list[OptimizerOutcome]) -> Consensus:
    data = workspace.read_json("consensus.json")
    chosen = next((o for o in outcomes if o.name == data["chosen"]), None)
    return Consensus(
        status=SolveStatus(data["status"]),
        objective=data["objective"],
        # The chosen optimizer's own (checked, possibly capped) standing, not what the file says.
        level=chosen.level if chosen is not None else VerificationLevel.UNVERIFIED,
        level_reason=chosen.level_reason if chosen is not None else "",
        chosen=chosen,
        votes=dict(data["votes"]),
        cluster=list(data["cluster"]),
        pass_at_1=dict(data["pass_at_1"]),
    )


# --- the simulator ----------------------------------------------------------------------------------------------
class CheckpointedSimulatorGate(SimulatorAgentGate):
    """The simulator gate, saving the accepted simulator's conversation and journal position each time it is
    accepted (its files are the referee's frozen version), and able to start from that checkpoint instead of
    running the agent again."""

    def __init__(
        self,
        agent: Agent,
        task: AgentTask,
        workspace: Workspace,
        referee: Referee,
        repairs: int,
        on_event: Callable[[Event], None],
        journal: ReplyJournal | None,
    ) -> None:
        super().__init__(agent, task, workspace, repairs, on_event)
        self.referee = referee
        self.journal = journal
        self._save_lock = threading.Lock()

    @property
    def _meta(self) -> Path:
        return self.workspace.checkpoints / "simulator.json"

    def accepted(self) -> None:
        """Checkpoint the accepted simulator before anyone is told."""
        self._save()

    def repair(self, report: ValidationReport, solution: Path) -> bool:
        """Repair as usual; a resubmitted simulator becomes the new checkpoint."""
        with self._save_lock:
            ok = super().repair(report, solution)
            if ok:
                self._save()
            return ok

    def _save(self) -> None:
        assert self.result is not None
        self.workspace.write_json(
            self._meta,
            {
                "steps": self.result.steps,
                "summary": self.result.summary,
                "repairs_left": self.repairs_left,
                "journal_position": self.journal.position("simulator") if self.journal else 0,
                "referee_version": self.referee.current.number if self.referee.current else 0,
                "messages": [m.to_dict() for m in self.result.messages],
            },
        )

    def restore(self) -> bool:
        """Start from the accepted simulator when there is one: True when restored (the agent is not run)."""
        if not self.workspace.exists(self._meta) or not self.referee.restore():
            return False
        data = self.workspace.read_json(self._meta)
        # A repair interrupted by the kill may have half-edited the files: bring back the accepted ones.
        self.referee.restore_live()
        self.result = AgentResult(
            name=self.task.name,
            status=AgentStatus.SUBMITTED,
            steps=int(data["steps"]),
            usage=Usage(),
            seconds=0.0,
            messages=[Message.from_dict(m) for m in data["messages"]],
            trajectory=self.workspace.trajectories / f"{self.task.name}.json",
            summary=str(data.get("summary", "")),
        )
        self.repairs_left = int(data["repairs_left"])
        if self.journal is not None:
            self.journal.seek("simulator", int(data["journal_position"]))
        self.done.set()
        self.on_event(Event("simulator", "info", "accepted before the resume; loaded from the run folder"))
        return True
