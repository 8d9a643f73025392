"""Gurobi through gurobipy: LP, MILP, QP and MIQP. The pip wheel carries a size-limited licence."""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

from nemo_opt.solvers.backends.base import EXPORT_CONTRACT, ProblemClass, RawResult, SolverBackend, as_float
from nemo_opt.solvers.templates import load_template

if TYPE_CHECKING:
    from nemo_opt.solvers.canonical import CanonicalModel

__all__ = ["SIZE_LIMIT_ERRNO", "SIZE_LIMIT_MARKER", "Gurobi", "is_size_limit_error", "size_limit_message"]

# What gurobipy raises (GurobiError 10010) when a model exceeds the pip licence's limits.
SIZE_LIMIT_MARKER = "Model too large for size-limited license"
SIZE_LIMIT_ERRNO = 10010
SIZE_LIMIT_VARIABLES = 2000
SIZE_LIMITS = f"{SIZE_LIMIT_VARIABLES} variables and 2000 linear constraints (pip's restricted licence)"
_ERRNO_PATTERN = re.compile(rf"(?:GurobiError|Error code|error)\D{{0,3}}\(?\s*{SIZE_LIMIT_ERRNO}\b", re.IGNORECASE)


def is_size_limit_error(text: str) -> bool:
    """True when ``text`` (an exception message or a run's output) reports the licence's size limit."""
    if not isinstance(text, str):
        return False
    return SIZE_LIMIT_MARKER.lower() in text.lower() or bool(_ERRNO_PATTERN.search(text))


def size_limit_message(text: str) -> str | None:
    """An explanation of the size-limit failure in ``text``, or None when ``text`` is about something else."""
    if not is_size_limit_error(text):
        return None
    return (
        f"Gurobi's size-limited licence refused the model ({SIZE_LIMIT_MARKER}; limit {SIZE_LIMITS}); "
        f"use another solver or a full licence. Original error: {text}"
    )


_HINT = f"""Gurobi through gurobipy (pip licence: at most {SIZE_LIMITS}; a larger model raises GurobiError
{SIZE_LIMIT_ERRNO} "{SIZE_LIMIT_MARKER}" at `m.optimize()` - write status "error" with the message then):
```python
import gurobipy as gp
from gurobipy import GRB
env = gp.Env(empty=True); env.setParam("OutputFlag", 0); env.start()    # silences the licence banner too
m = gp.Model("model", env=env); m.Params.TimeLimit = 60
x = m.addVar(lb=0, ub=GRB.INFINITY, name="x")                           # lb defaults to 0: -GRB.INFINITY if free
n = m.addVar(lb=0, ub=10, vtype=GRB.INTEGER, name="n_table")            # GRB.BINARY for 0/1
m.addConstr(x + 2 * n <= 14, name="cap_wood")
m.setObjective(3 * x + 4 * n - 0.5 * x * x, GRB.MAXIMIZE)              # quadratic terms allowed
m.update(); m.write("model.mps")
m.optimize()
status = m.Status
if m.SolCount > 0: objective = m.ObjVal; value = x.X
```
Status: `GRB.OPTIMAL` -> "optimal", `GRB.INFEASIBLE` -> "infeasible", `GRB.UNBOUNDED` -> "unbounded",
`GRB.INF_OR_UNBD` -> "infeasible_or_unbounded" (presolve often cannot tell; set `m.Params.DualReductions = 0` and
re-solve to know which), `GRB.TIME_LIMIT` / `NODE_LIMIT` / `SOLUTION_LIMIT` / `ITERATION_LIMIT` -> "time_limit",
`GRB.NUMERIC` -> "error", anything else -> "unknown". Use `gp.quicksum(...)` for sums and `m.addVars(...)` for
indexed families, but then pass `name=[...]` strings of `[A-Za-z0-9_]` (its default names contain brackets).
Mistakes to avoid: reading `.X` when `SolCount == 0`; nonconvex quadratic terms need `m.Params.NonConvex = 2` on
old versions; forgetting `m.update()` before `m.write`."""


class Gurobi(SolverBackend):
    name = "gurobi"
    label = "Gurobi (gurobipy, size-limited licence)"
    module = "gurobipy"
    distribution = "gurobipy"
    features = frozenset({ProblemClass.LP, ProblemClass.MILP, ProblemClass.QP, ProblemClass.MIQP})
    exports_model = True
    extra = "gurobi"
    licence_limits = f"pip licence: at most {SIZE_LIMITS}; larger models fail with error {SIZE_LIMIT_ERRNO}"
    max_variables = SIZE_LIMIT_VARIABLES
    hint = _HINT + EXPORT_CONTRACT.format(
        how='`m.update(); m.write("model.mps")`; not `model.lp`, whose bracketed names HiGHS cannot parse',
        rename=": `{v.VarName: ... for v in m.getVars()}`",
    )
    template = load_template("gurobi")

    @classmethod
    def probe(cls) -> bool:
        """Licensed and working: solve a one-variable model once."""
        import gurobipy as gp

        with gp.Env(empty=True) as env:
            env.setParam("OutputFlag", 0)
            env.start()
            with gp.Model("probe", env=env) as m:
                x = m.addVar(ub=1.0)
                m.setObjective(x, gp.GRB.MAXIMIZE)
                m.optimize()
                return bool(m.Status == gp.GRB.OPTIMAL and math.isclose(m.ObjVal, 1.0))

    @classmethod
    def solve_model(cls, model: CanonicalModel, time_limit: float) -> RawResult:
        import gurobipy as gp
        from gurobipy import GRB

        with gp.Env(empty=True) as env:
            env.setParam("OutputFlag", 0)
            env.start()
            with gp.Model(model.name, env=env) as m:
                m.Params.TimeLimit = float(time_limit)
                variables: dict[str, Any] = {
                    v.name: m.addVar(
                        lb=max(v.lb, -GRB.INFINITY),
                        ub=min(v.ub, GRB.INFINITY),
                        vtype=GRB.INTEGER if v.integer else GRB.CONTINUOUS,
                        name=v.name,
                    )
                    for v in model.variables
                }
                for row in model.rows:
                    expression = gp.quicksum(c * variables[n] for n, c in row.coefficients.items())
                    if row.lb == row.ub:
                        m.addLConstr(expression == row.lb, name=row.name)
                    elif math.isinf(row.lb) and not math.isinf(row.ub):
                        m.addLConstr(expression <= row.ub, name=row.name)
                    elif math.isinf(row.ub) and not math.isinf(row.lb):
                        m.addLConstr(expression >= row.lb, name=row.name)
                    elif not math.isinf(row.lb):
                        m.addRange(expression, row.lb, row.ub, name=row.name)
                objective = gp.quicksum(c * variables[n] for n, c in model.objective.items()) + model.constant
                if model.quadratic:
                    objective += gp.quicksum(c * variables[u] * variables[v] for (u, v), c in model.quadratic.items())
                m.setObjective(objective, GRB.MAXIMIZE if model.sense == "max" else GRB.MINIMIZE)
                m.optimize()
                if m.Status == GRB.INF_OR_UNBD:
                    # Presolve's dual reductions cannot tell the two apart; without them Gurobi can.
                    m.Params.DualReductions = 0
                    m.reset()
                    m.optimize()
                status = int(m.Status)
                if m.SolCount == 0:
                    return status, None, {}
                values = {n: float(var.X) for n, var in variables.items()}
                return status, as_float(m.ObjVal), values
