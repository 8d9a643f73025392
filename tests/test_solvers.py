"""Solver layer with real solvers: registry, canonical solves, NLP routes, status tables and model-file templates.

Each backend test runs for every registered backend and skips, with the reason, when the library is not installed
or not usable here. OR-Tools is never imported in this process: it cannot share one with highspy (both ship a
libhighs.so.1), so its solves run in the backend's worker process and its templates in subprocesses.
"""

from __future__ import annotations

import itertools
import json
import math
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nemo_opt.solution import SolveStatus
from nemo_opt.solvers import (
    SIZE_LIMIT_MARKER,
    SOLVERS,
    CanonicalModel,
    ProblemClass,
    Row,
    SolverBackend,
    Variable,
    available_solvers,
    get_solver,
    is_size_limit_error,
    normalize_status,
    smoke,
    solve,
)
from nemo_opt.solvers.backends import base
from nemo_opt.solvers.backends.highs import Highs
from nemo_opt.solvers.status import STATUS_TABLES, status_key
from nemo_opt.solvers.templates import EXAMPLE_DATA, example_data, load_template, template_names

OPT, LIM, INF, UNB, IOU, ERR, UNK = (
    SolveStatus.OPTIMAL,
    SolveStatus.TIME_LIMIT,
    SolveStatus.INFEASIBLE,
    SolveStatus.UNBOUNDED,
    SolveStatus.INFEASIBLE_OR_UNBOUNDED,
    SolveStatus.ERROR,
    SolveStatus.UNKNOWN,
)
NAMES = [s.name for s in SOLVERS]
REPO = Path(__file__).resolve().parent.parent
RTOL = 1e-6


def usable(name: str) -> type[SolverBackend]:
    """The backend, or a skip saying why it cannot run here."""
    backend = get_solver(name)
    if not backend.is_available():
        extra = f" (pip install 'nemo-opt[{backend.extra}]')" if backend.extra else ""
        pytest.skip(f"{backend.label} is not installed or not usable here{extra}")
    return backend


def close(value: float | None, expected: float) -> bool:
    return value is not None and math.isclose(value, expected, rel_tol=RTOL, abs_tol=RTOL)


# ---------------------------------------------------------------------------------------------------------------
# Test models and their optima, computed independently of any solver

# min 2x + 3y - z + 1 s.t. x + y + z = 10, 2 <= x - y <= 6, z <= 4, 0 <= x <= 8, y >= 0, z free.
# -z wants z as large as possible: z = 4, so x + y = 6 and the cost is 2x + 3(6 - x) = 18 - x, smallest for the
# largest x allowed by x - y <= 6, i.e. x - (6 - x) <= 6: x = 6, y = 0. Objective 12 + 0 - 4 + 1 = 9.
LP = CanonicalModel(
    [Variable("x", 0, 8), Variable("y"), Variable("z", -math.inf, math.inf)],
    [
        Row("total", {"x": 1, "y": 1, "z": 1}, 10, 10),
        Row("band", {"x": 1, "y": -1}, 2, 6),
        Row("z_cap", {"z": 1}, ub=4),
    ],
    {"x": 2, "y": 3, "z": -1},
    constant=1,
)
LP_OPTIMUM = 9.0

# A small integer knapsack with a cardinality row; its LP relaxation is fractional, so integrality matters.
MILP = CanonicalModel(
    [Variable("a", 0, 3, True), Variable("b", 0, 3, True), Variable("c", 0, 1, True), Variable("d", 0, 1, True)],
    [Row("weight", {"a": 5, "b": 7, "c": 4, "d": 3}, ub=14), Row("count", {"a": 1, "b": 1, "c": 1, "d": 1}, ub=3)],
    {"a": 8, "b": 11, "c": 6, "d": 4},
    sense="max",
)


def milp_optimum() -> float:
    """Enumerate every integer point of MILP's box."""
    best = -math.inf
    for a, b, c, d in itertools.product(range(4), range(4), range(2), range(2)):
        if 5 * a + 7 * b + 4 * c + 3 * d <= 14 and a + b + c + d <= 3:
            best = max(best, 8 * a + 11 * b + 6 * c + 4 * d)
    return best


# min x^2 + xy + y^2 - 4x - 5y s.t. x + y <= 2, x, y >= 0. The unconstrained minimum (1, 2) violates the row, so it
# is active: with y = 2 - x the objective is x^2 - x - 6, smallest at x = 1/2 (y = 3/2): -6.25. The multiplier of
# the row is 1.5 >= 0 (gradient (-1.5, -1.5)), so KKT holds and, the objective being convex, this is the optimum.
QP_MIN = CanonicalModel(
    [Variable("x"), Variable("y")],
    [Row("sum", {"x": 1, "y": 1}, ub=2)],
    {"x": -4, "y": -5},
    {("x", "x"): 1, ("x", "y"): 1, ("y", "y"): 1},
)
# The same problem as a maximization of the negated (concave) objective: optimum 6.25.
QP_MAX = CanonicalModel(
    [Variable("x"), Variable("y")],
    [Row("sum", {"x": 1, "y": 1}, ub=2)],
    {"x": 4, "y": 5},
    {("x", "x"): -1, ("x", "y"): -1, ("y", "y"): -1},
    sense="max",
)
QP_OPTIMUM = 6.25

INFEASIBLE_LP = CanonicalModel(
    [Variable("x", 0, 10), Variable("y", 0, 10)],
    [Row("at_least", {"x": 1, "y": 1}, lb=5), Row("at_most", {"x": 1, "y": 1}, ub=3)],
    {"x": 1},
)
# infeasible only through integrality: 2a + 2b is even
INFEASIBLE_MILP = CanonicalModel(
    [Variable("a", 0, 5, True), Variable("b", 0, 5, True)], [Row("odd", {"a": 2, "b": 2}, 3, 3)], {"a": 1}
)
UNBOUNDED_LP = CanonicalModel(
    [Variable("x"), Variable("y")], [Row("r", {"x": 1, "y": -1}, ub=1)], {"x": 1, "y": 1}, sense="max"
)
UNBOUNDED_MILP = CanonicalModel(
    [Variable("x", integer=True), Variable("y", integer=True)],
    [Row("r", {"x": 1, "y": -1}, ub=1)],
    {"x": 1, "y": 1},
    sense="max",
)
# The MIP presolves of HiGHS and Gurobi document "infeasible or unbounded" answers for unbounded MILPs. The
# canonical layer re-solves without presolve to tell them apart, but that answer is still a documented one.
DOCUMENTED_INF_OR_UNBD = {"highs", "cvxpy", "pyomo", "gurobi"}


def feasible(model: CanonicalModel, values: dict[str, float], tol: float = 1e-6) -> bool:
    """Bounds, integrality and rows of ``model`` hold at ``values``."""
    for v in model.variables:
        x = values[v.name]
        if x < v.lb - tol or x > v.ub + tol or (v.integer and abs(x - round(x)) > tol):
            return False
    for row in model.rows:
        activity = sum(c * values[n] for n, c in row.coefficients.items())
        if activity < row.lb - tol or activity > row.ub + tol:
            return False
    return True


# ---------------------------------------------------------------------------------------------------------------
# Registry


def test_registry_declares_features_hints_and_templates() -> None:
    assert len(set(NAMES)) == len(NAMES)
    assert template_names() == sorted(NAMES)
    for backend in SOLVERS:
        assert isinstance(backend.features, frozenset) and backend.features
        assert all(isinstance(f, ProblemClass) for f in backend.features)
        assert backend.hint.strip() and "Model file" in backend.hint
        assert backend.template == load_template(backend.name)
        compile(backend.template, f"{backend.name}.py", "exec")
        assert isinstance(backend.exports_model, bool)
        # the hint tells the agent the same thing the template does about the model file
        assert ("cannot export an MPS or LP file" in backend.hint) is (not backend.exports_model)
        assert ('"model_file": None' in backend.template) is (not backend.exports_model)
    assert get_solver("gurobi").licence_limits and "2000" in str(get_solver("gurobi").licence_limits)
    assert all(s.licence_limits is None for s in SOLVERS if s.name != "gurobi")


def test_available_solvers_are_only_usable_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    usable_names = [s.name for s in available_solvers()]
    assert usable_names == [s.name for s in SOLVERS if s.is_available()]
    assert {"highs", "cbc"} <= set(usable_names)  # core dependencies
    monkeypatch.setitem(base._AVAILABLE, "highs", False)  # e.g. a broken install found by the probe
    assert "highs" not in [s.name for s in available_solvers()]

    class Broken(SolverBackend):
        name = "broken_for_test"
        module = "json"

        @classmethod
        def probe(cls) -> bool:
            raise OSError("shared library missing")

    monkeypatch.delitem(base._AVAILABLE, Broken.name, raising=False)
    assert Broken.is_available() is False  # a failing probe is "not available", never an exception


def test_get_solver_error_names_known_solvers() -> None:
    assert get_solver("highs") is Highs
    with pytest.raises(KeyError) as error:
        get_solver("cplex")
    assert all(name in str(error.value) for name in NAMES)


def test_extras_cover_every_optional_backend() -> None:
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    optional = {s.extra for s in SOLVERS if s.extra}
    assert optional <= set(extras)
    assert all(f"{name}" in extras["solvers"][0] for name in optional)


# ---------------------------------------------------------------------------------------------------------------
# Canonical solves: the same optimum on every backend that takes the model


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    ("model", "optimum"),
    [(LP, LP_OPTIMUM), (MILP, milp_optimum()), (QP_MIN, -QP_OPTIMUM), (QP_MAX, QP_OPTIMUM)],
    ids=["lp", "milp", "qp_min", "qp_max"],
)
def test_same_optimum_across_backends(name: str, model: CanonicalModel, optimum: float) -> None:
    backend = usable(name)
    run = solve(name, model, time_limit=30)
    if backend.check_model(model) is not None:
        # a class the backend does not declare (CP-SAT takes integer-only MILPs through its CP feature)
        assert run.status is ERR and run.message == backend.check_model(model)
        return
    assert run.status is OPT, run
    assert close(run.objective, optimum), run
    assert close(model.objective_value(run.values), optimum)
    assert feasible(model, run.values)
    assert run.backend == name and run.seconds >= 0 and run.raw_status


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    ("model", "kind"),
    [
        (INFEASIBLE_LP, "infeasible"),
        (INFEASIBLE_MILP, "infeasible"),
        (UNBOUNDED_LP, "unbounded"),
        (UNBOUNDED_MILP, "unbounded"),
    ],
    ids=["infeasible_lp", "infeasible_milp", "unbounded_lp", "unbounded_milp"],
)
def test_infeasible_and_unbounded_statuses(name: str, model: CanonicalModel, kind: str) -> None:
    backend = usable(name)
    run = solve(name, model, time_limit=30)
    if backend.check_model(model) is not None:
        # e.g. CP-SAT needs finite bounds, so an unbounded model cannot even be stated: an error, not a guess
        assert run.status is ERR and run.message
        return
    if kind == "infeasible":
        expected = {INF}
    else:
        expected = {UNB} | ({IOU} if name in DOCUMENTED_INF_OR_UNBD and model is UNBOUNDED_MILP else set())
    assert run.status in expected, run
    assert run.objective is None and run.values == {}


@pytest.mark.parametrize("name", NAMES)
def test_smoke_solve_for_doctor(name: str) -> None:
    usable(name)
    run = smoke(name)
    assert run.status is OPT and close(run.objective, 2.0), run


def test_solver_failures_come_back_as_error_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(model: CanonicalModel, time_limit: float) -> Any:
        raise RuntimeError("solver crashed")

    monkeypatch.setattr(Highs, "solve_model", staticmethod(boom))
    run = solve("highs", LP)
    assert run.status is ERR and run.message == "RuntimeError: solver crashed" and run.objective is None

    def too_large(model: CanonicalModel, time_limit: float) -> Any:
        raise RuntimeError(f"{SIZE_LIMIT_MARKER}; visit https://gurobi.com/unrestricted for more information")

    monkeypatch.setattr(Highs, "solve_model", staticmethod(too_large))
    run = solve("highs", LP)
    assert run.status is ERR and "size-limited licence" in run.message and is_size_limit_error(run.message)
    with pytest.raises(KeyError):
        solve("no_such_solver", LP)


def test_gurobi_size_limit_is_an_error_saying_so() -> None:
    usable("gurobi")
    n = 2001  # the pip licence allows 2000 variables
    model = CanonicalModel(
        [Variable(f"x{i}", 0, 1) for i in range(n)], [], {f"x{i}": 1.0 for i in range(n)}, sense="max"
    )
    run = solve("gurobi", model, time_limit=30)
    if run.status is OPT:
        pytest.skip("this Gurobi licence has no size limit")
    assert run.status is ERR
    assert is_size_limit_error(run.message) and "size-limited licence" in run.message


def test_size_limit_recognition() -> None:
    assert is_size_limit_error("gurobipy._exception.GurobiError: Model too large for size-limited license; visit")
    assert is_size_limit_error("GurobiError(10010, 'Model too large for size-limited license')")
    assert is_size_limit_error("Error code 10010")
    assert is_size_limit_error("MODEL TOO LARGE FOR SIZE-LIMITED LICENSE")
    for text in ["", "Model too large", "error 100100", "10010 rows written", "infeasible"]:
        assert not is_size_limit_error(text), text


def test_canonical_model_checks_and_round_trips() -> None:
    assert (LP.problem_class, MILP.problem_class) == (ProblemClass.LP, ProblemClass.MILP)
    assert (QP_MIN.problem_class, ProblemClass.MIQP) == (
        ProblemClass.QP,
        CanonicalModel([Variable("n", integer=True)], quadratic={("n", "n"): 1}).problem_class,
    )
    for model in (LP, MILP, QP_MAX):
        assert CanonicalModel.from_dict(json.loads(json.dumps(model.to_dict()))) == model
    with pytest.raises(ValueError, match="unique"):
        CanonicalModel([Variable("x"), Variable("x")])
    with pytest.raises(ValueError, match="names must match"):
        CanonicalModel([Variable("make[table]")])
    with pytest.raises(ValueError, match="unknown variables"):
        CanonicalModel([Variable("x")], objective={"y": 1})
    # features cover their special cases; CP stands alone
    assert Highs.supports(ProblemClass.LP) and not Highs.supports(ProblemClass.MIQP)
    assert get_solver("ipopt").supports(ProblemClass.QP) and not get_solver("ipopt").supports(ProblemClass.MILP)
    assert not get_solver("cpsat").supports(ProblemClass.LP)


# ---------------------------------------------------------------------------------------------------------------
# NLP through each NLP-capable backend's own API: min (x-1)^2 + (y-2)^2 s.t. x^2 + y^2 <= 1.
# The optimum is the unit-circle point nearest (1, 2), i.e. (1, 2)/sqrt(5), at squared distance (sqrt(5) - 1)^2.

NLP_OPTIMUM = (math.sqrt(5) - 1) ** 2


def _nlp_scip() -> tuple[SolveStatus, float]:
    from pyscipopt import Model
    from pyscipopt.recipes.nonlinear import set_nonlinear_objective

    m = Model()
    m.hideOutput()
    m.setParam("numerics/feastol", 1e-9)  # the default 1e-6 lets x^2 + y^2 exceed 1 enough to move the objective
    x, y = m.addVar("x", lb=None), m.addVar("y", lb=None)
    m.addCons(x**2 + y**2 <= 1)
    set_nonlinear_objective(m, (x - 1) ** 2 + (y - 2) ** 2, "minimize")
    m.optimize()
    return normalize_status("scip", m.getStatus()), float(m.getObjVal())


def _nlp_pyomo() -> tuple[SolveStatus, float]:
    import pyomo.environ as pyo

    m = pyo.ConcreteModel()
    m.x, m.y = pyo.Var(), pyo.Var()
    m.circle = pyo.Constraint(expr=m.x**2 + m.y**2 <= 1)
    m.obj = pyo.Objective(expr=(m.x - 1) ** 2 + (m.y - 2) ** 2)
    results = pyo.SolverFactory("scip_direct").solve(m, load_solutions=False, solver_options={"numerics/feastol": 1e-9})
    m.solutions.load_from(results)
    return normalize_status("pyomo", results.solver.termination_condition), float(pyo.value(m.obj))


def _nlp_ipopt() -> tuple[SolveStatus, float]:
    import cyipopt

    result = cyipopt.minimize_ipopt(
        lambda v: (v[0] - 1) ** 2 + (v[1] - 2) ** 2,
        np.zeros(2),
        jac=lambda v: np.array([2 * (v[0] - 1), 2 * (v[1] - 2)]),
        constraints=[
            {
                "type": "ineq",
                "fun": lambda v: 1 - v[0] ** 2 - v[1] ** 2,
                "jac": lambda v: np.array([[-2 * v[0], -2 * v[1]]]),
            }
        ],
        options={"print_level": 0, "sb": "yes"},
    )
    return normalize_status("ipopt", result.status), float(result.fun)


NLP_ROUTES = {"scip": _nlp_scip, "pyomo": _nlp_pyomo, "ipopt": _nlp_ipopt}


def test_every_nlp_backend_has_an_nlp_test() -> None:
    assert set(NLP_ROUTES) == {s.name for s in SOLVERS if ProblemClass.NLP in s.features}


@pytest.mark.parametrize("name", sorted(NLP_ROUTES))
def test_nlp_optimum(name: str) -> None:
    usable(name)
    if name == "pyomo" and not get_solver("scip").is_available():
        pytest.skip("Pyomo solves NLPs through scip_direct, which needs PySCIPOpt")
    status, objective = NLP_ROUTES[name]()
    assert status is OPT
    assert close(objective, NLP_OPTIMUM), (objective, NLP_OPTIMUM)


# ---------------------------------------------------------------------------------------------------------------
# Status tables

EXPECTED: dict[str, dict[object, SolveStatus]] = {
    "highs": {
        7: OPT, "kOptimal": OPT, "Optimal": OPT, "HighsModelStatus.kInfeasible": INF, 8: INF, 10: UNB,
        "kUnboundedOrInfeasible": IOU, "Primal infeasible or unbounded": IOU, 13: LIM, "Time limit reached": LIM,
        "kIterationLimit": LIM, "kSolutionLimit": LIM, 1: ERR, "kModelError": ERR, "Solve error": ERR,
        0: UNK, "kNotset": UNK, 15: UNK, "kInterrupt": UNK, 6: OPT,
    },
    "cbc": {
        1: OPT, "Optimal": OPT, 2: LIM, "Solution Found": LIM, -1: INF, "Infeasible": INF, -2: UNB,
        "Unbounded": UNB, 0: UNK, "Not Solved": UNK, -3: UNK, "Undefined": UNK, "No Solution Exists": INF,
    },
    "ortools": {0: OPT, "OPTIMAL": OPT, 1: LIM, "FEASIBLE": LIM, 2: INF, 3: UNB, 4: ERR, "ABNORMAL": ERR, 5: ERR,
                "MODEL_INVALID": ERR, 6: UNK, "NOT_SOLVED": UNK},
    "cpsat": {4: OPT, "OPTIMAL": OPT, "CpSolverStatus.OPTIMAL": OPT, 2: LIM, "FEASIBLE": LIM, 3: INF, 1: ERR,
              "MODEL_INVALID": ERR, 0: UNK, "UNKNOWN": UNK},
    "scip": {"optimal": OPT, "gaplimit": OPT, "timelimit": LIM, "nodelimit": LIM, "sollimit": LIM, "memlimit": LIM,
             "infeasible": INF, "unbounded": UNB, "inforunbd": IOU, "userinterrupt": UNK, "unknown": UNK},
    "gurobi": {2: OPT, "OPTIMAL": OPT, 3: INF, 4: IOU, "INF_OR_UNBD": IOU, 5: UNB, 9: LIM, "TIME_LIMIT": LIM, 7: LIM,
               8: LIM, 10: LIM, 16: LIM, 12: ERR, "NUMERIC": ERR, 1: UNK, 11: UNK, 13: UNK, 18: OPT, 19: INF},
    "pyomo": {"optimal": OPT, "globallyOptimal": OPT, "locallyOptimal": OPT, "maxTimeLimit": LIM,
              "maxIterations": LIM, "infeasible": INF, "unbounded": UNB, "infeasibleOrUnbounded": IOU, "error": ERR,
              "solverFailure": ERR, "other": UNK, "TerminationCondition.optimal": OPT,
              0: OPT, 1: LIM, 5: UNB, 6: INF, "provenInfeasible": INF, 8: IOU, 9: ERR, 42: UNK},
    "cvxpy": {"optimal": OPT, "optimal_inaccurate": OPT, "infeasible": INF, "infeasible_inaccurate": INF,
              "unbounded": UNB, "unbounded_inaccurate": UNB, "infeasible_or_unbounded": IOU, "user_limit": LIM,
              "solver_error": ERR},
    "ipopt": {0: OPT, "Solve_Succeeded": OPT, 1: OPT, 2: INF, "Infeasible_Problem_Detected": INF, 4: UNB,
              "Diverging_Iterates": UNB, -1: LIM, "Maximum_Iterations_Exceeded": LIM, -4: LIM, -5: LIM, -2: ERR,
              -13: ERR, -199: ERR, 3: UNK, 5: UNK, "-1": LIM,
              b"Algorithm terminated successfully at a locally optimal point, satisfying the convergence tolerances "
              b"(can be specified by options).": OPT},
}  # fmt: skip

ODD_VALUES: list[object] = [None, "", "   ", "garbage", "optimalish", 123456, -987, 3.7, math.nan, math.inf, True,
                            False, [], {}, object(), b"\xff\xfe", ("optimal",)]  # fmt: skip


def test_every_backend_has_a_status_table() -> None:
    assert set(STATUS_TABLES) == set(NAMES) == set(EXPECTED)


@pytest.mark.parametrize("name", NAMES)
def test_status_table(name: str) -> None:
    for raw, expected in EXPECTED[name].items():
        assert normalize_status(name, raw) is expected, (name, raw)
    table = STATUS_TABLES[name]
    for code, status in table.codes.items():  # every entry, also as a float and as text
        assert normalize_status(name, code) is status
        assert normalize_status(name, float(code)) is status
        assert normalize_status(name, f" {code} ") is status
    for key, status in table.names.items():
        assert normalize_status(name, key.upper()) is status
    for odd in ODD_VALUES:
        assert normalize_status(name, odd) is UNK, (name, odd)
    assert normalize_status(name, SolveStatus.TIME_LIMIT) is LIM  # already normalized


def test_status_of_unknown_backend_and_hostile_objects() -> None:
    class Hostile:
        @property
        def name(self) -> str:
            raise RuntimeError("no name")

    assert normalize_status("cplex", "optimal") is UNK
    assert normalize_status("highs", Hostile()) is UNK
    assert status_key(" Time limit-reached ") == "time_limit_reached"


def test_status_tables_match_the_libraries_installed_here() -> None:
    """Enum members of the real libraries (where importable in this process) map like their documented codes."""
    checked = 0
    if get_solver("highs").is_available():
        import highspy

        expected_highs = {"kOptimal": OPT, "kInfeasible": INF, "kUnbounded": UNB, "kTimeLimit": LIM}
        for member_name, member in highspy.HighsModelStatus.__members__.items():
            by_code = normalize_status("highs", int(member))
            assert normalize_status("highs", member) is by_code
            assert normalize_status("highs", highspy.Highs().modelStatusToString(member)) is by_code
            assert by_code is expected_highs.get(member_name, by_code)
        checked += 1
    import pulp

    assert normalize_status("cbc", pulp.LpStatusOptimal) is OPT
    assert normalize_status("cbc", pulp.LpStatus[pulp.LpStatusInfeasible]) is INF
    assert normalize_status("cbc", pulp.LpSolution[pulp.LpSolutionIntegerFeasible]) is LIM
    if get_solver("gurobi").is_available():
        from gurobipy import GRB

        for attribute in ("OPTIMAL", "INFEASIBLE", "INF_OR_UNBD", "UNBOUNDED", "TIME_LIMIT", "NUMERIC"):
            assert normalize_status("gurobi", getattr(GRB.Status, attribute)) is normalize_status("gurobi", attribute)
        checked += 1
    if get_solver("pyomo").is_available():
        from pyomo.contrib.solver.common.results import TerminationCondition as NewCondition
        from pyomo.opt import TerminationCondition

        assert normalize_status("pyomo", TerminationCondition.optimal) is OPT
        assert normalize_status("pyomo", TerminationCondition.infeasibleOrUnbounded) is IOU
        assert normalize_status("pyomo", NewCondition.convergenceCriteriaSatisfied) is OPT
        assert normalize_status("pyomo", NewCondition.provenInfeasible) is INF
        undecided = {"unknown", "interrupted", "minStepLength"}  # no verdict on the model: UNKNOWN by design
        assert all((normalize_status("pyomo", c) is UNK) is (c.name in undecided) for c in NewCondition)
        checked += 1
    if get_solver("cvxpy").is_available():
        import cvxpy.settings as cvx

        for constant in (cvx.OPTIMAL, cvx.INFEASIBLE, cvx.UNBOUNDED, cvx.USER_LIMIT, cvx.SOLVER_ERROR):
            assert normalize_status("cvxpy", constant) is not UNK
        checked += 1
    assert checked >= 1


# ---------------------------------------------------------------------------------------------------------------
# Templates: run each model.py on the example data and check it against the contract


def product_mix_optimum(data: dict[str, Any]) -> float:
    """Enumerate integer quantities; for each, the cheapest overtime is the labour shortfall (if within the cap)."""
    products, best = data["products"], -math.inf
    for quantities in itertools.product(*(range(int(data["demand"][p]) + 1) for p in products)):
        make = dict(zip(products, quantities, strict=True))
        overtime, ok = 0.0, True
        for r in data["resources"]:
            need = sum(data["usage"][r][p] * make[p] for p in products)
            if r == data["overtime_resource"]:
                overtime = max(0.0, need - data["capacity"][r])
                ok = ok and overtime <= data["max_overtime"]
            else:
                ok = ok and need <= data["capacity"][r]
        if ok:
            best = max(best, sum(data["profit"][p] * make[p] for p in products) - data["overtime_cost"] * overtime)
    return best


def product_mix_nlp_optimum(data: dict[str, Any]) -> float:
    """The concave-quadratic variant (unit profit falls by price_decay per unit) over continuous quantities.

    With a strictly concave objective in the quantities and linear rows, the optimum is the stationary point of
    the objective on some face of the polytope; enumerating the faces (active row sets, solved as KKT systems)
    and keeping the best feasible point finds it without any solver.
    """
    products, resources = data["products"], data["resources"]
    n = len(products) + 1  # quantities, then overtime
    gradient0 = np.array([data["profit"][p] for p in products] + [-data["overtime_cost"]], dtype=float)
    hessian = np.diag([2.0 * data["price_decay"][p] for p in products] + [0.0])  # maximize g'x - x'Hx/2
    rows = [
        [data["usage"][r][p] for p in products] + [-1.0 if r == data["overtime_resource"] else 0.0] for r in resources
    ]
    bounds = [data["capacity"][r] for r in resources]
    for k in range(n):
        rows.append([-1.0 if j == k else 0.0 for j in range(n)])
        bounds.append(0.0)
        upper = data["demand"][products[k]] if k < len(products) else data["max_overtime"]
        rows.append([1.0 if j == k else 0.0 for j in range(n)])
        bounds.append(upper)
    a, b = np.array(rows, dtype=float), np.array(bounds, dtype=float)
    best = -math.inf
    for size in range(n + 1):
        for active in itertools.combinations(range(len(b)), size):
            block = a[list(active)]
            kkt = np.block([[hessian, block.T], [block, np.zeros((size, size))]])
            try:
                solution = np.linalg.solve(kkt, np.concatenate([gradient0, b[list(active)]]))
            except np.linalg.LinAlgError:
                continue
            x = solution[:n]
            if np.all(a @ x <= b + 1e-9):
                best = max(best, float(gradient0 @ x - 0.5 * x @ hessian @ x))
    return best


def reference_value(variables: dict[str, Any], reference: str) -> float:
    """The reported value of ``name`` or ``name[i,j]``."""
    name, _, index = reference.partition("[")
    value: Any = variables[name]
    for element in index.rstrip("]").split(",") if index else []:
        value = value[element]
    return float(value)


def check_model_file(path: Path, solution: dict[str, Any]) -> None:
    """HiGHS reads the file, its columns are the keys of ``columns``, and its rows hold at the reported values."""
    import highspy

    h = highspy.Highs()
    h.silent()
    assert h.readModel(str(path)) == highspy.HighsStatus.kOk
    lp = h.getLp()
    names = list(lp.col_names_)
    assert sorted(names) == sorted(solution["columns"])
    x = np.array([reference_value(solution["variables"], solution["columns"][c]) for c in names])
    assert np.all(x >= np.array(lp.col_lower_) - 1e-6) and np.all(x <= np.array(lp.col_upper_) + 1e-6)
    matrix = lp.a_matrix_
    activity = np.zeros(lp.num_row_)
    for column in range(lp.num_col_):
        for k in range(matrix.start_[column], matrix.start_[column + 1]):
            activity[matrix.index_[k]] += matrix.value_[k] * x[column]
    lower, upper = np.array(lp.row_lower_), np.array(lp.row_upper_)
    violation = np.maximum(lower - activity, 0) + np.maximum(activity - upper, 0)
    assert violation.max(initial=0.0) <= 1e-6, dict(zip(lp.row_names_, violation, strict=True))


@pytest.mark.parametrize("name", NAMES)
def test_template_follows_the_contract(name: str, tmp_path: Path) -> None:
    backend = usable(name)
    data = example_data()
    work = tmp_path / name
    work.mkdir()
    (work / "model.py").write_text(backend.template, encoding="utf-8")
    (work / "data.json").write_text(json.dumps(data), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "model.py"], cwd=work, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "status: optimal" in done.stdout
    solution = json.loads((work / "solution.json").read_text(encoding="utf-8"))
    assert {"status", "objective", "variables", "solver", "solve_seconds", "model_file", "columns"} <= set(solution)
    assert solution["status"] == "optimal" and solution["solver"] == name
    assert isinstance(solution["solve_seconds"], float) and solution["solve_seconds"] >= 0

    continuous = ProblemClass.NLP in backend.features and ProblemClass.MILP not in backend.features
    optimum = product_mix_nlp_optimum(data) if continuous else product_mix_optimum(data)
    assert close(solution["objective"], optimum), (solution["objective"], optimum)
    make, overtime = solution["variables"]["make"], solution["variables"]["overtime"]
    assert set(make) == set(data["products"]) and isinstance(overtime, float | int)
    if not continuous:
        assert all(isinstance(v, int) for v in make.values())
    for r in data["resources"]:  # feasibility against the data, independent of any model file
        used = sum(data["usage"][r][p] * make[p] for p in data["products"])
        extra = overtime if r == data["overtime_resource"] else 0
        assert used - extra <= data["capacity"][r] + 1e-6

    if backend.exports_model:
        assert solution["model_file"] == "model.mps" and (work / "model.mps").exists()
        check_model_file(work / "model.mps", solution)
    else:
        assert solution["model_file"] is None and solution["columns"] is None


def test_example_data_is_shipped_with_the_templates() -> None:
    data = example_data()
    assert data["products"] and data["resources"] and EXAMPLE_DATA.endswith(".json")
    assert product_mix_optimum(data) == 481  # by enumeration: make table 6, desk 1, shelf 7 with 6 hours of overtime
