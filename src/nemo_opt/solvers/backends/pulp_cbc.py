"""CBC through PuLP: LP and MILP; PuLP ships the CBC binary and runs it as a subprocess."""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, Any

from nemo_opt.solvers.backends.base import EXPORT_CONTRACT, ProblemClass, RawResult, SolverBackend, as_float
from nemo_opt.solvers.templates import load_template

if TYPE_CHECKING:
    from nemo_opt.solvers.canonical import CanonicalModel

__all__ = ["PulpCbc"]

_HINT = """CBC through PuLP (3.3 or later: variables are created by the problem):
```python
import pulp
prob = pulp.LpProblem("model", pulp.LpMaximize)                    # or pulp.LpMinimize
x = prob.add_variable("x", lowBound=0)                              # PuLP < 3.3: pulp.LpVariable("x", lowBound=0)
n = prob.add_variable("n_table", lowBound=0, upBound=10, cat="Integer")   # cat="Binary" for 0/1
prob += 3 * x + 4 * n                                               # the first expression added is the objective
prob += (x + 2 * n <= 14, "cap_wood")                               # constraints are (expression, name) tuples
prob.writeMPS("model.mps", with_objsense=True)                      # see the model-file section below
cbc = pulp.COIN_CMD(msg=False, timeLimit=60)                        # CBC from `pip install pulp[cbc]`, if present
if not cbc.available():
    cbc = pulp.PULP_CBC_CMD(msg=False, timeLimit=60)                # the CBC bundled with PuLP 3 (warns: deprecated)
prob.solve(cbc)
status, sol_status = prob.status, prob.sol_status                   # read both, see below
objective = pulp.value(prob.objective); value = x.varValue
```
Status: when `prob.status == pulp.LpStatusOptimal`, it is "optimal" if `prob.sol_status == pulp.LpSolutionOptimal`
and "time_limit" otherwise (CBC stopped with an unproven incumbent, `LpSolutionIntegerFeasible`); otherwise
`pulp.LpStatusInfeasible` -> "infeasible", `pulp.LpStatusUnbounded` -> "unbounded", anything else -> "unknown".
(`sol_status` alone is wrong for integer-infeasible models: it says "no solution found".)
Use `pulp.lpSum(...)` for sums and give every constraint a unique name.
Mistakes to avoid: PuLP silently replaces characters such as `-+[] ->/` in names with `_`, so two names can
collide; a variable that appears in no constraint and not in the objective is not part of the problem (its
`varValue` is None); `x.varValue` is None when there is no solution."""


def _bound(value: float) -> float | None:
    return None if math.isinf(value) else value


class PulpCbc(SolverBackend):
    name = "cbc"
    label = "CBC (PuLP)"
    module = "pulp"
    distribution = "pulp"
    features = frozenset({ProblemClass.LP, ProblemClass.MILP})
    exports_model = True
    hint = _HINT + EXPORT_CONTRACT.format(
        how='`prob.writeMPS("model.mps", with_objsense=True)`; without `with_objsense` the file records a '
        "maximization only in a comment",
        rename=": `{v.name: ... for v in prob.variables()}` after writing (PuLP writes only variables that occur in "
        "the objective or a constraint)",
    )
    template = load_template("cbc")

    @classmethod
    def solve_model(cls, model: CanonicalModel, time_limit: float) -> RawResult:
        import pulp

        prob: Any = pulp.LpProblem(model.name, pulp.LpMaximize if model.sense == "max" else pulp.LpMinimize)
        # PuLP 3.3 deprecates constructing LpVariable directly in favour of the problem's add_variable
        new_variable = getattr(prob, "add_variable", None) or pulp.LpVariable
        variables = {
            v.name: new_variable(
                v.name, lowBound=_bound(v.lb), upBound=_bound(v.ub), cat="Integer" if v.integer else "Continuous"
            )
            for v in model.variables
        }
        prob += pulp.lpSum(c * variables[n] for n, c in model.objective.items()) + model.constant
        for row in model.rows:
            expression = pulp.lpSum(c * variables[n] for n, c in row.coefficients.items())
            if row.lb == row.ub:
                prob += (expression == row.lb, row.name)
                continue
            # PuLP has no ranged rows: a two-sided row becomes two named constraints.
            if not math.isinf(row.lb):
                prob += (expression >= row.lb, f"{row.name}__lb" if not math.isinf(row.ub) else row.name)
            if not math.isinf(row.ub):
                prob += (expression <= row.ub, f"{row.name}__ub" if not math.isinf(row.lb) else row.name)
        seconds = max(1, math.ceil(time_limit))
        cbc = pulp.COIN_CMD(msg=False, timeLimit=seconds)  # CBC installed by pulp[cbc]: PuLP 4's way
        if not cbc.available():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # PuLP 3.3 deprecates its bundled CBC
                cbc = pulp.PULP_CBC_CMD(msg=False, timeLimit=seconds)
        prob.solve(cbc)
        # status "Optimal" with sol_status "integer feasible" is a time-limited incumbent; for every other outcome
        # status is the reliable code (an integer-infeasible model has sol_status "no solution found").
        raw = prob.sol_status if prob.status == pulp.LpStatusOptimal else prob.status
        if raw not in (pulp.LpSolutionOptimal, pulp.LpSolutionIntegerFeasible):
            return raw, None, {}
        values = {n: float(var.varValue or 0.0) for n, var in variables.items()}
        return raw, as_float(pulp.value(prob.objective)), values
