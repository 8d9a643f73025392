"""benchmarks/real_model.py's arms run end to end on the scripted model: real programs, the real sandbox, PuLP."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest

from nemo_opt.bench.datasets import BenchItem
from nemo_opt.settings import load_settings
from tests.modules import load_file_module

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "real_model.py"

QUESTION = "Make x and y, at most 4 in total and y at most 3, to maximise 2x + 3y. What is the best value?"


def _load() -> ModuleType:
    return load_file_module(SCRIPT, "real_model_bench")


def _program(y_max: int) -> str:
    return (
        "Here is the program:\n```python\nfrom pulp import *\n"
        'prob = LpProblem("p", LpMaximize)\n'
        'x = LpVariable("x", lowBound=0)\n'
        f'y = LpVariable("y", lowBound=0, upBound={y_max})\n'
        "prob += 2 * x + 3 * y\nprob += x + y <= 4\n"
        "prob.solve(PULP_CBC_CMD(msg=0))\n"
        'print("Optimal objective:", value(prob.objective))\n```\n'
    )


def test_samples_vote_over_the_programs_that_ran_and_count_each_ones_score(tmp_path: Path) -> None:
    # Two programs reach 11 (the gold), one misreads the bound (12), one reply is prose with a broken program.
    replies = [
        _program(3),
        _program(4),
        "I think the answer is 11.\n```python\nprint(undefined_name)\n```",
        _program(3),
    ]
    script = tmp_path / "script.json"
    script.write_text(json.dumps(replies))
    settings = load_settings({"home": tmp_path / "home", "model": f"scripted:{script}", "llm_cache": "off"})
    item = BenchItem("toy-0", "toy", QUESTION, 11.0, "11", "number")

    row = _load().samples(item, settings, k=4, temperature=0.7)

    assert row["sample_objectives"][:2] == [pytest.approx(11), pytest.approx(12)]
    assert row["sample_objectives"][2] is None  # the broken one ran and failed; it does not vote
    assert row["sample_correct"] == 2 and row["calls"] == 4
    assert (row["status"], row["objective"]) == ("optimal", 11)


def test_the_table_says_how_many_samples_were_correct() -> None:
    module = _load()
    row = {"id": "toy-0", "gold": 11, "mode": "samples", "objective": 11.0, "status": "optimal", "correct": True}
    row |= {"verified": False, "seconds": 3.0, "calls": 4, "tokens": 100, "sample_correct": 2}
    table = module.markdown_table([row], ["samples"])
    assert "11, 2/4 samples correct (optimal)" in table
    assert "**samples**: 1/1 correct" in table
