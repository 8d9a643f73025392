"""Is the exported model the one that gave the answer? The host re-reads it and ties it to x*.

An optimizer reports x*, its objective F and the model file it exported; the feasible-region cross-check trusts
that file to describe the model that produced x*. Without a tie an agent could export one model and report the
answer of another. The tie holds when, with the host reading the model itself (HiGHS):

(a) x* is feasible in the model's rows, bounds and integrality within atol + rtol; columns the solution does not
    give (auxiliary columns) are completed by HiGHS with the given columns fixed;
(b) the model's objective at x* (linear, plus 1/2 x'Qx for a Hessian, plus the offset; with auxiliary columns the
    best completion) equals F within atol + rtol * |F|;
(c) x* is optimal for the model: HiGHS re-solves it (time limit) and finds nothing better than F beyond the
    tolerance, and for integer models beyond the usual relative MIP gap as well.

A failure of any is a contradiction (``tied`` False). Where HiGHS cannot decide (the time limit, a quadratic
objective with integer columns, a nonconvex Hessian, an error) ``tied`` is None and the note says why.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from nemo_opt.solution import Issue
from nemo_opt.stages.crosscheck import ModelRows, complete_point, lookup, objective_at, solve_model
from nemo_opt.stages.validate import INTEGRALITY_TOL

__all__ = ["MIP_GAP", "TieCheck", "tie_check"]

# A MIP solver stops within this relative gap by default (Gurobi, CBC, HiGHS): x* from an integer model may be
# that far from the optimum and still be the solver's honest answer.
MIP_GAP = 1e-4

_SHOWN = 3


@dataclass
class TieCheck:
    """Outcome of tying the exported model to the reported answer.

    ``tied``: True tied, False contradicted, None could not be decided; ``note`` says why in one line;
    ``issues`` (kind ``model_tie``) go into the validation report when contradicted. ``objective_at_x`` is the
    model's objective at x*, ``resolved_objective`` what HiGHS's re-solve found (its best point, when stopped),
    ``resolved_bound`` its MIP dual bound, ``seconds`` the time of the whole check."""

    tied: bool | None
    note: str
    issues: list[Issue] = field(default_factory=list)
    objective_at_x: float | None = None
    resolved_objective: float | None = None
    resolved_bound: float | None = None
    seconds: float = 0.0


def tie_check(
    model: ModelRows,
    mapping: dict[int, tuple[str, tuple[str, ...]]],
    variables: dict[str, Any],
    objective: float,
    *,
    atol: float,
    rtol: float,
    time_limit: float,
) -> TieCheck:
    """Tie ``model`` (as read by :func:`~nemo_opt.stages.crosscheck.read_model_file`) to the solution's
    ``variables`` and reported ``objective``; ``mapping`` is model column -> (variable, index key), as the
    cross-check's column map. ``time_limit`` bounds each HiGHS solve (the completion and the re-solve)."""
    started = time.perf_counter()

    def done(tied: bool | None, note: str, **figures: float | None) -> TieCheck:
        issues = [Issue(kind="model_tie", message=note)] if tied is False else []
        return TieCheck(tied, note, issues, seconds=time.perf_counter() - started, **figures)

    given: dict[int, float] = {}
    for column, (name, key) in mapping.items():
        value = lookup(variables.get(name), key)
        if value is not None:
            given[column] = value
    if not given:
        return done(None, "no column of the exported model maps to a value of the solution")
    if not np.isfinite(objective):
        return done(None, f"the reported objective {objective} is not a finite number")
    columns = sorted(given)
    point = np.zeros(len(model.columns))
    point[columns] = [given[c] for c in columns]

    # (a) x* in the model: what the given columns alone decide, then a completion of the others.
    broken = _violations(model, point, columns, atol, rtol)
    if broken:
        more = f" (and {len(broken) - _SHOWN} more)" if len(broken) > _SHOWN else ""
        return done(False, f"x* is infeasible in the exported model: {'; '.join(broken[:_SHOWN])}{more}")
    others = len(model.columns) - len(columns)
    if others:
        completion = complete_point(model, point, columns, atol=atol, rtol=rtol, time_limit=time_limit)
        if completion.status == "infeasible":
            return done(
                False,
                f"x* is infeasible in the exported model: no values of its {others} other columns satisfy its rows",
            )
        if completion.status == "unbounded":
            return done(False, "x* is not optimal for the exported model: with x* fixed its objective is unbounded")
        if completion.status != "optimal" or completion.objective is None or completion.values is None:
            return done(None, f"x* could not be completed in the exported model: {completion.reason}")
        at_x, full = completion.objective, completion.values
    else:
        at_x, full = objective_at(model, point), point

    # (b) the model's objective at x* is the reported one.
    allowed = atol + rtol * abs(objective)
    if abs(at_x - objective) > allowed:
        return done(
            False,
            f"the exported model's objective at x* is {at_x:.10g}, but the solution reports {objective:.10g}",
            objective_at_x=at_x,
        )

    # (c) x* optimal for it: nothing strictly better than the reported objective.
    integer = bool(model.integer.any())
    slack = allowed + (MIP_GAP * abs(objective) if integer else 0.0)
    resolved = solve_model(model, time_limit=time_limit, start=full)
    figures: dict[str, float | None] = {
        "objective_at_x": at_x,
        "resolved_objective": resolved.objective,
        "resolved_bound": resolved.bound,
    }
    better = model.sense * (objective - resolved.objective) if resolved.objective is not None else -np.inf
    if resolved.status == "unbounded":
        return done(False, "x* is not optimal for the exported model: HiGHS finds it unbounded", **figures)
    if resolved.objective is not None and better > slack:
        return done(
            False,
            f"x* is not optimal for the exported model: HiGHS finds {resolved.objective:.10g}, "
            f"{'more' if model.maximize else 'less'} than the reported {objective:.10g}",
            **figures,
        )
    if resolved.status == "optimal":
        return done(True, f"x* is feasible and optimal in the exported model (objective {at_x:.10g})", **figures)
    if (
        resolved.status == "limit"
        and resolved.bound is not None
        and model.sense * (objective - resolved.bound) <= slack
    ):
        return done(True, "x* is feasible in the exported model and within the MIP gap of HiGHS's bound", **figures)
    if resolved.status == "infeasible":
        return done(
            None, "HiGHS finds the exported model infeasible, although x* satisfies it within tolerance", **figures
        )
    return done(
        None, f"x* is feasible in the exported model, but its optimality is unconfirmed: {resolved.reason}", **figures
    )


def _violations(
    model: ModelRows, point: npt.NDArray[np.float64], columns: list[int], atol: float, rtol: float
) -> list[str]:
    """What the given columns alone violate: their bounds and integrality, and rows touching no other column."""
    out = []
    for c in columns:
        value, low, high = point[c], model.col_lower[c], model.col_upper[c]
        if np.isfinite(low) and low - value > atol + rtol * abs(low):
            out.append(f"column {model.columns[c]} = {value:.10g} is below its lower bound {low:.10g}")
        if np.isfinite(high) and value - high > atol + rtol * abs(high):
            out.append(f"column {model.columns[c]} = {value:.10g} is above its upper bound {high:.10g}")
        if model.integer[c] and abs(value - round(value)) > max(INTEGRALITY_TOL, rtol * abs(value)):
            out.append(f"column {model.columns[c]} = {value:.10g} is not integral")
    others = np.ones(len(model.columns), dtype=bool)
    others[columns] = False
    alone = np.asarray(model.matrix[:, others].getnnz(axis=1) == 0) if others.any() else np.ones(len(model.rows), bool)
    activity = model.matrix @ point
    for i in np.nonzero(alone)[0]:
        low, high, value = model.row_lower[i], model.row_upper[i], activity[i]
        if np.isfinite(high) and value - high > atol + rtol * abs(high):
            out.append(f"row {model.rows[i]} is {value:.10g}, above its limit {high:.10g}")
        elif np.isfinite(low) and low - value > atol + rtol * abs(low):
            out.append(f"row {model.rows[i]} is {value:.10g}, below its limit {low:.10g}")
    return out
