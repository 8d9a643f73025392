"""Relaxing what binds at x*: a model too tight where it binds hides a better plan the problem allows.

The judge here is the workshop problem itself, computed by hand (4T + 3C <= 240, 2T + C <= 100, C >= 10, whole
units, profit 70T + 50C): the optimum is T = 30, C = 40, profit 4100.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import highspy
import numpy as np
import pytest

from nemo_opt.solution import SimVerdict
from nemo_opt.stages.crosscheck import read_model_file
from nemo_opt.stages.relax import relaxation_check

MAPPING = {0: ("make", ("table",)), 1: ("make", ("chair",))}


def _truth(points: list[dict[str, Any]]) -> list[SimVerdict]:
    verdicts = []
    for point in points:
        t, c = point["make"]["table"], point["make"]["chair"]
        broken = [
            name
            for name, ok in (
                ("carpentry", 4 * t + 3 * c <= 240 + 1e-6),
                ("finishing", 2 * t + c <= 100 + 1e-6),
                ("chairs", c >= 10 - 1e-6),
                ("whole", abs(t - round(t)) < 1e-6 and abs(c - round(c)) < 1e-6),
                ("nonnegative", t >= -1e-6),
            )
            if not ok
        ]
        verdicts.append(
            SimVerdict(
                ok=True, feasible=not broken, objective=70 * t + 50 * c, violations=[{"constraint": b} for b in broken]
            )
        )
    return verdicts


def _model(tmp_path: Path, extra: str = "") -> tuple[Any, np.ndarray, float]:
    """The workshop model (plus ``extra`` lines run with h, t, c in scope), its optimum and objective."""
    h = highspy.Highs()
    h.silent()
    t, c = h.addIntegral(lb=0, name="make_table"), h.addIntegral(lb=0, name="make_chair")
    h.addConstr(4 * t + 3 * c <= 240)
    h.addConstr(2 * t + c <= 100)
    h.addConstr(c >= 10)
    exec(extra, {"h": h, "t": t, "c": c})  # noqa: S102 - test-written model lines
    h.maximize(70 * t + 50 * c)
    x = np.array([h.val(t), h.val(c)])
    path = tmp_path / "model.mps"
    h.writeModel(str(path))
    return read_model_file(path), x, float(h.getObjectiveValue())


def _relax(tmp_path: Path, extra: str = "") -> Any:
    model, x, objective = _model(tmp_path, extra)
    variables = {"make": {"table": float(x[0]), "chair": float(x[1])}}
    answer = 70 * x[0] + 50 * x[1]
    assert answer == pytest.approx(objective)
    return relaxation_check(
        model, MAPPING, variables, x, answer, _truth, maximize=True, atol=1e-6, rtol=1e-6, time_limit=5.0
    )


@pytest.mark.parametrize(
    "extra",
    [
        "h.addConstr(t <= 0.4)",
        "h.addConstr(t <= 0)\nfor k in range(1, 101):\n    h.addConstr(k * (4 * t + 3 * c) <= k * 240)",
        "h.addConstr(t <= 0)\nh.addConstr(t + 0.001 * c <= 0.08)",
        "h.changeColBounds(0, 0, 5)",
    ],
    ids=["integer-rounding", "drowned-in-copies", "two-shadowing-cuts", "a-tight-column-bound"],
)
def test_a_binding_cut_that_hides_a_better_plan_is_found(tmp_path: Path, extra: str) -> None:
    relaxed = _relax(tmp_path, extra)
    assert relaxed.issues, relaxed.tried
    issue = relaxed.issues[0]
    assert "too tight" in issue.message and "better than the answer" in issue.message
    assert relaxed.judged <= 2 * (relaxed.groups + 1)


@pytest.mark.parametrize(
    "extra",
    ["", "h.addConstr(2 * (4 * t + 3 * c) <= 480)", "h.addConstr(t <= 1000)", "h.addConstr(t + c <= 70)"],
    ids=["right-model", "a-redundant-copy", "a-slack-bound", "a-redundant-but-binding-row"],
)
def test_a_right_model_gives_no_false_alarm(tmp_path: Path, extra: str) -> None:
    relaxed = _relax(tmp_path, extra)
    assert relaxed.issues == [], [i.message for i in relaxed.issues]
    assert relaxed.groups >= 2  # carpentry and finishing bind at (30, 40)
