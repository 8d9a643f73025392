"""Product mix with Pyomo and HiGHS: integer quantities per product, continuous overtime on one resource.

Reads data.json, solves, exports model.mps and writes solution.json with status, objective, variables, solver,
solve_seconds, model_file and columns (column name in model.mps -> variable reference).
Pyomo's writers rename components (``make[table]`` becomes ``make(table)``), so columns come from the symbol map
the writer returns, never from guessing.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pyomo.environ as pyo

TC = pyo.TerminationCondition
STATUS = {
    TC.optimal: "optimal",
    TC.globallyOptimal: "optimal",
    TC.locallyOptimal: "optimal",
    TC.infeasible: "infeasible",
    TC.unbounded: "unbounded",
    TC.infeasibleOrUnbounded: "infeasible_or_unbounded",
    TC.maxTimeLimit: "time_limit",
    TC.maxIterations: "time_limit",
    TC.error: "error",
    TC.solverFailure: "error",
}


def reference(var: Any) -> str:
    """``name`` for a scalar variable, ``name[i,j]`` for an indexed one (elements as strings, no spaces)."""
    name = var.parent_component().name
    if not var.parent_component().is_indexed():
        return str(name)
    index = var.index()
    elements = index if isinstance(index, tuple) else (index,)
    return f"{name}[{','.join(str(e) for e in elements)}]"


def main() -> None:
    data = json.loads(Path("data.json").read_text(encoding="utf-8"))
    products, resources = data["products"], data["resources"]
    started = time.perf_counter()

    m = pyo.ConcreteModel("product_mix")
    m.P = pyo.Set(initialize=products, ordered=True)
    m.R = pyo.Set(initialize=resources, ordered=True)
    m.make = pyo.Var(m.P, domain=pyo.NonNegativeIntegers, bounds=lambda m, p: (0, data["demand"][p]))
    m.overtime = pyo.Var(domain=pyo.NonNegativeReals, bounds=(0, data["max_overtime"]))

    def capacity(m: Any, r: str) -> Any:
        extra = m.overtime if r == data["overtime_resource"] else 0
        return sum(data["usage"][r][p] * m.make[p] for p in m.P) - extra <= data["capacity"][r]

    m.cap = pyo.Constraint(m.R, rule=capacity)
    m.profit = pyo.Objective(
        expr=sum(data["profit"][p] * m.make[p] for p in m.P) - data["overtime_cost"] * m.overtime, sense=pyo.maximize
    )
    _, symbol_id = m.write("model.mps", io_options={"symbolic_solver_labels": True})
    symbols = m.solutions.symbol_map[symbol_id].byObject
    columns = {symbols[id(v)]: reference(v) for v in m.component_data_objects(pyo.Var) if id(v) in symbols}

    # "highs" (pyomo.contrib.solver) also takes quadratic objectives, which "appsi_highs" rejects.
    results = pyo.SolverFactory("highs").solve(m, load_solutions=False, timelimit=60)
    status = STATUS.get(results.solver.termination_condition, "unknown")
    solution: dict[str, Any] = {
        "status": status,
        "objective": None,
        "variables": {},
        "solver": "pyomo",
        "solve_seconds": round(time.perf_counter() - started, 4),
        "model_file": "model.mps",
        "columns": columns,
    }
    if status in ("optimal", "time_limit") and len(results.solution) > 0:
        m.solutions.load_from(results)
        solution["objective"] = pyo.value(m.profit)
        solution["variables"] = {
            "make": {p: round(pyo.value(m.make[p])) for p in products},
            "overtime": pyo.value(m.overtime),
        }
    Path("solution.json").write_text(json.dumps(solution, indent=2), encoding="utf-8")
    print(f"status: {status}, objective: {solution['objective']}")


if __name__ == "__main__":
    main()
