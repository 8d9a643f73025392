"""Scoring presets used in the field (there is no single standard; every result records the preset used).

- ``strict``: |p - g| / (|g| + 1) <= 1e-6 (SIRL, OptiMind);
- ``orlm``: both rounded to 2 decimals, then |p - g| <= 0.05 |g| (|p| <= 0.05 when g = 0);
- ``abs0.1`` and ``abs0.01``: |p - g| <= 0.1 and <= 0.01.

Gold ``infeasible`` is right when the prediction says infeasible (or infeasible-or-unbounded); gold
``no_optimum`` ("No Best Solution") when it says infeasible, unbounded or either. A run that crashed, timed out
or gave no answer is always wrong — never read as "infeasible". Items without a gold answer score ``None``.
"""

from __future__ import annotations

import math
from typing import Literal, get_args

from nemo_opt.exceptions import BadInput

__all__ = ["PRESETS", "Preset", "is_correct"]

Preset = Literal["strict", "orlm", "abs0.1", "abs0.01"]
PRESETS: tuple[str, ...] = get_args(Preset)
_NO_SOLUTION = {"infeasible", "unbounded", "infeasible_or_unbounded"}


def _close(preset: str, predicted: float, gold: float) -> bool:
    if preset == "strict":
        return abs(predicted - gold) / (abs(gold) + 1.0) <= 1e-6
    if preset == "orlm":
        p, g = round(predicted, 2), round(gold, 2)
        return abs(p - g) <= 0.05 * abs(g) if g != 0 else abs(p) <= 0.05
    if preset == "abs0.1":
        return abs(predicted - gold) <= 0.1
    if preset == "abs0.01":
        return abs(predicted - gold) <= 0.01
    raise BadInput(f"Unknown scoring preset '{preset}'. Use one of: {', '.join(PRESETS)}.")


def is_correct(
    preset: str, gold_kind: str, gold: float | None, predicted_status: str | None, predicted: float | None
) -> bool | None:
    """Whether a prediction matches the gold answer under ``preset``; None when the item has no gold."""
    if preset not in PRESETS:
        raise BadInput(f"Unknown scoring preset '{preset}'. Use one of: {', '.join(PRESETS)}.")
    if gold_kind == "none":
        return None
    status = (predicted_status or "").lower()
    if gold_kind == "infeasible":
        return status in {"infeasible", "infeasible_or_unbounded"}
    if gold_kind == "no_optimum":
        return status in _NO_SOLUTION
    if gold is None or predicted is None or not math.isfinite(predicted):
        return False
    if status not in {"optimal", "time_limit"}:
        return False
    return _close(preset, predicted, gold)
