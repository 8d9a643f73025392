"""Growing memory from the system's own verified runs (opt-in)."""

from __future__ import annotations

import json
from pathlib import Path

from nemo_opt.exceptions import BadInput
from nemo_opt.memory.store import Exemplar

__all__ = ["exemplar_from_package", "exemplar_from_run"]


def exemplar_from_package(run_id: str, problem: str, package: Path, objective: float | None, solver: str) -> Exemplar:
    """A solved example made of a run's problem text and its packaged model and data."""
    model, data = package / "model.py", package / "data.json"
    if not model.exists() or not data.exists():
        raise BadInput(f"Run {run_id} has no package with model.py and data.json at {package}.")
    return Exemplar(
        id=f"run-{run_id}",
        source="runs",
        question=problem.strip(),
        code=model.read_text(encoding="utf-8"),
        answer=objective,
        solver=solver,
        tags={"run": run_id},
        data=json.loads(data.read_text(encoding="utf-8")),
    )


def exemplar_from_run(folder: Path) -> Exemplar:
    """The solved example a finished, verified run folder holds."""
    result_path = folder / "result.json"
    if not result_path.exists():
        raise BadInput(f"{folder} has no result.json: the run did not finish.")
    result = json.loads(result_path.read_text(encoding="utf-8"))
    if not result.get("verified"):
        raise BadInput(f"Run {result.get('run_id', folder.name)} is not verified; only verified runs go into memory.")
    package = Path(result.get("package") or folder / "package")
    report_path = package / "report.json"
    report = json.loads(report_path.read_text(encoding="utf-8")) if report_path.exists() else {}
    chosen = report.get("result", {}).get("chosen_optimizer")
    solver = next((o.get("solver", "") for o in result.get("optimizers", []) if o.get("name") == chosen), "")
    problem = (folder / "problem.md").read_text(encoding="utf-8")
    return exemplar_from_package(result["run_id"], problem, package, result.get("objective"), solver)
