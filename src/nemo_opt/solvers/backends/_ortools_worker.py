"""Solve one canonical model with OR-Tools in a process of its own and print the outcome as one JSON line.

Usage: python _ortools_worker.py < request.json, where the request is
{"engine": "linear" | "cpsat", "model": CanonicalModel.to_dict(), "time_limit": seconds}.
It imports nothing from nemo_opt: OR-Tools and highspy each ship a libhighs.so.1 of different versions and cannot
be loaded into one process, so OR-Tools always runs here, away from the caller's highspy.
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any


def _bound(value: float | None, default: float) -> float:
    return default if value is None else float(value)


def linear(model: dict[str, Any], time_limit: float) -> dict[str, Any]:
    """pywraplp: GLOP for continuous models, SCIP when any variable is integer."""
    from ortools.linear_solver import pywraplp

    integer = any(flag for _, _, _, flag in model["variables"])
    solver = pywraplp.Solver.CreateSolver("SCIP" if integer else "GLOP")
    if solver is None:
        raise RuntimeError("this OR-Tools build lacks the SCIP/GLOP backend")
    solver.SetTimeLimit(max(1, int(time_limit * 1000)))
    inf = solver.infinity()
    variables = {
        name: solver.Var(_bound(lb, -inf), _bound(ub, inf), bool(flag), name)
        for name, lb, ub, flag in model["variables"]
    }
    for name, coefficients, lb, ub in model["rows"]:
        row = solver.Constraint(_bound(lb, -inf), _bound(ub, inf), name)
        for variable, coefficient in coefficients.items():
            row.SetCoefficient(variables[variable], float(coefficient))
    objective = solver.Objective()
    for variable, coefficient in model["objective"].items():
        objective.SetCoefficient(variables[variable], float(coefficient))
    objective.SetOffset(float(model["constant"]))
    if model["sense"] == "max":
        objective.SetMaximization()
    else:
        objective.SetMinimization()
    status = solver.Solve()
    if status == pywraplp.Solver.INFEASIBLE and not integer:
        # GLOP's presolve reports some unbounded LPs as INFEASIBLE; without presolve it tells them apart.
        parameters = pywraplp.MPSolverParameters()
        parameters.SetIntegerParam(parameters.PRESOLVE, parameters.PRESOLVE_OFF)
        status = solver.Solve(parameters)
    if status not in (pywraplp.Solver.OPTIMAL, pywraplp.Solver.FEASIBLE):
        return {"raw": int(status), "objective": None, "values": {}}
    values = {name: var.solution_value() for name, var in variables.items()}
    return {"raw": int(status), "objective": objective.Value(), "values": values}


def cpsat(model: dict[str, Any], time_limit: float) -> dict[str, Any]:
    """CP-SAT on an integer-only model (the caller has checked integrality and finite bounds)."""
    from ortools.sat.python import cp_model

    cp = cp_model.CpModel()
    variables = {name: cp.new_int_var(math.ceil(lb), math.floor(ub), name) for name, lb, ub, _ in model["variables"]}
    for name, coefficients, lb, ub in model["rows"]:
        expression = sum(round(c) * variables[v] for v, c in coefficients.items())
        if lb is not None:
            cp.add(expression >= math.ceil(lb - 1e-9)).with_name(f"{name}_lb")
        if ub is not None:
            cp.add(expression <= math.floor(ub + 1e-9)).with_name(f"{name}_ub")
    # integral coefficients stay integers so CP-SAT keeps an exact integer objective
    weights = {v: int(c) if float(c).is_integer() else float(c) for v, c in model["objective"].items()}
    objective = sum(w * variables[v] for v, w in weights.items()) + float(model["constant"])
    if model["sense"] == "max":
        cp.maximize(objective)
    else:
        cp.minimize(objective)
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = float(time_limit)
    solver.parameters.num_workers = 2  # the machines this runs on are small; more workers only contend
    status = solver.solve(cp)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return {"raw": int(status), "objective": None, "values": {}}
    values = {name: float(solver.value(var)) for name, var in variables.items()}
    return {"raw": int(status), "objective": solver.objective_value, "values": values}


def main() -> int:
    request = json.loads(sys.stdin.read())
    engine = linear if request["engine"] == "linear" else cpsat
    print(json.dumps(engine(request["model"], float(request["time_limit"]))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
