"""The feasible-region cross-check: exported model rows against the simulator at probe points."""

from __future__ import annotations

from pathlib import Path

import highspy
import pytest

from nemo_opt.sandbox import make_sandbox
from nemo_opt.sandbox.base import Limits
from nemo_opt.solution import Solution
from nemo_opt.spec import ProblemSpec, data_from_spec
from nemo_opt.stages.crosscheck import cross_check, read_model_file
from nemo_opt.stages.validate import validate
from nemo_opt.workspace import Workspace
from tests.scenarios import product_mix

SPEC = ProblemSpec.model_validate(product_mix.SPEC)
OPTIMUM = {"make": {"table": 30.0, "chair": 40.0}}


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    ws = Workspace(tmp_path / "run")
    ws.create()
    ws.write_json("data.json", data_from_spec(SPEC))
    ws.write_text("simulator/__init__.py", "")
    ws.write_text("simulator/simulator.py", product_mix.SIMULATOR_CODE)
    (ws.root / "optimizers" / "opt_1").mkdir(parents=True)
    return ws


def _export(
    ws: Workspace,
    *,
    finishing: float | None = 100,
    min_chairs: float = 10,
    integer: bool = True,
    carpentry: float = 240,
    name: str = "model.mps",
) -> Path:
    """Write the workshop model (optionally mutated) with HiGHS, as an optimizer's model.py would."""
    h = highspy.Highs()
    h.silent()
    add = h.addIntegral if integer else h.addVariable
    table, chair = add(lb=0, name="make_table"), add(lb=0, name="make_chair")
    h.addConstr(4 * table + 3 * chair <= carpentry, name="carpentry")
    if finishing is not None:
        h.addConstr(2 * table + chair <= finishing, name="finishing")
    h.addConstr(chair >= min_chairs, name="chair_orders")
    h.changeObjectiveSense(highspy.ObjSense.kMaximize)
    h.changeColCost(0, 70)
    h.changeColCost(1, 50)
    path = ws.root / "optimizers" / "opt_1" / name
    h.writeModel(str(path))
    return path


def _solution(ws: Workspace, model_file: str | None = "model.mps", columns: dict[str, str] | None = None) -> Path:
    return ws.write_json(
        "optimizers/opt_1/solution.json",
        {
            "status": "optimal",
            "objective": 4100.0,
            "variables": OPTIMUM,
            "model_file": model_file,
            "columns": columns if columns is not None else {"make_table": "make[table]", "make_chair": "make[chair]"},
        },
    )


def _check(ws: Workspace, path: Path, probes: int = 40):  # type: ignore[no-untyped-def]
    solution = Solution.model_validate_json(path.read_text())
    sandbox = make_sandbox("auto", ws.root, Limits(timeout=60))
    return cross_check(SPEC, ws, sandbox, solution, path.parent, probes=probes, atol=1e-6, rtol=1e-6, timeout=60)


def test_read_model_file_gives_rows_bounds_and_types(workspace: Workspace) -> None:
    model = read_model_file(_export(workspace))
    assert model.columns == ["make_table", "make_chair"] and model.rows == ["carpentry", "finishing", "chair_orders"]
    assert model.integer.tolist() == [True, True] and model.cost.tolist() == [70.0, 50.0]
    assert (model.matrix @ [30.0, 40.0]).tolist() == [240.0, 100.0, 40.0]


def test_the_right_model_agrees_everywhere(workspace: Workspace) -> None:
    _export(workspace)
    check = _check(workspace, _solution(workspace))
    assert check.ran and check.mapped_columns == 2 and check.skipped_rows == 0
    assert check.issues == [], [i.message for i in check.issues]
    assert len(check.points) == 40 and any(not p["model_feasible"] for p in check.points)


def test_a_dropped_constraint_that_keeps_the_optimum_is_caught(workspace: Workspace) -> None:
    # Without the finishing limit the model still accepts x* = (30, 40) with objective 4100, so validation at
    # x* passes; only points beyond x* show the difference.
    _export(workspace, finishing=None)
    check = _check(workspace, _solution(workspace))
    assert check.issues and all(i.kind == "feasible_region" for i in check.issues)
    assert any("too loose" in i.message and i.constraint == "finishing_capacity" for i in check.issues)


def test_a_loosened_non_binding_limit_is_caught(workspace: Workspace) -> None:
    _export(workspace, min_chairs=2)
    check = _check(workspace, _solution(workspace))
    assert any(i.constraint == "chair_orders" for i in check.issues), [i.message for i in check.issues]


def test_a_tightened_row_is_reported_with_the_row(workspace: Workspace) -> None:
    # carpentry <= 240 written as 241 is looser; as 240 with an extra cut below x* it would not reach x*, so the
    # tight mutation here is an extra limit that x* still meets: chairs <= 40.
    path = _export(workspace)
    h = highspy.Highs()
    h.silent()
    h.readModel(str(path))
    h.addRow(-highspy.kHighsInf, 40.0, 1, [1], [1.0])
    h.writeModel(str(path))
    check = _check(workspace, _solution(workspace))
    assert any("too tight" in i.message for i in check.issues), [i.message for i in check.issues]


def test_relaxed_integrality_is_reported_without_probes(workspace: Workspace) -> None:
    _export(workspace, integer=False)
    check = _check(workspace, _solution(workspace), probes=1)
    messages = [i.message for i in check.issues]
    assert any("make[table] is integer in the problem but continuous" in m for m in messages)


def test_columns_are_matched_by_name_without_a_map_and_lp_files_work(workspace: Workspace) -> None:
    _export(workspace, name="model.lp")
    check = _check(workspace, _solution(workspace, model_file="model.lp", columns={}))
    assert check.ran and check.mapped_columns == 2 and check.issues == []


def test_no_model_file_means_no_check_and_a_note(workspace: Workspace) -> None:
    check = _check(workspace, _solution(workspace, model_file=None))
    assert not check.ran and "no model file" in check.note


def test_validation_fails_on_a_region_disagreement_and_keeps_the_points(workspace: Workspace) -> None:
    _export(workspace, finishing=None)
    path = _solution(workspace)
    sandbox = make_sandbox("auto", workspace.root, Limits(timeout=60))
    report = validate(
        SPEC, workspace, sandbox, path, optimizer="opt_1", round_number=0, atol=1e-6, rtol=1e-6, timeout=60, probes=24
    )
    assert not report.passed and report.crosscheck is not None and report.crosscheck["disagreements"] > 0
    assert report.objective_simulator == 4100.0  # the objective check alone passed
    assert (path.parent / "crosscheck_0.json").exists()
    assert "[feasible_region]" in report.render()
