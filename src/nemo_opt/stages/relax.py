"""Is x* optimal for the *problem*, not only for the model? Relax the model and ask the simulator.

The feasible-region probes look near x*; a model with an extra cut that excludes the true optimum (``table <=
0.4``, or a cut drowned among copies of a real row) can keep every nearby probe in agreement, be tied to its own
optimum, and still answer a feasible but worse plan. So: for each group of rows and bounds (parallel copies of
a row form one group) — those binding at x* first (for integer columns a row binds when one unit of a column it
holds would break it), then those binding at the optimum of the continuous relaxation (with integer columns a
cut can move the optimum without touching it), then the rest within a budget — re-solve the model without that
group, and ask the frozen simulator about each better optimum found. A point the simulator accepts with a
better objective than the answer's is a certificate that the answer is not optimal for the problem: the model
is too tight. Groups whose removal changed nothing (redundant rows, or cuts shadowing each other) or led only to
points the problem allows without being better are then dropped together, once, and that optimum is judged too.

A correct model never disagrees here: without one of its real constraints its optimum breaks that constraint,
and the simulator rejects it.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from nemo_opt.solution import Issue
from nemo_opt.stages.crosscheck import Judge, ModelRows, _nest, _reference, solve_model

__all__ = ["MAX_GROUPS", "Relaxation", "relaxation_check"]

# Each group costs one HiGHS solve (milliseconds for the models agents write) and all are judged in two
# sandboxed simulator runs; 40 covers every binding row of the benchmark models seen here.
MAX_GROUPS = 40
# Pairs of shadowing groups tried together (one HiGHS solve each, all judged in one run).
MAX_PAIRS = 45
# All re-solves of one check together: a hard MIP must not turn 40 relaxations into 40 time limits.
TOTAL_SECONDS = 30.0


@dataclass
class Relaxation:
    """What relaxing the binding rows found: ``issues`` (a better point the problem allows), and the record."""

    groups: int = 0
    solved: int = 0
    judged: int = 0
    note: str = ""
    issues: list[Issue] = field(default_factory=list)
    tried: list[dict[str, Any]] = field(default_factory=list)


Group = list[tuple[str, int, int]]


def _groups(model: ModelRows, x: npt.NDArray[np.float64] | None, atol: float) -> dict[tuple[Any, ...], Group]:
    """Rows and bounds binding at ``x`` (every finite one when ``x`` is None), as groups of (kind, index, side):
    side +1 the upper, -1 the lower. Parallel copies of a row (k * row <= k * bound) share one group."""
    activity = model.matrix @ x if x is not None else None
    groups: dict[tuple[Any, ...], Group] = {}
    integer = model.integer
    for i in range(len(model.rows)):
        row = model.matrix.getrow(i)
        if row.nnz == 0:
            continue
        coefficients, columns = row.data, row.indices
        # One unit of an integer column moves the activity by |a_ij|: a slack below that binds too.
        step = float(np.abs(coefficients[integer[columns]]).max()) if integer[columns].any() else 0.0
        scale = float(np.abs(coefficients).max())
        for bound, side in ((model.row_upper[i], 1), (model.row_lower[i], -1)):
            if not np.isfinite(bound):
                continue
            if activity is not None:
                slack = side * (bound - activity[i])
                if slack > atol + 1e-7 * (1 + abs(bound)) and slack >= step:
                    continue
            key = ("row", tuple(columns), tuple(np.round(side * coefficients / scale, 9)))
            groups.setdefault(key, []).append(("row", i, side))
    for j in range(len(model.columns)):
        for bound, side in ((model.col_upper[j], 1), (model.col_lower[j], -1)):
            if not np.isfinite(bound):
                continue
            if x is not None and side * (bound - x[j]) >= (1.0 if integer[j] else atol + 1e-7 * (1 + abs(bound))):
                continue
            groups.setdefault(("col", j, side), []).append(("col", j, side))
    return groups


def _candidate_groups(
    model: ModelRows, x: npt.NDArray[np.float64], atol: float, time_limit: float
) -> tuple[list[Group], int]:
    """What to relax, most suspect first: what binds at x*; what binds at the optimum of the model's continuous
    relaxation (with integer columns a cut can change the optimum without touching it); then, within the budget,
    every other finite row and bound. Also returns how many of the groups bind (the first ones)."""
    ordered = dict(_groups(model, x, atol))
    if model.integer.any():
        continuous = dataclasses.replace(model, integer=np.zeros_like(model.integer), integrality=None)
        relaxed = solve_model(continuous, time_limit=time_limit)
        if relaxed.status == "optimal" and relaxed.values is not None:
            for key, members in _groups(model, relaxed.values, atol).items():
                ordered.setdefault(key, members)
    binding = len(ordered)
    if len(ordered) < MAX_GROUPS:
        for key, members in _groups(model, None, atol).items():
            ordered.setdefault(key, members)
    return list(ordered.values()), binding


def _without(model: ModelRows, members: list[tuple[str, int, int]]) -> ModelRows:
    row_lower, row_upper = model.row_lower.copy(), model.row_upper.copy()
    col_lower, col_upper = model.col_lower.copy(), model.col_upper.copy()
    for kind, index, side in members:
        if kind == "row":
            (row_upper if side > 0 else row_lower)[index] = np.inf if side > 0 else -np.inf
        else:
            (col_upper if side > 0 else col_lower)[index] = np.inf if side > 0 else -np.inf
    return dataclasses.replace(
        model, row_lower=row_lower, row_upper=row_upper, col_lower=col_lower, col_upper=col_upper
    )


def _name(model: ModelRows, members: list[tuple[str, int, int]]) -> str:
    names = []
    for kind, index, side in members:
        names.append(
            f"row {model.rows[index]}"
            if kind == "row"
            else f"the {'upper' if side > 0 else 'lower'} bound of {model.columns[index]}"
        )
    shown = ", ".join(dict.fromkeys(names[:4]))
    return shown + (f" (and {len(names) - 4} more)" if len(names) > 4 else "")


def relaxation_check(
    model: ModelRows,
    mapping: dict[int, tuple[str, tuple[str, ...]]],
    variables: dict[str, Any],
    x: npt.NDArray[np.float64],
    answer: float,
    judge: Judge,
    *,
    maximize: bool,
    atol: float,
    rtol: float,
    time_limit: float,
) -> Relaxation:
    """Relax each binding group of ``model`` at ``x`` (x* with its auxiliary columns) and judge better optima.

    ``answer`` is the simulator's objective at x*; ``maximize`` the problem's sense."""
    result = Relaxation()
    groups, binding = _candidate_groups(model, x, atol, time_limit)
    result.groups = len(groups)
    if len(groups) > MAX_GROUPS:
        result.note = f"{len(groups)} binding groups; the first {MAX_GROUPS} were relaxed"
        groups = groups[:MAX_GROUPS]
    tolerance = atol + rtol * abs(answer)

    def better(value: float | None) -> bool:
        if value is None:
            return False
        return value > answer + tolerance if maximize else value < answer - tolerance

    # Binding groups whose removal alone changed nothing for the problem: candidates to drop together.
    shadowed: list[Group] = []

    deadline = time.monotonic() + TOTAL_SECONDS

    def optimum(members: Group, shadow: bool = False) -> dict[str, Any] | None:
        left = deadline - time.monotonic()
        if left <= 0.05:
            result.note = result.note or f"stopped after {TOTAL_SECONDS:g} s of re-solves"
            return None
        solved = solve_model(_without(model, members), time_limit=min(time_limit, left), start=x)
        result.solved += 1
        model_value = None if solved.objective is None else float(solved.objective)
        if solved.status != "optimal" or solved.values is None:
            return None
        if not better(model_value):  # nothing changes without it: redundant, or shadowed by another cut
            if shadow:
                shadowed.append(members)
            return None
        values = {mapping[c]: float(solved.values[c]) for c in mapping}
        return {"without": _name(model, members), "model_objective": model_value, "point": values}

    def judged(candidates: list[tuple[list[tuple[str, int, int]], dict[str, Any]]]) -> list[Any]:
        if not candidates:
            return []
        points = [_nest(c["point"], variables) for _, c in candidates]
        verdicts = judge(points)
        if isinstance(verdicts, str):
            result.note = f"the simulator could not judge the relaxed optima: {verdicts}"
            return []
        result.judged += len(points)
        return list(verdicts)

    singles = [(g, c) for n, g in enumerate(groups) if (c := optimum(g, shadow=n < binding)) is not None]
    for (members, candidate), verdict in zip(singles, judged(singles), strict=False):
        candidate["simulator"] = {"feasible": verdict.feasible, "objective": verdict.objective} if verdict.ok else None
        result.tried.append(candidate)
        if verdict.ok and verdict.feasible:
            if better(verdict.objective):
                result.issues.append(_issue(candidate, verdict.objective, answer))
            elif any(members is g for g in groups[:binding]):
                shadowed.append(members)  # a point the problem allows but no better for it: no real limit
    # Cuts that shadow each other change nothing one at a time: every pair of them, then all, are dropped together
    # and the better optima judged in one more run. (Three or more mutually shadowing cuts can still hide a plan.)
    if not result.issues and len(shadowed) > 1:
        pairs = [a + b for a, b in itertools.combinations(shadowed, 2)][:MAX_PAIRS]
        sets = [*pairs, [member for group in shadowed for member in group]]
        combined = [(members, c) for members in sets if (c := optimum(members)) is not None]
        for (_, candidate), verdict in zip(combined, judged(combined), strict=False):
            candidate["simulator"] = (
                {"feasible": verdict.feasible, "objective": verdict.objective} if verdict.ok else None
            )
            result.tried.append(candidate)
            if verdict.ok and verdict.feasible and better(verdict.objective):
                result.issues.append(_issue(candidate, verdict.objective, answer))
                break
    return result


def _issue(candidate: dict[str, Any], value: float | None, answer: float) -> Issue:
    point = candidate["point"]
    shown = ", ".join(f"{_reference(n, k)}={v:g}" for (n, k), v in list(point.items())[:8])
    return Issue(
        kind="feasible_region",
        message=f"model too tight: without {candidate['without']} it reaches ({shown}), which the problem allows "
        f"(the simulator finds it feasible, objective {value:.10g}) and which is better than the answer "
        f"{answer:.10g}: that row or bound excludes better plans the problem permits",
        variables=sorted(_reference(n, k) for n, k in point)[:10],
    )
