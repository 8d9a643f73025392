"""Solver backends the optimizer agents may use: capabilities, availability, and the hints agents receive.

Each backend is a class with its feature set at class level and a cached ``is_available()``; the registry
orders them by how well they fit a problem class.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from enum import StrEnum
from functools import cache
from typing import ClassVar

__all__ = ["SOLVERS", "ProblemClass", "SolverBackend", "available_solvers", "get_solver"]


class ProblemClass(StrEnum):
    """Classes of optimization problems, as the recommender assigns them."""

    LP = "LP"
    MILP = "MILP"
    QP = "QP"
    MIQP = "MIQP"
    NLP = "NLP"
    MINLP = "MINLP"
    CP = "CP"


class SolverBackend:
    """One solver reachable from Python; subclasses fill the class attributes."""

    name: ClassVar[str]
    label: ClassVar[str]
    module: ClassVar[str]
    distribution: ClassVar[str]
    features: ClassVar[frozenset[ProblemClass]]
    hint: ClassVar[str]

    @classmethod
    def is_available(cls) -> bool:
        return _importable(cls.module)

    @classmethod
    def version(cls) -> str | None:
        try:
            return importlib.metadata.version(cls.distribution)
        except importlib.metadata.PackageNotFoundError:
            return None


@cache
def _importable(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


class Highs(SolverBackend):
    name = "highs"
    label = "HiGHS (highspy)"
    module = "highspy"
    distribution = "highspy"
    features = frozenset({ProblemClass.LP, ProblemClass.MILP, ProblemClass.QP})
    hint = """HiGHS through `highspy`'s modelling API:
```python
import highspy
h = highspy.Highs(); h.silent()
x = h.addVariable(lb=0, ub=highspy.kHighsInf, name="x")   # continuous
n = h.addIntegral(lb=0, ub=10, name="n")                  # integer; h.addBinary(name="b") for binary
h.addConstr(x + 2 * n <= 14, name="cap")                  # expressions with + - * and sum(...)
h.maximize(3 * x + 4 * n)                                 # or h.minimize(...); this also solves
status = h.getModelStatus()                               # highspy.HighsModelStatus.kOptimal, kInfeasible,
                                                          # kUnbounded, kUnboundedOrInfeasible, kTimeLimit
objective = h.getObjectiveValue(); value = h.val(x)
```
Map kOptimal to "optimal", kInfeasible to "infeasible", kUnbounded to "unbounded", kUnboundedOrInfeasible to
"infeasible_or_unbounded", kTimeLimit to "time_limit", anything else to "unknown". Do not read values when the
status is not optimal. Use `sum(...)` over generator expressions for linear sums."""


class PulpCbc(SolverBackend):
    name = "cbc"
    label = "CBC (PuLP)"
    module = "pulp"
    distribution = "pulp"
    features = frozenset({ProblemClass.LP, ProblemClass.MILP})
    hint = """CBC through PuLP:
```python
import pulp
prob = pulp.LpProblem("model", pulp.LpMaximize)           # or pulp.LpMinimize
x = pulp.LpVariable("x", lowBound=0)                      # cat="Integer" or cat="Binary" for discrete
prob += 3 * x                                             # the first expression added is the objective
prob += (x <= 14, "cap")                                  # constraints are (expression, name) tuples
prob.solve(pulp.PULP_CBC_CMD(msg=False))
status = pulp.LpStatus[prob.status]                       # "Optimal", "Infeasible", "Unbounded", "Not Solved"
objective = pulp.value(prob.objective); value = x.varValue
```
Import names explicitly from `pulp` (or `from pulp import *`), give every constraint a unique name, and use
`pulp.lpSum(...)` for sums. Map "Optimal" to "optimal", "Infeasible" to "infeasible", "Unbounded" to
"unbounded", anything else to "unknown"."""


class OrTools(SolverBackend):
    name = "ortools"
    label = "OR-Tools (linear solver / CP-SAT)"
    module = "ortools"
    distribution = "ortools"
    features = frozenset({ProblemClass.LP, ProblemClass.MILP, ProblemClass.CP})
    hint = (
        "OR-Tools: `from ortools.linear_solver import pywraplp` (SCIP/CBC/GLOP) or "
        "`from ortools.sat.python import cp_model` (CP-SAT)."
    )


class Scip(SolverBackend):
    name = "scip"
    label = "SCIP (PySCIPOpt)"
    module = "pyscipopt"
    distribution = "PySCIPOpt"
    features = frozenset(
        {ProblemClass.LP, ProblemClass.MILP, ProblemClass.QP, ProblemClass.MIQP, ProblemClass.NLP, ProblemClass.MINLP}
    )
    hint = "SCIP: `from pyscipopt import Model, quicksum`; `m.getStatus()` returns 'optimal', 'infeasible', ..."


class Gurobi(SolverBackend):
    name = "gurobi"
    label = "Gurobi (gurobipy, size-limited licence)"
    module = "gurobipy"
    distribution = "gurobipy"
    features = frozenset({ProblemClass.LP, ProblemClass.MILP, ProblemClass.QP, ProblemClass.MIQP})
    hint = "Gurobi: `import gurobipy as gp; from gurobipy import GRB`; the pip licence limits model size."


class Cvxpy(SolverBackend):
    name = "cvxpy"
    label = "CVXPY"
    module = "cvxpy"
    distribution = "cvxpy"
    features = frozenset({ProblemClass.LP, ProblemClass.QP, ProblemClass.MILP, ProblemClass.MIQP})
    hint = "CVXPY: `import cvxpy as cp`; `prob.status` is 'optimal', 'infeasible', 'unbounded', ..."


class Pyomo(SolverBackend):
    name = "pyomo"
    label = "Pyomo"
    module = "pyomo"
    distribution = "pyomo"
    features = frozenset({ProblemClass.LP, ProblemClass.MILP, ProblemClass.NLP})
    hint = "Pyomo: `import pyomo.environ as pyo`; solve with `pyo.SolverFactory('appsi_highs')`."


SOLVERS: tuple[type[SolverBackend], ...] = (Highs, PulpCbc, OrTools, Scip, Gurobi, Cvxpy, Pyomo)


def available_solvers() -> list[type[SolverBackend]]:
    """Installed solver backends, in registry order."""
    return [solver for solver in SOLVERS if solver.is_available()]


def get_solver(name: str) -> type[SolverBackend]:
    for solver in SOLVERS:
        if solver.name == name:
            return solver
    raise KeyError(f"unknown solver '{name}'; known: {', '.join(s.name for s in SOLVERS)}")
