"""Re-solve a delivered model package with changed data and re-check it with its simulator; no model service.

The package folder itself is never modified: each re-solve gets its own folder (``<package>/resolves/<time>``
by default) holding the model, the simulator, the changed ``data.json`` and the new ``solution.json``.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nemo_opt import door
from nemo_opt.exceptions import BadInput
from nemo_opt.fsutil import atomic_write_json
from nemo_opt.sandbox import sandbox_from_settings
from nemo_opt.sandbox.base import WorkspaceSandbox
from nemo_opt.settings import Settings
from nemo_opt.solution import SimVerdict, Solution, SolveStatus
from nemo_opt.stages.context import names_key
from nemo_opt.stages.referee import Referee, simulator_files
from nemo_opt.stages.validate import load_solution
from nemo_opt.workspace import Workspace

__all__ = ["Resolve", "apply_changes", "parse_assignment", "resolve_package"]


def parse_assignment(text: str) -> tuple[list[str], Any]:
    """``demand.north=120`` -> (["demand", "north"], 120). Values are JSON when they parse, else strings."""
    if "=" not in text:
        raise BadInput(f"--set {text!r}: expected NAME=VALUE, e.g. --set demand.north=120")
    path, raw = text.split("=", 1)
    keys = [k for k in path.strip().split(".") if k]
    if not keys:
        raise BadInput(f"--set {text!r}: the name before '=' is empty")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return keys, value


def _same_kind(old: Any, new: Any) -> bool:
    def number(v: Any) -> bool:
        return isinstance(v, int | float) and not isinstance(v, bool)

    if number(old):
        return number(new)
    return isinstance(new, type(old)) or old is None


def apply_changes(data: dict[str, Any], assignments: list[tuple[list[str], Any]]) -> dict[str, Any]:
    """A copy of ``data`` with each assignment applied; names must exist and values keep their kind."""
    out = copy.deepcopy(data)
    for keys, value in assignments:
        level: Any = out
        for depth, key in enumerate(keys):
            name = ".".join(keys[: depth + 1])
            if not isinstance(level, dict) or key not in level:
                options = ", ".join(sorted(map(str, level))[:12]) if isinstance(level, dict) else "none"
                raise BadInput(f"data.json has no '{name}'. Names available here: {options}.")
            if depth == len(keys) - 1:
                if not _same_kind(level[key], value):
                    raise BadInput(
                        f"'{name}' holds {type(level[key]).__name__} {level[key]!r}; {value!r} is a "
                        f"{type(value).__name__}. Give a value of the same kind."
                    )
                level[key] = value
            else:
                level = level[key]
    return out


@dataclass
class Resolve:
    """Outcome of one re-solve."""

    folder: Path
    status: SolveStatus
    objective: float | None
    verdict: SimVerdict | None = None
    agrees: bool = False
    error: str = ""
    changes: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """0 solved and confirmed; 1 the simulator disagrees; 4 the model did not run; 5 infeasible/unbounded."""
        if self.error:
            return 4
        if not self.status.has_solution:
            return 5
        return 0 if self.agrees else 1


def _check_reads(package: Path, names: list[str]) -> None:
    """Refuse a change that could not reach the answer: the model or the simulator never names that entry of
    data.json (its numbers are written in the code, as the whole-file agents of a small local model write them,
    taking them from the problem text). Re-solving would repeat the old answer as if it were the new one."""
    for file in ("model.py", "simulator/simulator.py"):
        if not names or not door.exists(package, file):
            continue
        code = door.read_text(package, file, errors="replace")  # agent-written code: through the safe door
        unread = [n for n in names if not names_key(code, n)]
        if unread:
            raise BadInput(
                f"{file} of this package never reads {', '.join(repr(n) for n in unread)} from data.json (its "
                "numbers are written in the code), so the change would not reach the answer. Edit the numbers in "
                f"{file}, or solve the problem text with the new numbers."
            )


def resolve_package(
    package: Path,
    settings: Settings,
    *,
    assignments: list[tuple[list[str], Any]] | None = None,
    data_file: Path | None = None,
    out: Path | None = None,
) -> Resolve:
    """Copy the package's model and simulator to a new folder, change the data, solve, and check the answer."""
    for name in ("model.py", "data.json"):
        if not (package / name).is_file():
            raise BadInput(f"{package} is not a model package: {name} is missing.")
    data = json.loads((package / "data.json").read_text(encoding="utf-8"))
    if data_file is not None:
        replacement = json.loads(data_file.read_text(encoding="utf-8"))
        if not isinstance(replacement, dict):
            raise BadInput(f"{data_file} must hold a JSON object of data values.")
        assignments = [([key], value) for key, value in replacement.items()] + list(assignments or [])
    changed = apply_changes(data, assignments or [])
    _check_reads(package, sorted({str(keys[0]) for keys, _ in assignments or [] if keys}))
    folder = (out or package / "resolves" / time.strftime("%Y%m%d-%H%M%S")).resolve()
    if folder.exists() and any(folder.iterdir()):
        raise BadInput(f"{folder} already exists and is not empty; choose another --out.")
    folder.mkdir(parents=True, exist_ok=True)
    door.copy_file(package, "model.py", folder, "model.py")
    atomic_write_json(folder / "data.json", changed)
    sandbox = sandbox_from_settings(settings, folder)
    run = sandbox.run("python model.py", cwd=folder, timeout=settings.sandbox_timeout)
    workspace = Workspace(folder)
    workspace.write_text("run.log", run.output)
    changes = [f"{'.'.join(keys)} = {json.dumps(value)}" for keys, value in assignments or []]
    solution, problem = load_solution(workspace, folder / "solution.json")
    if not run.ok or solution is None:
        detail = problem or f"`python model.py` failed ({run.describe()})"
        return Resolve(folder, SolveStatus.ERROR, None, error=f"{detail}:\n{run.output[-2000:]}", changes=changes)
    result = Resolve(folder, solution.status, solution.objective, changes=changes)
    # The model has run: only now does the simulator come in (for the record), and it judges from a fresh folder.
    simulator = door.copy_files(package, "simulator", folder, "simulator", include=simulator_files)
    if solution.status.has_solution and "simulator.py" in simulator.copied:
        result.verdict, result.agrees = _check(
            workspace, package, sandbox, solution, changed, simulator.copied, settings
        )
    return result


def _check(
    workspace: Workspace,
    package: Path,
    sandbox: WorkspaceSandbox,
    solution: Solution,
    data: Any,
    names: list[str],
    settings: Settings,
) -> tuple[SimVerdict, bool]:
    """The packaged simulator's verdict on the new solution, run apart from the model (a fresh folder)."""
    referee = Referee(workspace, sandbox, data, timeout=settings.sandbox_timeout)
    files = {f"simulator/{n}": door.read_bytes(package, f"simulator/{n}") for n in names}
    files.setdefault("simulator/__init__.py", b"")
    version = referee.candidate_from(files)
    verdict = referee.check(solution.variables, settings.atol, version)
    agrees = (
        verdict.ok
        and verdict.feasible
        and solution.objective is not None
        and verdict.objective is not None
        and abs(verdict.objective - solution.objective) <= settings.atol + settings.rtol * abs(solution.objective)
    )
    return verdict, bool(agrees)
