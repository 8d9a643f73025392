"""Typed results passed between stages: a model's solution, the simulator's verdict, the validation report."""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "LEVEL_ORDER",
    "Issue",
    "SimVerdict",
    "SolveStatus",
    "Solution",
    "ValidationReport",
    "VerificationLevel",
    "Violation",
]


class SolveStatus(StrEnum):
    """Normalized solver status. Unknown codes map to UNKNOWN, never to an error."""

    OPTIMAL = "optimal"
    TIME_LIMIT = "time_limit"
    INFEASIBLE = "infeasible"
    UNBOUNDED = "unbounded"
    INFEASIBLE_OR_UNBOUNDED = "infeasible_or_unbounded"
    ERROR = "error"
    UNKNOWN = "unknown"

    @classmethod
    def parse(cls, value: object) -> SolveStatus:
        text = str(value).strip().lower().replace(" ", "_").replace("-", "_")
        aliases = {
            "optimal": cls.OPTIMAL,
            "opt": cls.OPTIMAL,
            "timelimit": cls.TIME_LIMIT,
            "time_limit": cls.TIME_LIMIT,
            "infeasible": cls.INFEASIBLE,
            "unbounded": cls.UNBOUNDED,
            "inf_or_unbd": cls.INFEASIBLE_OR_UNBOUNDED,
            "infeasible_or_unbounded": cls.INFEASIBLE_OR_UNBOUNDED,
            "error": cls.ERROR,
        }
        return aliases.get(text, cls.UNKNOWN)

    @property
    def has_solution(self) -> bool:
        return self in {SolveStatus.OPTIMAL, SolveStatus.TIME_LIMIT}


class VerificationLevel(StrEnum):
    """How far an answer was checked; every result, report and surface speaks these words.

    - ``verified``: the frozen simulator, run apart from the agents, agrees with x* (feasible, same objective);
      the host re-read the exported model and tied it to x* (x* feasible in it, its objective at x* is F_opt,
      and x* is optimal for it); and the feasible-region cross-check ran its probes without a disagreement.
      Only a sandbox that keeps agents away from the referee (bubblewrap) can give it.
    - ``objective-checked``: the frozen simulator agrees at x*, but the rest could not be done (no exported
      model, a solver API that cannot export, an optimality the host could not re-confirm, no probe the region
      check could decide, or the plain sandbox); the reason is given.
    - ``unverified``: no check passed.
    """

    VERIFIED = "verified"
    OBJECTIVE_CHECKED = "objective-checked"
    UNVERIFIED = "unverified"

    @property
    def rank(self) -> int:
        """Higher is better: consensus and memory growth prefer higher levels."""
        return LEVEL_ORDER.index(self)


LEVEL_ORDER = [VerificationLevel.UNVERIFIED, VerificationLevel.OBJECTIVE_CHECKED, VerificationLevel.VERIFIED]


class Solution(BaseModel):
    """Contents of ``solution.json`` as written by a model."""

    model_config = ConfigDict(extra="allow")

    status: SolveStatus
    objective: float | None = None
    variables: dict[str, Any] = Field(default_factory=dict)
    solver: str = ""
    solve_seconds: float | None = None

    @field_validator("status", mode="before")
    @classmethod
    def _status(cls, value: object) -> SolveStatus:
        return SolveStatus.parse(value)

    @field_validator("objective", mode="after")
    @classmethod
    def _objective(cls, value: float | None) -> float | None:
        # After coercion: the strings "inf" and "nan" become floats here too, and are no objective.
        if value is not None and not math.isfinite(value):
            return None
        return value


class Violation(BaseModel):
    """One violated condition reported by the simulator."""

    model_config = ConfigDict(extra="allow")

    constraint: str = "unnamed"
    amount: float | None = None
    variables: list[str] = Field(default_factory=list)
    detail: str = ""

    @field_validator("variables", mode="before")
    @classmethod
    def _names(cls, value: object) -> object:
        if isinstance(value, str):
            return [value]
        if isinstance(value, list | tuple):
            return [str(v) for v in value]
        return value

    @field_validator("amount", mode="before")
    @classmethod
    def _amount(cls, value: object) -> object:
        try:
            number = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return None
        return number if math.isfinite(number) else None


class SimVerdict(BaseModel):
    """What ``simulate(solution, data, tol)`` returned (or that it crashed)."""

    ok: bool
    feasible: bool = False
    objective: float | None = None
    violations: list[Violation] = Field(default_factory=list)
    error: str = ""


IssueKind = Literal[
    "constraint_violation",
    "objective_mismatch",
    "variable_type",
    "variable_bounds",
    "missing_variable",
    "malformed_solution",
    "status",
    "simulator_error",
    "feasible_region",
    "model_tie",
    "tampering",
    "unbounded_direction",
]


class Issue(BaseModel):
    """One finding of validation, phrased so an agent can act on it."""

    kind: IssueKind
    message: str
    constraint: str | None = None
    amount: float | None = None
    variables: list[str] = Field(default_factory=list)


class ValidationReport(BaseModel):
    """V(x*): whether a solution passed, and the structured reasons when not."""

    optimizer: str
    round: int
    attempt: int = 0
    passed: bool
    checkable: bool = True
    status: SolveStatus
    objective_model: float | None = None
    objective_simulator: float | None = None
    tolerance: float | None = None
    issues: list[Issue] = Field(default_factory=list)
    crosscheck: dict[str, Any] | None = None
    tie: dict[str, Any] | None = None
    level: VerificationLevel = VerificationLevel.UNVERIFIED
    level_reason: str = ""
    referee_version: int = 0

    def render(self) -> str:
        """The report as text for the optimizer agent."""
        lines = [f"Solution status: {self.status.value}; model objective: {self.objective_model}."]
        if self.objective_simulator is not None:
            lines.append(f"Simulator objective for the same solution: {self.objective_simulator}.")
        for number, issue in enumerate(self.issues, 1):
            lines.append(f"{number}. [{issue.kind}] {issue.message}")
        return "\n".join(lines)

    def downgrade(self, level: VerificationLevel, reason: str) -> None:
        """Lower the level to ``level`` (never raise it), saying why."""
        if level.rank < self.level.rank:
            self.level, self.level_reason = level, reason
