"""The feasible-region cross-check: exported model rows against the simulator at probe points."""

from __future__ import annotations

from pathlib import Path

import highspy
import numpy as np
import pytest

from nemo_opt.sandbox import make_sandbox
from nemo_opt.sandbox.base import Limits
from nemo_opt.solution import Solution
from nemo_opt.spec import ProblemSpec, data_from_spec
from nemo_opt.stages.crosscheck import (
    CrossCheck,
    compare_regions,
    load_exported_model,
    read_model_file,
    solve_model,
)
from nemo_opt.stages.referee import Referee
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


def _referee(ws: Workspace) -> Referee:
    ws.write_text("simulator/test_simulator.py", product_mix.SIMULATOR_TESTS)
    referee = Referee(ws, make_sandbox("auto", ws.root, Limits(timeout=60)), data_from_spec(SPEC), timeout=60)
    candidate = referee.candidate()
    assert not isinstance(candidate, str), candidate
    referee.adopt(candidate)
    return referee


def _check(ws: Workspace, path: Path, probes: int = 40) -> CrossCheck:
    """The cross-check as validation runs it: the host reads the exported model, the frozen simulator judges."""
    solution = Solution.model_validate_json(path.read_text())
    referee = _referee(ws)
    loaded = load_exported_model(ws, path.parent, solution, SPEC, referee.sandbox)
    if isinstance(loaded, str):
        return CrossCheck(False, loaded)
    model, mapping = loaded
    judge = lambda points: referee.check_batch(points, 1e-6)  # noqa: E731
    return compare_regions(SPEC, solution.variables, model, mapping, judge, probes=probes, atol=1e-6, rtol=1e-6)


def test_read_model_file_gives_rows_bounds_and_types(workspace: Workspace) -> None:
    model = read_model_file(_export(workspace))
    assert model.columns == ["make_table", "make_chair"] and model.rows == ["carpentry", "finishing", "chair_orders"]
    assert model.integer.tolist() == [True, True] and model.cost.tolist() == [70.0, 50.0]
    assert (model.matrix @ [30.0, 40.0]).tolist() == [240.0, 100.0, 40.0]
    assert model.sense == -1 and model.maximize and model.hessian is None and not model.quadratic


def test_solve_model_re_solves_and_fixes_columns(workspace: Workspace) -> None:
    model = read_model_file(_export(workspace))
    whole = solve_model(model, time_limit=10)
    assert whole.status == "optimal" and whole.objective == 4100.0 and whole.values is not None
    assert whole.values.tolist() == pytest.approx([30.0, 40.0])
    # 45 tables leave carpentry for 20 chairs but finishing for 10: 3150 + 500.
    fixed = solve_model(model, time_limit=10, fixed={0: 45.0})
    assert fixed.status == "optimal" and fixed.objective == 3650.0
    assert solve_model(model, time_limit=10, fixed={0: 51.0}).status == "infeasible"


def _export_auxiliary(ws: Workspace, *, finishing: float = 100, chair_cap: float | None = None) -> Path:
    """The workshop model with its hours (and optionally the chairs) routed through auxiliary columns, as a
    model.py that names its intermediate quantities would write it: hours_c = 4T + 3C <= 240, hours_f = 2T + C
    <= finishing; with ``chair_cap``, out_chair = C <= chair_cap (an extra limit the problem does not have)."""
    h = highspy.Highs()
    h.silent()
    table, chair = h.addIntegral(lb=0, name="make_table"), h.addIntegral(lb=0, name="make_chair")
    carpentry = h.addVariable(lb=0, ub=240, name="hours_c")
    hours = h.addVariable(lb=0, ub=finishing, name="hours_f")
    h.addConstr(4 * table + 3 * chair - carpentry == 0, name="carpentry")
    h.addConstr(2 * table + chair - hours == 0, name="finishing")
    if chair_cap is not None:
        out = h.addVariable(lb=0, ub=chair_cap, name="out_chair")
        h.addConstr(chair - out == 0, name="chair_out")
    h.addConstr(chair >= 10, name="chair_orders")
    h.changeObjectiveSense(highspy.ObjSense.kMaximize)
    h.changeColCost(0, 70)
    h.changeColCost(1, 50)
    path = ws.root / "optimizers" / "opt_1" / "model.mps"
    h.writeModel(str(path))
    return path


def test_a_right_model_with_auxiliary_columns_agrees(workspace: Workspace) -> None:
    # Its capacity rows touch the auxiliary hour columns; they are decided by completing those columns, never
    # treated as absent (which reported "model too loose" for this correct model).
    _export_auxiliary(workspace)
    check = _check(workspace, _solution(workspace))
    assert check.ran and check.mapped_columns == 2 and check.auxiliary_columns == 2 and check.skipped_rows == 2
    assert check.unknown_probes == 0 and check.issues == [], [i.message for i in check.issues]
    assert any(p["model_feasible"] is False for p in check.points)
    assert any(p["model_feasible"] is True and p["changed"] != OPTIMUM["make"] for p in check.points)


def test_a_loosened_auxiliary_bound_is_caught_through_the_completion(workspace: Workspace) -> None:
    _export_auxiliary(workspace, finishing=120)
    check = _check(workspace, _solution(workspace))
    assert any("too loose" in i.message and i.constraint == "finishing_capacity" for i in check.issues), [
        i.message for i in check.issues
    ]


def test_an_extra_limit_on_an_auxiliary_column_is_too_tight(workspace: Workspace) -> None:
    _export_auxiliary(workspace, chair_cap=40)
    check = _check(workspace, _solution(workspace))
    tight = [i.message for i in check.issues if "too tight" in i.message]
    assert tight and any("no values of its 3 auxiliary columns satisfy" in m for m in tight), check.issues


def _with_miqp_column(path: Path, rows: list[int], low: float = 0.0, free: bool = False) -> None:
    """Add an integer auxiliary column z in [low, 100] to ``rows`` with a quadratic cost: every completion is
    then a MIQP, which HiGHS cannot solve; with ``free`` the mapped columns lose their bounds."""
    h = highspy.Highs()
    h.silent()
    h.readModel(str(path))
    h.addCol(0.0, low, 100.0, len(rows), rows, [1.0] * len(rows))
    h.changeColIntegrality(2, highspy.HighsVarType.kInteger)
    if free:
        h.changeColsBounds(2, [0, 1], [-highspy.kHighsInf] * 2, [highspy.kHighsInf] * 2)
    hessian = highspy.HighsHessian()
    hessian.dim_, hessian.format_ = 3, highspy.HessianFormat.kTriangular
    hessian.start_, hessian.index_, hessian.value_ = [0, 0, 0, 1], [2], [-1e-6]
    h.passHessian(hessian)
    h.writeModel(str(path))


def test_probes_highs_cannot_complete_are_unknown_and_left_out(workspace: Workspace) -> None:
    # z enters the carpentry row only: probes that break a bound or the other rows are rejected for any z,
    # the rest need a completion HiGHS cannot do; those are unknown and not sent to the simulator.
    _with_miqp_column(_export(workspace), rows=[0])
    check = _check(workspace, _solution(workspace))
    assert check.ran and 0 < check.unknown_probes < 40 and check.auxiliary_columns == 1 and check.skipped_rows == 1
    unknown = [p for p in check.points if p["model_feasible"] is None]
    assert len(unknown) == check.unknown_probes and all("simulator" not in p for p in unknown)
    assert all("integer columns" in p["unknown"] for p in unknown)
    assert all(p["model_feasible"] is False for p in check.points if "simulator" in p)
    assert not any("too loose" in i.message for i in check.issues)


def test_without_any_decided_probe_the_check_did_not_run(workspace: Workspace) -> None:
    _with_miqp_column(_export(workspace), rows=[0, 1, 2], low=-100, free=True)
    check = _check(workspace, _solution(workspace))
    assert not check.ran and check.unknown_probes == 40 and check.issues == []
    assert "could not be completed at any probe point" in check.note and "integer columns" in check.note


def test_a_wrong_quadratic_objective_term_is_caught_away_from_the_optimum(workspace: Workspace) -> None:
    # 70 T + 50 C - (T - 30)^2 equals the profit at x* (4100) and nowhere T differs from 30.
    path = _export(workspace)
    h = highspy.Highs()
    h.silent()
    h.readModel(str(path))
    h.changeColCost(0, 130.0)
    h.changeObjectiveOffset(-900.0)
    hessian = highspy.HighsHessian()
    hessian.dim_, hessian.format_ = 2, highspy.HessianFormat.kTriangular
    hessian.start_, hessian.index_, hessian.value_ = [0, 1, 1], [0], [-2.0]
    h.passHessian(hessian)
    h.writeModel(str(path))
    model = read_model_file(path)
    assert model.quadratic and np.array_equal(model.hessian.toarray(), [[-2.0, 0.0], [0.0, 0.0]])  # type: ignore[union-attr]
    check = _check(workspace, _solution(workspace))
    assert any("objective" in i.message and "away from the optimum" in i.message for i in check.issues)


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
    # Orders for at least 0 chairs instead of 10: not binding at x*, so the tie holds and only the region differs.
    _export(workspace, min_chairs=0)
    path = _solution(workspace)
    referee = _referee(workspace)
    report = validate(
        SPEC, workspace, referee, path, optimizer="opt_1", round_number=0, atol=1e-6, rtol=1e-6, probes=24
    )
    assert report.tie is not None and report.tie["tied"] is True
    assert not report.passed and report.crosscheck is not None and report.crosscheck["disagreements"] > 0
    assert report.objective_simulator == 4100.0  # the objective check alone passed
    assert (path.parent / "crosscheck_0.json").exists()
    assert "[feasible_region]" in report.render() and report.level.value == "unverified"


def test_validation_fails_when_the_exported_model_has_a_better_optimum(workspace: Workspace) -> None:
    # Without the finishing row the exported model's optimum is 4170: x* = 4100 is not its answer.
    _export(workspace, finishing=None)
    report = validate(
        SPEC,
        workspace,
        _referee(workspace),
        _solution(workspace),
        optimizer="opt_1",
        round_number=0,
        atol=1e-6,
        rtol=1e-6,
        probes=24,
    )
    assert not report.passed and [i.kind for i in report.issues] == ["model_tie"]
    assert "4170" in report.issues[0].message and report.crosscheck is None


NAN_MPS = """NAME m
OBJSENSE
    MAX
ROWS
 N  obj
 L  r0
COLUMNS
    make_table  obj  70  r0  nan
    make_chair  obj  50  r0  1
RHS
    RHS  r0  100
ENDATA
"""


@pytest.mark.parametrize(
    ("text", "reason"),
    [(NAN_MPS, "non-finite"), ("this is not a model\n" * 50, "cannot be read"), ("", "cannot be read")],
    ids=["nan-coefficient", "garbage", "empty"],
)
def test_an_agents_model_file_is_parsed_apart_and_checked(workspace: Workspace, text: str, reason: str) -> None:
    """The agent's MPS is parsed by HiGHS in a sandboxed process; what comes back is checked before use."""
    (workspace.root / "optimizers" / "opt_1" / "model.mps").write_text(text)
    solution = Solution.model_validate_json(_solution(workspace).read_text())
    referee = _referee(workspace)
    loaded = load_exported_model(workspace, workspace.optimizer_dir(1), solution, SPEC, referee.sandbox)
    assert isinstance(loaded, str) and reason in loaded, loaded
