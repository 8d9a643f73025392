"""CVXPY: disciplined convex models (LP, convex QP, MILP) solved through its HiGHS interface."""

from __future__ import annotations

import importlib.metadata
import math
import warnings
from typing import TYPE_CHECKING, Any

from nemo_opt.solvers.backends.base import ProblemClass, RawResult, SolverBackend, as_float, no_export_contract
from nemo_opt.solvers.templates import load_template

if TYPE_CHECKING:
    from nemo_opt.solvers.canonical import CanonicalModel

__all__ = ["Cvxpy"]

_HINT = """CVXPY (`import cvxpy as cp`), always with `solver=cp.HIGHS` (LP, convex QP, MILP):
```python
import cvxpy as cp, numpy as np
make = cp.Variable(len(products), integer=True, name="make")   # boolean=True for 0/1; make[k] is products[k]
x = cp.Variable(name="x")
constraints = [make >= 0, make <= demand, usage @ make + x <= 14, x >= 0]
problem = cp.Problem(cp.Maximize(profit @ make - cp.sum_squares(x - 2)), constraints)
problem.solve(solver=cp.HIGHS, time_limit=60.0)                # HiGHS options go in as keyword arguments
status = problem.status                                         # a string
objective = problem.value; values = make.value                  # numpy arrays; None without a solution
```
Status: "optimal" / "optimal_inaccurate" -> "optimal", "infeasible" / "infeasible_inaccurate" -> "infeasible",
"unbounded" / "unbounded_inaccurate" -> "unbounded", "infeasible_or_unbounded" -> "infeasible_or_unbounded"
(HiGHS says this for some unbounded MILPs), "user_limit" -> "time_limit", "solver_error" -> "error".
Name the solver explicitly: left to itself CVXPY picks Gurobi when gurobipy is installed (size-limited licence),
and its GLOP/PDLP interfaces load OR-Tools, which cannot share a process with highspy. The model must follow
DCP rules (convex objective when minimizing, concave when maximizing; no products of two variables) or
`problem.solve` raises `cp.error.DCPError`; `cp.SolverError` means the solver failed: write status "error".
Integer values come back as floats such as 2.9999999: round them before writing."""


class Cvxpy(SolverBackend):
    name = "cvxpy"
    label = "CVXPY (HiGHS)"
    module = "cvxpy"
    distribution = "cvxpy"
    features = frozenset({ProblemClass.LP, ProblemClass.QP, ProblemClass.MILP})
    exports_model = False
    extra = "cvxpy"
    hint = _HINT + no_export_contract("CVXPY")
    template = load_template("cvxpy")

    @classmethod
    def version(cls) -> str | None:
        """The installed version of cvxpy or of cvxpy-base (the extra's slimmer distribution of the same package)."""
        try:
            return importlib.metadata.version("cvxpy")
        except importlib.metadata.PackageNotFoundError:
            try:
                return importlib.metadata.version("cvxpy-base")
            except importlib.metadata.PackageNotFoundError:
                return None

    @classmethod
    def probe(cls) -> bool:
        import cvxpy as cp

        return "HIGHS" in cp.installed_solvers()

    @classmethod
    def solve_model(cls, model: CanonicalModel, time_limit: float) -> RawResult:
        import cvxpy as cp
        import numpy as np

        variables: dict[str, Any] = {v.name: cp.Variable(name=v.name, integer=v.integer) for v in model.variables}
        constraints: list[Any] = []
        for v in model.variables:
            if not math.isinf(v.lb):
                constraints.append(variables[v.name] >= v.lb)
            if not math.isinf(v.ub):
                constraints.append(variables[v.name] <= v.ub)
        for row in model.rows:
            expression = sum(c * variables[n] for n, c in row.coefficients.items())
            if row.lb == row.ub:
                constraints.append(expression == row.lb)
                continue
            if not math.isinf(row.lb):
                constraints.append(expression >= row.lb)
            if not math.isinf(row.ub):
                constraints.append(expression <= row.ub)
        objective: Any = model.constant + sum(c * variables[n] for n, c in model.objective.items())
        if model.quadratic:
            # sum(c u v) as x'Px with P symmetric: DCP accepts it when P is PSD (min) or NSD (max).
            names = sorted({n for pair in model.quadratic for n in pair})
            position = {n: i for i, n in enumerate(names)}
            matrix = np.zeros((len(names), len(names)))
            for (first, second), c in model.quadratic.items():
                matrix[position[first], position[second]] += c / 2
                matrix[position[second], position[first]] += c / 2
            vector = cp.hstack([variables[n] for n in names])
            objective = objective + cp.quad_form(vector, matrix)
        goal = cp.Maximize(objective) if model.sense == "max" else cp.Minimize(objective)
        problem = cp.Problem(goal, constraints)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # CVXPY's advice on infeasible_or_unbounded, handled here
            problem.solve(solver=cp.HIGHS, time_limit=float(time_limit))
            if problem.status == "infeasible_or_unbounded":
                # HiGHS's MIP presolve cannot tell the two apart; the solver without presolve can
                problem.solve(solver=cp.HIGHS, time_limit=float(time_limit), presolve="off")
        status = problem.status
        objective_value = as_float(problem.value)
        if objective_value is None:
            return status, None, {}
        # A variable that occurs nowhere is left out of the solve (value None): any point in its bounds will do.
        values = {
            v.name: float(variables[v.name].value) if variables[v.name].value is not None else min(max(0.0, v.lb), v.ub)
            for v in model.variables
        }
        return status, objective_value, values
