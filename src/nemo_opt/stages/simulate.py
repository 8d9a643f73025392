"""The simulator agent's task: an imperative ``simulate(solution, data, tol)`` with its own pytest cases."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

from nemo_opt.agent.base import Acceptance, Agent, AgentResult, AgentStatus, AgentTask
from nemo_opt.llm.base import Message, Usage
from nemo_opt.llm.journal import ReplyJournal
from nemo_opt.prompts import load_prompt
from nemo_opt.result import Event
from nemo_opt.solution import ValidationReport
from nemo_opt.spec import ProblemSpec, VarType, index_keys
from nemo_opt.stages.context import (
    CHECK_PLACEHOLDER,
    TESTS_SKELETON,
    sets_text,
    simulator_skeleton,
    spec_context,
    with_simulator_helpers,
    with_tests_header,
    without_simulator_helpers,
)
from nemo_opt.stages.referee import Referee, RefereeVersion
from nemo_opt.workspace import Workspace

__all__ = ["SIMULATOR_ACCEPTANCE", "SimulatorAgentGate", "accept_simulator", "probe_solution", "simulator_task"]

SIMULATOR_ACCEPTANCE = (
    "`simulator/simulator.py` defines `simulate`, `python -m pytest -q simulator/test_simulator.py` passes "
    "when run on its own (in a fresh folder holding only your simulator/*.py files and data.json), and "
    "`simulate` returns a verdict (no exception) for a well-formed solution."
)
TEST_COMMAND = "python -m pytest -q -p no:cacheprovider simulator/test_simulator.py"
SIMULATOR_FILE, TESTS_FILE = "simulator/simulator.py", "simulator/test_simulator.py"


def probe_solution(spec: ProblemSpec, at: float | None = None) -> dict[str, object]:
    """A well-formed solution used to check the simulator does not crash: every variable at a bound or zero, or
    every variable at ``at`` when given."""
    variables: dict[str, object] = {}
    for var in spec.variables:
        value = at if at is not None else var.lower if var.lower is not None else var.upper or 0.0
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


# Points a simulator with any check of the problem's conditions rejects at least one of. A 1.5B model's
# simulator computed the objective and checked nothing; its one test (a feasible case) passed, and it was
# accepted as the referee.
EXTREMES = (0.0, 1e6, -1e6)


# A 1.5B model's test asserted an objective of 3650 for 20 tables and 15 chairs at 70 and 50 (it is 2150, as its
# simulator said) and it rewrote the simulator, not the test, three times.
_TESTS_HINT = (
    "Either file may be wrong: if the simulator follows the problem text, fix the test instead. Write a test's "
    "expected objective as arithmetic on the numbers of the text (each number times its value in the test's "
    "solution, summed), not as a number "
    "worked out by hand, and make its feasible solution meet every condition of the text."
)


def accept_simulator(referee: Referee, spec: ProblemSpec) -> Acceptance:
    """The simulator's submit check, on exactly what will be frozen: its files are read through the safe door,
    its tests run in isolation (a fresh folder, ``python -I -B``, no conftest), it must not crash on a
    well-formed solution, and then that version becomes the referee."""
    candidate = referee.candidate()
    if isinstance(candidate, str):
        return Acceptance(False, candidate)
    notes = "".join(f"\nNot part of the simulator: simulator/{n} ({why})." for n, why in candidate.refused.items())
    problem = _written_problem(candidate)
    if problem:
        return Acceptance(False, problem)
    tests = referee.run_tests(candidate)
    if isinstance(tests, str):
        return Acceptance(False, tests)
    if tests.exit_code == 5:
        return Acceptance(False, "pytest collected no tests in simulator/test_simulator.py (name them test_*)." + notes)
    if not tests.ok:
        return Acceptance(
            False,
            f"the simulator tests fail when run on their own ({TEST_COMMAND}, in a fresh folder holding only "
            f"simulator/*.py and data.json; {tests.describe()}):\n{tests.output[-4000:]}{notes}\n{_TESTS_HINT}",
        )
    problem = _running_problem(referee, spec, candidate)
    if problem:
        return Acceptance(False, problem + notes)
    referee.adopt(candidate)
    return Acceptance(True)


def check_simulator_draft(referee: Referee, spec: ProblemSpec) -> str:
    """What makes the live simulator/simulator.py fail whatever its tests say (empty: nothing): asked before
    its tests, so the agent fixes it first. The same checks as accept_simulator's, without the tests."""
    candidate = referee.candidate(tests=False)
    if isinstance(candidate, str):
        return candidate
    return _written_problem(candidate) or _running_problem(referee, spec, candidate)


_KEY_ERROR = re.compile(r"KeyError: '([^'\n]{1,200})'\s*$")


def _missing_key_hint(error: str, spec: ProblemSpec) -> str:
    """What a KeyError in simulate() means, when it names a key neither data.json nor the solution has. On the
    Quickstart example a 1.5B model read `data['carpentry_hours_limit']`, a key it made up, in six drafts running
    while the traceback alone was said back."""
    match = _KEY_ERROR.search(error.strip())
    data_keys = [s.name for s in spec.sets] + [p.name for p in spec.parameters]
    names = [v.name for v in spec.variables]
    if match is None or match.group(1) in data_keys + names:
        return ""
    return (
        f"\nNeither data.json nor the solution has the key {match.group(1)!r}. The solution's keys are the "
        f"variables {', '.join(names)}; data.json's are {', '.join(data_keys) or 'none'}. Write the problem "
        'text\'s numbers in the code itself (e.g. `at_most("hours", 2 * a + 3 * b, 100, ["a", "b"])`).'
    )


def _written_problem(candidate: RefereeVersion) -> str:
    """What the simulator's text alone shows to be wrong (empty: nothing)."""
    code = candidate.files["simulator/simulator.py"]
    if b"def simulate" not in code:
        return "simulator/simulator.py does not define simulate(solution, data, tol)."
    if CHECK_PLACEHOLDER.encode() in code:
        return (
            f"simulator/simulator.py still has the placeholder line `{CHECK_PLACEHOLDER}`: replace it with one "
            'line per condition of the problem text, e.g. `at_most("hours", 2 * a + 3 * b, 100, ["a", "b"])`.'
        )
    return ""


def _running_problem(referee: Referee, spec: ProblemSpec, candidate: RefereeVersion) -> str:
    """What running the simulator shows (empty: nothing): a crash on a well-formed solution, or no check with
    any bite (every variable at 0, at 1e6 and at -1e6 judged feasible)."""
    verdict = referee.check(probe_solution(spec)["variables"], 1e-6, candidate)
    if not verdict.ok:
        return (
            "simulate() crashed on a well-formed solution (every variable at its lower bound, or 0):\n"
            f"{verdict.error[-4000:]}{_missing_key_hint(verdict.error, spec)}"
        )
    points = [cast(dict[str, Any], probe_solution(spec, at)["variables"]) for at in EXTREMES]
    extremes = referee.check_batch(points, 1e-6, candidate)
    if not isinstance(extremes, str) and all(verdict.feasible for verdict in extremes):
        return (
            "simulate() judges every solution feasible, even every variable at 0, at 1,000,000 and at -1,000,000: "
            "it checks none of the problem's conditions. Add one check per condition of the problem text "
            "(limits, requirements, bounds, whole numbers)."
        )
    return ""


def simulator_task(
    spec: ProblemSpec,
    problem: str,
    workspace: Workspace,
    referee: Referee,
    *,
    protocol: str,
    memory_note: str = "",
) -> AgentTask:
    """The simulator agent's task, with its submit check bound in; it writes only ``simulator/``."""
    context = spec_context(spec)
    whole_files = protocol == "files"
    system, task_prompt = load_prompt("simulator"), load_prompt("simulator_files" if whole_files else "simulator_task")
    protocol_prompt = load_prompt(f"protocol_{protocol}")
    files = (SIMULATOR_FILE, TESTS_FILE) if whole_files else ()
    workspace.make_dirs(workspace.simulator_dir)
    # A package marker keeps `simulator.simulator` importable under pytest's default import mode.
    init = workspace.simulator_dir / "__init__.py"
    if not workspace.exists(init):
        workspace.write_text(init, "")
    protocol_text = protocol_prompt.render(
        workdir=".", acceptance=SIMULATOR_ACCEPTANCE, files=" and ".join(f"`{f}`" for f in files)
    )
    return AgentTask(
        name="simulator",
        system=system.render(protocol=protocol_text),
        instruction=task_prompt.render(
            problem=problem,
            spec=context.spec_json,
            data_keys=context.data_keys,
            variable_shapes=context.variable_shapes,
            data=context.data_json,
            variables=context.variable_list,
            sets=sets_text(spec),
            skeleton=simulator_skeleton(spec).rstrip(),
            memory=memory_note,
        ),
        workdir=workspace.root,
        accept=lambda: accept_simulator(referee, spec),
        acceptance_text=SIMULATOR_ACCEPTANCE,
        template=(system.name, f"{system.version}.{task_prompt.version}.{protocol_prompt.version}"),
        writable=workspace.simulator_dir,
        files=files,
        finish_file=_finish_simulator_file if whole_files else None,
        show_file=(lambda path, text: without_simulator_helpers(text)) if whole_files else None,
        check_file=(lambda path: check_simulator_draft(referee, spec) if path == SIMULATOR_FILE else "")
        if whole_files
        else None,
        file_signs={SIMULATOR_FILE: r"^\s*def simulate\(", TESTS_FILE: r"^\s*def test_\w*\("},
        file_hints={
            TESTS_FILE: "Complete this file (expected values as arithmetic on the text's numbers):\n\n"
            f"```python\n{TESTS_SKELETON}```"
        },
    )


def _finish_simulator_file(path: str, text: str) -> str:
    """The whole-file protocol's saved version of a simulator file: the tests get the fixed import header, the
    simulator the check helpers."""
    return with_tests_header(text) if path == TESTS_FILE else with_simulator_helpers(text)


class SimulatorAgentGate:
    """Runs the simulator agent and lets optimizers wait for it or ask it to repair a crash (one at a time).

    Each time the simulator is accepted, its conversation and journal position are saved
    (``.nemo/checkpoints/simulator.json``; its files are the referee's frozen version), so a resumed run starts
    from the accepted simulator instead of running the agent again (:meth:`restore`)."""

    def __init__(
        self,
        agent: Agent,
        task: AgentTask,
        workspace: Workspace,
        referee: Referee,
        repairs: int,
        on_event: Callable[[Event], None],
        journal: ReplyJournal | None = None,
    ) -> None:
        self.agent, self.task, self.workspace, self.repairs_left = agent, task, workspace, repairs
        self.referee, self.journal = referee, journal
        self.on_event = on_event
        self.done = threading.Event()
        self.lock = threading.Lock()
        self._working = threading.Event()
        self.result: AgentResult | None = None
        self.error: Exception | None = None

    @property
    def _meta(self) -> Path:
        return self.workspace.checkpoints / "simulator.json"

    def run(self) -> None:
        """Run the simulator agent to its end (call in a worker thread)."""
        self._working.set()
        try:
            self.result = self.agent.run(self.task)
            if self.result.submitted:
                self._save()  # checkpointed before any optimizer is told
        except Exception as exc:  # recorded and reported to every optimizer that waits
            self.error = exc
        finally:
            self._working.clear()
            self.done.set()
        problem = self.wait()
        steps = self.result.steps if self.result else 0
        self.on_event(Event("simulator", "info", problem or f"accepted after {steps} step(s)"))

    def busy(self) -> bool:
        """Whether the simulator agent is writing its files right now (its first run or a repair)."""
        return self._working.is_set()

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
        """Resume the simulator agent with the crash report; True when it resubmitted (the new checkpoint)."""
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
            self._working.set()
            try:
                self.result = self.agent.run(task, history=self.result.messages)
            finally:
                self._working.clear()
            if self.result.submitted:
                self._save()
            return self.result.submitted

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
