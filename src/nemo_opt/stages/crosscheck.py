"""Feasible-region cross-check: does the model's feasible region agree with the simulator's, not only at x*?

Objective agreement at the optimum is necessary but not sufficient: a model that drops a constraint which is
not binding, loosens a bound, or relaxes integrality where the optimum happens to be integral reaches the
same x* and F but describes a different problem (and gives wrong answers once the data change). The checker
reads the model file the optimizer exported (MPS or LP, via HiGHS), maps its columns to P*'s variables, and
evaluates rows and bounds at probe points, asking the simulator about the same points. Probes walk from x*
along the edges of the model's region (keeping all active constraints but one active), its null space and the
axes, stopping half-way, just inside and just beyond the model's frontier; random perturbations of x* at
three scales fill the rest of the budget. Disagreements are:

- ``too loose``: the model accepts a point the simulator rejects (a missing or loosened constraint);
- ``too tight``: the model rejects a point the simulator accepts (a wrong or extra constraint or bound);
- ``objective``: both accept a point but value it differently (a wrong objective term away from x*);
- ``integrality``: a column's integrality differs from the variable's declared type.

Rows that involve columns not mapped to P* variables (auxiliary variables) cannot be evaluated at a probe
point and are skipped; the result says how many.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import sparse

from nemo_opt.sandbox.base import Sandbox
from nemo_opt.solution import Issue, SimVerdict, Solution
from nemo_opt.spec import ProblemSpec, VarType, index_keys
from nemo_opt.stages.validate import run_simulator_batch
from nemo_opt.workspace import Workspace

__all__ = [
    "CrossCheck",
    "Judge",
    "ModelRows",
    "compare_regions",
    "cross_check",
    "feasible_mask",
    "read_model_file",
    "rows_judge",
]

_MAX_REPORTED = 5


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def _reference(name: str, key: tuple[str, ...]) -> str:
    return f"{name}[{','.join(key)}]" if key else name


@dataclass
class ModelRows:
    """An exported model as matrices: rows l <= A x <= u, bounds, integrality, a linear objective."""

    columns: list[str]
    rows: list[str]
    matrix: sparse.csr_matrix
    row_lower: npt.NDArray[np.float64]
    row_upper: npt.NDArray[np.float64]
    col_lower: npt.NDArray[np.float64]
    col_upper: npt.NDArray[np.float64]
    integer: npt.NDArray[np.bool_]
    cost: npt.NDArray[np.float64]
    offset: float
    quadratic: bool


def read_model_file(path: Path) -> ModelRows:
    """Read an MPS or LP file with HiGHS (the reader accepts what most modelling layers write)."""
    import highspy

    highs = highspy.Highs()
    highs.silent()
    status = highs.readModel(str(path))
    if status == highspy.HighsStatus.kError:
        raise ValueError(f"HiGHS cannot read {path.name}")
    lp = highs.getLp()
    matrix = lp.a_matrix_
    shape = (lp.num_row_, lp.num_col_)
    data = (np.asarray(matrix.value_, dtype=float), np.asarray(matrix.index_), np.asarray(matrix.start_))
    if matrix.format_ == highspy.MatrixFormat.kColwise:
        csr = sparse.csc_matrix(data, shape=shape).tocsr()
    else:
        csr = sparse.csr_matrix(data, shape=shape)
    hessian = highs.getModel().hessian_
    return ModelRows(
        columns=list(lp.col_names_) or [f"c{i}" for i in range(lp.num_col_)],
        rows=list(lp.row_names_) or [f"r{i}" for i in range(lp.num_row_)],
        matrix=csr,
        row_lower=np.asarray(lp.row_lower_, dtype=float),
        row_upper=np.asarray(lp.row_upper_, dtype=float),
        col_lower=np.asarray(lp.col_lower_, dtype=float),
        col_upper=np.asarray(lp.col_upper_, dtype=float),
        integer=np.asarray([int(t) != 0 for t in lp.integrality_] or [False] * lp.num_col_, dtype=bool),
        cost=np.asarray(lp.col_cost_, dtype=float),
        offset=float(lp.offset_),
        quadratic=hessian.dim_ > 0,
    )


@dataclass
class CrossCheck:
    """Outcome of one cross-check; ``issues`` go into the validation report."""

    ran: bool
    note: str = ""
    probes: int = 0
    mapped_columns: int = 0
    skipped_rows: int = 0
    issues: list[Issue] = field(default_factory=list)
    points: list[dict[str, Any]] = field(default_factory=list)


def _column_map(
    model: ModelRows, spec: ProblemSpec, explicit: dict[str, str]
) -> dict[int, tuple[str, tuple[str, ...]]]:
    """Model column index -> (variable, index key), from the exported map or by normalized name."""
    wanted: dict[str, tuple[str, tuple[str, ...]]] = {}
    for var in spec.variables:
        for key in index_keys(spec, var.indices):
            wanted[_norm(_reference(var.name, key))] = (var.name, key)
    by_name = {name: i for i, name in enumerate(model.columns)}
    mapping: dict[int, tuple[str, tuple[str, ...]]] = {}
    for column, reference in explicit.items():
        target = wanted.get(_norm(reference))
        if column in by_name and target is not None:
            mapping[by_name[column]] = target
    if not mapping:
        for i, name in enumerate(model.columns):
            target = wanted.get(_norm(name))
            if target is not None:
                mapping[i] = target
    return mapping


def _nest(values: dict[tuple[str, tuple[str, ...]], float], base: dict[str, Any]) -> dict[str, Any]:
    """Variable mappings in the solution.json shape, starting from ``base`` (x*) for anything not set."""
    out: dict[str, Any] = json.loads(json.dumps(base))
    for (name, key), value in values.items():
        if not key:
            out[name] = value
            continue
        level = out.setdefault(name, {})
        for part in key[:-1]:
            level = level.setdefault(part, {})
        level[key[-1]] = value
    return out


def _directions(
    model: ModelRows, x_star: npt.NDArray[np.float64], mapped: list[int], evaluable: npt.NDArray[np.bool_], atol: float
) -> tuple[list[npt.NDArray[np.float64]], list[npt.NDArray[np.float64]]]:
    """Directions worth walking from x*: (inside, across).

    Inside: along the edges of the model's region that leave x* (each keeps all but one active constraint
    active), along its null space, then along each axis; a model that dropped or loosened a constraint first
    differs from the problem where these walks reach the model's frontier. Across: the same edges reversed,
    stepping just over one active constraint; a constraint that is too tight rejects points the problem allows.
    """
    activity = model.matrix @ x_star
    rows, signs = [], []
    for i in np.nonzero(evaluable)[0]:
        for bound, sign in ((model.row_upper[i], 1.0), (model.row_lower[i], -1.0)):
            if np.isfinite(bound) and abs(activity[i] - bound) <= atol + 1e-7 * (1 + abs(bound)):
                rows.append(np.asarray(model.matrix[i, mapped].todense()).ravel())
                signs.append(sign)
    for position, column in enumerate(mapped):
        for bound, sign in ((model.col_upper[column], 1.0), (model.col_lower[column], -1.0)):
            if np.isfinite(bound) and abs(x_star[column] - bound) <= atol + 1e-7 * (1 + abs(bound)):
                unit = np.zeros(len(mapped))
                unit[position] = 1.0
                rows.append(unit)
                signs.append(sign)
    found: list[npt.NDArray[np.float64]] = []
    across: list[npt.NDArray[np.float64]] = []
    if rows:
        active = np.vstack(rows)
        for number, sign in enumerate(signs):
            target = np.zeros(len(rows))
            target[number] = -sign  # move inward on constraint ``number``, stay on the others
            step, *_ = np.linalg.lstsq(active, target, rcond=None)
            if np.linalg.norm(step) > 1e-9:
                found.append(step)
                across.append(-step)
        _, singular, vt = np.linalg.svd(active)
        rank = int((singular > 1e-9).sum())
        for vector in vt[rank:]:
            found += [vector, -vector]
    else:
        found += [row for row in np.eye(len(mapped))] + [-row for row in np.eye(len(mapped))]
    found += [row for row in np.eye(len(mapped))] + [-row for row in np.eye(len(mapped))]

    def lift(steps: list[npt.NDArray[np.float64]]) -> list[npt.NDArray[np.float64]]:
        out = []
        for step in steps:
            vector = np.zeros(len(model.columns))
            vector[mapped] = step / np.linalg.norm(step)
            out.append(vector)
        return out

    return lift(found), lift(across)


def _max_step(
    model: ModelRows,
    x_star: npt.NDArray[np.float64],
    direction: npt.NDArray[np.float64],
    evaluable: npt.NDArray[np.bool_],
) -> float:
    """How far x* can move along ``direction`` before the model's first row or bound is violated."""
    rate = model.matrix @ direction
    activity = model.matrix @ x_star
    limits = [np.inf]
    with np.errstate(divide="ignore", invalid="ignore"):
        up = np.where(evaluable & (rate > 1e-12), (model.row_upper - activity) / rate, np.inf)
        down = np.where(evaluable & (rate < -1e-12), (model.row_lower - activity) / rate, np.inf)
        col_up = np.where(direction > 1e-12, (model.col_upper - x_star) / direction, np.inf)
        col_down = np.where(direction < -1e-12, (model.col_lower - x_star) / direction, np.inf)
    for values in (up, down, col_up, col_down):
        finite = values[np.isfinite(values)]
        if finite.size:
            limits.append(float(max(finite.min(), 0.0)))
    return min(limits)


def _probe_points(
    model: ModelRows,
    x_star: npt.NDArray[np.float64],
    mapped: list[int],
    evaluable: npt.NDArray[np.bool_],
    count: int,
    atol: float,
    rng: np.random.Generator,
) -> list[npt.NDArray[np.float64]]:
    """Points just across each active constraint, points along the inside directions (half-way, just inside and
    just beyond the model's frontier), then random perturbations of x* at several scales for what is left."""
    scale = np.maximum(1.0, np.abs(x_star))
    inside, across = _directions(model, x_star, mapped, evaluable, atol)
    size = float(np.mean(scale[mapped]))
    groups: list[list[npt.NDArray[np.float64]]] = [
        [x_star + fraction * size * direction for fraction in (0.05, 0.01)] for direction in across
    ]
    for direction in inside:
        reach = _max_step(model, x_star, direction, evaluable)
        if not np.isfinite(reach):
            reach = 10.0 * float(scale[mapped].max())
        if reach > 1e-9:
            groups.append([x_star + fraction * reach * direction for fraction in (0.999, 1.05, 0.5)])
    # Round-robin over shuffled directions, so a large model with many active constraints still gets every
    # kind of probe within the budget.
    order = rng.permutation(len(groups))
    points: list[npt.NDArray[np.float64]] = []
    for depth in range(3):
        points += [groups[g][depth] for g in order if depth < len(groups[g])]
    points = points[: max(count * 3 // 4, 1)]
    while len(points) < count:
        point = x_star.copy()
        chosen = rng.choice(mapped, size=min(len(mapped), int(rng.integers(1, 4))), replace=False)
        size = (0.05, 0.3, 1.0)[len(points) % 3]
        point[chosen] += rng.choice([-1.0, 1.0], size=len(chosen)) * size * scale[chosen] * rng.uniform(0.5, 1.5)
        points.append(point)
    for point in points:
        point[model.integer] = np.round(point[model.integer])
    return points[:count]


def cross_check(
    spec: ProblemSpec,
    workspace: Workspace,
    sandbox: Sandbox,
    solution: Solution,
    solution_dir: Path,
    *,
    probes: int,
    atol: float,
    rtol: float,
    timeout: float,
    seed: int = 0,
) -> CrossCheck:
    """Compare the exported model's feasibility and objective with the simulator's at ``probes`` points."""
    extra = solution.model_extra or {}
    model_file = extra.get("model_file")
    if probes <= 0:
        return CrossCheck(False, "switched off")
    if not model_file:
        return CrossCheck(False, "the model exported no model file (this solver API cannot, or the model did not)")
    path = (solution_dir / str(model_file)).resolve()
    if not path.is_relative_to(solution_dir.resolve()) or not path.exists():
        return CrossCheck(False, f"the model file {model_file} is missing")
    try:
        model = read_model_file(path)
    except (ValueError, RuntimeError) as exc:
        return CrossCheck(False, f"the model file cannot be read: {exc}")
    explicit = extra.get("columns") if isinstance(extra.get("columns"), dict) else {}
    mapping = _column_map(model, spec, {str(k): str(v) for k, v in (explicit or {}).items()})
    if not mapping:
        return CrossCheck(False, "no column of the model file could be matched to a variable of P*")

    def judge(points: list[dict[str, Any]]) -> list[SimVerdict] | str:
        return run_simulator_batch(workspace, sandbox, points, f"crosscheck_{seed}", atol, timeout)

    return compare_regions(
        spec, solution.variables, model, mapping, judge, probes=probes, atol=atol, rtol=rtol, seed=seed
    )


def _lookup(values: Any, key: tuple[str, ...]) -> float | None:
    for part in key:
        if not isinstance(values, dict) or part not in values:
            return None
        values = values[part]
    return float(values) if isinstance(values, int | float) and not isinstance(values, bool) else None


Judge = Callable[[list[dict[str, Any]]], "list[SimVerdict] | str"]


def compare_regions(
    spec: ProblemSpec,
    variables: dict[str, Any],
    model: ModelRows,
    mapping: dict[int, tuple[str, tuple[str, ...]]],
    judge: Judge,
    *,
    probes: int,
    atol: float,
    rtol: float,
    seed: int = 0,
) -> CrossCheck:
    """Probe the model around the solution ``variables`` and compare with ``judge``'s verdicts (the simulator,
    or anything that judges points the same way)."""
    result = CrossCheck(True, probes=probes, mapped_columns=len(mapping))
    declared = {v.name: v.type for v in spec.variables}
    for column, (name, key) in mapping.items():
        if (declared[name] is not VarType.CONTINUOUS) != bool(model.integer[column]):
            kind = "integer" if model.integer[column] else "continuous"
            result.issues.append(
                Issue(
                    kind="feasible_region",
                    message=f"{_reference(name, key)} is {declared[name].value} in the problem but {kind} in the "
                    f"exported model (column {model.columns[column]})",
                    variables=[_reference(name, key)],
                )
            )
    x_star = np.zeros(len(model.columns))
    for column, (name, key) in mapping.items():
        value = _lookup(variables.get(name), key)
        x_star[column] = value if value is not None else 0.0
    mapped = sorted(mapping)
    unmapped = np.ones(len(model.columns), dtype=bool)
    unmapped[mapped] = False
    # A row touching an auxiliary column has an unknown activity at a probe point.
    evaluable = (
        np.asarray(model.matrix[:, unmapped].getnnz(axis=1) == 0)
        if unmapped.any()
        else np.ones(len(model.rows), dtype=bool)
    )
    result.skipped_rows = int((~evaluable).sum())
    rng = np.random.default_rng(seed)
    points = _probe_points(model, x_star, mapped, evaluable, probes, atol, rng)
    dicts = [_nest({mapping[c]: float(p[c]) for c in mapped}, variables) for p in points]
    verdicts = judge(dicts)
    if isinstance(verdicts, str):
        return CrossCheck(False, f"the simulator could not judge the probe points: {verdicts}")
    found: dict[str, list[Issue]] = {"too loose": [], "too tight": [], "objective": []}
    for point, verdict in zip(points, verdicts, strict=True):
        activity = model.matrix @ point
        row_gap = _excess(activity, model.row_lower, model.row_upper, atol, rtol)
        violated_rows = [int(i) for i in np.nonzero(evaluable & (row_gap > 0))[0]]
        bound_gap = _excess(point, model.col_lower, model.col_upper, atol, rtol)
        violated_cols = [i for i in mapped if bound_gap[i] > 0]
        model_ok = not violated_rows and not violated_cols
        shown = _changed(mapping, point, x_star)
        result.points.append({"changed": shown, "model_feasible": model_ok, "simulator": verdict.model_dump()})
        if not verdict.ok:
            continue
        if model_ok and not verdict.feasible:
            broken = ", ".join(f"'{v.constraint}'" for v in verdict.violations[:3]) or "a condition"
            found["too loose"].append(
                Issue(
                    kind="feasible_region",
                    message=f"model too loose: it accepts {_show(shown)} but the problem forbids it (the simulator "
                    f"reports {broken} violated): a constraint or bound is missing or too loose",
                    constraint=verdict.violations[0].constraint if verdict.violations else None,
                    variables=sorted(shown)[:10],
                )
            )
        elif not model_ok and verdict.feasible:
            rows = [f"row {model.rows[i]} by {row_gap[i]:.4g}" for i in violated_rows[:3]]
            cols = [f"bound of {model.columns[i]} by {bound_gap[i]:.4g}" for i in violated_cols[:3]]
            found["too tight"].append(
                Issue(
                    kind="feasible_region",
                    message=f"model too tight: it rejects {_show(shown)} ({'; '.join(rows + cols)} violated) but the "
                    "problem allows it: a constraint or bound is wrong or extra",
                    constraint=model.rows[violated_rows[0]] if violated_rows else None,
                    variables=sorted(shown)[:10],
                )
            )
        elif model_ok and verdict.feasible and verdict.objective is not None and not model.quadratic:
            model_value = float(model.cost @ point + model.offset)
            if abs(model_value - verdict.objective) > atol + rtol * max(abs(verdict.objective), 1.0) * 10:
                found["objective"].append(
                    Issue(
                        kind="feasible_region",
                        message=f"at {_show(shown)} the model's objective is {model_value:.10g} but the simulator's "
                        f"is {verdict.objective:.10g}: an objective term is wrong away from the optimum",
                        amount=abs(model_value - verdict.objective),
                        variables=sorted(shown)[:10],
                    )
                )
    for issues in found.values():
        result.issues.extend(issues[:_MAX_REPORTED])
    return result


def _excess(
    values: npt.NDArray[np.float64],
    lower: npt.NDArray[np.float64],
    upper: npt.NDArray[np.float64],
    atol: float,
    rtol: float,
) -> npt.NDArray[np.float64]:
    """How far each value lies outside [lower, upper] beyond the tolerance (<= 0: inside).

    Infinite bounds never bind."""
    with np.errstate(invalid="ignore"):
        below = np.where(np.isfinite(lower), lower - values - (atol + rtol * np.abs(lower)), -np.inf)
        above = np.where(np.isfinite(upper), values - upper - (atol + rtol * np.abs(upper)), -np.inf)
    return np.maximum(below, above)


def _changed(
    mapping: dict[int, tuple[str, tuple[str, ...]]], point: npt.NDArray[np.float64], x_star: npt.NDArray[np.float64]
) -> dict[str, float]:
    """The probe's coordinates that differ from x* (all of them when none does)."""
    moved = {c: ref for c, ref in mapping.items() if abs(point[c] - x_star[c]) > 1e-9} or mapping
    return {_reference(name, key): round(float(point[c]), 6) for c, (name, key) in moved.items()}


def _show(values: dict[str, float], limit: int = 8) -> str:
    items = list(values.items())
    text = ", ".join(f"{k}={v:g}" for k, v in items[:limit])
    return f"the point x* with ({text}{', ...' if len(items) > limit else ''})"


def feasible_mask(model: ModelRows, points: npt.NDArray[np.float64], atol: float, rtol: float) -> npt.NDArray[np.bool_]:
    """For many points at once (one per row of ``points``): inside the model's rows, bounds and integrality?"""
    activity = (model.matrix @ points.T).T
    rows_ok = (_excess(activity, model.row_lower, model.row_upper, atol, rtol) <= 0).all(axis=1)
    bounds_ok = (_excess(points, model.col_lower, model.col_upper, atol, rtol) <= 0).all(axis=1)
    integral = (np.abs(points - np.round(points)) <= max(atol, 1e-6)) | ~model.integer
    return np.asarray(rows_ok & bounds_ok & integral.all(axis=1))


def rows_judge(
    reference: ModelRows, names: list[str], atol: float, rtol: float
) -> Callable[[list[dict[str, Any]]], list[SimVerdict]]:
    """A judge that decides feasibility and objective with a reference model's own rows, bounds and types.

    ``names[i]`` is the variable name used for the reference's column i in the points. This lets a model be
    compared with another formulation of the same problem (for example a trusted one) without a simulator.
    """
    position = {name: i for i, name in enumerate(names)}

    def judge(points: list[dict[str, Any]]) -> list[SimVerdict]:
        verdicts = []
        for point in points:
            x = np.zeros(len(reference.columns))
            for name, value in point.items():
                if name in position and isinstance(value, int | float):
                    x[position[name]] = float(value)
            gaps = _excess(reference.matrix @ x, reference.row_lower, reference.row_upper, atol, rtol)
            bounds = _excess(x, reference.col_lower, reference.col_upper, atol, rtol)
            fractional = reference.integer & (np.abs(x - np.round(x)) > max(atol, 1e-6))
            violations = [
                {"constraint": reference.rows[i], "amount": float(gaps[i])} for i in np.nonzero(gaps > 0)[0]
            ] + [
                {"constraint": f"bound:{reference.columns[i]}", "amount": float(bounds[i])}
                for i in np.nonzero(bounds > 0)[0]
            ]
            violations += [{"constraint": f"integer:{reference.columns[i]}"} for i in np.nonzero(fractional)[0]]
            verdicts.append(
                SimVerdict(
                    ok=True,
                    feasible=not violations,
                    objective=float(reference.cost @ x + reference.offset),
                    violations=violations,
                )
            )
        return verdicts

    return judge
