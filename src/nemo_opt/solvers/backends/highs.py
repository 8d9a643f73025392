"""HiGHS through highspy: LP, MILP and convex QP, in-process, no licence."""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from nemo_opt.solvers.backends.base import EXPORT_CONTRACT, ProblemClass, RawResult, SolverBackend, as_float
from nemo_opt.solvers.templates import load_template

if TYPE_CHECKING:
    from nemo_opt.solvers.canonical import CanonicalModel

__all__ = ["Highs", "hessian_lower_triangle"]

_HINT = """HiGHS through `highspy`'s modelling API:
```python
import highspy
h = highspy.Highs(); h.silent()
h.setOptionValue("time_limit", 60.0)
x = h.addVariable(lb=0, ub=highspy.kHighsInf, name="x")  # continuous
n = h.addIntegral(lb=0, ub=10, name="n_table")           # integer; h.addBinary(name="b") for 0/1
h.addConstr(x + 2 * n <= 14, name="cap_wood")            # + - * and sum(...) build linear expressions
h.maximize(3 * x + 4 * n)                                # or h.minimize(...); this also solves
status = h.getModelStatus()                              # a highspy.HighsModelStatus member
has_solution = h.getInfo().primal_solution_status == highspy.kSolutionStatusFeasible
objective = h.getInfo().objective_function_value; value = h.val(x)
h.writeModel("model.mps")                                # names are kept exactly as given
columns = {"x": "x", "n_table": "n[table]"}             # name in the file -> variable reference
```
Status: kOptimal -> "optimal", kInfeasible -> "infeasible", kUnbounded -> "unbounded", kUnboundedOrInfeasible ->
"infeasible_or_unbounded" (MIP presolve says this for unbounded MILPs; re-solve after
`h.setOptionValue("presolve", "off")` to know which), kTimeLimit /
kIterationLimit / kSolutionLimit -> "time_limit", load/model/solve errors -> "error", anything else -> "unknown".
Read values only when a solution exists. For a convex QP, build the model, then pass the Hessian with
`h.passHessian(...)` (HiGHS minimizes c'x + 1/2 x'Qx; lower triangle, column-wise) and call `h.run()`.
Mistakes to avoid: `h.addVariable(...)` defaults to lb=0; `h.maximize` solves immediately, so add every
constraint before it; `h.val` needs the variable object, not its name."""


def hessian_lower_triangle(
    quadratic: dict[tuple[str, str], float], index: dict[str, int]
) -> tuple[list[int], list[int], list[float]]:
    """The Hessian of ``sum(c u v)`` as HiGHS's triangular format: column starts, row indices and values."""
    entries: dict[tuple[int, int], float] = defaultdict(float)
    for (u, v), coefficient in quadratic.items():
        i, j = index[u], index[v]
        if i == j:
            entries[(i, i)] += 2 * coefficient  # d2/dx2 of c x^2 is 2c
        else:
            entries[(max(i, j), min(i, j))] += coefficient  # c u v puts c in both (u, v) and (v, u)
    starts: list[int] = []
    rows: list[int] = []
    values: list[float] = []
    for column in range(len(index)):
        starts.append(len(rows))
        for (row, col), value in sorted(entries.items()):
            if col == column and value != 0:
                rows.append(row)
                values.append(value)
    starts.append(len(rows))
    return starts, rows, values


class Highs(SolverBackend):
    name = "highs"
    label = "HiGHS (highspy)"
    module = "highspy"
    distribution = "highspy"
    features = frozenset({ProblemClass.LP, ProblemClass.MILP, ProblemClass.QP})
    exports_model = True
    hint = _HINT + EXPORT_CONTRACT.format(how='`h.writeModel("model.mps")`', rename="")
    template = load_template("highs")

    @classmethod
    def solve_model(cls, model: CanonicalModel, time_limit: float) -> RawResult:
        import highspy
        import numpy as np

        h: Any = highspy.Highs()
        h.silent()
        h.setOptionValue("time_limit", float(time_limit))
        inf = highspy.kHighsInf
        index = {v.name: i for i, v in enumerate(model.variables)}
        for v in model.variables:
            h.addCol(float(model.objective.get(v.name, 0.0)), max(v.lb, -inf), min(v.ub, inf), 0, [], [])
            h.passColName(index[v.name], v.name)
            if v.integer:
                h.changeColIntegrality(index[v.name], highspy.HighsVarType.kInteger)
        for row in model.rows:
            columns = np.array([index[n] for n in row.coefficients], dtype=np.int32)
            coefficients = np.array(list(row.coefficients.values()), dtype=np.float64)
            h.addRow(max(row.lb, -inf), min(row.ub, inf), len(columns), columns, coefficients)
        if model.quadratic:
            starts, rows, values = hessian_lower_triangle(model.quadratic, index)
            h.passHessian(
                len(index),
                len(values),
                highspy.HessianFormat.kTriangular,
                np.array(starts, dtype=np.int32),
                np.array(rows, dtype=np.int32),
                np.array(values, dtype=np.float64),
            )
        h.changeObjectiveOffset(float(model.constant))
        sense = highspy.ObjSense.kMaximize if model.sense == "max" else highspy.ObjSense.kMinimize
        h.changeObjectiveSense(sense)
        h.run()
        if h.getModelStatus() == highspy.HighsModelStatus.kUnboundedOrInfeasible:
            # the MIP presolve cannot tell the two apart; the solver without presolve can
            h.setOptionValue("presolve", "off")
            h.run()
        status = h.getModelStatus()
        info = h.getInfo()
        if info.primal_solution_status != highspy.kSolutionStatusFeasible:  # no feasible point to report
            return status, None, {}
        solution = h.getSolution().col_value
        values_by_name = {v.name: float(solution[index[v.name]]) for v in model.variables}
        return status, as_float(info.objective_function_value), values_by_name
