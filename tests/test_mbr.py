"""Component-wise MBR over sampled extractions, and the judge that picks among the top candidates."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nemo_opt.embed import Embedder, LexicalEmbedder, MiniLMEmbedder
from nemo_opt.embed.minilm import find_model_dir
from nemo_opt.llm.recorder import RecordedLLM
from nemo_opt.spec import ProblemSpec
from nemo_opt.stages.extract import extract
from nemo_opt.stages.mbr import components, mbr_scores
from nemo_opt.testing import Reply, ScriptedLLM
from nemo_opt.workspace import Workspace
from tests.scenarios import product_mix, spec_reply

MODEL_DIR = find_model_dir(None, Path("/nonexistent"))
EMBEDDERS: list[Any] = [pytest.param(LexicalEmbedder, id="lexical")]
if MODEL_DIR is not None:
    EMBEDDERS.append(pytest.param(lambda: MiniLMEmbedder(MODEL_DIR), id="minilm"))


def _variant(**changes: Any) -> dict[str, Any]:
    spec = copy.deepcopy(product_mix.SPEC)
    for key, value in changes.items():
        spec[key] = value
    return spec


DESCRIPTIONS = ["units produced", "number made this week", "production quantity", "how many to build", "output"]


def _agreeing_and_differing() -> list[dict[str, Any]]:
    """Five samples worded differently throughout; 1, 3 and 4 agree on the constraints, 0 and 2 do not."""
    samples = []
    for description in DESCRIPTIONS:
        sample = _variant(summary=f"Weekly plan ({description}).")
        sample["variables"][0]["description"] = description
        samples.append(sample)
    samples[0]["constraints"] = [c for c in samples[0]["constraints"] if c["name"] != "finishing_capacity"]
    samples[2]["constraints"] = [
        {**c, "expression": c["expression"].replace("<=", ">=")} if c["name"] == "carpentry_capacity" else c
        for c in samples[2]["constraints"]
    ] + [{"name": "table_limit", "expression": "make['table'] <= 20", "meaning": "invented"}]
    return samples


@pytest.mark.parametrize("make_embedder", EMBEDDERS)
def test_agreeing_candidates_rank_first(make_embedder: Any) -> None:
    specs = [ProblemSpec.model_validate(s) for s in _agreeing_and_differing()]
    scores = mbr_scores(specs, make_embedder())
    assert set(scores.ranking()[:3]) == {1, 3, 4}
    constraints = scores.per_component["constraints"]
    assert min(constraints[i] for i in (1, 3, 4)) > max(constraints[i] for i in (0, 2))


def _long_table_candidates() -> list[ProblemSpec]:
    """Right candidates 0, 2, 4 whose long data tables differ in many entries (sampling noise), and wrong
    candidates 1, 3 (other objective and constraints) whose table equals candidate 0's exactly."""
    table = {f"shop_{i}": {"hours": 10 + i % 7, "cost": 3 + i % 5} for i in range(120)}
    right = _variant()
    right["parameters"] = right["parameters"] + [{"name": "shops", "value": table, "description": "shop data"}]
    variants = [copy.deepcopy(right) for _ in range(3)]
    for number, variant in enumerate(variants[1:], 1):
        variant["parameters"][-1]["value"] = {
            name: ({"hours": row["hours"] + number, "cost": row["cost"] * 2} if i % 3 == number else row)
            for i, (name, row) in enumerate(table.items())
        }
    wrong = copy.deepcopy(right)
    wrong["objective"] = {"sense": "minimize", "expression": "sum(carpentry_hours[p] * make[p] for p in products)"}
    wrong["constraints"] = [{"name": "orders", "expression": "make['table'] + make['chair'] >= 10"}]
    return [ProblemSpec.model_validate(s) for s in (variants[0], wrong, variants[1], copy.deepcopy(wrong), variants[2])]


@pytest.mark.parametrize("make_embedder", EMBEDDERS)
def test_a_long_component_does_not_dominate_the_utility(make_embedder: Any) -> None:
    embedder: Embedder = make_embedder()
    specs = _long_table_candidates()
    assert set(mbr_scores(specs, embedder).ranking()[:3]) == {0, 2, 4}


def test_whole_candidate_similarity_would_let_the_table_decide() -> None:
    # The contrast that motivates component-wise MBR: embedded whole, the wrong candidates (whose long
    # table equals candidate 0's) outrank the right candidates 2 and 4.
    specs = _long_table_candidates()
    whole = LexicalEmbedder().embed([json.dumps(components(s)) for s in specs])
    sims = whole @ whole.T
    utility = [(sims[i].sum() - sims[i, i]) / 4 for i in range(5)]
    assert min(utility[1], utility[3]) > max(utility[2], utility[4])


def test_empty_components_agree_with_each_other_only() -> None:
    specs = [ProblemSpec.model_validate(s) for s in _agreeing_and_differing()[:2]]
    scores = mbr_scores(specs, LexicalEmbedder())
    assert scores.per_component["uncertainty"] == [1.0, 1.0]
    with_uncertainty = _variant(uncertainty=["demand for chairs may vary"])
    scores = mbr_scores([ProblemSpec.model_validate(with_uncertainty), specs[0]], LexicalEmbedder())
    assert scores.per_component["uncertainty"] == [0.0, 0.0]


def _extract_with(replies: list[Reply], judge_reply: Reply, tmp_path: Path, samples: int) -> tuple[Any, ScriptedLLM]:
    extractor = ScriptedLLM(replies)
    judge = ScriptedLLM([judge_reply])
    workspace = Workspace(tmp_path / "ws")
    workspace.create()
    result = extract(
        "PROBLEM TEXT: tables and chairs",
        RecordedLLM(extractor),
        workspace,
        samples=samples,
        embedder=LexicalEmbedder(),
        judge=RecordedLLM(judge),
        top_q=3,
    )
    return result, judge


def test_judge_sees_only_the_problem_and_the_top_q(tmp_path: Path) -> None:
    replies = [spec_reply(s) for s in _agreeing_and_differing()]
    verdict = Reply(text='```json\n{"choice": "B", "reason": "B keeps the finishing limit and the right signs."}\n```')
    result, judge = _extract_with(replies, verdict, tmp_path, 5)
    selection = json.loads((tmp_path / "ws" / "extract" / "mbr.json").read_text())
    assert set(selection["finalists"]) == {1, 3, 4} and selection["candidates"] == 5
    assert result.chosen == selection["finalists"][1] and "finishing limit" in selection["reason"]
    (request,) = judge.requests
    (message,) = request["messages"]
    assert "PROBLEM TEXT: tables and chairs" in message["content"]
    assert message["content"].count("### Candidate") == 3 and "Candidate D" not in message["content"]
    assert set(selection["utility"]) == {"0", "1", "2", "3", "4"}


def test_unclear_judge_falls_back_to_the_best_utility(tmp_path: Path) -> None:
    replies = [spec_reply(s) for s in _agreeing_and_differing()]
    result, _ = _extract_with(replies, Reply(text="They all look fine to me."), tmp_path, 5)
    selection = json.loads((tmp_path / "ws" / "extract" / "mbr.json").read_text())
    assert result.chosen == selection["finalists"][0] and "kept the highest MBR utility" in selection["reason"]


def test_single_sample_skips_mbr_and_judge(tmp_path: Path) -> None:
    result, judge = _extract_with([product_mix.EXTRACTION], Reply(text="unused"), tmp_path, 1)
    assert result.selection["method"] == "first usable" and not judge.requests


def test_malformed_candidates_are_dropped_not_fatal(tmp_path: Path) -> None:
    replies = [Reply(text="garbage"), spec_reply(product_mix.SPEC), Reply(text="{}"), Reply(text="still garbage")]
    result, judge = _extract_with(replies[:2] + replies[2:], Reply(text="unused"), tmp_path, 2)
    assert result.chosen == 1 and result.dropped == 1 and not judge.requests
    assert np.isclose(len(result.candidates), 2)
