"""Why a model is unbounded: an improving direction of its exported model, named in P*'s variables.

When a model reports "unbounded", the optimizer is asked to re-check it; "a limit is missing" alone did not help a
1.5B model (three optimizers submitted the same model again, a chair count with no limit). The direction says
which decisions can grow without end: a d with cost'd improving, A d within the rows' open sides, and d within
the bounds' open sides, found by one small LP (|d| <= 1) on the exported rows. Only for linear objectives; the
LP relaxation is what is examined, which is where an unbounded MILP's direction lives.
"""

from __future__ import annotations

import numpy as np
from scipy import optimize, sparse

from nemo_opt.stages.crosscheck import ModelRows

__all__ = ["improving_direction"]

_TOL = 1e-9


def improving_direction(model: ModelRows, names: dict[int, str]) -> dict[str, float] | None:
    """The columns (named by ``names``, else their own name) of a direction along which the objective improves
    without end and no row or bound of ``model`` stops it; None when there is none or it cannot be computed."""
    if model.quadratic or not model.columns:
        return None
    matrix = model.matrix
    blocks, limits = [], []
    upper, lower = np.isfinite(model.row_upper), np.isfinite(model.row_lower)
    if upper.any():  # rows with an upper side: A d <= 0
        blocks.append(matrix[np.flatnonzero(upper)])
        limits.append(np.zeros(int(upper.sum())))
    if lower.any():  # rows with a lower side: -A d <= 0
        blocks.append(-matrix[np.flatnonzero(lower)])
        limits.append(np.zeros(int(lower.sum())))
    bounds = [
        (0.0 if np.isfinite(low) else -1.0, 0.0 if np.isfinite(high) else 1.0)
        for low, high in zip(model.col_lower, model.col_upper, strict=True)
    ]
    cost = model.cost * (-1.0 if model.maximize else 1.0)  # minimise: an improving direction has cost'd < 0
    try:
        result = optimize.linprog(
            cost,
            A_ub=sparse.vstack(blocks).tocsr() if blocks else None,
            b_ub=np.concatenate(limits) if limits else None,
            bounds=bounds,
            method="highs",
            options={"time_limit": 10.0},
        )
    except (ValueError, RuntimeError):
        return None
    if result.status != 0 or result.x is None or result.fun > -_TOL:
        return None
    return {
        names.get(j, column): float(step)
        for j, (column, step) in enumerate(zip(model.columns, result.x, strict=True))
        if abs(step) > 1e-7
    }
