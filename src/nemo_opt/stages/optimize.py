"""One optimizer agent from first model to final verdict: write ``model.py``, validate, repair up to R rounds.

Every accepted submission is snapshotted under ``optimizers/opt_<k>/history/round_<r>/``, so the model and
solution behind each validation report are kept even when a later repair breaks something.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from nemo_opt import door
from nemo_opt.agent.base import Acceptance, Agent, AgentResult, AgentTask
from nemo_opt.prompts import load_prompt
from nemo_opt.sandbox.base import Sandbox
from nemo_opt.settings import Settings
from nemo_opt.solution import Issue, SolveStatus, ValidationReport, VerificationLevel
from nemo_opt.solvers.backends.gurobi import is_size_limit_error, size_limit_message
from nemo_opt.solvers.registry import get_solver
from nemo_opt.solvers.templates import load_template
from nemo_opt.spec import ProblemSpec
from nemo_opt.stages.context import pulp_skeleton, sets_text, spec_context
from nemo_opt.stages.recommend import Recommendation
from nemo_opt.stages.referee import Referee
from nemo_opt.stages.trace import untraced_bounds
from nemo_opt.stages.validate import check_shapes, load_solution, validate
from nemo_opt.workspace import Workspace

__all__ = [
    "Checks",
    "Judging",
    "OptimizerOutcome",
    "SimulatorGate",
    "accept_optimizer",
    "optimizer_task",
    "outcome_dict",
    "report_line",
    "revalidate",
    "run_optimizer",
]

OPTIMIZER_ACCEPTANCE = (
    "`python model.py` runs without error in your working directory and writes a `solution.json` with a valid "
    "status and, when a solution exists, the objective and every variable of P* in the required shape."
)


class SimulatorGate(Protocol):
    """How an optimizer reaches the simulator agent: wait until it is ready, or ask it to fix a crash."""

    def wait(self) -> str | None:
        """Block until the simulator is accepted; returns None when ready, else why it is unavailable."""
        ...

    def repair(self, report: ValidationReport, solution: Path) -> bool:
        """Ask the simulator agent to fix a crash on ``solution``; True when it resubmitted."""
        ...

    def busy(self) -> bool:
        """Whether the simulator agent is working right now (so ``simulator/`` may legitimately change)."""
        ...


@dataclass(frozen=True)
class Checks:
    """The tolerances and limits every validation uses (``atol``, ``rtol``, ``crosscheck_probes``,
    ``sandbox_timeout`` of the settings)."""

    atol: float
    rtol: float
    probes: int
    time_limit: float

    @classmethod
    def from_settings(cls, settings: Settings) -> Checks:
        return cls(settings.atol, settings.rtol, settings.crosscheck_probes, settings.sandbox_timeout)


@dataclass
class Judging:
    """What every optimizer of a run is judged with: P*, the workspace, the frozen referee, the simulator agent
    (None: the simulator is switched off), the checks, the repair rounds R, and who sees each report."""

    spec: ProblemSpec
    workspace: Workspace
    referee: Referee
    gate: SimulatorGate | None
    checks: Checks
    repair_rounds: int
    on_report: Callable[[ValidationReport], None] = lambda report: None

    def validate(self, outcome: OptimizerOutcome, solution: Path, round_number: int, attempt: int) -> ValidationReport:
        c = self.checks
        return validate(
            self.spec,
            self.workspace,
            self.referee,
            solution,
            optimizer=outcome.name,
            round_number=round_number,
            atol=c.atol,
            rtol=c.rtol,
            attempt=attempt,
            probes=c.probes,
            time_limit=c.time_limit,
            records=None if solution.parent == outcome.workdir else outcome.workdir,
        )


@dataclass
class OptimizerOutcome:
    """The final state of one optimizer."""

    name: str
    index: int
    solver: str
    workdir: Path
    status: SolveStatus = SolveStatus.ERROR
    objective: float | None = None
    verified: bool = False
    reports: list[ValidationReport] = field(default_factory=list)
    accepted_rounds: list[int] = field(default_factory=list)
    note: str = ""
    fatal: str = ""
    fatal_category: str = ""  # the failure category of what stopped it (see nemo_opt.exceptions)
    usage_tokens: int = 0
    level: VerificationLevel = VerificationLevel.UNVERIFIED
    level_reason: str = ""
    # Files the snapshots refused to copy (symlinks, FIFOs, ...), per round.
    refused: dict[str, dict[str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.verified and self.level is VerificationLevel.UNVERIFIED:
            self.level = VerificationLevel.VERIFIED

    def cap(self, level: VerificationLevel, reason: str) -> None:
        """Hold this optimizer's level at most at ``level`` (saying why when it is lowered)."""
        if self.level.rank > level.rank:
            self.level, self.level_reason = level, reason
            self.verified = self.level is VerificationLevel.VERIFIED

    def record(self, report: ValidationReport) -> None:
        """Take ``report`` as this optimizer's current standing."""
        self.reports.append(report)
        self.level = report.level if report.passed else VerificationLevel.UNVERIFIED
        self.level_reason = report.level_reason if report.passed else "the last validation round failed"
        self.verified = self.level is VerificationLevel.VERIFIED

    @property
    def solution_path(self) -> Path:
        return self.workdir / "solution.json"

    @property
    def final_snapshot(self) -> Path | None:
        if not self.accepted_rounds:
            return None
        return self.workdir / "history" / f"round_{self.accepted_rounds[-1]}"


def _size_limit_refusal(text: str, fallback: str | None) -> Acceptance | None:
    """A refusal that moves the agent to another solver when Gurobi's bundled licence rejected the model."""
    message = size_limit_message(text[-1500:]) if is_size_limit_error(text) else None
    if message is None:
        return None
    if fallback is None:
        return Acceptance(False, f"{message}\nNo other installed solver fits this problem class.")
    backend = get_solver(fallback)
    return Acceptance(
        False, f"{message}\nRewrite model.py with {backend.label} instead (same contract).\n\n{backend.hint}"
    )


def accept_optimizer(
    workspace: Workspace,
    sandbox: Sandbox,
    spec: ProblemSpec,
    workdir: Path,
    timeout: float,
    fallback: str | None = None,
) -> Acceptance:
    """The optimizer's submit check: the model runs and writes a well-formed solution.

    ``fallback`` is the solver to switch to when Gurobi's size-limited licence refuses the model."""
    model = workdir / "model.py"
    if not workspace.exists(model):
        return Acceptance(False, f"{workspace.rel(model)} does not exist (as a regular file).")
    solution_path = workdir / "solution.json"
    try:
        workspace.remove(solution_path)
    except OSError as exc:
        return Acceptance(False, f"the old solution.json cannot be removed: {exc}")
    result = sandbox.run("python model.py", cwd=workdir, timeout=timeout)
    try:  # the host's own record of the run; a symlink or folder an agent put there is replaced or refused
        workspace.write_text(workdir / "run.log", result.output)
    except OSError as exc:
        return Acceptance(False, f"run.log cannot be written in your folder ({exc}); remove whatever is there.")
    refusal = _size_limit_refusal(result.output, fallback)
    if refusal is not None:
        return refusal
    if not result.ok:
        return Acceptance(False, f"`python model.py` failed ({result.describe()}):\n{result.output[-4000:]}")
    solution, error = load_solution(workspace, solution_path)
    if solution is None:
        return Acceptance(False, error)
    if solution.status.has_solution:
        if solution.objective is None:
            return Acceptance(False, "solution.json has status optimal but no numeric objective.")
        issues = check_shapes(spec, solution.variables)
        if issues:
            return Acceptance(False, "solution.json variables are malformed:\n" + "\n".join(i.message for i in issues))
    return Acceptance(True)


def optimizer_task(
    outcome: OptimizerOutcome,
    spec: ProblemSpec,
    problem: str,
    workspace: Workspace,
    sandbox: Sandbox,
    recommendation: Recommendation,
    *,
    protocol: str,
    timeout: float,
    memory_note: str = "",
) -> AgentTask:
    """The task of ``outcome``'s optimizer, working in its folder with a copy of data.json and its solver."""
    workdir = workspace.make_dirs(outcome.workdir)
    workspace.copy(workspace.data, workdir / "data.json")
    context = spec_context(spec)
    # The whole-file protocol with CBC: the model writes the model's body; the harness adds the fixed ending.
    ending = protocol == "files" and outcome.solver == "cbc"
    system, task_prompt = load_prompt("optimizer"), load_prompt("optimizer_files" if ending else "optimizer_task")
    protocol_prompt = load_prompt(f"protocol_{protocol}")
    backend = get_solver(outcome.solver)
    others = [name for name in recommendation.dealt if name != outcome.solver]
    files = ("model.py",) if protocol == "files" else ()
    names = [var.name for var in spec.variables]
    return AgentTask(
        name=outcome.name,
        system=system.render(
            protocol=protocol_prompt.render(
                workdir=workspace.rel(workdir), acceptance=OPTIMIZER_ACCEPTANCE, files="`model.py`"
            )
        ),
        instruction=task_prompt.render(
            data=context.data_json,
            variables=context.variable_list,
            objective=context.objective,
            sets=sets_text(spec),
            skeleton=pulp_skeleton(spec, untraced_bounds(spec, problem)).rstrip(),
            problem=problem,
            spec=context.spec_json,
            workdir=workspace.rel(workdir),
            data_keys=context.data_keys,
            problem_class=f"{recommendation.problem_class.value} ({recommendation.reason})",
            solver=backend.label,
            solver_hint=backend.hint,
            solver_template=backend.template.strip(),
            other_solvers=", ".join(others) or "none",
            variable_shapes=context.variable_shapes,
            memory=memory_note,
        ),
        workdir=workdir,
        accept=lambda: accept_optimizer(
            workspace, sandbox, spec, workdir, timeout, fallback=others[0] if others else None
        ),
        acceptance_text=OPTIMIZER_ACCEPTANCE,
        template=(system.name, f"{system.version}.{task_prompt.version}.{protocol_prompt.version}"),
        writable=workdir,
        files=files,
        finish_file=(lambda path, text: with_ending(text, names)) if ending else None,
    )


def with_ending(body: str, names: list[str]) -> str:
    """``body`` (a model's PuLP code) with the harness's fixed ending: export, solve with CBC, write solution.json
    with the variables of P* (``names``) found at the top level of the body."""
    ending = load_template("pulp_ending", suffix=".txt").replace("NEMO_VARIABLES", repr(names))
    body = body.split(ENDING_MARK, 1)[0].rstrip()  # a model that repeats the whole file back: one ending only
    # Small models add their own solve, print and file writing although told not to (pulp.CBC(), wrong status
    # names, another solution.json): from the first top-level solve call on, the ending does that instead.
    lines = body.splitlines()
    cut = next((i for i, line in enumerate(lines) if _OWN_SOLVE.match(line)), len(lines))
    kept = "\n".join(lines[:cut]).rstrip()
    dropped = "\n".join(f"# (dropped: the ending solves) {line}" for line in lines[cut:] if line.strip())
    return f"{kept}\n{dropped}\n{ending}" if dropped else f"{kept}\n{ending}"


SNAPSHOT_FILES = ("model.py", "solution.json", "run.log")
ENDING_MARK = "# ---- fixed ending, added by nemo-opt"
_OWN_SOLVE = re.compile(r"^(?:\w+\s*=\s*)?\w+\.solve\(|^(?:\w+\s*=\s*)?pulp\.\w+\(.*\)\.solve\(")


def _snapshot(workspace: Workspace, outcome: OptimizerOutcome, round_number: int) -> None:
    """Keep the accepted files of this round (regular files only; what was refused is recorded)."""
    target = outcome.workdir / "history" / f"round_{round_number}"
    # ``history`` lies in the agent's folder, but it is the host's: whatever the agent put there instead of a
    # folder (a symlink out of the workspace, a file) is removed, never followed.
    history = workspace.relative(outcome.workdir / "history")
    if door.list_files(workspace.root, history.parent).get(history.name, "dir") != "dir":
        door.remove(workspace.root, history)
    record = door.copy_files(
        workspace.root,
        workspace.relative(outcome.workdir),
        workspace.root,
        workspace.relative(target),
        include=lambda name: name in SNAPSHOT_FILES,
    )
    if record.refused:
        outcome.refused[f"round_{round_number}"] = record.refused
    outcome.accepted_rounds.append(round_number)


def _follow_up(task: AgentTask, report: ValidationReport, round_number: int, rounds: int) -> AgentTask:
    if report.checkable:
        prompt = load_prompt("optimizer_repair")
        text = prompt.render(report=report.render(), round=round_number, rounds=rounds)
    else:
        prompt = load_prompt("optimizer_confirm")
        found = "\n".join(f"- {issue.message}" for issue in report.issues if issue.kind != "status")
        text = prompt.render(status=report.status.value, found=f"\n\nWhat the system found:\n{found}" if found else "")
    return replace(task, instruction=text, template=prompt.ref)


def run_optimizer(task: AgentTask, agent: Agent, outcome: OptimizerOutcome, judging: Judging) -> OptimizerOutcome:
    """Run the agent, then validate (with the frozen referee) and repair until the solution passes or the R
    rounds are used up. Every validation report goes to ``judging.on_report`` as it is made."""
    workspace, referee, gate = judging.workspace, judging.referee, judging.gate
    result: AgentResult = agent.run(task)
    outcome.usage_tokens += result.usage.total_tokens
    if not result.submitted:
        outcome.note = f"the optimizer agent ended without an accepted model: {result.reason}"
        return outcome
    _snapshot(workspace, outcome, 0)
    _read_solution(workspace, outcome)
    if gate is None:
        outcome.note = "not validated: the simulator is switched off"
        return outcome
    unavailable = gate.wait()
    if unavailable is not None:
        outcome.note = f"not validated: {unavailable}"
        return outcome

    def check(round_number: int, attempt: int) -> ValidationReport:
        report = judging.validate(outcome, outcome.solution_path, round_number, attempt)
        changed = referee.tampering(simulator_idle=not gate.busy())
        if changed:
            referee.restore_live()
            report.issues.insert(
                0,
                Issue(
                    kind="tampering",
                    message="files of the referee were changed while you worked: "
                    f"{', '.join(changed)}. They have been restored. Change only files in your own folder.",
                ),
            )
            report.passed = False
            report.downgrade(VerificationLevel.UNVERIFIED, "the referee's files were tampered with")
        outcome.record(report)
        judging.on_report(report)
        return report

    rounds = judging.repair_rounds
    confirmed_status: SolveStatus | None = None
    for round_number in range(rounds + 1):
        report = check(round_number, 0)
        # A simulator that crashed on this solution is repaired (once per round) and asked again.
        if any(i.kind == "simulator_error" for i in report.issues) and gate.repair(report, outcome.solution_path):
            report = check(round_number, 1)
        if report.passed:
            return outcome
        if not report.checkable and confirmed_status is report.status:
            outcome.note = f"the optimizer confirmed status '{report.status.value}' after re-checking its model"
            return outcome
        if round_number == rounds:
            break
        confirmed_status = None if report.checkable else report.status
        result = agent.run(_follow_up(task, report, round_number + 1, rounds), history=result.messages)
        outcome.usage_tokens += result.usage.total_tokens
        if not result.submitted:
            outcome.note = f"repair round {round_number + 1} ended without an accepted model: {result.reason}"
            _restore_last_accepted(workspace, outcome)
            return outcome
        _snapshot(workspace, outcome, round_number + 1)
        _read_solution(workspace, outcome)
    outcome.note = f"still failing validation after {rounds} repair round(s)"
    return outcome


def revalidate(outcome: OptimizerOutcome, judging: Judging) -> None:
    """Judge a passed optimizer's final solution again with the current referee (after the simulator changed)."""
    last = outcome.reports[-1] if outcome.reports else None
    snapshot = outcome.final_snapshot
    if last is None or not last.passed or snapshot is None:
        return
    report = judging.validate(outcome, snapshot / "solution.json", last.round, last.attempt + 1)
    outcome.record(report)
    if not report.passed:
        outcome.note = f"passed with simulator version {last.referee_version} but fails the repaired simulator"


def _read_solution(workspace: Workspace, outcome: OptimizerOutcome) -> None:
    solution, _ = load_solution(workspace, outcome.solution_path)
    if solution is not None:
        outcome.status, outcome.objective = solution.status, solution.objective
        # The agent may have switched solvers (e.g. away from a size-limited licence): record what it used.
        if solution.solver:
            outcome.solver = solution.solver


def _restore_last_accepted(workspace: Workspace, outcome: OptimizerOutcome) -> None:
    """After a failed repair, the files on disk may be half-edited: bring back the last accepted ones."""
    snapshot = outcome.final_snapshot
    if snapshot is None:
        return
    for name in ("model.py", "solution.json"):
        if workspace.exists(snapshot / name):
            workspace.copy(snapshot / name, outcome.workdir / name)
    _read_solution(workspace, outcome)


def report_line(report: ValidationReport) -> str:
    """One line of progress for a validation round."""
    if report.passed:
        return f"validation round {report.round}: passed, objective {report.objective_model}"
    first = report.issues[0].message.splitlines()[0] if report.issues else "failed"
    more = f" (+{len(report.issues) - 1} more)" if len(report.issues) > 1 else ""
    return f"validation round {report.round}: failed: {first[:160]}{more}"


def outcome_dict(outcome: OptimizerOutcome) -> dict[str, Any]:
    return {
        "name": outcome.name,
        "solver": outcome.solver,
        "status": outcome.status.value,
        "objective": outcome.objective,
        "verified": outcome.verified,
        "level": outcome.level.value,
        "level_reason": outcome.level_reason,
        "note": outcome.note,
        "rounds": len(outcome.reports),
        "reports": [r.model_dump(mode="json") for r in outcome.reports],
        "refused_files": outcome.refused,
    }
