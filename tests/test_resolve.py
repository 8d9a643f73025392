"""Re-solving a delivered package with changed data, checked by its simulator; no model service."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nemo_opt.exceptions import BadInput
from nemo_opt.harness import harness_source
from nemo_opt.resolve import apply_changes, parse_assignment
from nemo_opt.spec import ProblemSpec, data_from_spec
from tests.scenarios import product_mix

DATA = data_from_spec(ProblemSpec.model_validate(product_mix.SPEC))


@pytest.fixture
def package(tmp_path: Path) -> Path:
    folder = tmp_path / "package"
    (folder / "simulator").mkdir(parents=True)
    (folder / "model.py").write_text(product_mix.RIGHT_MODEL)
    (folder / "data.json").write_text(json.dumps(DATA))
    (folder / "simulator" / "__init__.py").write_text("")
    (folder / "simulator" / "simulator.py").write_text(product_mix.SIMULATOR_CODE)
    (folder / "check_solution.py").write_text(harness_source("check_solution.py"))
    return folder


def nemo(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NEMO_HOME": str(home), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "nemo_opt", *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_assignments_parse_json_values_and_keep_kinds() -> None:
    assert parse_assignment("profit.chair=55") == (["profit", "chair"], 55)
    assert parse_assignment('products=["table","chair","stool"]') == (["products"], ["table", "chair", "stool"])
    changed = apply_changes(DATA, [(["profit", "chair"], 55.5), (["finishing_available"], 120)])
    assert changed["profit"]["chair"] == 55.5 and changed["finishing_available"] == 120
    assert DATA["profit"]["chair"] == 50  # the original is untouched
    with pytest.raises(BadInput, match="no 'profit.stool'.*chair, table"):
        apply_changes(DATA, [(["profit", "stool"], 1)])
    with pytest.raises(BadInput, match="holds int 100"):
        apply_changes(DATA, [(["finishing_available"], "lots")])
    with pytest.raises(BadInput, match="expected NAME=VALUE"):
        parse_assignment("finishing_available")


def test_resolve_with_more_finishing_hours(package: Path, tmp_path: Path) -> None:
    # With 120 finishing hours the carpentry limit decides: on 4t + 3c = 240 with c >= 10 the best whole
    # plan is t = 51, c = 12 (finishing 114 <= 120), profit 70*51 + 50*12 = 4170.
    done = nemo("resolve", str(package), "--set", "finishing_available=120", home=tmp_path / "home")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4170" in done.stdout and re.search(r"confirmed\s+yes", done.stdout)
    (folder,) = (package / "resolves").iterdir()
    assert json.loads((folder / "data.json").read_text())["finishing_available"] == 120
    assert json.loads((folder / "solution.json").read_text())["variables"]["make"] == {"table": 51.0, "chair": 12.0}
    assert json.loads((package / "data.json").read_text())["finishing_available"] == 100


def test_resolve_reports_infeasible_data_and_bad_names(package: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    infeasible = nemo("resolve", str(package), "--set", "min_chairs=200", "--out", str(tmp_path / "r1"), home=home)
    assert infeasible.returncode == 5 and "infeasible" in infeasible.stdout
    unknown = nemo("resolve", str(package), "--set", "chairs_min=5", home=home)
    assert unknown.returncode == 2 and "no 'chairs_min'" in unknown.stderr and "Traceback" not in unknown.stderr


def test_simulator_catches_a_model_that_ignores_the_new_data(package: Path, tmp_path: Path) -> None:
    # A model with the finishing hours hard-coded keeps using 100 when the data say 80: its plan is no longer
    # feasible, and the packaged simulator says so.
    # (It still names the entry in a comment, so the guard below lets it through to the simulator.)
    hard_coded = '# data["finishing_available"] is not used\n' + product_mix.RIGHT_MODEL.replace(
        'data["finishing_available"]', "100"
    )
    (package / "model.py").write_text(hard_coded)
    data_file = tmp_path / "less.json"
    data_file.write_text(json.dumps({"finishing_available": 80}))
    done = nemo("resolve", str(package), "--data", str(data_file), home=tmp_path / "home")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "finishing_capacity" in done.stdout and re.search(r"confirmed\s+no", done.stdout)


def test_a_change_the_model_never_reads_is_refused_before_it_runs(package: Path, tmp_path: Path) -> None:
    # Numbers written in the code (as a small model's whole-file agents write them): the new value could not
    # reach the answer, so the re-solve would repeat the old one as if it were new.
    (package / "model.py").write_text(product_mix.RIGHT_MODEL.replace('data["finishing_available"]', "100"))
    done = nemo("resolve", str(package), "--set", "finishing_available=80", home=tmp_path / "home")
    assert done.returncode == 2, done.stdout + done.stderr
    message = " ".join(done.stderr.split())
    assert "model.py of this package never reads 'finishing_available'" in message
    assert not (package / "resolves").exists() or not any((package / "resolves").iterdir())


def test_a_folder_without_a_model_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    done = nemo("resolve", str(empty), home=tmp_path / "home")
    assert done.returncode == 2 and "not a model package" in done.stderr
    shutil.rmtree(empty)
