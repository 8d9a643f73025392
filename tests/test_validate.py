"""Validation V(x*), consensus over optimizers, and solver recommendation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nemo_opt.sandbox import make_sandbox
from nemo_opt.sandbox.base import Limits
from nemo_opt.solution import SolveStatus
from nemo_opt.spec import ProblemSpec, data_from_spec
from nemo_opt.stages.context import CHECK_PLACEHOLDER
from nemo_opt.stages.referee import Referee
from nemo_opt.stages.simulate import accept_simulator, probe_solution
from nemo_opt.stages.validate import check_domains, check_shapes, validate
from nemo_opt.workspace import Workspace
from tests.scenarios import product_mix

SPEC = ProblemSpec.model_validate(product_mix.SPEC)


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return product_mix.write_workspace(Workspace(tmp_path / "run"))


def _solution(ws: Workspace, make: dict[str, float], objective: float, status: str = "optimal") -> Path:
    return ws.write_json(
        "optimizers/opt_1/solution.json", {"status": status, "objective": objective, "variables": {"make": make}}
    )


def _referee(ws: Workspace) -> Referee:
    return Referee(ws, make_sandbox("auto", ws.root, Limits(timeout=60)), data_from_spec(SPEC), timeout=60)


def _check(ws: Workspace, path: Path):  # type: ignore[no-untyped-def]
    referee = _referee(ws)
    candidate = referee.candidate()  # frozen as it is, without the acceptance checks (one test freezes a crash)
    assert not isinstance(candidate, str), candidate
    referee.adopt(candidate)
    return validate(SPEC, ws, referee, path, optimizer="opt_1", round_number=0, atol=1e-6, rtol=1e-6)


def test_feasible_solution_with_matching_objective_passes(workspace: Workspace) -> None:
    report = _check(workspace, _solution(workspace, {"table": 30, "chair": 40}, 4100.0))
    assert report.passed and report.objective_simulator == 4100.0
    assert (workspace.root / "optimizers/opt_1/validation_0.json").exists()


def test_solver_noise_within_tolerance_passes(workspace: Workspace) -> None:
    report = _check(workspace, _solution(workspace, {"table": 29.9999999, "chair": 40.0000001}, 4100.000001))
    assert report.passed, report.render()


def test_objective_mismatch_reports_both_values(workspace: Workspace) -> None:
    report = _check(workspace, _solution(workspace, {"table": 30, "chair": 40}, 4200.0))
    assert not report.passed
    (issue,) = report.issues
    assert issue.kind == "objective_mismatch" and "4200" in issue.message and "4100" in issue.message


def test_violation_names_constraint_amount_and_variables(workspace: Workspace) -> None:
    report = _check(workspace, _solution(workspace, {"table": 51, "chair": 12}, 4170.0))
    (issue,) = report.issues
    assert issue.constraint == "finishing_capacity" and issue.amount == pytest.approx(14)
    assert issue.variables == ["make[table]", "make[chair]"]
    assert "finishing_capacity" in report.render()


def test_shape_type_and_bound_problems_are_found_without_the_simulator() -> None:
    assert [i.kind for i in check_shapes(SPEC, {})] == ["missing_variable"]
    issues = check_shapes(SPEC, {"make": {"table": 3}})
    assert issues[0].kind == "missing_variable" and "make[chair]" in issues[0].variables
    assert check_shapes(SPEC, {"make": {"table": "3", "chair": 1}})[0].kind == "malformed_solution"
    kinds = [i.kind for i in check_domains(SPEC, {"make": {"table": 2.5, "chair": -1}}, 1e-6, 1e-6)]
    assert kinds == ["variable_type", "variable_bounds"]


def test_crashing_simulator_is_reported_not_trusted(workspace: Workspace) -> None:
    workspace.write_text("simulator/simulator.py", "def simulate(solution, data, tol=1e-6):\n    return 1 / 0\n")
    report = _check(workspace, _solution(workspace, {"table": 30, "chair": 40}, 4100.0))
    assert not report.passed and report.issues[0].kind == "simulator_error"
    assert "ZeroDivisionError" in report.issues[0].message


def test_infeasible_status_is_not_checkable(workspace: Workspace) -> None:
    path = workspace.write_json("optimizers/opt_1/solution.json", {"status": "Infeasible", "objective": None})
    report = _check(workspace, path)
    assert not report.passed and not report.checkable and report.status is SolveStatus.INFEASIBLE


def test_simulator_acceptance_runs_its_tests_and_a_probe(workspace: Workspace) -> None:
    referee = _referee(workspace)
    assert accept_simulator(referee, SPEC).ok
    assert referee.current is not None and referee.current.number == 1
    probe = probe_solution(SPEC)
    assert probe["variables"] == {"make": {"table": 0.0, "chair": 0.0}}
    workspace.write_text("simulator/test_simulator.py", "def test_wrong():\n    assert 1 == 2\n")
    verdict = accept_simulator(referee, SPEC)
    assert not verdict.ok and "tests fail" in verdict.reason and "assert 1 == 2" in verdict.reason
    assert "fix the test instead" in verdict.reason and "as arithmetic on the numbers" in verdict.reason
    workspace.write_text("simulator/test_simulator.py", "x = 1\n")
    assert "collected no tests" in accept_simulator(referee, SPEC).reason
    # Refused candidates never replace the accepted version.
    assert referee.current.number == 1


def test_a_simulator_that_checks_nothing_is_not_accepted(workspace: Workspace) -> None:
    # As a 1.5B model wrote it: the objective from the text, no check at all, and one passing feasible test.
    workspace.write_text(
        "simulator/simulator.py",
        "def simulate(solution, data, atol=1e-6, rtol=1e-6):\n"
        "    make = solution['make']\n"
        "    objective = 70 * float(make['table']) + 50 * float(make['chair'])\n"
        "    return {'feasible': True, 'objective': objective, 'violations': []}\n",
    )
    workspace.write_text(
        "simulator/test_simulator.py",
        "from simulator.simulator import simulate\n\n\ndef test_feasible():\n"
        "    assert simulate({'make': {'table': 10, 'chair': 20}}, {})['objective'] == 1700\n",
    )
    referee = _referee(workspace)
    verdict = accept_simulator(referee, SPEC)
    assert not verdict.ok and "checks none of the problem's conditions" in verdict.reason
    assert referee.current is None
    # One real check (here only the chair orders, which every-variable-at-0 breaks) is enough to be accepted.
    code = workspace.read_text("simulator/simulator.py").replace(
        "    return {'feasible': True",
        "    low = float(make['chair']) < 10\n    return {'feasible': not low",
    )
    # The skeleton's placeholder check left in place is named, not reported as a crash.
    workspace.write_text("simulator/simulator.py", code.replace("    low =", f"    {CHECK_PLACEHOLDER}\n    low =", 1))
    verdict = accept_simulator(referee, SPEC)
    assert not verdict.ok and "still has the placeholder line" in verdict.reason
    workspace.write_text("simulator/simulator.py", code)
    assert accept_simulator(referee, SPEC).ok


def test_solution_json_written_by_harness_is_plain_json(workspace: Workspace) -> None:
    _check(workspace, _solution(workspace, {"table": 30, "chair": 40}, 4100.0))
    verdict = json.loads((workspace.root / "optimizers/opt_1/simulation_0.json").read_text())
    assert verdict == {"ok": True, "feasible": True, "objective": 4100.0, "violations": [], "error": ""}


UNBOUNDED_MPS = """NAME model
ROWS
 N obj
 L carpentry
 L finishing
 G chair_orders
COLUMNS
    make_table obj -70 carpentry 4
    make_table finishing 2
    make_chair obj -50 chair_orders 1
RHS
    RHS carpentry 240 finishing 100
    RHS chair_orders 10
ENDATA
"""


def test_an_unbounded_model_is_told_which_decisions_grow_without_end(workspace: Workspace) -> None:
    # The 1.5B model's product mix: chairs left out of the carpentry and finishing rows, so nothing limits them.
    workspace.write_text("optimizers/opt_1/model.mps", UNBOUNDED_MPS)
    path = workspace.write_json(
        "optimizers/opt_1/solution.json",
        {"status": "unbounded", "objective": None, "variables": {}, "model_file": "model.mps"},
    )
    report = _check(workspace, path)
    assert not report.passed and not report.checkable
    (direction,) = [issue for issue in report.issues if issue.kind == "unbounded_direction"]
    assert direction.variables == ["make[chair]"]
    assert "make[chair] up" in direction.message
    # A bounded model (the chairs limited by carpentry) has no such direction to report.
    bounded = UNBOUNDED_MPS.replace(
        "make_chair obj -50 chair_orders 1", "make_chair obj -50 chair_orders 1\n    make_chair carpentry 3"
    )
    workspace.write_text("optimizers/opt_1/model.mps", bounded)
    assert not [i for i in _check(workspace, path).issues if i.kind == "unbounded_direction"]
