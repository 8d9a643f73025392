"""Product mix with HiGHS (highspy): integer quantities per product, continuous overtime on one resource.

Reads data.json, solves, exports model.mps and writes solution.json with status, objective, variables, solver,
solve_seconds, model_file and columns (column name in model.mps -> variable reference).
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import highspy

STATUS = {
    highspy.HighsModelStatus.kOptimal: "optimal",
    highspy.HighsModelStatus.kInfeasible: "infeasible",
    highspy.HighsModelStatus.kUnbounded: "unbounded",
    highspy.HighsModelStatus.kUnboundedOrInfeasible: "infeasible_or_unbounded",
    highspy.HighsModelStatus.kTimeLimit: "time_limit",
    highspy.HighsModelStatus.kIterationLimit: "time_limit",
    highspy.HighsModelStatus.kSolutionLimit: "time_limit",
    highspy.HighsModelStatus.kLoadError: "error",
    highspy.HighsModelStatus.kModelError: "error",
    highspy.HighsModelStatus.kSolveError: "error",
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

    h = highspy.Highs()
    h.silent()
    h.setOptionValue("time_limit", 60.0)
    columns: dict[str, str] = {}
    make = {}
    for p in products:
        name = column_name(f"make_{p}")
        make[p] = h.addIntegral(lb=0, ub=data["demand"][p], name=name)
        columns[name] = f"make[{p}]"
    name = column_name("overtime")
    overtime = h.addVariable(lb=0, ub=data["max_overtime"], name=name)
    columns[name] = "overtime"
    for r in resources:
        extra = overtime if r == data["overtime_resource"] else 0
        used = sum(data["usage"][r][p] * make[p] for p in products)
        h.addConstr(used - extra <= data["capacity"][r], name=column_name(f"cap_{r}"))
    h.maximize(sum(data["profit"][p] * make[p] for p in products) - data["overtime_cost"] * overtime)
    if h.getModelStatus() == highspy.HighsModelStatus.kUnboundedOrInfeasible:
        h.setOptionValue("presolve", "off")  # MIP presolve cannot tell which; the solver without it can
        h.run()
    h.writeModel("model.mps")

    status = STATUS.get(h.getModelStatus(), "unknown")
    solution: dict[str, Any] = {
        "status": status,
        "objective": None,
        "variables": {},
        "solver": "highs",
        "solve_seconds": round(time.perf_counter() - started, 4),
        "model_file": "model.mps",
        "columns": columns,
    }
    if h.getInfo().primal_solution_status == highspy.kSolutionStatusFeasible:
        solution["objective"] = h.getInfo().objective_function_value
        solution["variables"] = {
            "make": {p: round(h.val(make[p])) for p in products},
            "overtime": h.val(overtime),
        }
    Path("solution.json").write_text(json.dumps(solution, indent=2), encoding="utf-8")
    print(f"status: {status}, objective: {solution['objective']}")


if __name__ == "__main__":
    main()
