"""What does the feasible-region cross-check catch that objective-only validation misses?

For a correct program, its model is captured as an MPS file (by wrapping the solver call), solved with HiGHS,
and mutated at the matrix level. Each mutant is solved; the unmutated model then stands in for the simulator:

- objective-only validation (the paper's V): the mutant's optimum must be feasible for the original model and
  the original objective at that point must equal the mutant's reported objective;
- with the cross-check: additionally, the mutant's rows are compared with the original's at probe points.

Mutants either keep the optimal value (the interesting case: region changed, answer unchanged) or change it.
A dropped constraint can be redundant (implied by the others); then no check can or should see it, and such
mutants are counted separately: those whose region no one of 20,000 random points around x* separates.

With ``auxiliary``, the cross-check sees each model (original and mutants) with every row's activity routed
through an auxiliary column (a x - s = 0, l <= s <= u; :func:`lift_rows`), as a model.py that names its
intermediate quantities writes it: only the original columns are mapped, so every row needs a completion of
the auxiliary columns. A correct model must then raise no alarm either, and mutants must still be caught.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from nemo_opt.spec import ProblemSpec
from nemo_opt.stages.crosscheck import ModelRows, compare_regions, feasible_mask, read_model_file, rows_judge

__all__ = [
    "CAPTURE_SOURCE",
    "Mutant",
    "MutantOutcome",
    "capture_model",
    "evaluate_program",
    "lift_rows",
    "make_mutants",
]

# Runs a program with its solver call wrapped so the model is written to $NEMO_CAPTURE first.
CAPTURE_SOURCE = r"""
import os, runpy, sys
target = os.environ["NEMO_CAPTURE"]
try:
    import highspy
    _solve = highspy.Highs.solve
    def solve(self, *args, **kwargs):
        self.writeModel(target)
        return _solve(self, *args, **kwargs)
    highspy.Highs.solve = solve
    highspy.Highs.run = solve
except ImportError:
    pass
try:
    import pulp
    _pulp_solve = pulp.LpProblem.solve
    def pulp_solve(self, *args, **kwargs):
        self.writeMPS(target)
        return _pulp_solve(self, *args, **kwargs)
    pulp.LpProblem.solve = pulp_solve
except ImportError:
    pass
try:
    import gurobipy
    _optimize = gurobipy.Model.optimize
    def optimize(self, *args, **kwargs):
        self.update()
        self.write(target)
        return _optimize(self, *args, **kwargs)
    gurobipy.Model.optimize = optimize
except ImportError:
    pass
sys.argv = [sys.argv[1]]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def capture_model(program: Path, target: Path, timeout: float = 300.0) -> bool:
    """Run ``program`` once and keep the model it builds as ``target`` (MPS); False when none was written."""
    env = {**os.environ, "NEMO_CAPTURE": str(target), "OPENBLAS_NUM_THREADS": "1"}
    subprocess.run(
        [sys.executable, "-c", CAPTURE_SOURCE, str(program)],
        cwd=program.parent,
        env=env,
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    return target.exists() and target.stat().st_size > 0


def _solve(path: Path) -> tuple[str, float | None, np.ndarray | None]:
    import highspy

    highs = highspy.Highs()
    highs.silent()
    highs.setOptionValue("time_limit", 60.0)
    highs.setOptionValue("mip_rel_gap", 0.0)
    highs.readModel(str(path))
    highs.run()
    status = highs.modelStatusToString(highs.getModelStatus())
    if highs.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return status, None, None
    return status, float(highs.getInfo().objective_function_value), np.asarray(highs.getSolution().col_value)


@dataclass(frozen=True)
class Mutant:
    """A change to the model: ``apply`` edits a HiGHS instance holding the original."""

    kind: str
    detail: str
    apply: Callable[[Any], None]


def _drop_row(highs: Any, row: int) -> None:
    highs.deleteRows(1, [row])


def _set_col_bounds(highs: Any, column: int, low: float, high: float) -> None:
    highs.changeColBounds(column, low, high)


def _set_row_bounds(highs: Any, row: int, low: float, high: float) -> None:
    highs.changeRowBounds(row, low, high)


def _make_continuous(highs: Any, column: int) -> None:
    import highspy

    highs.changeColIntegrality(column, highspy.HighsVarType.kContinuous)


def _scale_row(highs: Any, row: int, columns: list[int], values: list[float], factor: float) -> None:
    for column, value in zip(columns, values, strict=True):
        highs.changeCoeff(row, column, value * factor)


def make_mutants(model: ModelRows, x_star: np.ndarray, rng: np.random.Generator, per_kind: int = 2) -> list[Mutant]:
    """Region-changing mutants: drop a non-binding row, loosen an inactive bound, loosen a non-binding row, relax
    an integer column; and mutants that move the optimum: drop a binding row, scale a binding row by 1.1."""
    activity = model.matrix @ x_star
    slack = np.minimum(model.row_upper - activity, activity - model.row_lower)
    binding = [i for i in range(len(model.rows)) if slack[i] <= 1e-7 * (1 + abs(activity[i]))]
    loose = [i for i in range(len(model.rows)) if i not in binding]
    inactive_bounds = [
        (j, side)
        for j in range(len(model.columns))
        for side, bound in (("upper", model.col_upper[j]), ("lower", model.col_lower[j]))
        if np.isfinite(bound) and abs(x_star[j] - bound) > 1e-6 and bound != 0.0
    ]
    integers = [j for j in range(len(model.columns)) if model.integer[j]]

    def pick(items: list[Any]) -> list[Any]:
        if len(items) <= per_kind:
            return list(items)
        return [items[i] for i in rng.choice(len(items), size=per_kind, replace=False)]

    mutants: list[Mutant] = []
    for i in pick(loose):
        mutants.append(Mutant("drop non-binding row", model.rows[i], partial(_drop_row, row=i)))
    for j, side in pick(inactive_bounds):
        low, high = float(model.col_lower[j]), float(model.col_upper[j])
        if side == "upper":
            high += max(abs(high), 1.0) * 0.5
        else:
            low -= max(abs(low), 1.0) * 0.5
        detail = f"{side} of {model.columns[j]}"
        mutants.append(Mutant("loosen inactive bound", detail, partial(_set_col_bounds, column=j, low=low, high=high)))
    for i in pick(loose):
        width = max(abs(float(slack[i])), 1.0) * 2
        low, high = float(model.row_lower[i]) - width, float(model.row_upper[i]) + width
        mutants.append(
            Mutant("loosen non-binding row", model.rows[i], partial(_set_row_bounds, row=i, low=low, high=high))
        )
    for j in pick(integers):
        mutants.append(Mutant("relax integrality", model.columns[j], partial(_make_continuous, column=j)))
    for i in pick(binding):
        mutants.append(Mutant("drop binding row", model.rows[i], partial(_drop_row, row=i)))
    for i in pick(binding):
        row = model.matrix.getrow(i)
        scale = partial(_scale_row, row=i, columns=row.indices.tolist(), values=row.data.tolist(), factor=1.1)
        mutants.append(Mutant("scale binding row by 1.1", model.rows[i], scale))
    return mutants


@dataclass
class MutantOutcome:
    """How one mutant fared."""

    program: str
    kind: str
    detail: str
    keeps_optimum: bool
    redundant: bool
    caught_objective_only: bool
    caught_with_crosscheck: bool
    note: str = ""
    unknown_probes: int = 0  # cross-check probes HiGHS could not complete (auxiliary columns only)


def lift_rows(source: Path, target: Path) -> None:
    """Write ``source`` to ``target`` with each row l <= a x <= u as a x - s = 0 and an auxiliary column
    l <= s <= u (columns appended after the original ones, which keep their positions)."""
    import highspy

    highs = highspy.Highs()
    highs.silent()
    highs.readModel(str(source))
    lp = highs.getLp()
    lower, upper = list(lp.row_lower_), list(lp.row_upper_)
    first = lp.num_col_
    for row in range(lp.num_row_):
        highs.addCol(0.0, lower[row], upper[row], 1, [row], [-1.0])
        highs.passColName(first + row, f"aux_{row}")
        highs.changeRowBounds(row, 0.0, 0.0)
    highs.writeModel(str(target))


def _spec_for(model: ModelRows) -> tuple[ProblemSpec, list[str]]:
    names = [f"x{i}" for i in range(len(model.columns))]
    variables = [
        {"name": n, "type": "integer" if model.integer[i] else "continuous", "lower": None, "upper": None}
        for i, n in enumerate(names)
    ]
    spec = ProblemSpec.model_validate({"variables": variables, "objective": {"sense": "minimize", "expression": "0"}})
    return spec, names


def _objective_only(reference: ModelRows, x: np.ndarray, reported: float, tol: float) -> bool:
    """True when V rejects the mutant's optimum: infeasible for the original, or a different objective value."""
    feasible = bool(feasible_mask(reference, x[None, :], tol, tol)[0])
    value = float(reference.cost @ x + reference.offset)
    return not feasible or abs(value - reported) > tol + tol * abs(reported)


def _redundant(original: ModelRows, mutant: ModelRows, x: np.ndarray, rng: np.random.Generator) -> bool:
    """True when 20,000 points around x* never separate the two regions (the change is invisible there)."""
    scale = np.maximum(1.0, np.abs(x)) * 2
    steps = rng.uniform(-1, 1, size=(20_000, len(x))) * scale * rng.uniform(0.01, 1, size=(20_000, 1))
    points = x + steps
    points[:, original.integer] = np.round(points[:, original.integer])
    return bool((feasible_mask(original, points, 1e-6, 1e-6) == feasible_mask(mutant, points, 1e-6, 1e-6)).all())


def evaluate_program(
    name: str,
    base_file: Path,
    *,
    probes: int = 24,
    per_kind: int = 2,
    seed: int = 0,
    tol: float = 1e-6,
    auxiliary: bool = False,
) -> tuple[list[MutantOutcome], bool]:
    """All mutants of one captured model, and whether the unmutated model raised a (false) alarm.

    With ``auxiliary`` the cross-check is shown the models with their rows lifted into auxiliary columns."""
    import highspy

    def as_checked(path: Path) -> ModelRows:
        if not auxiliary:
            return read_model_file(path)
        with tempfile.TemporaryDirectory() as folder:
            lifted = Path(folder) / "lifted.mps"
            lift_rows(path, lifted)
            return read_model_file(lifted)

    rng = np.random.default_rng(seed)
    original = read_model_file(base_file)
    shown = as_checked(base_file)
    status, objective, x_star = _solve(base_file)
    if objective is None or x_star is None:
        raise ValueError(f"{name}: the captured model does not solve to optimality ({status})")
    spec, names = _spec_for(original)
    as_dict = dict(zip(names, map(float, x_star), strict=True))
    mapping: dict[int, tuple[str, tuple[str, ...]]] = {i: (n, ()) for i, n in enumerate(names)}
    judge = rows_judge(original, names, tol, tol)
    baseline = compare_regions(spec, as_dict, shown, mapping, judge, probes=probes, atol=tol, rtol=tol, seed=seed)
    false_alarm = bool(baseline.issues)
    outcomes = []
    for mutant in make_mutants(original, x_star, rng, per_kind):
        with tempfile.TemporaryDirectory() as folder:
            highs = highspy.Highs()
            highs.silent()
            highs.readModel(str(base_file))
            mutant.apply(highs)
            path = Path(folder) / "mutant.mps"
            highs.writeModel(str(path))
            changed = read_model_file(path)
            checked = as_checked(path)
            m_status, m_objective, m_x = _solve(path)
        if m_objective is None or m_x is None:
            outcomes.append(
                MutantOutcome(name, mutant.kind, mutant.detail, False, False, True, True, f"mutant {m_status}")
            )
            continue
        keeps = abs(m_objective - objective) <= 1e-6 * (1 + abs(objective))
        caught_v = _objective_only(original, m_x, m_objective, tol)
        variables = dict(zip(names, map(float, m_x), strict=True))
        check = compare_regions(spec, variables, checked, mapping, judge, probes=probes, atol=tol, rtol=tol, seed=seed)
        redundant = _redundant(original, changed, x_star, rng) and not check.issues
        outcomes.append(
            MutantOutcome(
                name,
                mutant.kind,
                mutant.detail,
                keeps,
                redundant,
                caught_v,
                caught_v or bool(check.issues),
                unknown_probes=check.unknown_probes,
            )
        )
    return outcomes, false_alarm
