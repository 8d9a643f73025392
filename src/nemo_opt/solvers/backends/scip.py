"""SCIP through PySCIPOpt: LP, MILP, QP, MIQP, NLP and MINLP (spatial branch and bound: global optima)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from nemo_opt.solvers.backends.base import EXPORT_CONTRACT, ProblemClass, RawResult, SolverBackend, as_float
from nemo_opt.solvers.templates import load_template

if TYPE_CHECKING:
    from nemo_opt.solvers.canonical import CanonicalModel

__all__ = ["Scip"]

_HINT = """SCIP through PySCIPOpt:
```python
from pyscipopt import Model, quicksum, exp, log, sqrt
m = Model("model"); m.hideOutput(); m.setParam("limits/time", 60.0)
x = m.addVar("x", vtype="C", lb=0, ub=None)        # lb defaults to 0: pass lb=None for a free variable
n = m.addVar("n_table", vtype="I", lb=0, ub=10)     # vtype "B" for binary
m.addCons(x + 2 * n <= 14, name="cap_wood")
m.addCons(1 <= (x - n <= 3), name="band")           # a ranged row
m.addCons(x * n + x**2 <= 20, name="nonlinear")     # products, powers, exp/log/sqrt are allowed in constraints
m.setObjective(3 * x + 4 * n, "maximize")           # the objective must be linear, see below
m.writeProblem("model.mps", verbose=False)
m.optimize()
status = m.getStatus()                              # a string
if m.getNSols() > 0: objective = m.getObjVal(); value = m.getVal(x)
```
Status: "optimal" (and "gaplimit") -> "optimal", "infeasible" -> "infeasible", "unbounded" -> "unbounded",
"inforunbd" -> "infeasible_or_unbounded", "timelimit" / "nodelimit" / "sollimit" / "memlimit" -> "time_limit",
anything else -> "unknown". SCIP solves nonconvex NLP/MINLP to global optimality within its tolerances
(`numerics/feastol` is 1e-6 by default; tighten it when constraints must hold more exactly).
A nonlinear objective is rejected: use `from pyscipopt.recipes.nonlinear import set_nonlinear_objective;
set_nonlinear_objective(m, expr, "minimize")`, or minimize an auxiliary variable `t` with `m.addCons(expr <= t)`.
Mistakes to avoid: reading values without checking `m.getNSols()`; `quicksum` (not `sum`) for long sums;
modifying the model after `optimize()` without `m.freeTransform()`."""


def _bound(value: float) -> float | None:
    return None if math.isinf(value) else value


class Scip(SolverBackend):
    name = "scip"
    label = "SCIP (PySCIPOpt)"
    module = "pyscipopt"
    distribution = "PySCIPOpt"
    features = frozenset(
        {ProblemClass.LP, ProblemClass.MILP, ProblemClass.QP, ProblemClass.MIQP, ProblemClass.NLP, ProblemClass.MINLP}
    )
    exports_model = True
    extra = "scip"
    hint = _HINT + EXPORT_CONTRACT.format(
        how='`m.writeProblem("model.mps", verbose=False)`; for a model with nonlinear constraints HiGHS cannot read '
        'the file, so write `"model_file": null` and `"columns": null` instead',
        rename=": `{v.name: ... for v in m.getVars()}` before solving",
    )
    template = load_template("scip")

    @classmethod
    def solve_model(cls, model: CanonicalModel, time_limit: float) -> RawResult:
        from pyscipopt import Model, quicksum

        m: Any = Model(model.name)
        m.hideOutput()
        m.setParam("limits/time", float(time_limit))
        variables = {
            v.name: m.addVar(v.name, vtype="I" if v.integer else "C", lb=_bound(v.lb), ub=_bound(v.ub))
            for v in model.variables
        }
        for row in model.rows:
            expression = quicksum(c * variables[n] for n, c in row.coefficients.items())
            if math.isinf(row.lb) and math.isinf(row.ub):
                continue  # a free row constrains nothing
            if math.isinf(row.lb):
                m.addCons(expression <= row.ub, name=row.name)
            elif math.isinf(row.ub):
                m.addCons(expression >= row.lb, name=row.name)
            else:
                m.addCons(row.lb <= (expression <= row.ub), name=row.name)
        linear = quicksum(c * variables[n] for n, c in model.objective.items())
        sense = "maximize" if model.sense == "max" else "minimize"
        if model.quadratic:
            # SCIP's objective must be linear: optimize an epigraph variable bounded by the quadratic expression.
            quadratic = quicksum(c * variables[u] * variables[v] for (u, v), c in model.quadratic.items())
            epigraph = m.addVar("objective_epigraph", vtype="C", lb=None, ub=None)
            if model.sense == "max":
                m.addCons(epigraph <= linear + quadratic, name="objective_epigraph_row")
            else:
                m.addCons(epigraph >= linear + quadratic, name="objective_epigraph_row")
            m.setObjective(epigraph + model.constant, sense)
        else:
            m.setObjective(linear + model.constant, sense)
        m.optimize()
        status = m.getStatus()
        if m.getNSols() == 0:
            return status, None, {}
        values = {n: float(m.getVal(var)) for n, var in variables.items()}
        return status, as_float(m.getObjVal()), values
