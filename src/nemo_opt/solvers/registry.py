"""Solver backends the optimizer agents may use: capabilities, availability, hints and model-file templates.

Each backend is a class with its feature set at class level and a cached ``is_available()`` (installed and usable:
Gurobi must hold a licence, OR-Tools must load). ``SOLVERS`` lists them in the registry's order; the recommender
ranks the available ones per problem class.
"""

from __future__ import annotations

from nemo_opt.solvers.backends.base import ProblemClass, SolverBackend
from nemo_opt.solvers.backends.cvxpy import Cvxpy
from nemo_opt.solvers.backends.gurobi import Gurobi
from nemo_opt.solvers.backends.highs import Highs
from nemo_opt.solvers.backends.ipopt import Ipopt
from nemo_opt.solvers.backends.ortools import CpSat, OrTools
from nemo_opt.solvers.backends.pulp_cbc import PulpCbc
from nemo_opt.solvers.backends.pyomo import Pyomo
from nemo_opt.solvers.backends.scip import Scip

__all__ = [
    "SOLVERS",
    "CpSat",
    "Cvxpy",
    "Gurobi",
    "Highs",
    "Ipopt",
    "OrTools",
    "ProblemClass",
    "PulpCbc",
    "Pyomo",
    "Scip",
    "SolverBackend",
    "available_solvers",
    "get_solver",
]

SOLVERS: tuple[type[SolverBackend], ...] = (Highs, PulpCbc, OrTools, CpSat, Scip, Gurobi, Cvxpy, Pyomo, Ipopt)


def available_solvers() -> list[type[SolverBackend]]:
    """Installed and usable solver backends, in registry order (the first call probes each one)."""
    return [solver for solver in SOLVERS if solver.is_available()]


def get_solver(name: str) -> type[SolverBackend]:
    """The backend called ``name``; KeyError naming the known backends otherwise."""
    for solver in SOLVERS:
        if solver.name == name:
            return solver
    raise KeyError(f"unknown solver '{name}'; known: {', '.join(s.name for s in SOLVERS)}")
