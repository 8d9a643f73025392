"""Retrieved exemplars as runnable files in the workspace, and the note that tells the agents about them."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

from nemo_opt.memory.store import Exemplar, Hit
from nemo_opt.workspace import Workspace

__all__ = ["exemplar_source", "memory_note", "write_exemplars"]

# Import names of the solver libraries exemplars use, to tell agents which exemplars they can run here.
_SOLVER_MODULES = {
    "gurobipy": "gurobipy",
    "coptpy": "coptpy",
    "pyscipopt": "pyscipopt",
    "pulp": "pulp",
    "highs": "highspy",
    "highspy": "highspy",
    "ortools": "ortools",
    "cvxpy": "cvxpy",
    "pyomo": "pyomo",
}


def _installed(solver: str) -> bool:
    module = _SOLVER_MODULES.get(solver.lower(), solver.lower())
    return bool(module) and importlib.util.find_spec(module) is not None


def exemplar_source(exemplar: Exemplar) -> str:
    """The exemplar as a Python file: the problem text as its docstring, then provenance, then the code."""
    question = exemplar.question.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    answer = "unknown" if exemplar.answer is None else f"{exemplar.answer:.10g}"
    header = [
        f'"""{question}\n"""',
        f"# Solved example {exemplar.id} (source: {exemplar.source}); optimal objective: {answer}",
    ]
    if exemplar.solver:
        header.append(f"# Solver library: {exemplar.solver}")
    return "\n".join(header) + "\n\n" + exemplar.code.rstrip() + "\n"


def write_exemplars(workspace: Workspace, hits: list[Hit]) -> list[Path]:
    """Write each hit as ``memory/ex_<i>.py`` (or ``memory/ex_<i>/model.py`` + ``data.json`` when it has data)."""
    paths: list[Path] = []
    for number, hit in enumerate(hits, 1):
        exemplar = hit.exemplar
        if exemplar.data is None:
            path = workspace.root / "memory" / f"ex_{number}.py"
        else:
            path = workspace.root / "memory" / f"ex_{number}" / "model.py"
            workspace.write_text(path.parent / "data.json", json.dumps(exemplar.data, indent=2) + "\n")
        workspace.write_text(path, exemplar_source(exemplar))
        paths.append(path)
    return paths


def memory_note(hits: list[Hit], paths: list[Path], workdir: Path) -> str:
    """Prompt text listing the exemplars with paths relative to the agent's working directory."""
    if not hits:
        return ""
    lines = [
        "",
        "## Solved examples",
        "",
        "Working models of similar problems (problem text in the docstring, then the code):",
        "Read them for modeling ideas and API idioms; their data and details differ from this problem, so never",
        "copy numbers or constraints from them without checking against the problem text above.",
        "",
    ]
    for hit, path in zip(hits, paths, strict=True):
        solver = hit.exemplar.solver
        runnable = "" if not solver or _installed(solver) else f" (uses {solver}, not installed here: read, do not run)"
        lines.append(f"- `{os.path.relpath(path, workdir)}`: {hit.exemplar.title}{runnable}")
    return "\n".join(lines) + "\n"
