"""A small solver-independent model (bounded variables, linear rows, a linear or quadratic objective) and ``solve``.

``solve`` runs one ``CanonicalModel`` on any backend whose features cover the model's class. It is what ``doctor``
uses for a smoke solve per solver and what the tests use to compare solvers; agents never see it (they write
``model.py`` against the library itself). Solver failures never raise: they come back as a ``SolverRun`` with status
ERROR and the library's message.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from nemo_opt.solution import SolveStatus
from nemo_opt.solvers.backends.base import ProblemClass
from nemo_opt.solvers.backends.gurobi import size_limit_message
from nemo_opt.solvers.registry import get_solver
from nemo_opt.solvers.status import normalize_status

__all__ = ["SMOKE_OPTIMUM", "CanonicalModel", "Row", "SolverRun", "Variable", "smoke", "smoke_models", "solve"]

Sense = Literal["min", "max"]
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Variable:
    """A decision variable with bounds; ``integer`` makes it integral (binary is integer with bounds 0 and 1)."""

    name: str
    lb: float = 0.0
    ub: float = math.inf
    integer: bool = False


@dataclass(frozen=True)
class Row:
    """A linear constraint ``lb <= sum(coefficients[v] * v) <= ub``; use an infinite bound for one-sided rows."""

    name: str
    coefficients: dict[str, float]
    lb: float = -math.inf
    ub: float = math.inf


@dataclass
class CanonicalModel:
    """Variables, linear rows and the objective ``constant + sum(c[v] v) + sum(q[(u, v)] u v)`` to ``sense``."""

    variables: list[Variable]
    rows: list[Row] = field(default_factory=list)
    objective: dict[str, float] = field(default_factory=dict)
    quadratic: dict[tuple[str, str], float] = field(default_factory=dict)
    sense: Sense = "min"
    constant: float = 0.0
    name: str = "model"

    def __post_init__(self) -> None:
        names = [v.name for v in self.variables]
        if len(set(names)) != len(names):
            raise ValueError("variable names must be unique")
        bad = [n for n in names + [r.name for r in self.rows] if not _NAME.match(n)]
        if bad:
            raise ValueError(f"names must match [A-Za-z_][A-Za-z0-9_]* (so every file format keeps them): {bad}")
        known = set(names)
        used = {v for r in self.rows for v in r.coefficients} | set(self.objective)
        used |= {v for pair in self.quadratic for v in pair}
        if used - known:
            raise ValueError(f"unknown variables referenced: {sorted(used - known)}")
        if self.sense not in ("min", "max"):
            raise ValueError(f"sense must be 'min' or 'max', not {self.sense!r}")

    @property
    def problem_class(self) -> ProblemClass:
        """LP, MILP, QP or MIQP, from integrality and the presence of quadratic terms."""
        integer = any(v.integer for v in self.variables)
        quadratic = any(coefficient != 0 for coefficient in self.quadratic.values())
        if quadratic:
            return ProblemClass.MIQP if integer else ProblemClass.QP
        return ProblemClass.MILP if integer else ProblemClass.LP

    def objective_value(self, values: dict[str, float]) -> float:
        """The objective at ``values`` (missing variables count as 0)."""
        linear = sum(c * values.get(v, 0.0) for v, c in self.objective.items())
        quadratic = sum(c * values.get(u, 0.0) * values.get(v, 0.0) for (u, v), c in self.quadratic.items())
        return self.constant + linear + quadratic

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (infinite bounds as None), read back by ``from_dict``."""

        def bound(value: float) -> float | None:
            return None if math.isinf(value) else value

        return {
            "name": self.name,
            "sense": self.sense,
            "constant": self.constant,
            "variables": [[v.name, bound(v.lb), bound(v.ub), v.integer] for v in self.variables],
            "rows": [[r.name, r.coefficients, bound(r.lb), bound(r.ub)] for r in self.rows],
            "objective": self.objective,
            "quadratic": [[u, v, c] for (u, v), c in self.quadratic.items()],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CanonicalModel:
        """The model ``to_dict`` described."""

        def bound(value: float | None, default: float) -> float:
            return default if value is None else float(value)

        return cls(
            variables=[
                Variable(n, bound(lb, -math.inf), bound(ub, math.inf), bool(i)) for n, lb, ub, i in data["variables"]
            ],
            rows=[Row(n, dict(c), bound(lb, -math.inf), bound(ub, math.inf)) for n, c, lb, ub in data["rows"]],
            objective=dict(data["objective"]),
            quadratic={(u, v): float(c) for u, v, c in data["quadratic"]},
            sense=data["sense"],
            constant=float(data["constant"]),
            name=data["name"],
        )


@dataclass(frozen=True)
class SolverRun:
    """The normalized outcome of one solve; ``values`` is empty unless the status carries a solution."""

    status: SolveStatus
    objective: float | None
    values: dict[str, float]
    raw_status: str
    seconds: float
    message: str = ""
    backend: str = ""


def _error(backend: str, message: str, seconds: float = 0.0, raw: str = "") -> SolverRun:
    return SolverRun(SolveStatus.ERROR, None, {}, raw, seconds, message, backend)


def solve(backend_name: str, model: CanonicalModel, time_limit: float = 60.0) -> SolverRun:
    """Solve ``model`` with the named backend and normalize the outcome.

    Raises KeyError for an unknown backend name (a caller's mistake). Everything that goes wrong in the solver,
    including a backend that is not installed or does not take the model's class, is a SolverRun with status
    ERROR and a message saying why.
    """
    backend = get_solver(backend_name)
    if not backend.is_available():
        return _error(backend.name, f"{backend.label} is not installed or not usable here")
    reason = backend.check_model(model)
    if reason:
        return _error(backend.name, reason)
    started = time.perf_counter()
    try:
        raw, objective, values = backend.solve_model(model, time_limit)
    except Exception as exc:  # any library failure is reported as a run, never raised to the caller
        message = f"{type(exc).__name__}: {exc}"
        return _error(backend.name, size_limit_message(message) or message, time.perf_counter() - started)
    seconds = time.perf_counter() - started
    status = normalize_status(backend.name, raw)
    raw_text = _raw_text(raw)
    if not status.has_solution or objective is None or not math.isfinite(objective):
        return SolverRun(status, None, {}, raw_text, seconds, "", backend.name)
    return SolverRun(status, objective, values, raw_text, seconds, "", backend.name)


SMOKE_OPTIMUM = 2.0  # of both smoke models


def smoke_models() -> tuple[CanonicalModel, CanonicalModel]:
    """Two tiny models with known optima (both 2): an integer one, and its continuous twin for NLP-only solvers.

    max x + y s.t. 2x + y <= 4, x + 2y <= 3, 0 <= x, y <= 3: the LP optimum is x = 5/3, y = 2/3 (value 7/3); with
    integers the best points are (2, 0) and (1, 1), value 2. The continuous twin caps x + y at 2 instead.
    """
    integer = CanonicalModel(
        [Variable("x", 0, 3, integer=True), Variable("y", 0, 3, integer=True)],
        [Row("first", {"x": 2, "y": 1}, ub=4), Row("second", {"x": 1, "y": 2}, ub=3)],
        {"x": 1, "y": 1},
        sense="max",
        name="smoke",
    )
    continuous = CanonicalModel(
        [Variable("x", 0, 3), Variable("y", 0, 3)],
        [Row("first", {"x": 2, "y": 1}, ub=4), Row("total", {"x": 1, "y": 1}, ub=2)],
        {"x": 1, "y": 1},
        sense="max",
        name="smoke",
    )
    return integer, continuous


def smoke(backend_name: str, time_limit: float = 30.0) -> SolverRun:
    """One tiny solve on the named backend (for ``doctor``): status OPTIMAL with objective 2 when it works."""
    integer, continuous = smoke_models()
    model = integer if get_solver(backend_name).check_model(integer) is None else continuous
    return solve(backend_name, model, time_limit)


def _raw_text(raw: object) -> str:
    name = getattr(raw, "name", None)
    if isinstance(name, str) and not isinstance(raw, str):
        return name
    if isinstance(raw, bytes):
        return raw.decode(errors="replace")
    return str(raw)
