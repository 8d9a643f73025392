"""The shared workspace of one run (the Workspace-State paradigm).

Agents do not message each other; they read, import and run each other's files in this folder::

    <root>/
      problem.md                      the description D
      spec.json                       P*; extraction candidates under extract/
      data.json                       sets and parameters, read by the simulator and every model
      simulator/simulator.py          simulate(solution, data, tol) -> verdict
      simulator/test_simulator.py     the simulator's own pytest cases
      optimizers/opt_<k>/model.py     reads data.json, solves, writes solution.json
      optimizers/opt_<k>/validation_<round>.json
      trajectories/<agent>.json       every agent's steps
      package/                        the delivered model package
      result.json                     the final answer and its provenance
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nemo_opt.exceptions import BadInput
from nemo_opt.fsutil import atomic_write_json, atomic_write_text, read_json

__all__ = ["Workspace"]


class Workspace:
    """Paths and safe file access inside one run folder."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    # --- layout -------------------------------------------------------------------------------------------
    @property
    def problem(self) -> Path:
        return self.root / "problem.md"

    @property
    def spec(self) -> Path:
        return self.root / "spec.json"

    @property
    def data(self) -> Path:
        return self.root / "data.json"

    @property
    def extract_dir(self) -> Path:
        return self.root / "extract"

    @property
    def simulator_dir(self) -> Path:
        return self.root / "simulator"

    @property
    def trajectories(self) -> Path:
        return self.root / "trajectories"

    @property
    def package_dir(self) -> Path:
        return self.root / "package"

    @property
    def result(self) -> Path:
        return self.root / "result.json"

    @property
    def internal(self) -> Path:
        """Files nemo-opt itself places in the workspace (harness scripts)."""
        return self.root / ".nemo"

    def optimizer_dir(self, k: int) -> Path:
        return self.root / "optimizers" / f"opt_{k}"

    def create(self) -> None:
        for folder in (self.root, self.extract_dir, self.simulator_dir, self.trajectories, self.internal):
            folder.mkdir(parents=True, exist_ok=True)

    # --- access -------------------------------------------------------------------------------------------
    def resolve(self, relative: str | Path, *, base: Path | None = None) -> Path:
        """Resolve ``relative`` (against ``base``, default the root); refuse anything outside the workspace.

        Symlinks are followed before the check, so a link pointing outside is refused too.
        """
        start = base or self.root
        candidate = Path(relative)
        target = (candidate if candidate.is_absolute() else start / candidate).resolve()
        if not target.is_relative_to(self.root):
            raise BadInput(f"'{relative}' is outside the workspace {self.root}; use a path inside it.")
        return target

    def rel(self, path: Path) -> str:
        """``path`` relative to the workspace root, for messages."""
        try:
            return str(path.resolve().relative_to(self.root))
        except ValueError:
            return str(path)

    def write_text(self, relative: str | Path, text: str) -> Path:
        path = self.resolve(relative)
        atomic_write_text(path, text)
        return path

    def write_json(self, relative: str | Path, data: Any) -> Path:
        path = self.resolve(relative)
        atomic_write_json(path, data)
        return path

    def read_json(self, relative: str | Path) -> Any:
        return read_json(self.resolve(relative))
