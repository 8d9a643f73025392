"""Normalize each solver library's native status (codes, enum members or strings) to ``SolveStatus``.

The tables follow the libraries' documented status sets. Conventions where a library's status has no exact
counterpart:

- every "stopped by a limit" status (time, iterations, nodes, solutions, work, memory) is TIME_LIMIT: the search
  ended early and an incumbent may or may not exist (SolveStatus has no finer state); a "feasible, not proven
  optimal" status (OR-Tools FEASIBLE, PuLP "Solution Found") is TIME_LIMIT too, since only a limit ends a search
  with an unproven incumbent;
- local optimality (Ipopt, Gurobi LOCALLY_OPTIMAL, Pyomo locallyOptimal) is OPTIMAL: it is all an NLP solver can
  certify, and the checker re-evaluates the solution anyway;
- user interrupts, cutoffs and "not solved" states are UNKNOWN; load, model and numerical failures are ERROR.

``normalize_status`` never raises: anything it cannot place is UNKNOWN.
"""

from __future__ import annotations

import math
import re

from nemo_opt.solution import SolveStatus

__all__ = ["STATUS_TABLES", "StatusTable", "normalize_status", "status_key"]

OPT, LIM, INF, UNB, IOU, ERR, UNK = (
    SolveStatus.OPTIMAL,
    SolveStatus.TIME_LIMIT,
    SolveStatus.INFEASIBLE,
    SolveStatus.UNBOUNDED,
    SolveStatus.INFEASIBLE_OR_UNBOUNDED,
    SolveStatus.ERROR,
    SolveStatus.UNKNOWN,
)


class StatusTable:
    """Native integer codes and names (compared after ``status_key``) of one library, mapped to SolveStatus."""

    def __init__(self, codes: dict[int, SolveStatus], names: dict[str, SolveStatus]) -> None:
        self.codes = codes
        self.names = {status_key(name): status for name, status in names.items()}


def status_key(text: str) -> str:
    """Lower case with runs of non-alphanumerics as one underscore: 'Time limit reached' -> 'time_limit_reached'."""
    return re.sub(r"[^a-z0-9]+", "_", text.strip().lower()).strip("_")


_HIGHS_NAMES = [
    "kNotset", "kLoadError", "kModelError", "kPresolveError", "kSolveError", "kPostsolveError", "kModelEmpty",
    "kOptimal", "kInfeasible", "kUnboundedOrInfeasible", "kUnbounded", "kObjectiveBound", "kObjectiveTarget",
    "kTimeLimit", "kIterationLimit", "kUnknown", "kSolutionLimit", "kInterrupt", "kMemoryLimit", "kHighsInterrupt",
]  # fmt: skip
# HighsModelStatus in code order; the second list is Highs.modelStatusToString for the same codes.
_HIGHS_TEXT = [
    "Not Set", "Load error", "Model error", "Presolve error", "Solve error", "Postsolve error", "Empty",
    "Optimal", "Infeasible", "Primal infeasible or unbounded", "Unbounded", "Bound on objective reached",
    "Target for objective reached", "Time limit reached", "Iteration limit reached", "Unknown",
    "Solution limit reached", "Interrupted by user", "Memory limit reached", "Interrupted by HiGHS",
]  # fmt: skip
# An empty model is trivially optimal (objective = its constant); objective bound/target stop the search early.
_HIGHS_STATUS = [
    UNK, ERR, ERR, ERR, ERR, ERR, OPT, OPT, INF, IOU, UNB, LIM, LIM, LIM, LIM, UNK, LIM, UNK, LIM, UNK,
]  # fmt: skip

_HIGHS = StatusTable(
    dict(enumerate(_HIGHS_STATUS)),
    {**dict(zip(_HIGHS_NAMES, _HIGHS_STATUS, strict=True)), **dict(zip(_HIGHS_TEXT, _HIGHS_STATUS, strict=True))},
)

# PuLP: LpStatus (1, 0, -1, -2, -3) and LpSolution (adds 2 = integer feasible, stopped early) share their codes, so
# one table serves both; prob.sol_status is the one that tells a time-limited incumbent from an optimum.
_PULP = StatusTable(
    {1: OPT, 0: UNK, -1: INF, -2: UNB, -3: UNK, 2: LIM},
    {
        "Optimal": OPT, "Not Solved": UNK, "Infeasible": INF, "Unbounded": UNB, "Undefined": UNK,
        "Optimal Solution Found": OPT, "Solution Found": LIM, "No Solution Found": UNK, "No Solution Exists": INF,
        "Solution is Unbounded": UNB,
    },
)  # fmt: skip

# pywraplp.Solver result codes.
_PYWRAPLP = StatusTable(
    {0: OPT, 1: LIM, 2: INF, 3: UNB, 4: ERR, 5: ERR, 6: UNK},
    {"OPTIMAL": OPT, "FEASIBLE": LIM, "INFEASIBLE": INF, "UNBOUNDED": UNB, "ABNORMAL": ERR, "MODEL_INVALID": ERR,
     "NOT_SOLVED": UNK},
)  # fmt: skip

# CP-SAT CpSolverStatus.
_CPSAT = StatusTable(
    {0: UNK, 1: ERR, 2: LIM, 3: INF, 4: OPT},
    {"UNKNOWN": UNK, "MODEL_INVALID": ERR, "FEASIBLE": LIM, "INFEASIBLE": INF, "OPTIMAL": OPT},
)

# PySCIPOpt Model.getStatus() strings. "gaplimit" means the requested gap was reached: optimal to the user's
# tolerance, as Gurobi reports OPTIMAL when MIPGap is met.
_SCIP = StatusTable(
    {},
    {
        "optimal": OPT, "gaplimit": OPT, "timelimit": LIM, "infeasible": INF, "unbounded": UNB, "inforunbd": IOU,
        "userinterrupt": UNK, "nodelimit": LIM, "totalnodelimit": LIM, "stallnodelimit": LIM, "memlimit": LIM,
        "sollimit": LIM, "bestsollimit": LIM, "restartlimit": LIM, "primallimit": LIM, "duallimit": LIM,
        "unknown": UNK,
    },
)  # fmt: skip

# gurobipy GRB.Status codes (13.0: LOCALLY_OPTIMAL and LOCALLY_INFEASIBLE come from the nonlinear solver).
_GUROBI_CODES = {
    1: ("LOADED", UNK), 2: ("OPTIMAL", OPT), 3: ("INFEASIBLE", INF), 4: ("INF_OR_UNBD", IOU), 5: ("UNBOUNDED", UNB),
    6: ("CUTOFF", UNK), 7: ("ITERATION_LIMIT", LIM), 8: ("NODE_LIMIT", LIM), 9: ("TIME_LIMIT", LIM),
    10: ("SOLUTION_LIMIT", LIM), 11: ("INTERRUPTED", UNK), 12: ("NUMERIC", ERR), 13: ("SUBOPTIMAL", UNK),
    14: ("INPROGRESS", UNK), 15: ("USER_OBJ_LIMIT", LIM), 16: ("WORK_LIMIT", LIM), 17: ("MEM_LIMIT", LIM),
    18: ("LOCALLY_OPTIMAL", OPT), 19: ("LOCALLY_INFEASIBLE", INF),
}  # fmt: skip
_GUROBI = StatusTable(
    {code: status for code, (_, status) in _GUROBI_CODES.items()},
    {name: status for name, status in _GUROBI_CODES.values()},
)

# Pyomo: the legacy pyomo.opt.TerminationCondition (string members) and the newer
# pyomo.contrib.solver TerminationCondition, whose members carry integer values.
_PYOMO = StatusTable(
    {0: OPT, 1: LIM, 2: LIM, 3: LIM, 4: UNK, 5: UNB, 6: INF, 7: INF, 8: IOU, 9: ERR, 10: UNK, 11: ERR, 12: OPT,
     42: UNK},
    {
        "unknown": UNK, "maxTimeLimit": LIM, "maxIterations": LIM, "minFunctionValue": UNK, "minStepLength": UNK,
        "globallyOptimal": OPT, "locallyOptimal": OPT, "feasible": LIM, "optimal": OPT, "maxEvaluations": LIM,
        "other": UNK, "unbounded": UNB, "infeasible": INF, "infeasibleOrUnbounded": IOU, "invalidProblem": ERR,
        "intermediateNonInteger": UNK, "noSolution": UNK, "solverFailure": ERR, "internalSolverError": ERR,
        "error": ERR, "userInterrupt": UNK, "resourceInterrupt": LIM, "licensingProblems": ERR,
        "convergenceCriteriaSatisfied": OPT, "iterationLimit": LIM, "objectiveLimit": LIM, "provenInfeasible": INF,
        "locallyInfeasible": INF, "interrupted": UNK, "emptyModel": OPT,
    },
)  # fmt: skip

# CVXPY problem.status strings. The "_inaccurate" variants keep their meaning: the solver stopped at a looser
# tolerance, and the checker re-evaluates the solution.
_CVXPY = StatusTable(
    {},
    {
        "optimal": OPT, "optimal_inaccurate": OPT, "infeasible": INF, "infeasible_inaccurate": INF,
        "unbounded": UNB, "unbounded_inaccurate": UNB, "infeasible_or_unbounded": IOU, "user_limit": LIM,
        "solver_error": ERR,
    },
)  # fmt: skip

# Ipopt ApplicationReturnStatus: cyipopt returns the code (and a message), CasADi the name. Ipopt reports
# Diverging_Iterates when the iterates exceed its divergence threshold, which on a well-scaled model is how an
# unbounded problem shows. Feasible_Point_Found is the success status of a square (objective-free) problem.
_IPOPT_CODES = {
    0: ("Solve_Succeeded", OPT), 1: ("Solved_To_Acceptable_Level", OPT), 2: ("Infeasible_Problem_Detected", INF),
    3: ("Search_Direction_Becomes_Too_Small", UNK), 4: ("Diverging_Iterates", UNB), 5: ("User_Requested_Stop", UNK),
    6: ("Feasible_Point_Found", OPT), -1: ("Maximum_Iterations_Exceeded", LIM), -2: ("Restoration_Failed", ERR),
    -3: ("Error_In_Step_Computation", ERR), -4: ("Maximum_CpuTime_Exceeded", LIM),
    -5: ("Maximum_WallTime_Exceeded", LIM), -10: ("Not_Enough_Degrees_Of_Freedom", ERR),
    -11: ("Invalid_Problem_Definition", ERR), -12: ("Invalid_Option", ERR), -13: ("Invalid_Number_Detected", ERR),
    -100: ("Unrecoverable_Exception", ERR), -101: ("NonIpopt_Exception_Thrown", ERR),
    -102: ("Insufficient_Memory", ERR), -199: ("Internal_Error", ERR),
}  # fmt: skip
_IPOPT = StatusTable(
    {code: status for code, (_, status) in _IPOPT_CODES.items()},
    {
        **{name: status for name, status in _IPOPT_CODES.values()},
        # cyipopt's messages for the common outcomes
        "Algorithm terminated successfully at a locally optimal point, satisfying the convergence tolerances "
        "(can be specified by options).": OPT,
        "Algorithm converged to a point of local infeasibility. Problem may be infeasible.": INF,
        "Iterates diverging; problem might be unbounded.": UNB,
        "Maximum number of iterations exceeded (can be specified by an option).": LIM,
    },
)

STATUS_TABLES: dict[str, StatusTable] = {
    "highs": _HIGHS,
    "cbc": _PULP,
    "ortools": _PYWRAPLP,
    "cpsat": _CPSAT,
    "scip": _SCIP,
    "gurobi": _GUROBI,
    "pyomo": _PYOMO,
    "cvxpy": _CVXPY,
    "ipopt": _IPOPT,
}


def _candidates(raw: object) -> list[object]:
    """The forms of ``raw`` worth looking up, most specific first: enum name, enum value, the value itself."""
    found: list[object] = []
    name = getattr(raw, "name", None)
    if isinstance(name, str) and not isinstance(raw, str):
        found.append(name)
        value = getattr(raw, "value", None)
        if isinstance(value, str | int) and not isinstance(value, bool):
            found.append(value)
    found.append(raw)
    return found


def _lookup(table: StatusTable, value: object) -> SolveStatus | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, int):
        return table.codes.get(int(value))
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"[+-]?\d+", text):  # a code written as text, e.g. read back from a log
            return table.codes.get(int(text))
        key = status_key(text)
        if key in table.names:
            return table.names[key]
        # "HighsModelStatus.kOptimal", "TerminationCondition.optimal": the member name after the last dot
        return table.names.get(status_key(text.rsplit(".", 1)[-1]))
    return None


def normalize_status(backend_name: str, raw: object) -> SolveStatus:
    """The SolveStatus for ``raw`` as reported by the named backend's library; UNKNOWN when it cannot be placed.

    ``raw`` may be the library's enum member, its integer code, its name or its message (str or bytes). A
    SolveStatus passes through unchanged. Never raises.
    """
    try:
        if isinstance(raw, SolveStatus):
            return raw
        table = STATUS_TABLES.get(backend_name)
        if table is None:
            return SolveStatus.UNKNOWN
        for candidate in _candidates(raw):
            status = _lookup(table, candidate)
            if status is not None:
                return status
    except Exception:  # a status object whose attributes misbehave is still only "unknown"
        return SolveStatus.UNKNOWN
    return SolveStatus.UNKNOWN
