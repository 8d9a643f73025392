"""Pyomo: algebraic models solved by HiGHS (LP, MILP, QP) or by SCIP through PySCIPOpt (MIQP, NLP, MINLP).

What works from pip wheels alone: ``highs`` (pyomo.contrib.solver, takes quadratic objectives, which
``appsi_highs`` rejects) and ``scip_direct`` (needs PySCIPOpt). ``cyipopt`` is listed as available but fails at
solve time without the PyNumero ASL library, which no wheel ships; ``ipopt``, ``scip``, ``cbc`` and ``glpk`` need
executables on PATH.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from nemo_opt.solvers.backends.base import EXPORT_CONTRACT, ProblemClass, RawResult, SolverBackend, as_float
from nemo_opt.solvers.status import normalize_status
from nemo_opt.solvers.templates import load_template

if TYPE_CHECKING:
    from nemo_opt.solvers.canonical import CanonicalModel

__all__ = ["Pyomo", "pyomo_solver_for"]

_HINT = """Pyomo (`import pyomo.environ as pyo`), solved with `"highs"` for LP/MILP/QP and `"scip_direct"` (needs
PySCIPOpt) for MIQP/NLP/MINLP:
```python
import pyomo.environ as pyo
m = pyo.ConcreteModel()
m.P = pyo.Set(initialize=products, ordered=True)
m.make = pyo.Var(m.P, domain=pyo.NonNegativeIntegers, bounds=lambda m, p: (0, demand[p]))
m.x = pyo.Var(domain=pyo.NonNegativeReals)
m.cap = pyo.Constraint(expr=sum(use[p] * m.make[p] for p in m.P) + m.x <= 14)
m.obj = pyo.Objective(expr=sum(profit[p] * m.make[p] for p in m.P), sense=pyo.maximize)
_, symbol_id = m.write("model.mps", io_options={"symbolic_solver_labels": True})
symbols = m.solutions.symbol_map[symbol_id].byObject                     # id(var) -> name in the file
results = pyo.SolverFactory("highs").solve(m, load_solutions=False, timelimit=60)
condition = results.solver.termination_condition                          # a pyo.TerminationCondition
if len(results.solution) > 0: m.solutions.load_from(results); value = pyo.value(m.x)
```
Status: `TerminationCondition.optimal` (and `globallyOptimal`, `locallyOptimal`) -> "optimal", `infeasible` ->
"infeasible", `unbounded` -> "unbounded", `infeasibleOrUnbounded` -> "infeasible_or_unbounded", `maxTimeLimit` /
`maxIterations` -> "time_limit", `error` / `solverFailure` -> "error", anything else -> "unknown".
Mistakes to avoid: `solve(m)` with the default `load_solutions=True` raises NoFeasibleSolutionError on an
infeasible model; `appsi_highs` rejects quadratic objectives; `ipopt`, `cbc`, `glpk` and `scip` (without
`_direct`) need executables that are not installed, and `cyipopt` needs a library no wheel ships. For a model with
nonlinear constraints HiGHS cannot read the exported file: write `"model_file": null` and `"columns": null`."""


def pyomo_solver_for(problem_class: ProblemClass) -> str:
    """The Pyomo solver name that handles ``problem_class`` from pip wheels alone."""
    if problem_class in (ProblemClass.LP, ProblemClass.MILP, ProblemClass.QP):
        return "highs"
    return "scip_direct"


def _bound(value: float) -> float | None:
    return None if math.isinf(value) else value


class Pyomo(SolverBackend):
    name = "pyomo"
    label = "Pyomo (HiGHS / SCIP)"
    module = "pyomo"
    distribution = "pyomo"
    features = frozenset(
        {ProblemClass.LP, ProblemClass.MILP, ProblemClass.QP, ProblemClass.MIQP, ProblemClass.NLP, ProblemClass.MINLP}
    )
    exports_model = True
    extra = "pyomo"
    hint = _HINT + EXPORT_CONTRACT.format(
        how='`m.write("model.mps", io_options={"symbolic_solver_labels": True})`',
        rename=": Pyomo renames components (`make[table]` becomes `make(table)`), so take names from the symbol "
        "map: `{symbols[id(v)]: ... for v in m.component_data_objects(pyo.Var) if id(v) in symbols}`",
    )
    template = load_template("pyomo")

    @classmethod
    def probe(cls) -> bool:
        import pyomo.environ as pyo

        return bool(pyo.SolverFactory("highs").available(exception_flag=False))

    @classmethod
    def check_model(cls, model: CanonicalModel) -> str | None:
        reason = super().check_model(model)
        if reason is None and pyomo_solver_for(model.problem_class) == "scip_direct":
            import pyomo.environ as pyo

            if not pyo.SolverFactory("scip_direct").available(exception_flag=False):
                return f"Pyomo needs PySCIPOpt (scip_direct) for {model.problem_class.value} models"
        return reason

    @classmethod
    def solve_model(cls, model: CanonicalModel, time_limit: float) -> RawResult:
        import pyomo.environ as pyo

        m: Any = pyo.ConcreteModel(model.name)
        names = [v.name for v in model.variables]
        spec = {v.name: v for v in model.variables}
        m.x = pyo.Var(
            names,
            domain=lambda _, n: pyo.Integers if spec[n].integer else pyo.Reals,
            bounds=lambda _, n: (_bound(spec[n].lb), _bound(spec[n].ub)),
        )
        rows = {r.name: r for r in model.rows if not (math.isinf(r.lb) and math.isinf(r.ub))}

        def row_rule(m: Any, name: str) -> Any:
            row = rows[name]
            expression = sum(c * m.x[n] for n, c in row.coefficients.items())
            if row.lb == row.ub:
                return expression == row.lb
            return (_bound(row.lb), expression, _bound(row.ub))

        m.rows = pyo.Constraint(list(rows), rule=row_rule)
        objective = model.constant + sum(c * m.x[n] for n, c in model.objective.items())
        objective += sum(c * m.x[u] * m.x[v] for (u, v), c in model.quadratic.items())
        m.objective = pyo.Objective(expr=objective, sense=pyo.maximize if model.sense == "max" else pyo.minimize)
        solver_name = pyomo_solver_for(model.problem_class)
        solver = pyo.SolverFactory(solver_name)
        results = solver.solve(m, load_solutions=False, timelimit=float(time_limit))
        condition = results.solver.termination_condition
        if condition == pyo.TerminationCondition.infeasibleOrUnbounded and solver_name == "highs":
            # HiGHS's MIP presolve cannot tell the two apart; the solver without presolve can
            results = solver.solve(m, load_solutions=False, timelimit=float(time_limit), options={"presolve": "off"})
            condition = results.solver.termination_condition
        # an unbounded LP comes back with a (meaningless) point and solver status "error": load nothing then
        if len(results.solution) == 0 or not normalize_status(cls.name, condition).has_solution:
            return condition, None, {}
        m.solutions.load_from(results)
        values = {n: float(pyo.value(m.x[n])) for n in names}
        return condition, as_float(pyo.value(m.objective)), values
