"""Product mix with OR-Tools' linear solver wrapper (pywraplp, SCIP backend): integer quantities, continuous overtime.

Reads data.json, solves, exports model.mps and writes solution.json with status, objective, variables, solver,
solve_seconds, model_file and columns (column name in model.mps -> variable reference).
Do not import highspy in the same script: both libraries ship a libhighs.so.1 of different versions.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

from ortools.linear_solver import pywraplp

STATUS = {
    pywraplp.Solver.OPTIMAL: "optimal",
    pywraplp.Solver.FEASIBLE: "time_limit",
    pywraplp.Solver.INFEASIBLE: "infeasible",
    pywraplp.Solver.UNBOUNDED: "unbounded",
    pywraplp.Solver.ABNORMAL: "error",
    pywraplp.Solver.MODEL_INVALID: "error",
}
used_names: set[str] = set()


def column_name(base: str) -> str:
    """A unique name of [A-Za-z0-9_] only, so the model file keeps it exactly as written."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", base)
    while name in used_names:
        name += "_"
    used_names.add(name)
    return name


def main() -> None:
    data = json.loads(Path("data.json").read_text(encoding="utf-8"))
    products, resources = data["products"], data["resources"]
    started = time.perf_counter()

    solver = pywraplp.Solver.CreateSolver("SCIP")  # "CBC" also takes integers; "GLOP" is for pure LPs
    if solver is None:
        raise SystemExit("this OR-Tools build has no SCIP backend")
    solver.SetTimeLimit(60_000)  # milliseconds
    make = {p: solver.IntVar(0, data["demand"][p], column_name(f"make_{p}")) for p in products}
    overtime = solver.NumVar(0, data["max_overtime"], column_name("overtime"))
    for r in resources:
        extra = overtime if r == data["overtime_resource"] else 0
        used = sum(data["usage"][r][p] * make[p] for p in products)
        solver.Add(used - extra <= data["capacity"][r], column_name(f"cap_{r}"))
    solver.Maximize(sum(data["profit"][p] * make[p] for p in products) - data["overtime_cost"] * overtime)
    Path("model.mps").write_text(solver.ExportModelAsMpsFormat(fixed_format=False, obfuscate=False), encoding="utf-8")
    columns = {make[p].name(): f"make[{p}]" for p in products}
    columns[overtime.name()] = "overtime"
    result = solver.Solve()

    status = STATUS.get(result, "unknown")
    solution: dict[str, Any] = {
        "status": status,
        "objective": None,
        "variables": {},
        "solver": "ortools",
        "solve_seconds": round(time.perf_counter() - started, 4),
        "model_file": "model.mps",
        "columns": columns,
    }
    if status in ("optimal", "time_limit"):
        solution["objective"] = solver.Objective().Value()
        solution["variables"] = {
            "make": {p: round(make[p].solution_value()) for p in products},
            "overtime": overtime.solution_value(),
        }
    Path("solution.json").write_text(json.dumps(solution, indent=2), encoding="utf-8")
    print(f"status: {status}, objective: {solution['objective']}")


if __name__ == "__main__":
    main()
