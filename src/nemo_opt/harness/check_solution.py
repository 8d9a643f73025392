"""Run the workspace's simulator on one solution and write its verdict as JSON.

Usage: python check_solution.py SOLUTION_JSON VERDICT_JSON [--tol TOL] [--root DIR] [--batch]

With --batch, SOLUTION_JSON holds a list of variable mappings and VERDICT_JSON receives a list of verdicts,
one per mapping (the simulator is imported once).

The root holds data.json and the simulator/ package: this script's folder when data.json is there,
otherwise its parent (the layout of a workspace, where the script lives in .nemo/).
This script imports nothing from nemo_opt, so it runs in a sandbox and inside a delivered package alike.
"""

from __future__ import annotations

import argparse
import copy
import inspect
import json
import math
import sys
import traceback
from pathlib import Path
from typing import Any


def _plain(value: Any) -> Any:
    """Turn numpy scalars, tuples and other oddities into JSON values."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def _simulate(variables: dict[str, Any], data: dict[str, Any], tol: float, rtol: float) -> dict[str, Any]:
    from simulator.simulator import simulate  # type: ignore[import-not-found]

    try:
        accepts: Any = inspect.signature(simulate).parameters
    except (TypeError, ValueError):
        accepts = {}
    if "atol" in accepts or "rtol" in accepts:
        result = simulate(variables, data, atol=tol, rtol=rtol)
    elif "tol" in accepts:  # the one-tolerance contract: violated when a - b > tol * (1 + |b|)
        result = simulate(variables, data, tol=max(tol, rtol))
    else:
        result = simulate(variables, data)
    if not isinstance(result, dict):
        raise TypeError(f"simulate() returned {type(result).__name__}, expected a dict")
    missing = [key for key in ("feasible", "objective", "violations") if key not in result]
    if missing:
        raise TypeError(f"simulate() result lacks key(s) {missing}")
    objective = result["objective"]
    return {
        "ok": True,
        "feasible": bool(result["feasible"]),
        "objective": None if objective is None else float(objective),
        "violations": _plain(list(result["violations"] or [])),
    }


def check(solution_path: Path, root: Path, tol: float, rtol: float = 1e-6) -> dict[str, Any]:
    """The verdict of ``simulator.simulator.simulate`` on the solution's variables."""
    data = json.loads((root / "data.json").read_text(encoding="utf-8"))
    solution = json.loads(solution_path.read_text(encoding="utf-8"))
    variables = solution.get("variables", {}) if isinstance(solution, dict) else {}
    sys.path.insert(0, str(root))
    return _simulate(variables, data, tol, rtol)


def check_batch(points_path: Path, root: Path, tol: float, rtol: float = 1e-6) -> list[dict[str, Any]]:
    """Verdicts for a list of variable mappings; a crash on one point is reported for that point only."""
    data = json.loads((root / "data.json").read_text(encoding="utf-8"))
    points = json.loads(points_path.read_text(encoding="utf-8"))
    sys.path.insert(0, str(root))
    verdicts = []
    for variables in points:
        try:
            # A copy per point: a simulator that edits its data must not change the next verdict.
            verdicts.append(_simulate(variables, copy.deepcopy(data), tol, rtol))
        except Exception:
            verdicts.append({"ok": False, "error": traceback.format_exc(limit=4)})
    return verdicts


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("solution", type=Path)
    parser.add_argument("verdict", type=Path)
    parser.add_argument("--tol", type=float, default=1e-6, help="absolute tolerance (atol)")
    parser.add_argument("--rtol", type=float, default=1e-6, help="relative tolerance")
    parser.add_argument("--root", type=Path, default=None, help="folder holding data.json and simulator/")
    parser.add_argument("--batch", action="store_true", help="SOLUTION holds a list of variable mappings")
    args = parser.parse_args()
    if args.root is None:
        # In a workspace this script sits in .nemo/; in a delivered package it sits next to data.json.
        here = Path(__file__).resolve().parent
        args.root = here if (here / "data.json").exists() else here.parent
    verdict: Any
    try:
        if args.batch:
            verdict = check_batch(args.solution, args.root.resolve(), args.tol, args.rtol)
        else:
            verdict = check(args.solution, args.root.resolve(), args.tol, args.rtol)
    except BaseException:  # the simulator is untrusted code: any failure is reported, not raised
        verdict = {"ok": False, "error": traceback.format_exc(limit=8)}
    args.verdict.write_text(json.dumps(_plain(verdict), indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
