"""Recommend solvers: classify P* from its variable types and expression structure, then rank installed solvers."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from nemo_opt.solvers.registry import ProblemClass, SolverBackend, available_solvers
from nemo_opt.spec import ProblemSpec

__all__ = ["Recommendation", "classify", "recommend"]

_NONLINEAR_CALL = re.compile(r"\b(exp|log|sqrt|sin|cos|tan|abs|pow|max|min)\s*\(")
_POWER = re.compile(r"(\*\*|\^)\s*\(?\s*(?P<exp>[0-9.]+)")

# Preference among installed solvers for each class, best first.
_PREFERENCE: dict[ProblemClass, list[str]] = {
    ProblemClass.LP: ["highs", "cbc", "ortools", "gurobi", "scip", "cvxpy", "pyomo"],
    ProblemClass.MILP: ["highs", "cbc", "gurobi", "scip", "ortools", "cvxpy", "pyomo"],
    ProblemClass.QP: ["highs", "gurobi", "scip", "cvxpy"],
    ProblemClass.MIQP: ["gurobi", "scip", "cvxpy"],
    ProblemClass.NLP: ["scip", "pyomo"],
    ProblemClass.MINLP: ["scip"],
    ProblemClass.CP: ["ortools", "scip", "highs", "cbc"],
}


@dataclass(frozen=True)
class Recommendation:
    """The problem class, the ranked installed solvers and why."""

    problem_class: ProblemClass
    ranking: list[str]
    reason: str
    notes: list[str] = field(default_factory=list)


def _products_of_variables(expression: str, names: set[str]) -> bool:
    """True when two decision variables are multiplied or divided, e.g. ``x[i] * y[i]`` or ``x / y``."""
    pattern = r"\b(" + "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True)) + r")\b(\[[^\]]*\])?"
    tokens = re.sub(pattern, " VAR ", expression)
    return bool(re.search(r"VAR\s*[*/]\s*\(?\s*VAR", tokens))


def classify(spec: ProblemSpec) -> tuple[ProblemClass, str]:
    """Rule-based class of P* with the reason."""
    names = {v.name for v in spec.variables} | {s.name for s in spec.state_variables}
    expressions = [spec.objective.expression, *(c.expression for c in spec.constraints)]
    integer = spec.is_integer()
    quadratic_objective = _products_of_variables(spec.objective.expression, names) or any(
        m["exp"] == "2" for m in _POWER.finditer(spec.objective.expression)
    )
    nonlinear_rows = any(
        _products_of_variables(e, names) or _NONLINEAR_CALL.search(e) or _POWER.search(e) for e in expressions[1:]
    )
    nonlinear_objective = bool(_NONLINEAR_CALL.search(spec.objective.expression)) or any(
        m["exp"] != "2" for m in _POWER.finditer(spec.objective.expression)
    )
    kind = "integer" if integer else "continuous"
    if nonlinear_rows or nonlinear_objective:
        return (ProblemClass.MINLP if integer else ProblemClass.NLP), f"{kind} variables with nonlinear terms"
    if quadratic_objective:
        return (ProblemClass.MIQP if integer else ProblemClass.QP), f"{kind} variables with a quadratic objective"
    if integer:
        return ProblemClass.MILP, "linear expressions with integer or binary variables"
    return ProblemClass.LP, "linear expressions over continuous variables"


def recommend(spec: ProblemSpec, installed: list[type[SolverBackend]] | None = None) -> Recommendation:
    """Class of P* and the installed solvers ranked for it (capable ones first, then the rest)."""
    problem_class, reason = classify(spec)
    solvers = {s.name: s for s in (installed if installed is not None else available_solvers())}
    preferred = [n for n in _PREFERENCE[problem_class] if n in solvers and problem_class in solvers[n].features]
    fallback = [n for n in solvers if n not in preferred]
    notes = []
    if not preferred:
        notes.append(f"no installed solver declares {problem_class.value}; agents may linearize or use another route")
    return Recommendation(problem_class, preferred + fallback, reason, notes)
