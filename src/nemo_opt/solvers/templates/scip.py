"""Product mix with SCIP (PySCIPOpt): integer quantities per product, continuous overtime on one resource.

Reads data.json, solves, exports model.mps and writes solution.json with status, objective, variables, solver,
solve_seconds, model_file and columns (column name in model.mps -> variable reference).
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

from pyscipopt import Model, quicksum

STATUS = {
    "optimal": "optimal",
    "gaplimit": "optimal",
    "infeasible": "infeasible",
    "unbounded": "unbounded",
    "inforunbd": "infeasible_or_unbounded",
    "timelimit": "time_limit",
    "nodelimit": "time_limit",
    "sollimit": "time_limit",
    "memlimit": "time_limit",
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

    m = Model("product_mix")
    m.hideOutput()
    m.setParam("limits/time", 60.0)
    make = {p: m.addVar(column_name(f"make_{p}"), vtype="I", lb=0, ub=data["demand"][p]) for p in products}
    overtime = m.addVar(column_name("overtime"), vtype="C", lb=0, ub=data["max_overtime"])
    for r in resources:
        extra = overtime if r == data["overtime_resource"] else 0
        used = quicksum(data["usage"][r][p] * make[p] for p in products)
        m.addCons(used - extra <= data["capacity"][r], name=column_name(f"cap_{r}"))
    m.setObjective(
        quicksum(data["profit"][p] * make[p] for p in products) - data["overtime_cost"] * overtime, "maximize"
    )
    m.writeProblem("model.mps", verbose=False)
    columns = {make[p].name: f"make[{p}]" for p in products}
    columns[overtime.name] = "overtime"
    m.optimize()

    status = STATUS.get(m.getStatus(), "unknown")
    solution: dict[str, Any] = {
        "status": status,
        "objective": None,
        "variables": {},
        "solver": "scip",
        "solve_seconds": round(time.perf_counter() - started, 4),
        "model_file": "model.mps",
        "columns": columns,
    }
    if status in ("optimal", "time_limit") and m.getNSols() > 0:
        solution["objective"] = m.getObjVal()
        solution["variables"] = {
            "make": {p: round(m.getVal(make[p])) for p in products},
            "overtime": m.getVal(overtime),
        }
    Path("solution.json").write_text(json.dumps(solution, indent=2), encoding="utf-8")
    print(f"status: {status}, objective: {solution['objective']}")


if __name__ == "__main__":
    main()
