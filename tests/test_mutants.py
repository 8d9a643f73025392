"""The mutation study machinery on a few shipped models: capture, mutate, judge."""

from __future__ import annotations

from pathlib import Path

import pytest

from nemo_opt.evaluation.mutants import capture_model, evaluate_program
from nemo_opt.memory.starter import load_starter

EXAMPLES = {example.id: example for example in load_starter()}


@pytest.mark.parametrize("example_id", ["starter-product_mix", "starter-knapsack", "starter-production_planning"])
def test_capture_solves_to_the_recorded_answer_and_mutants_are_judged(example_id: str, tmp_path: Path) -> None:
    example = EXAMPLES[example_id]
    base = tmp_path / "base.mps"
    assert capture_model(example.path, base)
    outcomes, false_alarm = evaluate_program(example_id, base, probes=24)
    assert not false_alarm
    assert outcomes, "no mutant was made"
    for outcome in outcomes:
        # Validation with the cross-check never catches less than objective-only validation.
        assert outcome.caught_with_crosscheck or not outcome.caught_objective_only
        if not outcome.keeps_optimum and not outcome.note and not outcome.redundant:
            assert outcome.caught_with_crosscheck, outcome
    kept = [o for o in outcomes if o.keeps_optimum and not o.redundant]
    if any(o.kind == "relax integrality" for o in kept):
        relaxed = [o for o in kept if o.kind == "relax integrality"]
        assert all(o.caught_with_crosscheck and not o.caught_objective_only for o in relaxed)
