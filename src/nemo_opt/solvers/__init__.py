"""Solver backends: capabilities, availability and agent hints."""

from __future__ import annotations

from nemo_opt.solvers.registry import SOLVERS, ProblemClass, SolverBackend, available_solvers, get_solver

__all__ = ["SOLVERS", "ProblemClass", "SolverBackend", "available_solvers", "get_solver"]
