"""Product mix with OR-Tools CP-SAT: integer quantities, overtime counted in tenths of an hour.

CP-SAT has integer variables and integer coefficients only, so every fractional quantity is scaled: overtime is
an integer number of tenths and every row is multiplied by SCALE. Data that do not become integers after scaling
stop the script rather than being rounded silently. CP-SAT cannot export an MPS/LP file, so solution.json has
"model_file": null and "columns": null.
Do not import highspy in the same script: both libraries ship a libhighs.so.1 of different versions.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from ortools.sat.python import cp_model

SCALE = 10  # overtime resolution: tenths of an hour
STATUS = {
    cp_model.OPTIMAL: "optimal",
    cp_model.FEASIBLE: "time_limit",
    cp_model.INFEASIBLE: "infeasible",
    cp_model.MODEL_INVALID: "error",
}


def scaled(value: float) -> int:
    """``value * SCALE`` as an exact integer; stops when the data need a finer scale."""
    product = value * SCALE
    if abs(product - round(product)) > 1e-9:
        raise SystemExit(f"{value} is not a multiple of 1/{SCALE}: raise SCALE")
    return round(product)


def main() -> None:
    data = json.loads(Path("data.json").read_text(encoding="utf-8"))
    products, resources = data["products"], data["resources"]
    started = time.perf_counter()

    model = cp_model.CpModel()
    make = {p: model.new_int_var(0, int(data["demand"][p]), f"make_{p}") for p in products}
    overtime_tenths = model.new_int_var(0, scaled(data["max_overtime"]), "overtime_tenths")
    for r in resources:
        extra = overtime_tenths if r == data["overtime_resource"] else 0
        used = sum(scaled(data["usage"][r][p]) * make[p] for p in products)
        model.add(used - extra <= scaled(data["capacity"][r]))
    # objective in units of 1/SCALE so that overtime's cost stays integral
    model.maximize(
        sum(scaled(data["profit"][p]) * make[p] for p in products) - int(data["overtime_cost"]) * overtime_tenths
    )
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = 60.0
    result = solver.solve(model)

    status = STATUS.get(result, "unknown")
    solution: dict[str, Any] = {
        "status": status,
        "objective": None,
        "variables": {},
        "solver": "cpsat",
        "solve_seconds": round(time.perf_counter() - started, 4),
        "model_file": None,
        "columns": None,
    }
    if status in ("optimal", "time_limit"):
        solution["objective"] = solver.objective_value / SCALE
        solution["variables"] = {
            "make": {p: solver.value(make[p]) for p in products},
            "overtime": solver.value(overtime_tenths) / SCALE,
        }
    Path("solution.json").write_text(json.dumps(solution, indent=2), encoding="utf-8")
    print(f"status: {status}, objective: {solution['objective']}")


if __name__ == "__main__":
    main()
