"""Product mix with Gurobi (gurobipy): integer quantities per product, continuous overtime on one resource.

Reads data.json, solves, exports model.mps and writes solution.json with status, objective, variables, solver,
solve_seconds, model_file and columns (column name in model.mps -> variable reference).
The pip licence is size-limited (2000 variables, 2000 constraints): a larger model raises GurobiError 10010,
reported here as status "error" with the message, so the caller can switch solver.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import gurobipy as gp
from gurobipy import GRB

STATUS = {
    GRB.OPTIMAL: "optimal",
    GRB.INFEASIBLE: "infeasible",
    GRB.UNBOUNDED: "unbounded",
    GRB.INF_OR_UNBD: "infeasible_or_unbounded",
    GRB.TIME_LIMIT: "time_limit",
    GRB.ITERATION_LIMIT: "time_limit",
    GRB.NODE_LIMIT: "time_limit",
    GRB.SOLUTION_LIMIT: "time_limit",
    GRB.NUMERIC: "error",
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

    env = gp.Env(empty=True)  # an empty env started with OutputFlag 0 also silences the licence banner
    env.setParam("OutputFlag", 0)
    env.start()
    m = gp.Model("product_mix", env=env)
    m.Params.TimeLimit = 60.0
    make = {p: m.addVar(lb=0, ub=data["demand"][p], vtype=GRB.INTEGER, name=column_name(f"make_{p}")) for p in products}
    overtime = m.addVar(lb=0, ub=data["max_overtime"], name=column_name("overtime"))
    for r in resources:
        extra = overtime if r == data["overtime_resource"] else 0
        used = gp.quicksum(data["usage"][r][p] * make[p] for p in products)
        m.addConstr(used - extra <= data["capacity"][r], name=column_name(f"cap_{r}"))
    m.setObjective(
        gp.quicksum(data["profit"][p] * make[p] for p in products) - data["overtime_cost"] * overtime, GRB.MAXIMIZE
    )
    m.update()
    m.write("model.mps")
    columns = {make[p].VarName: f"make[{p}]" for p in products}
    columns[overtime.VarName] = "overtime"

    solution: dict[str, Any] = {
        "status": "unknown",
        "objective": None,
        "variables": {},
        "solver": "gurobi",
        "solve_seconds": None,
        "model_file": "model.mps",
        "columns": columns,
    }
    try:
        m.optimize()
    except gp.GurobiError as exc:
        solution["status"] = "error"
        solution["error"] = f"GurobiError {exc.errno}: {exc}"  # 10010: model too large for the size-limited licence
    else:
        solution["status"] = STATUS.get(m.Status, "unknown")
        if m.SolCount > 0:
            solution["objective"] = m.ObjVal
            solution["variables"] = {"make": {p: round(make[p].X) for p in products}, "overtime": overtime.X}
    solution["solve_seconds"] = round(time.perf_counter() - started, 4)
    Path("solution.json").write_text(json.dumps(solution, indent=2), encoding="utf-8")
    print(f"status: {solution['status']}, objective: {solution['objective']}")
    if "error" in solution:
        print(solution["error"])


if __name__ == "__main__":
    main()
