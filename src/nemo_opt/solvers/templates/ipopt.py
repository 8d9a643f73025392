"""A nonlinear product mix with Ipopt through cyipopt: unit profit falls as more of a product is sold.

Maximize sum_p (profit[p] - price_decay[p] * make[p]) * make[p] - overtime_cost * overtime over continuous
quantities (Ipopt has no integer variables), subject to the resource capacities. cyipopt takes plain Python
functions, so the objective's gradient and the constraints' Jacobian are written out; without ``jac`` cyipopt
falls back to finite differences (slower, less reliable). Ipopt certifies local optimality only, which is global
here because the objective is concave and the constraints are linear. Nothing can be exported as MPS/LP, so
solution.json has "model_file": null and "columns": null.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import cyipopt
import numpy as np

# Ipopt's ApplicationReturnStatus codes, as cyipopt returns them in result.status
STATUS = {
    0: "optimal",  # Solve_Succeeded
    1: "optimal",  # Solved_To_Acceptable_Level
    2: "infeasible",  # Infeasible_Problem_Detected
    4: "unbounded",  # Diverging_Iterates
    -1: "time_limit",  # Maximum_Iterations_Exceeded
    -4: "time_limit",  # Maximum_CpuTime_Exceeded
    -5: "time_limit",  # Maximum_WallTime_Exceeded
}


def main() -> None:
    data = json.loads(Path("data.json").read_text(encoding="utf-8"))
    products, resources = data["products"], data["resources"]
    started = time.perf_counter()

    n = len(products)  # x = [make[p] for p in products] + [overtime]
    profit = np.array([data["profit"][p] for p in products], dtype=float)
    decay = np.array([data["price_decay"][p] for p in products], dtype=float)
    cost = float(data["overtime_cost"])
    usage = np.array(
        [[data["usage"][r][p] for p in products] + [-1.0 if r == data["overtime_resource"] else 0.0] for r in resources]
    )
    capacity = np.array([data["capacity"][r] for r in resources], dtype=float)

    def negative_profit(x: np.ndarray) -> float:  # Ipopt minimizes
        make = x[:n]
        return float(-(profit @ make - decay @ (make * make) - cost * x[n]))

    def gradient(x: np.ndarray) -> np.ndarray:
        return np.concatenate([-(profit - 2 * decay * x[:n]), [cost]])

    constraints = [{"type": "ineq", "fun": lambda x: capacity - usage @ x, "jac": lambda x: -usage}]  # fun(x) >= 0
    bounds = [(0.0, float(data["demand"][p])) for p in products] + [(0.0, float(data["max_overtime"]))]
    result = cyipopt.minimize_ipopt(
        negative_profit,
        np.zeros(n + 1),
        jac=gradient,
        bounds=bounds,
        constraints=constraints,
        options={"print_level": 0, "sb": "yes", "max_wall_time": 60.0},
    )

    code = int(result.status)
    status = STATUS.get(code, "error" if code < 0 else "unknown")
    solution: dict[str, Any] = {
        "status": status,
        "objective": None,
        "variables": {},
        "solver": "ipopt",
        "solve_seconds": round(time.perf_counter() - started, 4),
        "model_file": None,
        "columns": None,
    }
    if status in ("optimal", "time_limit"):
        solution["objective"] = -float(result.fun)
        solution["variables"] = {
            "make": {p: float(result.x[k]) for k, p in enumerate(products)},
            "overtime": float(result.x[n]),
        }
    Path("solution.json").write_text(json.dumps(solution, indent=2), encoding="utf-8")
    print(f"status: {status}, objective: {solution['objective']}")


if __name__ == "__main__":
    main()
