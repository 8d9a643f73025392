"""Tying the exported model to the reported answer: x* feasible in it, its objective at x*, x* optimal for it."""

from __future__ import annotations

from pathlib import Path

import highspy
import numpy as np

from nemo_opt.stages.crosscheck import ModelRows, read_model_file
from nemo_opt.stages.tie import tie_check

INF = highspy.kHighsInf
MAKE = {0: ("make", ("table",)), 1: ("make", ("chair",))}
OPTIMUM = {"make": {"table": 30.0, "chair": 40.0}}


def _write(h: highspy.Highs, folder: Path, name: str = "model.mps") -> ModelRows:
    path = folder / name
    h.writeModel(str(path))
    return read_model_file(path)


def _workshop(folder: Path, *, finishing: float = 100, table_profit: float = 70, auxiliary: bool = False) -> ModelRows:
    """The workshop product mix (x* = 30 tables, 40 chairs, profit 4100), optionally with its hours as
    auxiliary columns: hours_c = 4T + 3C <= 240, hours_f = 2T + C <= finishing."""
    h = highspy.Highs()
    h.silent()
    table, chair = h.addIntegral(lb=0, name="make_table"), h.addIntegral(lb=0, name="make_chair")
    if auxiliary:
        carpentry, hours = h.addVariable(lb=0, ub=240, name="hours_c"), h.addVariable(lb=0, ub=finishing, name="h_f")
        h.addConstr(4 * table + 3 * chair - carpentry == 0, name="carpentry")
        h.addConstr(2 * table + chair - hours == 0, name="finishing")
    else:
        h.addConstr(4 * table + 3 * chair <= 240, name="carpentry")
        h.addConstr(2 * table + chair <= finishing, name="finishing")
    h.addConstr(chair >= 10, name="chair_orders")
    h.changeObjectiveSense(highspy.ObjSense.kMaximize)
    h.changeColCost(0, table_profit)
    h.changeColCost(1, 50)
    return _write(h, folder)


def _tie(model: ModelRows, variables: dict, objective: float, mapping: dict | None = None, limit: float = 10.0):  # type: ignore[no-untyped-def, type-arg]
    return tie_check(
        model, MAKE if mapping is None else mapping, variables, objective, atol=1e-6, rtol=1e-6, time_limit=limit
    )


def test_the_model_that_gave_the_answer_is_tied(tmp_path: Path) -> None:
    check = _tie(_workshop(tmp_path), OPTIMUM, 4100.0)
    assert check.tied is True and check.issues == [], check.note
    assert check.objective_at_x == 4100.0 and check.resolved_objective == 4100.0 and check.seconds > 0


def test_a_model_of_another_problem_is_not_tied(tmp_path: Path) -> None:
    # Same column names, another problem: a small order of at most 20 of each at least cost.
    h = highspy.Highs()
    h.silent()
    table, chair = h.addVariable(lb=0, ub=20, name="make_table"), h.addVariable(lb=0, ub=20, name="make_chair")
    h.addConstr(table + chair >= 5, name="order")
    h.changeColCost(0, 3)
    h.changeColCost(1, 2)
    check = _tie(_write(h, tmp_path), OPTIMUM, 4100.0)
    assert check.tied is False and "infeasible in the exported model" in check.note
    assert "make_table = 30 is above its upper bound 20" in check.note
    assert [i.kind for i in check.issues] == ["model_tie"] and check.issues[0].message == check.note


def test_a_model_whose_objective_at_x_differs_is_not_tied(tmp_path: Path) -> None:
    check = _tie(_workshop(tmp_path, table_profit=80), OPTIMUM, 4100.0)
    assert check.tied is False and check.objective_at_x == 4400.0
    assert "objective at x* is 4400, but the solution reports 4100" in check.note


def test_a_model_with_a_better_point_than_x_is_not_tied(tmp_path: Path) -> None:
    # With 110 finishing hours x* = (30, 40) is still feasible at 4100, but 45 tables and 20 chairs make 4150.
    check = _tie(_workshop(tmp_path, finishing=110), OPTIMUM, 4100.0)
    assert check.tied is False and check.objective_at_x == 4100.0 and check.resolved_objective == 4150.0
    assert "x* is not optimal for the exported model: HiGHS finds 4150" in check.note


def test_an_answer_that_is_not_the_optimum_is_not_tied_either(tmp_path: Path) -> None:
    # x* = (45, 10) is feasible in the right model and its objective there is 3650, but 4100 is reachable.
    check = _tie(_workshop(tmp_path), {"make": {"table": 45, "chair": 10}}, 3650.0)
    assert check.tied is False and "HiGHS finds 4100" in check.note


def test_x_outside_the_model_is_not_tied(tmp_path: Path) -> None:
    check = _tie(_workshop(tmp_path), {"make": {"table": 51, "chair": 12}}, 4170.0)
    assert check.tied is False and "row finishing is 114, above its limit 100" in check.note


def test_a_model_with_auxiliary_columns_is_tied_through_their_completion(tmp_path: Path) -> None:
    model = _workshop(tmp_path, auxiliary=True)
    assert model.columns == ["make_table", "make_chair", "hours_c", "h_f"]
    check = _tie(model, OPTIMUM, 4100.0)
    assert check.tied is True, check.note
    # ... and the completion also decides infeasibility: 114 finishing hours do not fit in h_f <= 100.
    wrong = _tie(model, {"make": {"table": 51, "chair": 12}}, 4170.0)
    assert wrong.tied is False and "no values of its 2 other columns satisfy its rows" in wrong.note


def _portfolio(folder: Path, *, integer: bool = False, maximize: bool = False) -> ModelRows:
    """min w'Σw (as 1/2 w'Qw with Q = 2Σ) over weights summing to 1 with an expected return of at least 10%."""
    sigma = np.array([[0.0225, 0.009, 0.009], [0.009, 0.04, 0.03], [0.009, 0.03, 0.09]])
    h = highspy.Highs()
    h.silent()
    weights = [h.addVariable(lb=0, ub=1, name=f"w_{f}") for f in ("global", "tech", "emerging")]
    if integer:
        h.changeColIntegrality(2, highspy.HighsVarType.kInteger)
    h.addConstr(weights[0] + weights[1] + weights[2] == 1, name="budget")
    h.addConstr(0.08 * weights[0] + 0.12 * weights[1] + 0.15 * weights[2] >= 0.10, name="target_return")
    hessian = highspy.HighsHessian()
    hessian.dim_, hessian.format_ = 3, highspy.HessianFormat.kTriangular
    start, index, value = [0], [], []
    for col in range(3):
        for row in range(col, 3):
            index.append(row)
            value.append(2 * sigma[row, col])
        start.append(len(index))
    hessian.start_, hessian.index_, hessian.value_ = start, index, value
    h.passHessian(hessian)
    if maximize:
        h.changeObjectiveSense(highspy.ObjSense.kMaximize)
    return _write(h, folder)


def _solve(model_path: Path) -> tuple[float, list[float]]:
    h = highspy.Highs()
    h.silent()
    h.readModel(str(model_path))
    h.run()
    assert h.getModelStatus() == highspy.HighsModelStatus.kOptimal
    return h.getInfo().objective_function_value, list(h.getSolution().col_value)


WEIGHTS = {0: ("w", ("global",)), 1: ("w", ("tech",)), 2: ("w", ("emerging",))}


def _weights(values: list[float]) -> dict:  # type: ignore[type-arg]
    return {"w": dict(zip(("global", "tech", "emerging"), values, strict=True))}


def test_a_quadratic_model_is_tied_with_its_hessian(tmp_path: Path) -> None:
    model = _portfolio(tmp_path)
    assert model.quadratic and model.hessian is not None and model.hessian.shape == (3, 3)
    assert np.allclose(model.hessian.toarray(), model.hessian.toarray().T)
    objective, x = _solve(tmp_path / "model.mps")
    check = _tie(model, _weights(x), objective, WEIGHTS)
    assert check.tied is True, check.note
    assert abs(check.objective_at_x - objective) < 1e-9  # type: ignore[operator]
    # A feasible, worse portfolio reported with its own (correct) variance is still not the model's optimum.
    worse = [0.2, 0.3, 0.5]
    variance = float(np.array(worse) @ model.hessian.toarray() @ np.array(worse)) / 2
    check = _tie(model, _weights(worse), variance, WEIGHTS)
    assert check.tied is False and "not optimal" in check.note
    # Reporting the linear part alone (0) for the optimum is a mismatch at x*.
    assert _tie(model, _weights(x), 0.0, WEIGHTS).tied is False


def test_what_highs_cannot_re_solve_is_undecided(tmp_path: Path) -> None:
    miqp = _portfolio(tmp_path, integer=True)
    check = _tie(miqp, _weights([0.5, 0.5, 0.0]), 0.25 * 0.0225 + 0.25 * 0.04 + 0.5 * 0.009, WEIGHTS)
    assert check.tied is None and "integer columns" in check.note and check.issues == []
    concave = _portfolio(tmp_path, maximize=True)  # maximizing a convex quadratic: nonconvex for HiGHS
    check = _tie(concave, _weights([0.5, 0.5, 0.0]), 0.25 * 0.0225 + 0.25 * 0.04 + 0.5 * 0.009, WEIGHTS)
    assert check.tied is None and "nonconvex" in check.note


def _knapsack(folder: Path, values: list[float], weights: list[float], capacity: float) -> ModelRows:
    h = highspy.Highs()
    h.silent()
    items = [h.addBinary(name=f"take_{i}") for i in range(len(values))]
    h.addConstr(sum(w * x for w, x in zip(weights, items, strict=True)) <= capacity, name="capacity")
    h.maximize(sum(v * x for v, x in zip(values, items, strict=True)))
    return _write(h, folder)


def test_a_mip_is_tied_at_its_optimum_and_not_at_a_worse_point(tmp_path: Path) -> None:
    # The LP relaxation is better (9.67); the integer optimum is items 0 and 1.
    model = _knapsack(tmp_path, [5, 4, 3], [2, 3, 1], 5)
    mapping = {i: ("take", (str(i),)) for i in range(3)}
    best = {"take": {"0": 1, "1": 1, "2": 0}}
    assert _tie(model, best, 9.0, mapping).tied is True
    check = _tie(model, {"take": {"0": 1, "1": 0, "2": 1}}, 8.0, mapping)
    assert check.tied is False and "HiGHS finds 9" in check.note
    check = _tie(model, {"take": {"0": 1, "1": 0.5, "2": 0}}, 7.0, mapping)
    assert check.tied is False and "take_1 = 0.5 is not integral" in check.note


def test_a_mip_answer_within_the_usual_gap_is_tied(tmp_path: Path) -> None:
    # 99,999 against the optimum 100,000: a relative gap of 1e-5, within what MIP solvers stop at.
    model = _knapsack(tmp_path, [100_000, 99_999], [1, 1], 1)
    mapping = {0: ("take", ("0",)), 1: ("take", ("1",))}
    assert _tie(model, {"take": {"0": 0, "1": 1}}, 99_999.0, mapping).tied is True


def test_a_re_solve_stopped_by_the_time_limit_is_undecided(tmp_path: Path) -> None:
    # A 40-item, 5-row knapsack HiGHS needs about half a second to prove; x* is its optimum, so nothing better
    # turns up in 0.05 s either, and the proof is not done.
    rng = np.random.default_rng(0)
    n, m = 40, 5
    a = rng.integers(20, 100, size=(m, n)).astype(float)
    c = a.sum(axis=0) / m + rng.integers(-5, 6, size=n)
    h = highspy.Highs()
    h.silent()
    for j in range(n):
        h.addVariable(lb=0, ub=1, obj=float(c[j]), name=f"x{j}")
    h.changeColsIntegrality(n, np.arange(n, dtype=np.int32), np.ones(n, dtype=np.uint8))
    for i in range(m):
        h.addRow(-INF, float(np.floor(a[i].sum() / 2)), n, np.arange(n, dtype=np.int32), a[i])
    h.changeObjectiveSense(highspy.ObjSense.kMaximize)
    model = _write(h, tmp_path)
    objective, x = _solve(tmp_path / "model.mps")
    mapping = {j: ("x", (str(j),)) for j in range(n)}
    check = _tie(model, {"x": {str(j): round(v) for j, v in enumerate(x)}}, objective, mapping, limit=0.05)
    assert check.tied is None and "time limit" in check.note, check.note
    assert _tie(model, {"x": {str(j): round(v) for j, v in enumerate(x)}}, objective, mapping).tied is True


def test_nothing_mapped_is_undecided(tmp_path: Path) -> None:
    check = _tie(_workshop(tmp_path), OPTIMUM, 4100.0, mapping={})
    assert check.tied is None and "no column" in check.note
