"""The simulator agent's task: an imperative ``simulate(solution, data, tol)`` with its own pytest cases."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from nemo_opt.agent.base import Acceptance, Agent, AgentResult, AgentTask
from nemo_opt.prompts import load_prompt
from nemo_opt.result import Event
from nemo_opt.sandbox.base import Sandbox
from nemo_opt.solution import ValidationReport
from nemo_opt.spec import ProblemSpec, VarType, index_keys
from nemo_opt.stages.context import spec_context
from nemo_opt.stages.validate import run_simulator
from nemo_opt.workspace import Workspace

__all__ = ["SIMULATOR_ACCEPTANCE", "SimulatorAgentGate", "accept_simulator", "probe_solution", "simulator_task"]

SIMULATOR_ACCEPTANCE = (
    "`simulator/simulator.py` defines `simulate`, `python -m pytest -q simulator/test_simulator.py` passes, "
    "and `simulate` returns a verdict (no exception) for a well-formed solution."
)
TEST_COMMAND = "python -m pytest -q -p no:cacheprovider simulator/test_simulator.py"


def probe_solution(spec: ProblemSpec) -> dict[str, object]:
    """A well-formed solution (every variable at a bound or zero) used to check the simulator does not crash."""
    variables: dict[str, object] = {}
    for var in spec.variables:
        value = var.lower if var.lower is not None else (var.upper if var.upper is not None else 0.0)
        if var.type is not VarType.CONTINUOUS:
            value = float(round(value))
        if not var.indices:
            variables[var.name] = value
            continue
        nested: dict[str, object] = {}
        for key in index_keys(spec, var.indices):
            level = nested
            for part in key[:-1]:
                level = level.setdefault(part, {})  # type: ignore[assignment]
            level[key[-1]] = value
        variables[var.name] = nested
    return {"status": "optimal", "objective": None, "variables": variables}


def accept_simulator(workspace: Workspace, sandbox: Sandbox, spec: ProblemSpec, timeout: float) -> Acceptance:
    """The simulator's submit check."""
    source = workspace.simulator_dir / "simulator.py"
    tests = workspace.simulator_dir / "test_simulator.py"
    if not source.exists():
        return Acceptance(False, "simulator/simulator.py does not exist.")
    if "def simulate" not in source.read_text(encoding="utf-8", errors="replace"):
        return Acceptance(False, "simulator/simulator.py does not define simulate(solution, data, tol).")
    if not tests.exists():
        return Acceptance(False, "simulator/test_simulator.py does not exist; write pytest cases computed by hand.")
    result = sandbox.run(TEST_COMMAND, cwd=workspace.root, timeout=timeout)
    if result.exit_code == 5:
        return Acceptance(False, "pytest collected no tests in simulator/test_simulator.py (name them test_*).")
    if not result.ok:
        return Acceptance(False, f"the simulator tests fail ({result.describe()}):\n{result.output[-4000:]}")
    probe = workspace.write_json(workspace.internal / "probe_solution.json", probe_solution(spec))
    verdict = run_simulator(workspace, sandbox, probe, workspace.internal / "probe_verdict.json", 1e-6, timeout)
    if not verdict.ok:
        return Acceptance(
            False,
            "simulate() crashed on a well-formed solution (every variable at its lower bound, in "
            f".nemo/probe_solution.json):\n{verdict.error[-4000:]}",
        )
    return Acceptance(True)


def simulator_task(
    spec: ProblemSpec,
    problem: str,
    workspace: Workspace,
    sandbox: Sandbox,
    *,
    protocol: str,
    timeout: float,
    memory_note: str = "",
) -> AgentTask:
    """The simulator agent's task, with its submit check bound in."""
    context = spec_context(spec)
    system, task_prompt = load_prompt("simulator"), load_prompt("simulator_task")
    protocol_prompt = load_prompt(f"protocol_{protocol}")
    workspace.simulator_dir.mkdir(parents=True, exist_ok=True)
    # A package marker keeps `simulator.simulator` importable under pytest's default import mode.
    init = workspace.simulator_dir / "__init__.py"
    if not init.exists():
        init.write_text("", encoding="utf-8")
    return AgentTask(
        name="simulator",
        system=system.render(protocol=protocol_prompt.render(workdir=".", acceptance=SIMULATOR_ACCEPTANCE)),
        instruction=task_prompt.render(
            problem=problem,
            spec=context.spec_json,
            data_keys=context.data_keys,
            variable_shapes=context.variable_shapes,
            memory=memory_note,
        ),
        workdir=workspace.root,
        accept=lambda: accept_simulator(workspace, sandbox, spec, timeout),
        acceptance_text=SIMULATOR_ACCEPTANCE,
        template=(system.name, f"{system.version}.{task_prompt.version}.{protocol_prompt.version}"),
    )


class SimulatorAgentGate:
    """Runs the simulator agent and lets optimizers wait for it or ask it to repair a crash (one at a time)."""

    def __init__(
        self, agent: Agent, task: AgentTask, workspace: Workspace, repairs: int, on_event: Callable[[Event], None]
    ) -> None:
        self.agent, self.task, self.workspace, self.repairs_left = agent, task, workspace, repairs
        self.on_event = on_event
        self.done = threading.Event()
        self.lock = threading.Lock()
        self.result: AgentResult | None = None
        self.error: Exception | None = None

    def run(self) -> None:
        """Run the simulator agent to its end (call in a worker thread)."""
        try:
            self.result = self.agent.run(self.task)
            if self.result.submitted:
                self.accepted()
        except Exception as exc:  # recorded and reported to every optimizer that waits
            self.error = exc
        finally:
            self.done.set()
        problem = self.wait()
        steps = self.result.steps if self.result else 0
        self.on_event(Event("simulator", "info", problem or f"accepted after {steps} step(s)"))

    def accepted(self) -> None:
        """Called when the simulator agent's submit was accepted, before any optimizer is told (a hook)."""

    def wait(self) -> str | None:
        """Block until the simulator agent is done; None when its simulator was accepted, else why not."""
        self.done.wait()
        if self.error is not None:
            return f"the simulator agent failed: {self.error}"
        if self.result is None or not self.result.submitted:
            reason = self.result.reason if self.result else "it did not run"
            return f"the simulator agent ended without an accepted simulator: {reason}"
        return None

    def repair(self, report: ValidationReport, solution: Path) -> bool:
        """Resume the simulator agent with the crash report; True when it resubmitted."""
        with self.lock:
            if self.repairs_left <= 0 or self.result is None:
                return False
            self.repairs_left -= 1
            prompt = load_prompt("simulator_repair")
            self.on_event(Event("simulator", "info", "repairing the simulator after a crash"))
            task = replace(
                self.task,
                instruction=prompt.render(report=report.render(), solution_path=self.workspace.rel(solution)),
                template=prompt.ref,
            )
            self.result = self.agent.run(task, history=self.result.messages)
            return self.result.submitted
