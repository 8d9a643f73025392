"""Solver backends: capabilities, availability, agent hints and templates, status normalization, a small solve API."""

from __future__ import annotations

from nemo_opt.solvers.backends.gurobi import SIZE_LIMIT_ERRNO, SIZE_LIMIT_MARKER, is_size_limit_error
from nemo_opt.solvers.canonical import CanonicalModel, Row, SolverRun, Variable, smoke, solve
from nemo_opt.solvers.registry import SOLVERS, ProblemClass, SolverBackend, available_solvers, get_solver
from nemo_opt.solvers.status import normalize_status

__all__ = [
    "SIZE_LIMIT_ERRNO",
    "SIZE_LIMIT_MARKER",
    "SOLVERS",
    "CanonicalModel",
    "ProblemClass",
    "Row",
    "SolverBackend",
    "SolverRun",
    "Variable",
    "available_solvers",
    "get_solver",
    "is_size_limit_error",
    "normalize_status",
    "smoke",
    "solve",
]
