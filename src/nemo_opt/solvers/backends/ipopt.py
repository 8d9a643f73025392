"""Ipopt through cyipopt (the ``cyipopt-wheels`` distribution bundles the Ipopt library): continuous NLP.

Chosen over CasADi's bundled Ipopt by ``benchmarks/nlp_route.py``: the same accuracy and solve times on the test
problems at a sixth of the installed size (49 MB against 284 MB); CasADi imports faster (0.2 s against 0.6-0.9 s,
cyipopt loads SciPy) and differentiates automatically, which the hint makes up for with explicit gradients.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from nemo_opt.solvers.backends.base import ProblemClass, RawResult, SolverBackend, as_float, no_export_contract
from nemo_opt.solvers.backends.highs import hessian_lower_triangle
from nemo_opt.solvers.templates import load_template

if TYPE_CHECKING:
    from nemo_opt.solvers.canonical import CanonicalModel

__all__ = ["Ipopt"]

# Ipopt treats bounds beyond +-1e19 as absent (nlp_lower_bound_inf / nlp_upper_bound_inf).
_IPOPT_INF = 2e19

_HINT = """Ipopt through cyipopt (continuous variables only; local optima, global for convex models):
```python
import cyipopt, numpy as np
def f(x): return (x[0] - 1) ** 2 + (x[1] - 2) ** 2                          # minimized
def grad(x): return np.array([2 * (x[0] - 1), 2 * (x[1] - 2)])
cons = [{"type": "ineq", "fun": lambda x: 1 - x[0] ** 2 - x[1] ** 2,         # fun(x) >= 0
         "jac": lambda x: np.array([[-2 * x[0], -2 * x[1]]])},
        {"type": "eq", "fun": lambda x: x[0] - 2 * x[1] + 1, "jac": lambda x: np.array([[1.0, -2.0]])}]
result = cyipopt.minimize_ipopt(f, x0=np.array([0.5, 0.5]), jac=grad, constraints=cons,
                                bounds=[(0, None), (None, None)],
                                options={"print_level": 0, "sb": "yes", "max_wall_time": 60.0})
status = int(result.status); objective = result.fun; values = result.x
```
Status (`result.status`, Ipopt's return code): 0 and 1 -> "optimal", 2 -> "infeasible", 4 -> "unbounded"
(diverging iterates), -1 / -4 / -5 -> "time_limit" (iteration, CPU or wall-time limit), other negative codes ->
"error", anything else -> "unknown". Maximize by minimizing the negated objective and negate `result.fun` back.
Pack all decision variables into one vector and keep a written map from positions to names. Write `jac` for the
objective and every constraint: without it cyipopt falls back to finite differences (several times slower, and
it stopped at "acceptable" rather than optimal on a standard test problem). Start from a point inside the bounds,
away from where functions are undefined (log, sqrt, division). Ipopt has no integer variables: use SCIP for
MINLP."""


class Ipopt(SolverBackend):
    name = "ipopt"
    label = "Ipopt (cyipopt)"
    module = "cyipopt"
    distribution = "cyipopt-wheels"
    features = frozenset({ProblemClass.NLP})
    exports_model = False
    extra = "nlp"
    hint = _HINT + no_export_contract("Ipopt (through cyipopt's Python callbacks)")
    template = load_template("ipopt")

    @classmethod
    def version(cls) -> str | None:
        # the wheel's metadata version is the wrapper's; report the bundled Ipopt as well
        wrapper = super().version()
        if wrapper is None or not cls.is_available():
            return wrapper
        import cyipopt

        return f"{wrapper} (Ipopt {'.'.join(str(p) for p in cyipopt.IPOPT_VERSION)})"

    @classmethod
    def solve_model(cls, model: CanonicalModel, time_limit: float) -> RawResult:
        import cyipopt
        import numpy as np

        names = [v.name for v in model.variables]
        index = {n: i for i, n in enumerate(names)}
        sign = -1.0 if model.sense == "max" else 1.0  # Ipopt minimizes
        linear = np.zeros(len(names))
        for n, c in model.objective.items():
            linear[index[n]] += c
        hessian_starts, hessian_rows, hessian_values = hessian_lower_triangle(model.quadratic, index)
        hessian_columns = [c for c in range(len(names)) for _ in range(hessian_starts[c], hessian_starts[c + 1])]
        quadratic = np.zeros((len(names), len(names)))  # symmetric H with objective = c'x + x'Hx / 2
        for row, column, value in zip(hessian_rows, hessian_columns, hessian_values, strict=True):
            quadratic[row, column] = quadratic[column, row] = value
        jacobian_rows = [r for r, row in enumerate(model.rows) for _ in row.coefficients]
        jacobian_columns = [index[n] for row in model.rows for n in row.coefficients]
        jacobian_values = np.array([c for row in model.rows for c in row.coefficients.values()], dtype=float)
        matrix = np.zeros((len(model.rows), len(names)))
        for r, column, value in zip(jacobian_rows, jacobian_columns, jacobian_values, strict=True):
            matrix[r, column] += value

        class Callbacks:
            def objective(self, x: Any) -> float:
                return float(sign * (model.constant + linear @ x + 0.5 * x @ quadratic @ x))

            def gradient(self, x: Any) -> Any:
                return sign * (linear + quadratic @ x)

            def constraints(self, x: Any) -> Any:
                return matrix @ x

            def jacobian(self, x: Any) -> Any:
                return jacobian_values

            def jacobianstructure(self) -> tuple[Any, Any]:
                return np.array(jacobian_rows, dtype=int), np.array(jacobian_columns, dtype=int)

            def hessianstructure(self) -> tuple[Any, Any]:
                return np.array(hessian_rows, dtype=int), np.array(hessian_columns, dtype=int)

            def hessian(self, x: Any, multipliers: Any, objective_factor: float) -> Any:
                return objective_factor * sign * np.array(hessian_values, dtype=float)  # rows are linear

        def bound(value: float) -> float:
            return max(-_IPOPT_INF, min(_IPOPT_INF, value))

        lower = [bound(v.lb) for v in model.variables]
        upper = [bound(v.ub) for v in model.variables]
        problem = cyipopt.Problem(
            n=len(names),
            m=len(model.rows),
            problem_obj=Callbacks(),
            lb=lower,
            ub=upper,
            cl=[bound(r.lb) for r in model.rows],
            cu=[bound(r.ub) for r in model.rows],
        )
        problem.add_option("print_level", 0)
        problem.add_option("sb", "yes")
        problem.add_option("max_wall_time", float(time_limit))
        start = np.array([min(max(0.0, lo), hi) for lo, hi in zip(lower, upper, strict=True)])
        x, info = problem.solve(start)
        status = int(info["status"])
        if status not in (0, 1, -1, -4, -5) or not all(math.isfinite(float(v)) for v in x):
            return status, None, {}
        return status, as_float(sign * float(info["obj_val"])), {n: float(x[index[n]]) for n in names}
