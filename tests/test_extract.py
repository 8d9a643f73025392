"""P* schema rules, tolerant JSON parsing and the extraction stage with its repair round-trip."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from nemo_opt.exceptions import BadInput, ExtractionFailed
from nemo_opt.jsonparse import parse_json_object
from nemo_opt.llm.recorder import RecordedLLM
from nemo_opt.spec import ProblemSpec, data_from_spec, index_keys
from nemo_opt.stages.extract import extract
from nemo_opt.store import RunStore
from nemo_opt.testing import Reply, ScriptedLLM
from nemo_opt.workspace import Workspace
from tests.scenarios import btd, product_mix, spec_reply


def test_spec_builds_data_and_index_keys() -> None:
    spec = ProblemSpec.model_validate(btd.SPEC)
    data = data_from_spec(spec)
    assert data["months"] == [1, 2, 3, 4, 5, 6] and data["demand"]["5"] == 520
    assert index_keys(spec, ["months"])[0] == ("1",)
    assert spec.variable("overtime").upper == 80


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda s: s["variables"][0].update(name="make table"), "not a valid Python identifier"),
        (lambda s: s["parameters"].append({"name": "make", "value": 1}), "used by a parameter and a variable"),
        (lambda s: s["variables"][0].update(indices=["items"]), "unknown set"),
        (lambda s: s["variables"][0].update(lower=5, upper=1), "exceeds upper bound"),
        (lambda s: s.update(variables=[]), "at least 1 item"),
        (lambda s: s["objective"].update(sense="optimize"), "sense"),
    ],
)
def test_spec_rejects_inconsistent_extractions(mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    raw = copy.deepcopy(product_mix.SPEC)
    mutate(raw)
    with pytest.raises(ValidationError, match=message):
        ProblemSpec.model_validate(raw)


def test_spec_normalizes_sense_and_binary_bounds() -> None:
    raw = copy.deepcopy(product_mix.SPEC)
    raw["objective"]["sense"] = "Max"
    raw["variables"].append({"name": "open", "type": "binary", "lower": None, "upper": 7})
    spec = ProblemSpec.model_validate(raw)
    assert spec.objective.sense == "maximize"
    assert (spec.variable("open").lower, spec.variable("open").upper) == (0.0, 1.0)


def test_parse_json_object_tolerates_what_models_send() -> None:
    assert parse_json_object('Sure!\n```json\n{"a": [1, 2,], "b": None}\n```\nHope this helps.') == {
        "a": [1, 2],
        "b": None,
    }
    assert parse_json_object('The answer: {"x": {"y": 1}} as requested') == {"x": {"y": 1}}
    assert parse_json_object('Reasoning first.\n{\n  "k": true\n}\nDone.') == {"k": True}
    with pytest.raises(ValueError, match="no valid JSON object"):
        parse_json_object("I cannot help with that.")


def test_parse_json_object_mends_what_a_small_model_wrote() -> None:
    # From a 1.5B model's extraction: an ellipsis in a list, bare names and expressions as values, a comment.
    reply = (
        '```json\n{\n  "sets": [{"name": "ducks", "elements": ["d1", "d2", ..., "d300"]}],\n'
        '  "variables": [{"name": "x", "upper": max_trips, "lower": 0.5}, {"name": "y", "upper": total - x}], // v\n'
        '  "objective": {"sense": "minimize", "expression": "x + y // not a comment"},\n  "more": [1, 2, …]\n}\n```'
    )
    assert parse_json_object(reply) == {
        "sets": [{"name": "ducks", "elements": ["d1", "d2", "d300"]}],
        "variables": [{"name": "x", "upper": "max_trips", "lower": 0.5}, {"name": "y", "upper": "total - x"}],
        "objective": {"sense": "minimize", "expression": "x + y // not a comment"},
        "more": [1, 2],
    }
    # A broken fenced object is reported as broken, not replaced by one of its inner objects.
    with pytest.raises(ValueError, match="JSON block in the reply is not valid"):
        parse_json_object('```json\n{\n  "a": {"b": 1},\n  "c": [1 2]\n}\n```')


def test_symbolic_bounds_resolve_to_parameters_or_fall_to_constraints() -> None:
    spec = ProblemSpec.model_validate(
        {
            "title": "t",
            "parameters": [{"name": "cap", "value": 12}],
            "variables": [
                {"name": "x", "type": "integer", "upper": "cap"},
                {"name": "y", "upper": "cap - x", "lower": "0"},
                {"name": "z", "upper": "inf"},
            ],
            "objective": {"sense": "min", "expression": "x + y + z"},
            "constraints": [{"name": "c", "for_all": ["i in items", "t in periods"], "expression": "x <= cap"}],
        }
    )
    assert spec.constraints[0].for_all == "i in items, t in periods"  # a list where text belongs (a 0.5B model)
    assert [(v.lower, v.upper) for v in spec.variables] == [(0.0, 12.0), (0.0, None), (0.0, None)]
    assert spec.assumptions == ["the upper bound of y was given as 'cap - x'; left to the constraints"]


def _recorded(script: list[Reply], tmp_path: Path) -> tuple[RecordedLLM, ScriptedLLM, RunStore]:
    llm = ScriptedLLM(script)
    store = RunStore(tmp_path / "runs.db")
    store.create_run("r1", tmp_path, "t", "sha")
    return RecordedLLM(llm, store=store, run_id="r1", stage="extract"), llm, store


def test_malformed_extraction_is_repaired_once(tmp_path: Path) -> None:
    broken = Reply(text='```json\n{"title": "x", "variables": [{"name": "make"}], "objective": {"sense": "max"\n```')
    recorded, llm, store = _recorded([broken, product_mix.EXTRACTION], tmp_path)
    workspace = Workspace(tmp_path / "ws")
    workspace.create()
    result = extract("problem text", recorded, workspace)
    assert result.spec.title == "Workshop production plan"
    assert result.candidates[0].repaired and result.dropped == 0
    # The repair request shows the model its reply and the parse error.
    repair_messages = llm.requests[1]["messages"]
    assert repair_messages[1]["role"] == "assistant" and "could not be used" in repair_messages[2]["content"]
    assert [c["template"] for c in store.llm_calls("r1")] == ["extract", "extract_repair"]
    assert (workspace.extract_dir / "candidate_0.json").exists()


def test_extraction_that_stays_malformed_fails_with_the_reason(tmp_path: Path) -> None:
    recorded, _, _ = _recorded([Reply(text="no json here"), Reply(text="still none")], tmp_path)
    workspace = Workspace(tmp_path / "ws")
    workspace.create()
    with pytest.raises(ExtractionFailed, match="no valid JSON object"):
        extract("problem text", recorded, workspace)


def test_several_samples_drop_malformed_and_keep_the_rest(tmp_path: Path) -> None:
    bad = Reply(text='{"variables": []}')
    script = [bad, product_mix.EXTRACTION, Reply(text="{}"), bad]
    recorded, llm, _ = _recorded(script, tmp_path)
    workspace = Workspace(tmp_path / "ws")
    workspace.create()
    # n=2: the first sample is malformed, its repair too; the second is good.
    result = extract("problem text", recorded, workspace, samples=2, temperature=0.7)
    assert result.chosen == 1 and result.dropped == 1
    assert llm.requests[0]["n"] == 2 and llm.requests[0]["temperature"] == 0.7


def test_no_decision_is_bad_input(tmp_path: Path) -> None:
    recorded, _, _ = _recorded([Reply(text='{"error": "no_decision", "reason": "a poem"}')], tmp_path)
    workspace = Workspace(tmp_path / "ws")
    workspace.create()
    with pytest.raises(BadInput, match="a poem"):
        extract("Roses are red, violets are blue, sugar is sweet.", recorded, workspace)


def test_numbers_that_do_not_trace_to_the_text_get_one_repair_kept_only_if_better(tmp_path: Path) -> None:
    text = (Path(__file__).resolve().parent.parent / "examples" / "product_mix.md").read_text()
    dropped = copy.deepcopy(product_mix.SPEC)
    dropped["parameters"][1]["value"] = {"table": 2, "chair": 1}  # the carpentry hours copied from finishing
    recorded, llm, _ = _recorded([spec_reply(dropped), product_mix.EXTRACTION], tmp_path)
    workspace = Workspace(tmp_path / "ws")
    workspace.create()
    result = extract(text, recorded, workspace, trace_repair=True)
    assert result.spec.parameters[1].value == {"table": 4, "chair": 3}
    request = llm.requests[1]["messages"][-1]["content"]
    assert "4 is stated in the text" in request and "needs 4 hours of carpentry" in request
    selection = json.loads((workspace.extract_dir / "mbr.json").read_text())
    assert selection["trace_repair"]["kept"] and selection["trace_repair"]["after"]["missing"] == []
    # A repair that traces no better is not kept.
    recorded, llm, _ = _recorded([spec_reply(dropped), spec_reply(dropped)], tmp_path / "again")
    workspace = Workspace(tmp_path / "ws2")
    workspace.create()
    assert extract(text, recorded, workspace, trace_repair=True).spec.parameters[1].value == {"table": 2, "chair": 1}


def test_a_parameter_with_no_value_is_a_misfiled_variable_or_dropped() -> None:
    spec = ProblemSpec.model_validate(
        {
            "parameters": [
                {"name": "seats", "value": 6},
                {"name": "total_cars", "type": "integer", "lower": None, "description": "cars used"},
                {"name": "share", "unit": "%"},
            ],
            "variables": [{"name": "vans", "type": "integer"}],
            "objective": {"sense": "minimize", "expression": "total_cars"},
        }
    )
    assert [v.name for v in spec.variables] == ["vans", "total_cars"] and spec.variables[1].type.value == "integer"
    assert [p.name for p in spec.parameters] == ["seats"]
    assert any("taken as a decision variable" in a for a in spec.assumptions)
    assert any("'share' was given no value; dropped" in a for a in spec.assumptions)


def test_retry_draws_one_fresh_sample_when_the_repair_fails_too(tmp_path: Path) -> None:
    script = [Reply(text="no json here"), Reply(text="still none"), product_mix.EXTRACTION]
    recorded, llm, _ = _recorded(script, tmp_path)
    workspace = Workspace(tmp_path / "ws")
    workspace.create()
    result = extract("problem text", recorded, workspace, retry=True)
    assert result.spec.title == "Workshop production plan" and result.chosen == 1
    assert llm.requests[2]["temperature"] == 0.5 and len(llm.requests) == 3
