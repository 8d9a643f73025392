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

Rows that involve columns not mapped to P* variables (auxiliary variables) have no activity of their own at a
probe point: the model accepts the point when some values of the auxiliary columns satisfy all its rows, bounds
and integrality, and values it at the best such completion. HiGHS decides that with the mapped columns fixed
(a time limit per solve); a probe it cannot decide is unknown and left out, never counted as accepted or
rejected. Models without auxiliary columns are evaluated with numpy alone.
"""

from __future__ import annotations

import io
import json
import re
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from scipy import sparse

from nemo_opt import door
from nemo_opt.harness import harness_source
from nemo_opt.sandbox.base import WorkspaceSandbox
from nemo_opt.solution import Issue, SimVerdict, Solution
from nemo_opt.spec import ProblemSpec, VarType, index_keys
from nemo_opt.workspace import Workspace

__all__ = [
    "CrossCheck",
    "HighsSolve",
    "Judge",
    "ModelRows",
    "column_map",
    "compare_regions",
    "complete_point",
    "feasible_mask",
    "load_exported_model",
    "lookup",
    "objective_at",
    "read_model_file",
    "read_untrusted_model",
    "rows_judge",
    "solution_point",
    "solve_model",
]

_MAX_REPORTED = 5
# Dense work the edge walks may do on the host (cells of float64: 32 MB), and the widest full SVD (a 2000 x 2000
# matrix, 32 MB).
DENSE_CELLS = 4_000_000
NULL_SPACE_COLUMNS = 2000
COMPLETION_TIME_LIMIT = 2.0  # seconds per HiGHS completion of a probe point's auxiliary columns


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def _reference(name: str, key: tuple[str, ...]) -> str:
    return f"{name}[{','.join(key)}]" if key else name


@dataclass
class ModelRows:
    """An exported model as matrices: rows l <= A x <= u, bounds, integrality and the objective
    ``sense * min (cost'x + 1/2 x'Qx + offset)``, with everything a re-solve by HiGHS needs.

    ``integer`` marks every column HiGHS does not treat as continuous; ``integrality`` keeps HiGHS's own codes
    (integer, semi-continuous, semi-integer) for a faithful re-solve. ``hessian`` is the full symmetric Q of a
    quadratic objective (None for a linear one); ``sense`` is 1 to minimize and -1 to maximize, as HiGHS's
    ``lp.sense_``.
    """

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
    sense: int = 1
    hessian: sparse.csr_matrix | None = None
    integrality: npt.NDArray[np.int8] | None = None

    @property
    def quadratic(self) -> bool:
        return self.hessian is not None and self.hessian.nnz > 0

    @property
    def maximize(self) -> bool:
        return self.sense < 0


def read_model_file(path: Path) -> ModelRows:
    """Read an MPS or LP file the host trusts (its own, a test's) with HiGHS, in this process."""
    from nemo_opt.harness.read_model import arrays

    return _rows_from_arrays(arrays(str(path)))


def read_untrusted_model(data: bytes, suffix: str, sandbox: WorkspaceSandbox, *, timeout: float) -> ModelRows:
    """Read an agent's model file: HiGHS parses it in a sandboxed process (time and memory limits, apart from the
    host), which hands back plain arrays (no pickles); the host checks their shapes and values before use."""
    with tempfile.TemporaryDirectory(prefix="nemo-model-") as private:
        folder = Path(private)
        door.write_bytes(folder, f"model{suffix}", data)
        door.write_text(folder, READER, harness_source(READER))
        result = sandbox.relocated(folder).run(
            f"python -I -B {READER} model{suffix} rows.npz", cwd=folder, timeout=timeout
        )
        if not result.ok:
            raise ValueError(f"HiGHS cannot read the model file ({result.describe()}): {result.output.strip()[-300:]}")
        raw = door.read_bytes(folder, "rows.npz", max_bytes=MAX_ARRAY_BYTES)
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as loaded:
            return _rows_from_arrays({name: loaded[name] for name in loaded.files})
    except (KeyError, TypeError, OSError) as exc:  # a malformed archive: the reader did not write it
        raise ValueError(f"the model file's arrays are unusable: {exc}") from exc


def _rows_from_arrays(found: Mapping[str, Any]) -> ModelRows:
    """A :class:`ModelRows` from the reader's arrays, refusing shapes that disagree and non-finite coefficients."""
    rows, cols = (int(v) for v in found["shape"])
    data = (np.asarray(found["value"], dtype=float), np.asarray(found["index"]), np.asarray(found["start"]))
    if bool(found["colwise"]):
        csr = sparse.csc_matrix(data, shape=(rows, cols)).tocsr()
    else:
        csr = sparse.csr_matrix(data, shape=(rows, cols))
    cost = np.asarray(found["cost"], dtype=float)
    if not (np.isfinite(csr.data).all() and np.isfinite(cost).all()):
        raise ValueError("the model has non-finite coefficients")
    vectors = {name: np.asarray(found[name], dtype=float) for name in ("row_lower", "row_upper")}
    bounds = {name: np.asarray(found[name], dtype=float) for name in ("col_lower", "col_upper")}
    codes = np.asarray(found["integrality"], dtype=np.int8)
    if any(len(v) != rows for v in vectors.values()) or any(len(v) != cols for v in (*bounds.values(), cost, codes)):
        raise ValueError("the model's arrays do not agree in size")
    columns = [str(n) for n in found["col_names"]] or [f"c{i}" for i in range(cols)]
    names = [str(n) for n in found["row_names"]] or [f"r{i}" for i in range(rows)]
    return ModelRows(
        columns=columns,
        rows=names,
        matrix=csr,
        row_lower=vectors["row_lower"],
        row_upper=vectors["row_upper"],
        col_lower=bounds["col_lower"],
        col_upper=bounds["col_upper"],
        integer=codes != 0,
        cost=cost,
        offset=float(found["offset"]),
        sense=-1 if bool(found["maximize"]) else 1,
        hessian=_full_hessian(found, cols),
        integrality=codes,
    )


def _full_hessian(found: Mapping[str, Any], size: int) -> sparse.csr_matrix | None:
    """HiGHS's Hessian (the lower triangle column by column, or the square matrix) as the full symmetric Q."""
    values = np.asarray(found["hessian_value"], dtype=float)
    if int(found["hessian_dim"]) <= 0 or not len(values):
        return None
    if not np.isfinite(values).all():
        raise ValueError("the model's quadratic objective has non-finite coefficients")
    stored = sparse.csc_matrix(
        (values, np.asarray(found["hessian_index"]), np.asarray(found["hessian_start"])), shape=(size, size)
    )
    if bool(found["hessian_square"]):
        return sparse.csr_matrix(stored)
    lower = sparse.tril(stored, k=-1)
    return sparse.csr_matrix(stored + lower.T) if lower.nnz else sparse.csr_matrix(stored)


def objective_at(model: ModelRows, point: npt.NDArray[np.float64]) -> float:
    """The model's objective at a full point: cost'x + 1/2 x'Qx + offset (in the model's own sense)."""
    value = float(model.cost @ point) + model.offset
    if model.hessian is not None:
        value += 0.5 * float(point @ (model.hessian @ point))
    return value


HighsOutcome = Literal["optimal", "infeasible", "unbounded", "limit", "error"]


@dataclass
class HighsSolve:
    """What one HiGHS solve of a :class:`ModelRows` found.

    ``status``: ``optimal`` (for a MIP, within HiGHS's gap), ``infeasible``, ``unbounded``, ``limit`` (the time
    limit or another limit stopped it; ``objective``/``values`` then hold the best point found, if any) or
    ``error`` (HiGHS cannot solve this kind of model, e.g. a quadratic objective with integer columns or a
    nonconvex Hessian). ``objective`` is in the model's own sense, offset included; ``bound`` is the MIP dual
    bound; ``reason`` says in words why the status is not ``optimal``.
    """

    status: HighsOutcome
    objective: float | None = None
    values: npt.NDArray[np.float64] | None = None
    bound: float | None = None
    reason: str = ""
    seconds: float = 0.0


def solve_model(
    model: ModelRows,
    *,
    time_limit: float,
    fixed: Mapping[int, float] | None = None,
    row_slack: tuple[float, float] = (0.0, 0.0),
    start: npt.NDArray[np.float64] | None = None,
) -> HighsSolve:
    """Solve ``model`` with a fresh, silent HiGHS (passModel), within ``time_limit`` seconds.

    ``fixed`` pins columns to values: they are substituted out, so HiGHS solves for the other columns only
    (rows left without a free column are checked here; the fixed columns' own bounds and integrality are the
    caller's to check), and a quadratic term on fixed columns alone becomes a constant. ``row_slack`` = (atol,
    rtol) widens every finite row bound by atol + rtol * |bound|, so a point is accepted within the same tolerance
    as the numpy checks; ``start`` is a full starting point (used by MIPs). ``values`` are always all columns.
    """
    started = time.perf_counter()
    fixed = fixed or {}
    size = len(model.columns)
    point = np.zeros(size)
    is_fixed = np.zeros(size, dtype=bool)
    for column, value in fixed.items():
        point[column], is_fixed[column] = value, True
    free = np.nonzero(~is_fixed)[0]
    atol, rtol = row_slack
    with np.errstate(invalid="ignore"):
        row_lower = np.where(
            np.isfinite(model.row_lower), model.row_lower - (atol + rtol * np.abs(model.row_lower)), -np.inf
        )
        row_upper = np.where(
            np.isfinite(model.row_upper), model.row_upper + (atol + rtol * np.abs(model.row_upper)), np.inf
        )
    shift = model.matrix @ point
    matrix = model.matrix[:, free]
    open_rows = np.asarray(matrix.getnnz(axis=1) > 0)
    if ((shift > row_upper) | (shift < row_lower))[~open_rows].any():
        return HighsSolve("infeasible", reason="the fixed columns violate a row", seconds=time.perf_counter() - started)
    cost = model.cost[free].copy()
    offset = model.offset + float(model.cost[is_fixed] @ point[is_fixed])
    hessian = None
    if model.hessian is not None:
        full = sparse.csr_matrix(model.hessian)
        offset += 0.5 * float(point @ (full @ point))
        cost += np.asarray(full[free][:, np.nonzero(is_fixed)[0]] @ point[is_fixed]).ravel()
        reduced = sparse.csr_matrix(full[free][:, free])
        hessian = reduced if reduced.nnz else None
    codes = (model.integrality if model.integrality is not None else model.integer.astype(np.int8))[free]
    if not len(free):
        objective = float(offset)
        return HighsSolve("optimal", objective, point, seconds=time.perf_counter() - started)
    solved = _run_highs(
        model,
        columns=free,
        cost=cost,
        offset=offset,
        hessian=hessian,
        codes=codes,
        matrix=matrix[open_rows],
        row_lower=(row_lower - shift)[open_rows],
        row_upper=(row_upper - shift)[open_rows],
        start=None if start is None else np.asarray(start, dtype=float)[free],
        time_limit=time_limit,
    )
    if solved.values is not None:
        values = point.copy()
        values[free] = solved.values
        solved.values = values
    solved.seconds = time.perf_counter() - started
    return solved


def _run_highs(
    model: ModelRows,
    *,
    columns: npt.NDArray[np.intp],
    cost: npt.NDArray[np.float64],
    offset: float,
    hessian: sparse.csr_matrix | None,
    codes: npt.NDArray[np.int8],
    matrix: sparse.csr_matrix,
    row_lower: npt.NDArray[np.float64],
    row_upper: npt.NDArray[np.float64],
    start: npt.NDArray[np.float64] | None,
    time_limit: float,
) -> HighsSolve:
    """One HiGHS solve of the (possibly reduced) model over ``columns``; ``values`` over those columns."""
    import highspy

    inf = highspy.kHighsInf
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = len(columns), matrix.shape[0]
    lp.sense_ = highspy.ObjSense.kMaximize if model.maximize else highspy.ObjSense.kMinimize
    lp.offset_ = float(offset)
    lp.col_cost_ = cost
    lp.col_lower_ = np.maximum(model.col_lower[columns], -inf)
    lp.col_upper_ = np.minimum(model.col_upper[columns], inf)
    lp.row_lower_ = np.maximum(row_lower, -inf)
    lp.row_upper_ = np.minimum(row_upper, inf)
    csc = sparse.csc_matrix(matrix)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = csc.indptr, csc.indices, csc.data
    has_integers = bool((codes != 0).any())
    if has_integers:
        lp.integrality_ = [highspy.HighsVarType(int(code)) for code in codes]
    highs_model = highspy.HighsModel()
    highs_model.lp_ = lp
    if hessian is not None:
        lower = sparse.csc_matrix(sparse.tril(hessian))
        stored = highspy.HighsHessian()
        stored.dim_ = len(columns)
        stored.format_ = highspy.HessianFormat.kTriangular
        stored.start_, stored.index_, stored.value_ = lower.indptr, lower.indices, lower.data
        highs_model.hessian_ = stored
    highs = highspy.Highs()
    highs.silent()
    highs.setOptionValue("time_limit", float(max(time_limit, 0.01)))
    if highs.passModel(highs_model) == highspy.HighsStatus.kError:
        return HighsSolve("error", reason="HiGHS rejects the model")
    if start is not None and has_integers:
        highs.setSolution(_start_solution(highspy, start))
    highs.run()
    outcome = highs.getModelStatus()
    if outcome == highspy.HighsModelStatus.kUnboundedOrInfeasible:
        highs.setOptionValue("presolve", "off")  # without presolve HiGHS tells the two apart
        highs.run()
        outcome = highs.getModelStatus()
    info = highs.getInfo()
    has_point = info.primal_solution_status == 2  # kSolutionStatusFeasible
    values = np.asarray(highs.getSolution().col_value, dtype=float) if has_point else None
    objective = float(info.objective_function_value) if has_point else None
    bound = float(info.mip_dual_bound) if has_integers and np.isfinite(info.mip_dual_bound) else None
    status_text = highs.modelStatusToString(outcome)
    if outcome == highspy.HighsModelStatus.kOptimal:
        return HighsSolve("optimal", objective, values, bound)
    if outcome == highspy.HighsModelStatus.kInfeasible:
        return HighsSolve("infeasible", reason="HiGHS finds it infeasible")
    if outcome == highspy.HighsModelStatus.kUnbounded:
        return HighsSolve("unbounded", objective, values, reason="HiGHS finds it unbounded")
    if outcome == highspy.HighsModelStatus.kTimeLimit:
        return HighsSolve("limit", objective, values, bound, f"HiGHS reached the time limit of {time_limit:g} s")
    if outcome in (
        highspy.HighsModelStatus.kIterationLimit,
        highspy.HighsModelStatus.kSolutionLimit,
        highspy.HighsModelStatus.kObjectiveBound,
        highspy.HighsModelStatus.kObjectiveTarget,
        highspy.HighsModelStatus.kInterrupt,
        highspy.HighsModelStatus.kMemoryLimit,
    ):
        return HighsSolve("limit", objective, values, bound, f"HiGHS stopped: {status_text}")
    if hessian is not None and has_integers:
        reason = "HiGHS cannot solve a quadratic objective with integer columns"
    elif hessian is not None:
        reason = "HiGHS's QP solver failed (a nonconvex or maximized convex Hessian, or numerical trouble)"
    else:
        reason = f"HiGHS failed: {status_text}"
    return HighsSolve("error", reason=reason)


def _start_solution(highspy: Any, start: npt.NDArray[np.float64]) -> Any:
    solution = highspy.HighsSolution()
    solution.col_value = np.asarray(start, dtype=float)
    solution.value_valid = True
    return solution


def complete_point(
    model: ModelRows,
    point: npt.NDArray[np.float64],
    mapped: list[int],
    *,
    atol: float,
    rtol: float,
    time_limit: float,
) -> HighsSolve:
    """Complete a point given on the ``mapped`` columns: the best values of the other (auxiliary) columns under
    the model's own objective, such that rows (within atol + rtol), bounds and integrality hold.

    ``optimal``: the model accepts the point and ``objective`` is its value there; ``infeasible``: no completion
    exists, the model rejects it; ``unbounded``: it accepts it with an unbounded objective; otherwise undecided.
    """
    return solve_model(model, time_limit=time_limit, fixed={c: float(point[c]) for c in mapped}, row_slack=(atol, rtol))


@dataclass
class CrossCheck:
    """Outcome of one cross-check; ``issues`` go into the validation report.

    ``ran`` is False when no probe could be compared (``note`` says why); a type disagreement found without
    probes stays in ``issues`` even then."""

    ran: bool
    note: str = ""
    probes: int = 0
    mapped_columns: int = 0
    skipped_rows: int = 0  # rows touching auxiliary columns: decided by completing those columns with HiGHS
    auxiliary_columns: int = 0  # columns mapped to no variable of P*
    unknown_probes: int = 0  # probes HiGHS could not decide (time limit, error): left out of the comparison
    issues: list[Issue] = field(default_factory=list)
    points: list[dict[str, Any]] = field(default_factory=list)


def column_map(model: ModelRows, spec: ProblemSpec, explicit: dict[str, str]) -> dict[int, tuple[str, tuple[str, ...]]]:
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


_column_map = column_map  # the name cross_check() uses


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
        found, across = _edge_steps(np.vstack(rows), signs, 0)
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


def _edge_steps(
    active: npt.NDArray[np.float64], signs: list[float], first: int
) -> tuple[list[npt.NDArray[np.float64]], list[npt.NDArray[np.float64]]]:
    """Steps along the edges that leave x*: for each one-sided active row ``first + number`` (its side in
    ``signs``), move inward on it and stay on every other active row; then both ways along the null space.
    Returns (inside, across), across being the edges reversed (just over the row left)."""
    found: list[npt.NDArray[np.float64]] = []
    across: list[npt.NDArray[np.float64]] = []
    for number, sign in enumerate(signs):
        target = np.zeros(len(active))
        target[first + number] = -sign
        step = np.asarray(np.linalg.lstsq(active, target, rcond=None)[0], dtype=float)
        if np.linalg.norm(step) > 1e-9:  # a row that cannot be left alone gives no edge
            found.append(step)
            across.append(-step)
    # The full SVD holds an n x n matrix: beyond NULL_SPACE_COLUMNS columns only the economy one is affordable
    # (the null-space directions it lacks are left to the random probes).
    full = active.shape[1] <= NULL_SPACE_COLUMNS
    _, singular, vt = np.linalg.svd(active, full_matrices=full)
    rank = int((singular > 1e-9).sum())
    for vector in vt[rank:]:
        found += [vector, -vector]
    return found, across


def _lifted_directions(
    model: ModelRows, lifted: npt.NDArray[np.float64], mapped: list[int], atol: float
) -> tuple[list[npt.NDArray[np.float64]], list[npt.NDArray[np.float64]]]:
    """Directions from x* completed with its auxiliary columns (``lifted``), in the space of all columns:
    (inside, across), as :func:`_directions` does for mapped columns alone.

    Equality rows and fixed columns (the definitions of most auxiliary columns) are kept, never left; the
    edges leave one active inequality each; each mapped axis carries the auxiliary columns along so the
    equalities still hold. Directions that move no mapped column are dropped: they change no probe."""
    activity = model.matrix @ lifted
    size = len(model.columns)
    kept: list[npt.NDArray[np.float64]] = []
    sided: list[npt.NDArray[np.float64]] = []
    signs: list[float] = []

    def near(value: float, bound: float) -> bool:
        return bool(np.isfinite(bound) and abs(value - bound) <= atol + 1e-7 * (1 + abs(bound)))

    def add(vector: npt.NDArray[np.float64], value: float, lower: float, upper: float) -> None:
        if np.isfinite(lower) and np.isfinite(upper) and upper - lower <= 1e-12 * (1 + abs(upper)):
            kept.append(vector)
            return
        for bound, sign in ((upper, 1.0), (lower, -1.0)):
            if near(value, bound):
                sided.append(vector)
                signs.append(sign)

    for i in range(len(model.rows)):
        if near(activity[i], model.row_upper[i]) or near(activity[i], model.row_lower[i]):
            add(np.asarray(model.matrix[i].todense()).ravel(), activity[i], model.row_lower[i], model.row_upper[i])
    for j in range(size):
        if near(lifted[j], model.col_upper[j]) or near(lifted[j], model.col_lower[j]):
            unit = np.zeros(size)
            unit[j] = 1.0
            add(unit, lifted[j], model.col_lower[j], model.col_upper[j])
    found: list[npt.NDArray[np.float64]] = []
    across: list[npt.NDArray[np.float64]] = []
    if kept or sided:
        found, across = _edge_steps(np.vstack(kept + sided), signs, len(kept))
    auxiliary = np.ones(size, dtype=bool)
    auxiliary[mapped] = False
    keep = np.vstack(kept) if kept else np.zeros((0, size))
    follow = (
        np.linalg.lstsq(keep[:, auxiliary], -keep[:, mapped], rcond=None)[0]
        if len(keep) and auxiliary.any()
        else np.zeros((int(auxiliary.sum()), len(mapped)))
    )
    for position, j in enumerate(mapped):
        step = np.zeros(size)
        step[j] = 1.0
        step[auxiliary] = follow[:, position]
        if len(keep) and np.linalg.norm(keep @ step) > 1e-7 * (1 + np.linalg.norm(keep[:, j])):
            continue  # the equalities do not let this column move alone
        found += [step, -step]

    def normalized(steps: list[npt.NDArray[np.float64]]) -> list[npt.NDArray[np.float64]]:
        out = []
        for vector in steps:
            length = float(np.linalg.norm(vector))
            if length > 1e-12 and float(np.linalg.norm(vector[mapped])) > 1e-6 * length:
                out.append(vector / length)
        return out

    return normalized(found), normalized(across)


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
    lifted: npt.NDArray[np.float64] | None = None,
) -> list[npt.NDArray[np.float64]]:
    """Points just across each active constraint, points along the inside directions (half-way, just inside and
    just beyond the model's frontier), then random perturbations of x* at several scales for what is left.

    ``lifted`` is x* with its auxiliary columns completed: the model's edges are then also walked in the space
    of all columns (all rows active at x* count), and each probe keeps only the mapped part of the point."""
    scale = np.maximum(1.0, np.abs(x_star))
    size = float(np.mean(scale[mapped]))
    # The edge walks hold one dense vector per active row: a model exported with many thousands of rows and
    # columns (an agent's to choose) would cost the host gigabytes, so such a model gets the random probes only.
    width = len(mapped) if lifted is None else len(model.columns)
    affordable = model.matrix.shape[0] * width <= DENSE_CELLS
    if lifted is None:
        start, rows = x_star, evaluable
        inside, across = _directions(model, x_star, mapped, evaluable, atol) if affordable else ([], [])
    else:
        start, rows = lifted, np.ones(len(model.rows), dtype=bool)
        inside, across = _lifted_directions(model, lifted, mapped, atol) if affordable else ([], [])
    groups: list[list[npt.NDArray[np.float64]]] = [
        [start + fraction * size * direction for fraction in (0.05, 0.01)] for direction in across
    ]
    for direction in inside:
        reach = _max_step(model, start, direction, rows)
        if not np.isfinite(reach):
            reach = 10.0 * float(scale[mapped].max())
        if reach > 1e-9:
            groups.append([start + fraction * reach * direction for fraction in (0.999, 1.05, 0.5)])
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
    unmapped = np.ones(len(model.columns), dtype=bool)
    unmapped[mapped] = False
    for point in points:
        point[model.integer] = np.round(point[model.integer])
        point[unmapped] = 0.0  # auxiliary columns get their values from the completion
    return points[:count]


# MPS files of the models agents write here are kilobytes to a few megabytes.
MAX_MODEL_BYTES = 64 * 1024 * 1024
MODEL_SUFFIXES = (".mps", ".lp")
MODEL_READ_SECONDS = 60.0
# The reader's arrays: a model within MAX_MODEL_BYTES of text holds far fewer numbers than this.
MAX_ARRAY_BYTES = 512 * 1024 * 1024
READER = "read_model.py"


def load_exported_model(
    workspace: Workspace, folder: Path, solution: Solution, spec: ProblemSpec, sandbox: WorkspaceSandbox
) -> tuple[ModelRows, dict[int, tuple[str, tuple[str, ...]]]] | str:
    """The model the optimizer exported (through the safe door, parsed apart: :func:`read_untrusted_model`), and the
    map of its columns to P*'s variables; a string says why there is none."""
    extra = solution.model_extra or {}
    name = extra.get("model_file")
    if not name:
        return "the model exported no model file (this solver API cannot, or the model did not)"
    name = str(name)
    suffix = next((s for s in MODEL_SUFFIXES if name.lower().endswith(s)), None)
    if suffix is None:
        return f"the model file {name} is not an MPS or LP file"
    try:
        relative = workspace.relative(name, base=folder)
        if not workspace.within(relative, folder):
            return f"the model file {name} is outside the optimizer's folder"
        data = workspace.read_bytes(relative, max_bytes=MAX_MODEL_BYTES)
    except FileNotFoundError:
        return f"the model file {name} is missing"
    except OSError as exc:  # DoorRefused included: a symlink, a FIFO, too large
        return f"the model file {name} cannot be read: {exc}"
    try:
        model = read_untrusted_model(data, suffix, sandbox, timeout=MODEL_READ_SECONDS)
    except (ValueError, RuntimeError, OSError) as exc:
        return f"the model file cannot be read: {exc}"
    explicit = extra.get("columns") if isinstance(extra.get("columns"), dict) else {}
    mapping = column_map(model, spec, {str(k): str(v) for k, v in (explicit or {}).items()})
    if not mapping:
        return "no column of the model file could be matched to a variable of P*"
    return model, mapping


def lookup(values: Any, key: tuple[str, ...]) -> float | None:
    """The finite number at ``key`` in a solution's nested variable values, or None."""
    for part in key:
        if not isinstance(values, dict) or part not in values:
            return None
        values = values[part]
    if isinstance(values, bool) or not isinstance(values, int | float):
        return None
    try:
        number = float(values)
    except OverflowError:
        return None
    return number if np.isfinite(number) else None


def solution_point(
    model: ModelRows, mapping: dict[int, tuple[str, tuple[str, ...]]], variables: dict[str, Any]
) -> npt.NDArray[np.float64]:
    """The solution's values on the model's mapped columns (0 where a value is missing), unmapped columns 0."""
    point = np.zeros(len(model.columns))
    for column, (name, key) in mapping.items():
        value = lookup(variables.get(name), key)
        point[column] = value if value is not None else 0.0
    return point


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
    time_limit: float = COMPLETION_TIME_LIMIT,
) -> CrossCheck:
    """Probe the model around the solution ``variables`` and compare with ``judge``'s verdicts (the simulator,
    or anything that judges points the same way).

    With auxiliary columns, each probe's model verdict comes from a HiGHS completion within ``time_limit``
    seconds; probes it cannot decide are not sent to the judge and are counted in ``unknown_probes``."""
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
    x_star = solution_point(model, mapping, variables)
    mapped = sorted(mapping)
    unmapped = np.ones(len(model.columns), dtype=bool)
    unmapped[mapped] = False
    result.auxiliary_columns = int(unmapped.sum())
    # A row touching an auxiliary column has no activity of its own at a probe point: only a completion of the
    # auxiliary columns decides it.
    evaluable = (
        np.asarray(model.matrix[:, unmapped].getnnz(axis=1) == 0)
        if unmapped.any()
        else np.ones(len(model.rows), dtype=bool)
    )
    result.skipped_rows = int((~evaluable).sum())
    rng = np.random.default_rng(seed)
    lifted = None
    if result.auxiliary_columns:
        completion = complete_point(model, x_star, mapped, atol=atol, rtol=rtol, time_limit=time_limit)
        if completion.status == "optimal" and completion.values is not None:
            lifted = completion.values.copy()
            lifted[mapped] = x_star[mapped]
    points = _probe_points(model, x_star, mapped, evaluable, probes, atol, rng, lifted)
    verdicts_model = _model_verdicts(model, points, mapped, evaluable, atol, rtol, time_limit)
    decided = [i for i, v in enumerate(verdicts_model) if v.accepted is not None]
    result.unknown_probes = len(points) - len(decided)
    for i, v in enumerate(verdicts_model):
        if v.accepted is None:
            result.points.append(
                {"changed": _changed(mapping, points[i], x_star), "model_feasible": None, "unknown": v.reason}
            )
    if not decided:
        reason = next((v.reason for v in verdicts_model if v.reason), "no probe point")
        return CrossCheck(
            False,
            f"the model's auxiliary columns could not be completed at any probe point ({reason})",
            probes=probes,
            mapped_columns=len(mapping),
            skipped_rows=result.skipped_rows,
            auxiliary_columns=result.auxiliary_columns,
            unknown_probes=result.unknown_probes,
            issues=result.issues,
            points=result.points,
        )
    dicts = [_nest({mapping[c]: float(points[i][c]) for c in mapped}, variables) for i in decided]
    verdicts = judge(dicts)
    if isinstance(verdicts, str):
        return CrossCheck(False, f"the simulator could not judge the probe points: {verdicts}")
    found: dict[str, list[Issue]] = {"too loose": [], "too tight": [], "objective": []}
    for index, verdict in zip(decided, verdicts, strict=True):
        point, mine = points[index], verdicts_model[index]
        shown = _changed(mapping, point, x_star)
        result.points.append({"changed": shown, "model_feasible": mine.accepted, "simulator": verdict.model_dump()})
        if not verdict.ok:
            continue
        if mine.accepted and not verdict.feasible:
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
        elif not mine.accepted and verdict.feasible:
            rows = [f"row {model.rows[i]} by {mine.row_gap[i]:.4g}" for i in mine.rows[:3]]
            cols = [f"bound of {model.columns[i]} by {mine.bound_gap[i]:.4g}" for i in mine.columns[:3]]
            what = (
                f"{'; '.join(rows + cols)} violated"
                if rows or cols
                else f"no values of its {result.auxiliary_columns} auxiliary columns satisfy its rows and bounds"
            )
            found["too tight"].append(
                Issue(
                    kind="feasible_region",
                    message=f"model too tight: it rejects {_show(shown)} ({what}) but the problem allows it: a "
                    "constraint or bound is wrong or extra",
                    constraint=model.rows[mine.rows[0]] if mine.rows else None,
                    variables=sorted(shown)[:10],
                )
            )
        elif mine.accepted and verdict.feasible and _differs(mine.objective, verdict.objective, atol, rtol):
            assert mine.objective is not None and verdict.objective is not None
            found["objective"].append(
                Issue(
                    kind="feasible_region",
                    message=f"at {_show(shown)} the model's objective is {mine.objective:.10g} but the "
                    f"simulator's is {verdict.objective:.10g}: an objective term is wrong away from the optimum",
                    amount=abs(mine.objective - verdict.objective),
                    variables=sorted(shown)[:10],
                )
            )
    for issues in found.values():
        result.issues.extend(issues[:_MAX_REPORTED])
    return result


def _differs(model_value: float | None, simulator_value: float | None, atol: float, rtol: float) -> bool:
    """Both objectives known and apart by more than the (generous, 10 x rtol) tolerance."""
    if model_value is None or simulator_value is None:
        return False
    return abs(model_value - simulator_value) > atol + rtol * max(abs(simulator_value), 1.0) * 10


@dataclass
class _ModelVerdict:
    """The model's view of one probe point: accepted (None: undecided), its objective there, what it violates."""

    accepted: bool | None
    objective: float | None = None
    rows: list[int] = field(default_factory=list)
    columns: list[int] = field(default_factory=list)
    row_gap: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    bound_gap: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    reason: str = ""


# After this many completions stop at the time limit, the remaining probes are left unknown without a solve:
# a model that slow would otherwise cost probes x time limit.
_SLOW_COMPLETIONS = 3


def _model_verdicts(
    model: ModelRows,
    points: list[npt.NDArray[np.float64]],
    mapped: list[int],
    evaluable: npt.NDArray[np.bool_],
    atol: float,
    rtol: float,
    time_limit: float,
) -> list[_ModelVerdict]:
    """Rows on mapped columns only and mapped bounds are checked with numpy (a violation rejects the point for
    any completion); the rest, when the model has auxiliary columns, by a HiGHS completion."""
    auxiliary = len(mapped) < len(model.columns)
    slow = 0
    out = []
    for point in points:
        row_gap = _excess(model.matrix @ point, model.row_lower, model.row_upper, atol, rtol)
        bound_gap = _excess(point, model.col_lower, model.col_upper, atol, rtol)
        rows = [int(i) for i in np.nonzero(evaluable & (row_gap > 0))[0]]
        columns = [i for i in mapped if bound_gap[i] > 0]
        if rows or columns:
            out.append(_ModelVerdict(False, None, rows, columns, row_gap, bound_gap))
        elif not auxiliary:
            out.append(_ModelVerdict(True, objective_at(model, point)))
        elif slow >= _SLOW_COMPLETIONS:
            out.append(_ModelVerdict(None, reason=f"{slow} completions already reached the time limit"))
        else:
            completion = complete_point(model, point, mapped, atol=atol, rtol=rtol, time_limit=time_limit)
            if completion.status == "optimal":
                out.append(_ModelVerdict(True, completion.objective))
            elif completion.status == "unbounded":
                out.append(_ModelVerdict(True, None))
            elif completion.status == "infeasible":
                out.append(_ModelVerdict(False, None, [], [], row_gap, bound_gap))
            else:
                slow += completion.status == "limit"
                out.append(_ModelVerdict(None, reason=completion.reason))
    return out


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
                    objective=objective_at(reference, x),
                    violations=violations,
                )
            )
        return verdicts

    return judge
