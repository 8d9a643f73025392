"""The mutation study machinery on a few shipped models: capture, mutate, judge."""

from __future__ import annotations

from pathlib import Path

import pytest

from nemo_opt.evaluation.mutants import capture_model, evaluate_program, lift_rows
from nemo_opt.memory.starter import load_starter
from nemo_opt.stages.crosscheck import read_model_file

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


@pytest.mark.parametrize("example_id", ["starter-product_mix", "starter-transportation", "starter-portfolio"])
def test_with_every_row_through_an_auxiliary_column_a_correct_model_raises_no_alarm(
    example_id: str, tmp_path: Path
) -> None:
    # Only the original columns are mapped, so every row needs a HiGHS completion; such rows once counted as
    # absent and the correct model was "too loose" at every probe.
    base = tmp_path / "base.mps"
    assert capture_model(EXAMPLES[example_id].path, base)
    lift_rows(base, tmp_path / "lifted.mps")
    original, lifted = read_model_file(base), read_model_file(tmp_path / "lifted.mps")
    assert lifted.columns[: len(original.columns)] == original.columns
    assert len(lifted.columns) == len(original.columns) + len(original.rows)
    outcomes, false_alarm = evaluate_program(example_id, base, probes=24, auxiliary=True)
    assert not false_alarm
    plain, _ = evaluate_program(example_id, base, probes=24)
    for outcome, reference in zip(outcomes, plain, strict=True):
        assert outcome.unknown_probes == 0
        assert outcome.caught_with_crosscheck or not outcome.caught_objective_only
        if not outcome.keeps_optimum and not outcome.note and not outcome.redundant:
            assert outcome.caught_with_crosscheck, outcome
        if outcome.kind == "relax integrality":
            assert outcome.caught_with_crosscheck == reference.caught_with_crosscheck
