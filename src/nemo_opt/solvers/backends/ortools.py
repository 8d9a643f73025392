"""OR-Tools: the linear solver wrapper (pywraplp with GLOP/SCIP/CBC) and CP-SAT, as two backends.

OR-Tools and highspy both ship a ``libhighs.so.1`` (of different HiGHS versions) and the dynamic loader reuses
whichever was loaded first, so the two cannot live in one process: importing either after the other fails with an
undefined symbol. The probes and canonical solves therefore run OR-Tools in a child process
(``_ortools_worker.py``), and the hints tell agents not to import highspy in an OR-Tools model file.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nemo_opt.solvers.backends.base import (
    EXPORT_CONTRACT,
    ProblemClass,
    RawResult,
    SolverBackend,
    as_float,
    no_export_contract,
)
from nemo_opt.solvers.templates import load_template

if TYPE_CHECKING:
    from nemo_opt.solvers.canonical import CanonicalModel

__all__ = ["CpSat", "OrTools", "run_worker"]

_WORKER = Path(__file__).with_name("_ortools_worker.py")
# Budget for the child's interpreter start and OR-Tools import on top of the solve's own time limit.
_START_SECONDS = 60.0
_NO_HIGHSPY = (
    "Do not import `highspy` (or CVXPY's/Pyomo's HiGHS interfaces) in the same script: OR-Tools and highspy ship "
    "different builds of `libhighs.so.1` and the second import fails."
)


def run_worker(engine: str, model: CanonicalModel, time_limit: float) -> RawResult:
    """Solve ``model`` with OR-Tools' ``engine`` ("linear" or "cpsat") in a child process."""
    request = json.dumps({"engine": engine, "model": model.to_dict(), "time_limit": time_limit})
    done = subprocess.run(
        # -P: keep the worker's folder off sys.path, where this module (ortools.py) would shadow the package
        [sys.executable, "-P", str(_WORKER)],
        input=request,
        capture_output=True,
        text=True,
        timeout=time_limit + _START_SECONDS,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"OR-Tools worker failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    answer: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    values = {str(k): float(v) for k, v in answer["values"].items()}
    return int(answer["raw"]), as_float(answer["objective"]), values


def _probe(engine: str) -> bool:
    # imported here: canonical imports the registry, which imports this module
    from nemo_opt.solvers.canonical import CanonicalModel, Row, Variable

    tiny = CanonicalModel([Variable("x", 0, 3, integer=True)], [Row("r", {"x": 2}, ub=5)], {"x": 1}, sense="max")
    raw, objective, _ = run_worker(engine, tiny, 10.0)
    return objective is not None and math.isclose(objective, 2.0)


_LINEAR_HINT = (
    """OR-Tools' linear solver wrapper (pywraplp):
```python
from ortools.linear_solver import pywraplp
solver = pywraplp.Solver.CreateSolver("SCIP")      # MILP; "CBC" also works, "GLOP" for pure LPs
solver.SetTimeLimit(60_000)                         # milliseconds
x = solver.NumVar(0, solver.infinity(), "x")        # continuous; solver.IntVar(lo, hi, "n_table") for integers
n = solver.IntVar(0, 10, "n_table")                 # solver.BoolVar("b") for 0/1
solver.Add(x + 2 * n <= 14, "cap_wood")
solver.Maximize(3 * x + 4 * n)                      # or solver.Minimize(...)
mps = solver.ExportModelAsMpsFormat(fixed_format=False, obfuscate=False)
result = solver.Solve()
objective = solver.Objective().Value(); value = x.solution_value()
```
Status: `pywraplp.Solver.OPTIMAL` -> "optimal", `FEASIBLE` -> "time_limit" (stopped with an unproven incumbent),
`INFEASIBLE` -> "infeasible", `UNBOUNDED` -> "unbounded", `ABNORMAL` / `MODEL_INVALID` -> "error", `NOT_SOLVED` ->
"unknown". Read values only for OPTIMAL or FEASIBLE. `CreateSolver` returns None when the backend is missing.
GLOP's presolve reports some unbounded LPs as INFEASIBLE: before concluding "infeasible" on an LP, re-solve with
`p = pywraplp.MPSolverParameters(); p.SetIntegerParam(p.PRESOLVE, p.PRESOLVE_OFF); solver.Solve(p)`.
Mistakes to avoid: the time limit is in milliseconds; `sum(...)` works but `solver.Sum([...])` is faster for
large sums; quadratic objectives are not supported. """
    + _NO_HIGHSPY
)

_CPSAT_HINT = (
    """OR-Tools CP-SAT (integer variables and integer constraint coefficients only):
```python
from ortools.sat.python import cp_model
model = cp_model.CpModel()
n = model.new_int_var(0, 10, "n_table")             # every variable needs finite integer bounds
b = model.new_bool_var("use_table")
model.add(2 * n <= 14)
model.add(n <= 10 * b)                              # or model.add(n == 0).only_enforce_if(~b)
model.add_all_different([...]); model.add_no_overlap([...])   # global constraints: CP-SAT's strength
model.maximize(3 * n - 5 * b)
solver = cp_model.CpSolver(); solver.parameters.max_time_in_seconds = 60.0
result = solver.solve(model)
objective = solver.objective_value; value = solver.value(n)
```
Status: `cp_model.OPTIMAL` -> "optimal", `cp_model.FEASIBLE` -> "time_limit" (incumbent, optimality not proven),
`cp_model.INFEASIBLE` -> "infeasible", `cp_model.MODEL_INVALID` -> "error", `cp_model.UNKNOWN` -> "unknown".
CP-SAT cannot prove unboundedness (all domains are finite). Fractional data must be scaled to integers (e.g. hours
in tenths: multiply every coefficient of the row by 10) and the reported values scaled back; stop with an error
rather than rounding data that are not multiples of the scale. Mistakes to avoid: float coefficients in
constraints raise; huge domains (near 2**62) make the model invalid. """
    + _NO_HIGHSPY
)


class OrTools(SolverBackend):
    name = "ortools"
    label = "OR-Tools linear solver (pywraplp: SCIP/GLOP/CBC)"
    module = "ortools"
    distribution = "ortools"
    features = frozenset({ProblemClass.LP, ProblemClass.MILP})
    exports_model = True
    extra = "ortools"
    hint = _LINEAR_HINT + EXPORT_CONTRACT.format(
        how='`Path("model.mps").write_text(solver.ExportModelAsMpsFormat(fixed_format=False, obfuscate=False))`',
        rename=": `{v.name(): ... for v in solver.variables()}`",
    )
    template = load_template("ortools")

    @classmethod
    def probe(cls) -> bool:
        return _probe("linear")

    @classmethod
    def solve_model(cls, model: CanonicalModel, time_limit: float) -> RawResult:
        return run_worker("linear", model, time_limit)


class CpSat(SolverBackend):
    name = "cpsat"
    label = "OR-Tools CP-SAT"
    module = "ortools"
    distribution = "ortools"
    features = frozenset({ProblemClass.CP})
    exports_model = False
    extra = "ortools"
    hint = _CPSAT_HINT + no_export_contract("CP-SAT")
    template = load_template("cpsat")

    @classmethod
    def probe(cls) -> bool:
        return _probe("cpsat")

    @classmethod
    def check_model(cls, model: CanonicalModel) -> str | None:
        """CP-SAT takes canonical models that are integer-only linear programs with finite bounds."""
        if model.quadratic:
            return "CP-SAT takes linear objectives only"
        continuous = [v.name for v in model.variables if not v.integer]
        if continuous:
            return f"CP-SAT needs integer variables only; continuous: {continuous[:5]}"
        unbounded = [v.name for v in model.variables if math.isinf(v.lb) or math.isinf(v.ub)]
        if unbounded:
            return f"CP-SAT needs finite bounds on every variable (so it cannot show unboundedness): {unbounded[:5]}"
        fractional = [r.name for r in model.rows if any(not float(c).is_integer() for c in r.coefficients.values())]
        if fractional:
            return f"CP-SAT needs integer constraint coefficients; scale rows {fractional[:5]}"
        return None

    @classmethod
    def solve_model(cls, model: CanonicalModel, time_limit: float) -> RawResult:
        return run_worker("cpsat", model, time_limit)
