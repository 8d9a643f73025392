"""Solver recommendation: rule-based classes, the model's tie-break when the rules are unsure, ranking."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from nemo_opt.llm.recorder import RecordedLLM
from nemo_opt.solvers.registry import SOLVERS, Gurobi, Highs, Ipopt, ProblemClass, PulpCbc, Scip, available_solvers
from nemo_opt.spec import ProblemSpec
from nemo_opt.stages.recommend import classify, recommend
from nemo_opt.testing import Reply, ScriptedLLM
from tests.scenarios import ducks, product_mix


def _spec(**changes: Any) -> ProblemSpec:
    raw = copy.deepcopy(product_mix.SPEC)
    for key, value in changes.items():
        raw[key] = value
    return ProblemSpec.model_validate(raw)


def _continuous() -> dict[str, Any]:
    variables = copy.deepcopy(product_mix.SPEC["variables"])
    variables[0]["type"] = "continuous"
    return {"variables": variables}


QUADRATIC = {"sense": "maximize", "expression": "sum(profit[p] * make[p] - 0.1 * make[p] * make[p] for p in products)"}
NONLINEAR_ROW = [{"name": "c", "expression": "sum(make[p] ** 1.5 for p in products) <= 100"}]
SCHEDULING = [
    {
        "name": "no_overlap",
        "expression": "start[a] + 3 <= start[b] or start[b] + 2 <= start[a]",
        "meaning": "the two jobs must not overlap on the machine",
    }
]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (_continuous(), ProblemClass.LP),
        ({}, ProblemClass.MILP),
        ({**_continuous(), "objective": QUADRATIC}, ProblemClass.QP),
        ({"objective": QUADRATIC}, ProblemClass.MIQP),
        ({**_continuous(), "constraints": NONLINEAR_ROW}, ProblemClass.NLP),
        ({"constraints": NONLINEAR_ROW}, ProblemClass.MINLP),
    ],
)
def test_rules_classify_each_class(changes: dict[str, Any], expected: ProblemClass) -> None:
    problem_class, reason, alternatives, signals = classify(_spec(**changes))
    assert problem_class is expected and reason and alternatives == []


def test_scheduling_structure_is_unsure_and_the_model_breaks_the_tie() -> None:
    spec = _spec(constraints=SCHEDULING)
    assert classify(spec)[2] == [ProblemClass.MILP, ProblemClass.CP]
    llm = ScriptedLLM([Reply(text='```json\n{"class": "CP", "reason": "pure sequencing of integer starts"}\n```')])
    rec = recommend(spec, available_solvers(), llm=RecordedLLM(llm))
    assert rec.problem_class is ProblemClass.CP and rec.decided_by.startswith("model")
    assert "pure sequencing" in rec.reason and len(llm.requests) == 1
    if any(s.name == "cpsat" for s in available_solvers()):
        assert rec.ranking[0] == "cpsat"


def test_the_model_is_not_asked_when_the_rules_are_sure() -> None:
    llm = ScriptedLLM([])
    rec = recommend(ProblemSpec.model_validate(ducks.SPEC), [PulpCbc, Highs], llm=RecordedLLM(llm))
    assert rec.problem_class is ProblemClass.MILP and rec.ranking == ["highs", "cbc"] and not llm.requests


def test_an_unusable_tie_break_keeps_the_rules() -> None:
    llm = ScriptedLLM([Reply(text="I would use a spreadsheet.")])
    rec = recommend(_spec(constraints=SCHEDULING), [Highs, PulpCbc], llm=RecordedLLM(llm))
    assert rec.problem_class is ProblemClass.MILP and rec.decided_by == "rules"


def test_ranking_puts_capable_solvers_first_and_size_limited_ones_last() -> None:
    nlp = recommend(_spec(**_continuous(), constraints=NONLINEAR_ROW), [Highs, Scip, Ipopt, PulpCbc])
    assert nlp.ranking[:2] == ["ipopt", "scip"] and set(nlp.ranking[2:]) == {"highs", "cbc"}
    big = copy.deepcopy(product_mix.SPEC)
    big["sets"] = [{"name": "products", "elements": [f"p{i}" for i in range(2500)]}]
    big["parameters"] = [{"name": "profit", "indices": ["products"], "value": {f"p{i}": 1 for i in range(2500)}}]
    # An integer QP: Gurobi comes first for MIQP unless the model is too large for its bundled licence.
    big["objective"] = {
        "sense": "maximize",
        "expression": "sum(profit[p] * make[p] - make[p] * make[p] for p in products)",
    }
    big["constraints"] = []
    rec = recommend(ProblemSpec.model_validate(big), [Gurobi, Scip])
    assert rec.problem_class is ProblemClass.MIQP
    assert rec.ranking == ["scip", "gurobi"] and rec.variables == 2500
    assert any("gurobi moved last" in note for note in rec.notes)


def test_every_registered_backend_declares_known_classes() -> None:
    for backend in SOLVERS:
        assert backend.features <= set(ProblemClass) and backend.hint and backend.template


def test_plain_language_meanings_and_functions_of_data_leave_a_linear_model_certain() -> None:
    # A 1.5B model writes meanings such as these; they used to make the rules unsure and ask the model.
    constraints = copy.deepcopy(product_mix.SPEC["constraints"])
    constraints[0]["meaning"] = "either shift may do carpentry; if a table is started then it must finish in time"
    constraints[1]["expression"] = (
        "sum(finishing_hours[p] * make[p] for p in products) <= min(finishing_available, 2 * finishing_available)"
    )
    problem_class, _, alternatives, signals = classify(_spec(constraints=constraints))
    assert problem_class is ProblemClass.MILP and alternatives == [] and signals == ["integer or binary variables"]
    llm = ScriptedLLM([])
    assert recommend(_spec(constraints=constraints), [Highs, PulpCbc], llm=RecordedLLM(llm)).decided_by == "rules"
    assert not llm.requests


def test_max_min_abs_of_decision_variables_still_make_the_rules_unsure() -> None:
    rows = [{"name": "gap", "expression": "abs(make['table'] - make['chair']) <= 5", "meaning": "balance"}]
    assert classify(_spec(constraints=rows))[2] == [ProblemClass.MILP, ProblemClass.MINLP]
