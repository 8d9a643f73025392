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
      run.json                        what a resume needs: run id, settings that shape the run, --out
      consensus.json                  the consensus decision (a finished stage, for resume)
      .nemo/stages.json               stages finished so far, with their details
      .nemo/checkpoints/              accepted work inside the agents stage (memory hits, the simulator)
      .nemo/run.lock                  held by the process working on the run

Every file nemo-opt itself writes here goes through a temporary file and a rename (:mod:`nemo_opt.fsutil`),
so a ``kill -9`` leaves each file either as it was or complete.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
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

    @property
    def run_meta(self) -> Path:
        return self.root / "run.json"

    @property
    def stages_file(self) -> Path:
        return self.internal / "stages.json"

    @property
    def checkpoints(self) -> Path:
        return self.internal / "checkpoints"

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

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the run's lock while working on it, so two processes never work on one run at once.

        The lock is an advisory ``flock``: the kernel releases it when the holder dies, even by ``kill -9``,
        so a killed run can be resumed at once without clearing anything."""
        self.internal.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.internal / "run.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise BadInput(
                    f"The run in {self.root} is being worked on by another process. Wait for it to end (or stop "
                    "it) before resuming."
                ) from None
            yield
        finally:
            os.close(fd)
