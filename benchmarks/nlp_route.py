"""Compare the two pip-installable Ipopt routes (cyipopt and CasADi) on one small NLP, printed as a Markdown table.

Usage: ``python benchmarks/nlp_route.py [--runs N]``. The problem is

    minimize (x - 1)^2 + (y - 2)^2  subject to  x^2 + y^2 <= 1,

whose optimum is the point (1, 2) / sqrt(5) on the unit circle with objective (sqrt(5) - 1)^2. Each route runs in
its own fresh interpreter (so import time is cold and one route's libraries cannot affect the other): the child
reports the import time, the first solve (which includes Ipopt's one-time set-up) and the median of ``N`` further
solves. Installed size is the sum of the files the distribution's RECORD lists, so it is right even when both
routes are installed side by side (numpy, which both need and the project already has, is not counted).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import math
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

# Known optima: the circle by hand (see the docstring); HS071 from Hock & Schittkowski's collection (problem 71).
OPTIMA = {"circle": (math.sqrt(5) - 1) ** 2, "hs071": 17.0140172891563}

# route -> (distribution that pip installs, module imported, how derivatives are obtained)
ROUTES: dict[str, tuple[str, str, str]] = {
    "cyipopt": ("cyipopt-wheels", "cyipopt", "hand-written gradients"),
    "cyipopt-fd": ("cyipopt-wheels", "cyipopt", "finite differences (no jac given)"),
    "casadi": ("casadi", "casadi", "automatic differentiation"),
}


Result = tuple[float, list[float], str, int]


def _cyipopt_problems(gradients: bool) -> dict[str, Callable[[], Result]]:
    import cyipopt
    import numpy as np

    names = {0: "Solve_Succeeded", 1: "Solved_To_Acceptable_Level", 2: "Infeasible_Problem_Detected"}

    def run(
        objective: Callable[..., object],
        gradient: Callable[..., object],
        constraints: list[dict[str, object]],
        x0: list[float],
        bounds: list[tuple[float, float]] | None,
    ) -> Result:
        if not gradients:
            constraints = [{k: v for k, v in c.items() if k != "jac"} for c in constraints]
        result = cyipopt.minimize_ipopt(
            objective,
            x0,
            jac=gradient if gradients else None,
            bounds=bounds,
            constraints=constraints,
            options={"print_level": 0, "sb": "yes"},
        )
        status = names.get(int(result.status), str(result.status))
        return float(result.fun), [float(v) for v in result.x], status, int(result.nit)

    def circle() -> Result:
        return run(
            lambda v: (v[0] - 1) ** 2 + (v[1] - 2) ** 2,
            lambda v: np.array([2 * (v[0] - 1), 2 * (v[1] - 2)]),
            [
                {
                    "type": "ineq",
                    "fun": lambda v: 1 - v[0] ** 2 - v[1] ** 2,
                    "jac": lambda v: np.array([[-2 * v[0], -2 * v[1]]]),
                }
            ],
            [0.0, 0.0],
            None,
        )

    def hs071() -> Result:
        return run(
            lambda v: v[0] * v[3] * (v[0] + v[1] + v[2]) + v[2],
            lambda v: np.array(
                [v[3] * (2 * v[0] + v[1] + v[2]), v[0] * v[3], v[0] * v[3] + 1, v[0] * (v[0] + v[1] + v[2])]
            ),
            [
                {
                    "type": "ineq",
                    "fun": lambda v: v[0] * v[1] * v[2] * v[3] - 25,
                    "jac": lambda v: np.array(
                        [[v[1] * v[2] * v[3], v[0] * v[2] * v[3], v[0] * v[1] * v[3], v[0] * v[1] * v[2]]]
                    ),
                },
                {"type": "eq", "fun": lambda v: float(np.sum(np.square(v))) - 40, "jac": lambda v: np.array([2 * v])},
            ],
            [1.0, 5.0, 5.0, 1.0],
            [(1.0, 5.0)] * 4,
        )

    return {"circle": circle, "hs071": hs071}


def _casadi_problems() -> dict[str, Callable[[], Result]]:
    import casadi

    def run(opti: casadi.Opti, variables: list[object]) -> Result:
        opti.solver("ipopt", {"print_time": False}, {"print_level": 0, "sb": "yes"})
        solution = opti.solve()
        stats = solution.stats()
        values = [float(solution.value(v)) for v in variables]
        return float(solution.value(opti.f)), values, str(stats["return_status"]), int(stats["iter_count"])

    def circle() -> Result:
        opti = casadi.Opti()
        x, y = opti.variable(), opti.variable()
        opti.minimize((x - 1) ** 2 + (y - 2) ** 2)
        opti.subject_to(x**2 + y**2 <= 1)
        return run(opti, [x, y])

    def hs071() -> Result:
        opti = casadi.Opti()
        v = [opti.variable() for _ in range(4)]
        opti.minimize(v[0] * v[3] * (v[0] + v[1] + v[2]) + v[2])
        opti.subject_to(v[0] * v[1] * v[2] * v[3] >= 25)
        opti.subject_to(v[0] ** 2 + v[1] ** 2 + v[2] ** 2 + v[3] ** 2 == 40)
        for item, start in zip(v, (1.0, 5.0, 5.0, 1.0), strict=True):
            opti.subject_to(opti.bounded(1, item, 5))
            opti.set_initial(item, start)
        return run(opti, v)

    return {"circle": circle, "hs071": hs071}


def child(route: str, runs: int) -> dict[str, dict[str, object]]:
    """Measure one route inside this (fresh) interpreter: import once, then each problem."""
    started = time.perf_counter()
    __import__(ROUTES[route][1])
    import_seconds = time.perf_counter() - started
    problems = _casadi_problems() if route == "casadi" else _cyipopt_problems(gradients=route == "cyipopt")
    report: dict[str, dict[str, object]] = {}
    for problem, runner in problems.items():
        started = time.perf_counter()
        objective, _point, status, iterations = runner()
        first = time.perf_counter() - started
        samples = []
        for _ in range(runs):
            started = time.perf_counter()
            runner()
            samples.append(time.perf_counter() - started)
        report[problem] = {
            "import_s": import_seconds,
            "first_solve_s": first,
            "median_solve_s": statistics.median(samples),
            "objective_error": abs(objective - OPTIMA[problem]) / abs(OPTIMA[problem]),
            "iterations": iterations,
            "status": status,
        }
    return report


def installed_mb(distribution: str) -> float | None:
    """Megabytes of the files that ``distribution`` installed, or None when it is not installed."""
    try:
        files = importlib.metadata.files(distribution) or []
    except importlib.metadata.PackageNotFoundError:
        return None
    total = 0
    for entry in files:
        path = entry.locate()
        if path.is_file():
            total += path.stat().st_size
    return total / 1e6


def measure(route: str, runs: int, repeats: int) -> dict[str, dict[str, object]] | None:
    """Per problem, the median over ``repeats`` fresh interpreters; None when the route is not installed."""
    if installed_mb(ROUTES[route][0]) is None:
        return None
    reports = []
    for _ in range(repeats):
        done = subprocess.run(
            [sys.executable, __file__, "--child", route, "--runs", str(runs)],
            capture_output=True,
            text=True,
            check=True,
        )
        reports.append(json.loads(done.stdout.strip().splitlines()[-1]))
    merged: dict[str, dict[str, object]] = {}
    for problem in OPTIMA:
        rows = [report[problem] for report in reports]
        numbers: dict[str, object] = {
            key: statistics.median(float(row[key]) for row in rows)
            for key in ("import_s", "first_solve_s", "median_solve_s", "objective_error")
        }
        numbers["iterations"] = rows[-1]["iterations"]
        numbers["status"] = rows[-1]["status"]
        merged[problem] = numbers
    return merged


def table(runs: int, repeats: int) -> str:
    """The comparison as a Markdown table, one row per route and problem."""
    lines = [
        "| route | pip distribution | installed MB | import s | problem | first solve ms | median solve ms "
        "| iterations | rel. objective error | derivatives | Ipopt status |",
        "|---|---|---:|---:|---|---:|---:|---:|---:|---|---|",
    ]
    for route, (distribution, _module, derivatives) in ROUTES.items():
        result = measure(route, runs, repeats)
        if result is None:
            lines.append(f"| {route} | {distribution} | not installed | | | | | | | {derivatives} | |")
            continue
        size = installed_mb(distribution) or 0.0
        for problem, row in result.items():
            first, median = (float(str(row[key])) * 1000 for key in ("first_solve_s", "median_solve_s"))
            lines.append(
                f"| {route} | {distribution} | {size:.0f} | {float(str(row['import_s'])):.2f} | {problem} "
                f"| {first:.1f} | {median:.1f} | {row['iterations']} | {float(str(row['objective_error'])):.1e} "
                f"| {derivatives} | {row['status']} |"
            )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="timed solves per interpreter after the first")
    parser.add_argument("--repeats", type=int, default=3, help="fresh interpreters per route")
    parser.add_argument("--child", choices=sorted(ROUTES), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.runs)))
        return 0
    print(table(args.runs, args.repeats))
    return 0


if __name__ == "__main__":
    sys.exit(main())
