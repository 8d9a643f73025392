"""Recommend solvers: classify P* by rules (an LLM breaks ties only when the rules are unsure), then rank the
installed solvers that support the class.

Signals: integer/binary variables; products of decision variables; squared terms in the objective; nonlinear
functions; piecewise terms (max, min, abs) that a modeller may linearize; and logical or scheduling structure
(all-different, implications, disjunctions, sequencing) that suits CP as much as MILP with big-M.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nemo_opt.exceptions import ConfigError, RunFailure
from nemo_opt.jsonparse import parse_json_object
from nemo_opt.llm.base import LLM, Message
from nemo_opt.llm.recorder import labelled
from nemo_opt.prompts import load_prompt
from nemo_opt.solvers.registry import ProblemClass, SolverBackend, available_solvers
from nemo_opt.spec import ProblemSpec, VarType, index_keys
from nemo_opt.stages.base import BaseStage, RunContext

__all__ = ["RecommendStage", "Recommendation", "classify", "recommend"]

_NONLINEAR_CALL = re.compile(r"\b(exp|log|sqrt|sin|cos|tan|pow)\s*\(")
_PIECEWISE_CALL = re.compile(r"\b(max|min|abs)\s*\(")
_POWER = re.compile(r"(\*\*|\^)\s*\(?\s*(?P<exp>[0-9.]+)")
# Strong markers only: ordinary words such as "or" and "before" appear in most problem texts.
_LOGICAL = re.compile(
    r"all[_ ]?diff|alldifferent|\bdistinct\b|\bimpl(y|ies|ication)\b|=>|\bif\b[^.]*\bthen\b|\beither\b|"
    r"no[_ ]overlap|overlap|preced|makespan|disjunct|start[_ ]time|finish[_ ]time",
    re.IGNORECASE,
)

# A disjunction written as an operator inside an expression: "a <= b or c <= d".
_DISJUNCTION = re.compile(r"\bor\b")

# Preference among installed solvers for each class, best first.
_PREFERENCE: dict[ProblemClass, list[str]] = {
    ProblemClass.LP: ["highs", "cbc", "gurobi", "scip", "ortools", "pyomo", "cvxpy"],
    ProblemClass.MILP: ["highs", "gurobi", "scip", "cbc", "ortools", "pyomo", "cvxpy"],
    ProblemClass.QP: ["highs", "gurobi", "scip", "cvxpy", "pyomo"],
    ProblemClass.MIQP: ["gurobi", "scip", "cvxpy", "pyomo"],
    ProblemClass.NLP: ["ipopt", "scip", "pyomo"],
    ProblemClass.MINLP: ["scip", "pyomo"],
    ProblemClass.CP: ["cpsat", "ortools", "scip", "highs", "gurobi", "cbc"],
}


@dataclass(frozen=True)
class Recommendation:
    """The problem class, the ranked installed solvers, and why."""

    problem_class: ProblemClass
    ranking: list[str]
    reason: str
    notes: list[str] = field(default_factory=list)
    signals: list[str] = field(default_factory=list)
    alternatives: list[ProblemClass] = field(default_factory=list)
    decided_by: str = "rules"
    variables: int = 0
    # The ranked solvers that declare the class: the ones optimizers are dealt (ranking holds the rest too).
    capable: list[str] = field(default_factory=list)

    @property
    def dealt(self) -> list[str]:
        """The solvers the T optimizers are dealt in turn: the capable ones, or, when none is, the ranking."""
        return self.capable or self.ranking


def _piecewise_of_variables(expression: str, names: set[str]) -> bool:
    """True when max, min or abs is applied to a decision variable (``abs(x - y)``); over data alone
    (``min(capacity[i], demand[i])``) it is a number and the expression stays linear."""
    for match in _PIECEWISE_CALL.finditer(expression):
        depth, start = 0, match.end() - 1
        for end in range(start, len(expression)):
            depth += {"(": 1, ")": -1}.get(expression[end], 0)
            if depth == 0:
                break
        argument = expression[start : end + 1]
        if any(re.search(rf"\b{re.escape(name)}\b", argument) for name in names):
            return True
    return False


def _products_of_variables(expression: str, names: set[str]) -> bool:
    """True when two decision variables are multiplied or divided, e.g. ``x[i] * y[i]`` or ``x / y``."""
    if not names:
        return False
    pattern = r"\b(" + "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True)) + r")\b(\[[^\]]*\])?"
    tokens = re.sub(pattern, " VAR ", expression)
    return bool(re.search(r"VAR\s*[*/]\s*\(?\s*VAR", tokens))


def classify(spec: ProblemSpec) -> tuple[ProblemClass, str, list[ProblemClass], list[str]]:
    """Rule-based class of P*: (class, reason, alternatives when unsure, signals found)."""
    names = {v.name for v in spec.variables} | {s.name for s in spec.state_variables}
    rows = [c.expression for c in spec.constraints] + [t.expression for t in spec.transitions]
    objective = spec.objective.expression
    integer = spec.is_integer()
    integer_only = all(v.type is not VarType.CONTINUOUS for v in spec.variables)
    signals: list[str] = []
    if integer:
        signals.append("integer or binary variables")
    nonlinear_rows = any(
        _products_of_variables(e, names) or _NONLINEAR_CALL.search(e) or _POWER.search(e) for e in rows
    )
    quadratic_objective = _products_of_variables(objective, names) or any(
        m["exp"] == "2" for m in _POWER.finditer(objective)
    )
    nonlinear_objective = bool(_NONLINEAR_CALL.search(objective)) or any(
        m["exp"] != "2" for m in _POWER.finditer(objective)
    )
    # Only the expressions are read: a plain-language meaning ("either shift", "finish time") is no structure.
    piecewise = any(_piecewise_of_variables(e, names) for e in [objective, *rows])
    logical = any(_LOGICAL.search(e) or _DISJUNCTION.search(e) for e in rows)
    for flag, label in (
        (nonlinear_rows, "nonlinear constraints"),
        (quadratic_objective, "quadratic objective"),
        (nonlinear_objective, "nonlinear objective"),
        (piecewise, "max/min/abs terms"),
        (logical, "logical or scheduling structure"),
    ):
        if flag:
            signals.append(label)
    kind = "integer" if integer else "continuous"
    if nonlinear_rows or nonlinear_objective:
        chosen = ProblemClass.MINLP if integer else ProblemClass.NLP
        return chosen, f"{kind} variables with nonlinear terms", [], signals
    if quadratic_objective:
        chosen = ProblemClass.MIQP if integer else ProblemClass.QP
        return chosen, f"{kind} variables with a quadratic objective", [], signals
    linear = ProblemClass.MILP if integer else ProblemClass.LP
    alternatives: list[ProblemClass] = []
    if logical and integer_only:
        alternatives = [ProblemClass.MILP, ProblemClass.CP]
    elif piecewise:
        alternatives = [linear, ProblemClass.MINLP if integer else ProblemClass.NLP]
    reason = (
        "linear expressions with integer or binary variables"
        if integer
        else "linear expressions over continuous variables"
    )
    return linear, reason, alternatives, signals


def _tiebreak(
    spec: ProblemSpec, candidates: list[ProblemClass], signals: list[str], llm: LLM
) -> tuple[ProblemClass, str] | None:
    prompt = load_prompt("recommend")
    text = prompt.render(
        spec=json.dumps(spec.model_dump(mode="json"), indent=1),
        signals=", ".join(signals) or "none",
        candidates=", ".join(c.value for c in candidates),
    )
    reply = labelled(llm, prompt.ref).complete([Message("user", text)], temperature=0.0).first.text
    try:
        verdict: dict[str, Any] = parse_json_object(reply)
        chosen = ProblemClass(str(verdict.get("class", "")).strip().upper())
    except ValueError:
        return None
    if chosen not in candidates:
        return None
    return chosen, str(verdict.get("reason", "")).strip()


def recommend(
    spec: ProblemSpec, installed: list[type[SolverBackend]] | None = None, *, llm: LLM | None = None
) -> Recommendation:
    """Class of P* and the installed solvers ranked for it (capable ones first, then the rest; ``capable`` holds
    only the first, and only they are dealt to optimizers)."""
    problem_class, reason, alternatives, signals = classify(spec)
    decided_by = "rules"
    if alternatives and llm is not None:
        broken = _tiebreak(spec, alternatives, signals, llm)
        if broken is not None:
            problem_class, reason, decided_by = broken[0], broken[1] or reason, "model (rules were unsure)"
    solvers = {s.name: s for s in (installed if installed is not None else available_solvers())}
    preferred = [n for n in _PREFERENCE[problem_class] if n in solvers and solvers[n].supports(problem_class)]
    preferred += [n for n, s in solvers.items() if n not in preferred and s.supports(problem_class)]
    fallback = [n for n in solvers if n not in preferred]
    ranking = preferred + fallback
    notes = []
    if not preferred:
        notes.append(f"no installed solver declares {problem_class.value}; agents may linearize or use another route")
    size = sum(len(index_keys(spec, v.indices)) for v in spec.variables)
    for name, backend in solvers.items():
        limit = backend.max_variables
        if limit is not None and size > limit and ranking.index(name) < len(ranking) - 1:
            ranking.remove(name)
            ranking.append(name)
            notes.append(f"{name} moved last: about {size} variables exceed its licence ({limit})")
    capable = [name for name in ranking if name in preferred]
    return Recommendation(problem_class, ranking, reason, notes, signals, alternatives, decided_by, size, capable)


class RecommendStage(BaseStage):
    """P* -> its class and the installed solvers ranked for it (``recommendation.json``)."""

    name = "recommend"

    def inputs(self, ctx: RunContext) -> list[Path]:
        return [ctx.workspace.root / "spec.json"]

    def run(self, ctx: RunContext, detail: dict[str, Any]) -> None:
        wanted = ctx.settings.solvers
        installed = available_solvers()
        allowed = [b for b in installed if not wanted or b.name in wanted]
        if not allowed:
            names = ", ".join(b.name for b in installed) or "none"
            raise ConfigError(f"None of the solvers {wanted} is installed and usable here (installed: {names}).")
        rec = ctx.recommendation = recommend(ctx.need_spec(), allowed, llm=ctx.llm("recommend", "extract"))
        if not rec.ranking:
            raise RunFailure("No solver is installed. Install one, e.g. pip install highspy pulp.")
        ctx.workspace.write_json("recommendation.json", rec)
        detail.update(
            problem_class=rec.problem_class.value, ranking=rec.ranking, reason=rec.reason, decided_by=rec.decided_by
        )
        if not rec.capable:
            rec.notes.append(f"optimizers are dealt the whole ranking: {', '.join(rec.dealt)}")
        notes = f"; {'; '.join(rec.notes)}" if rec.notes else ""
        dealt = ", ".join(rec.dealt[:4])
        detail["message"] = f"{rec.problem_class.value} ({rec.reason}; by {rec.decided_by}): {dealt}{notes}"

    def load(self, ctx: RunContext) -> bool:
        if not ctx.workspace.exists("recommendation.json"):
            return False
        data = ctx.workspace.read_json("recommendation.json")
        data["problem_class"] = ProblemClass(data["problem_class"])
        data["alternatives"] = [ProblemClass(a) for a in data.get("alternatives", [])]
        fields = Recommendation.__dataclass_fields__
        ctx.recommendation = Recommendation(**{k: v for k, v in data.items() if k in fields})
        return True
