"""Product mix with CVXPY and its HiGHS interface: integer quantities per product, continuous overtime.

CVXPY cannot export an MPS/LP file, so solution.json has "model_file": null and "columns": null.
The solver is named explicitly: left to itself CVXPY picks Gurobi when gurobipy is installed (size-limited licence),
and its GLOP/PDLP interfaces load OR-Tools, which cannot share a process with highspy.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import cvxpy as cp
import numpy as np

STATUS = {  # problem.status strings (cvxpy.settings)
    "optimal": "optimal",
    "optimal_inaccurate": "optimal",
    "infeasible": "infeasible",
    "infeasible_inaccurate": "infeasible",
    "unbounded": "unbounded",
    "unbounded_inaccurate": "unbounded",
    "infeasible_or_unbounded": "infeasible_or_unbounded",
    "user_limit": "time_limit",
    "solver_error": "error",
}


def main() -> None:
    data = json.loads(Path("data.json").read_text(encoding="utf-8"))
    products, resources = data["products"], data["resources"]
    started = time.perf_counter()

    make = cp.Variable(len(products), integer=True, name="make")  # make[k] is products[k]
    overtime = cp.Variable(name="overtime")
    demand = np.array([data["demand"][p] for p in products], dtype=float)
    profit = np.array([data["profit"][p] for p in products], dtype=float)
    constraints = [make >= 0, make <= demand, overtime >= 0, overtime <= data["max_overtime"]]
    for r in resources:
        usage = np.array([data["usage"][r][p] for p in products], dtype=float)
        extra = overtime if r == data["overtime_resource"] else 0
        constraints.append(usage @ make - extra <= data["capacity"][r])
    problem = cp.Problem(cp.Maximize(profit @ make - data["overtime_cost"] * overtime), constraints)

    status = "error"
    message = None
    try:
        problem.solve(solver=cp.HIGHS, time_limit=60.0)
        status = STATUS.get(problem.status, "unknown")
    except cp.SolverError as exc:
        message = str(exc)
    solution: dict[str, Any] = {
        "status": status,
        "objective": None,
        "variables": {},
        "solver": "cvxpy",
        "solve_seconds": round(time.perf_counter() - started, 4),
        "model_file": None,
        "columns": None,
    }
    if message:
        solution["error"] = message
    if status in ("optimal", "time_limit") and make.value is not None:
        solution["objective"] = float(problem.value)
        solution["variables"] = {
            "make": {p: round(float(make.value[k])) for k, p in enumerate(products)},
            "overtime": float(overtime.value),
        }
    Path("solution.json").write_text(json.dumps(solution, indent=2), encoding="utf-8")
    print(f"status: {status}, objective: {solution['objective']}")


if __name__ == "__main__":
    main()
