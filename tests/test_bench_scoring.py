"""Scoring presets on hand-computed cases, and dataset loading with explicit gold kinds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nemo_opt.bench.datasets import expand_names, list_datasets, load_dataset
from nemo_opt.bench.scoring import is_correct
from nemo_opt.exceptions import BadInput, ConfigError


@pytest.mark.parametrize(
    ("preset", "gold", "predicted", "expected"),
    [
        # strict: |p - g| / (|g| + 1) <= 1e-6
        ("strict", 1160.0, 1160.0000005, True),  # 5e-7 / 1161 is far below 1e-6
        ("strict", 1160.0, 1160.01, False),  # 0.01 / 1161 = 8.6e-6
        ("strict", 0.0, 5e-7, True),  # gold 0: |p| <= 1e-6
        ("strict", 0.0, 2e-6, False),
        ("strict", -50.0, -50.00004, True),  # 4e-5 / 51 = 7.8e-7
        ("strict", -50.0, 50.0, False),
        # orlm: round to 2 decimals, then |p - g| <= 0.05 |g|
        ("orlm", 100.0, 104.9, True),
        ("orlm", 100.0, 105.1, False),
        ("orlm", -200.0, -190.5, True),  # 9.5 <= 10
        ("orlm", 0.0, 0.004, True),  # rounds to 0.00
        ("orlm", 0.0, 0.06, False),
        ("orlm", 327.659574, 327.66, True),
        # absolute tolerances
        ("abs0.1", 10.0, 10.09, True),
        ("abs0.1", 10.0, 10.11, False),
        ("abs0.01", 10.0, 10.009, True),
        ("abs0.01", 10.0, 9.98, False),
    ],
)
def test_numeric_presets(preset: str, gold: float, predicted: float, expected: bool) -> None:
    assert is_correct(preset, "number", gold, "optimal", predicted) is expected


def test_infeasible_golds_crashes_and_missing_golds() -> None:
    assert is_correct("strict", "infeasible", None, "infeasible", None) is True
    assert is_correct("strict", "infeasible", None, "infeasible_or_unbounded", None) is True
    assert is_correct("strict", "infeasible", None, "unbounded", None) is False
    assert is_correct("strict", "infeasible", None, "optimal", 12.0) is False
    assert is_correct("strict", "no_optimum", None, "unbounded", None) is True
    # A crash or a timeout is never read as "infeasible".
    assert is_correct("strict", "infeasible", None, "error", None) is False
    assert is_correct("strict", "infeasible", None, None, None) is False
    assert is_correct("strict", "number", 5.0, "infeasible", None) is False
    assert is_correct("strict", "number", 5.0, "error", 5.0) is False
    assert is_correct("strict", "none", None, "optimal", 5.0) is None
    with pytest.raises(BadInput, match="Use one of"):
        is_correct("lenient", "number", 1.0, "optimal", 1.0)


def _write(folder: Path, name: str, records: list[dict[str, object]]) -> None:
    (folder / name).write_text("\n".join(json.dumps(r) for r in records) + "\n")


def test_dataset_names_gold_kinds_and_validation(tmp_path: Path) -> None:
    records = [
        {"id": "nl4opt-0000", "question": "q0", "answer": 1160.0, "answer_raw": "1160.0"},
        {"id": "nl4opt-0001", "question": "q1", "answer": None, "answer_raw": "No Best Solution"},
        {"id": "nl4opt-0002", "question": "q2", "answer": None, "answer_raw": "-99999"},
        {"id": "nl4opt-0003", "question": "q3", "answer": None, "answer_raw": "", "extra": {"status": "infeasible"}},
    ]
    _write(tmp_path, "nl4opt.jsonl", records)
    _write(tmp_path, "nl4opt_curated.jsonl", records[:1])
    (tmp_path / "manifest.json").write_text(
        json.dumps([{"file": "nl4opt_curated.jsonl", "benchmark": "nl4opt", "role": "curated_primary"}])
    )
    dataset = load_dataset("nl4opt", tmp_path)
    assert [i.gold for i in dataset.items] == ["number", "no_optimum", "none", "infeasible"]
    assert dataset.graded == 3 and len(dataset.sha256) == 64
    assert len(load_dataset("nl4opt:curated", tmp_path).items) == 1
    assert {row["name"] for row in list_datasets(tmp_path)} == {"nl4opt", "nl4opt:curated"}
    assert expand_names(["all"], tmp_path)[:2] == ["nl4opt", "nlp4lp"]
    with pytest.raises(BadInput, match="Unknown benchmark 'nl5opt'"):
        load_dataset("nl5opt", tmp_path)
    with pytest.raises(BadInput, match="No file nl4opt_sirl.jsonl"):
        load_dataset("nl4opt:sirl", tmp_path)
    _write(tmp_path, "bwor.jsonl", [{"id": "b-1", "question": "", "answer": 1}])
    with pytest.raises(BadInput, match="bwor.jsonl line 1 .*empty 'question'"):
        load_dataset("bwor", tmp_path)
    with pytest.raises(ConfigError, match="NEMO_BENCHMARKS_DIR"):
        load_dataset("nl4opt", None)
