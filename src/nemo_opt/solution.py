"""Typed results passed between stages: a model's solution, the simulator's verdict, the validation report."""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "Issue",
    "SimVerdict",
    "SolveStatus",
    "Solution",
    "ValidationReport",
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

    @field_validator("objective", mode="before")
    @classmethod
    def _objective(cls, value: object) -> object:
        if isinstance(value, float) and not math.isfinite(value):
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

    def render(self) -> str:
        """The report as text for the optimizer agent."""
        lines = [f"Solution status: {self.status.value}; model objective: {self.objective_model}."]
        if self.objective_simulator is not None:
            lines.append(f"Simulator objective for the same solution: {self.objective_simulator}.")
        for number, issue in enumerate(self.issues, 1):
            lines.append(f"{number}. [{issue.kind}] {issue.message}")
        return "\n".join(lines)
