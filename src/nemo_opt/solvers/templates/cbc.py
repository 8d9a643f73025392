"""Product mix with CBC through PuLP (3.3 or later): integer quantities, continuous overtime on one resource.

Reads data.json, solves, exports model.mps and writes solution.json with status, objective, variables, solver,
solve_seconds, model_file and columns (column name in model.mps -> variable reference).
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pulp

STATUS = {pulp.LpStatusInfeasible: "infeasible", pulp.LpStatusUnbounded: "unbounded"}
used_names: set[str] = set()


def column_name(base: str) -> str:
    """A unique name of [A-Za-z0-9_] only, so PuLP and the model file keep it exactly as written."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", base)
    while name in used_names:
        name += "_"
    used_names.add(name)
    return name


def main() -> None:
    data = json.loads(Path("data.json").read_text(encoding="utf-8"))
    products, resources = data["products"], data["resources"]
    started = time.perf_counter()

    prob = pulp.LpProblem("product_mix", pulp.LpMaximize)
    references: dict[str, str] = {}
    make = {}
    for p in products:
        make[p] = prob.add_variable(column_name(f"make_{p}"), lowBound=0, upBound=data["demand"][p], cat="Integer")
        references[make[p].name] = f"make[{p}]"
    overtime = prob.add_variable(column_name("overtime"), lowBound=0, upBound=data["max_overtime"])
    references[overtime.name] = "overtime"
    prob += pulp.lpSum(data["profit"][p] * make[p] for p in products) - data["overtime_cost"] * overtime
    for r in resources:
        extra = overtime if r == data["overtime_resource"] else 0
        used = pulp.lpSum(data["usage"][r][p] * make[p] for p in products)
        prob += (used - extra <= data["capacity"][r], column_name(f"cap_{r}"))
    # with_objsense writes the OBJSENSE section; without it the file says "maximize" only in a comment.
    prob.writeMPS("model.mps", with_objsense=True)
    # PuLP writes only variables that appear in the objective or a constraint, under their (sanitized) names.
    columns = {v.name: references[v.name] for v in prob.variables()}
    cbc = pulp.COIN_CMD(msg=False, timeLimit=60)  # CBC from `pip install pulp[cbc]`, PuLP 4's way
    if not cbc.available():
        cbc = pulp.PULP_CBC_CMD(msg=False, timeLimit=60)  # the CBC bundled with PuLP 3
    prob.solve(cbc)

    if prob.status == pulp.LpStatusOptimal:
        # CBC stopped by the time limit with an unproven incumbent still reports status "Optimal"; sol_status
        # tells the two apart (and sol_status alone misreports integer-infeasible models as "no solution found").
        status = "optimal" if prob.sol_status == pulp.LpSolutionOptimal else "time_limit"
    else:
        status = STATUS.get(prob.status, "unknown")
    solution: dict[str, Any] = {
        "status": status,
        "objective": None,
        "variables": {},
        "solver": "cbc",
        "solve_seconds": round(time.perf_counter() - started, 4),
        "model_file": "model.mps",
        "columns": columns,
    }
    if status in ("optimal", "time_limit"):
        solution["objective"] = pulp.value(prob.objective)
        solution["variables"] = {
            "make": {p: round(make[p].varValue) for p in products},
            "overtime": overtime.varValue,
        }
    Path("solution.json").write_text(json.dumps(solution, indent=2), encoding="utf-8")
    print(f"status: {status}, objective: {solution['objective']}")


if __name__ == "__main__":
    main()
