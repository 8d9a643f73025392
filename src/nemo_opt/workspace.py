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
      .nemo/referee/                  the frozen referee: accepted simulator versions, data and harness, hashed
      .nemo/run.lock                  held by the process working on the run

Agents write here, so everything here is untrusted: the host reads and writes it only through the safe door
(:mod:`nemo_opt.door`: no symlink followed, regular files only, size caps, bounded JSON, writes by temporary file
and rename), so a ``kill -9`` leaves each file either as it was or complete, and nothing an agent placed here
makes the host read or write outside the folder.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePath, PurePosixPath
from typing import Any

from nemo_opt import door
from nemo_opt.exceptions import BadInput, DoorRefused
from nemo_opt.fsutil import to_jsonable

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

    @property
    def referee_dir(self) -> Path:
        return self.internal / "referee"

    def create(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        for folder in (self.extract_dir, self.simulator_dir, self.trajectories, self.internal):
            self.make_dirs(folder)

    # --- access (every read and write goes through the safe door, :mod:`nemo_opt.door`) ----------------------
    def relative(self, relative: str | PurePath, *, base: Path | None = None) -> PurePosixPath:
        """``relative`` (taken from ``base``, default the root) as a clean path inside the workspace.

        Lexical only: ``..`` may not leave the root, and symlinks are refused when the path is opened."""
        start = door.normalise(base if base is not None else ".", self.root)
        candidate = Path(relative)
        joined = candidate if candidate.is_absolute() else Path(str(start)) / candidate
        return door.normalise(joined, self.root)

    def within(self, relative: str | PurePath, scope: str | PurePath) -> bool:
        """Whether ``relative`` (a workspace path) lies inside the folder ``scope``."""
        inner = self.relative(relative)
        outer = self.relative(scope)
        return outer == PurePosixPath(".") or inner == outer or inner.is_relative_to(outer)

    def rel(self, path: Path) -> str:
        """``path`` relative to the workspace root, for messages."""
        try:
            return str(self.relative(path))
        except DoorRefused:
            return str(path)

    def write_text(self, relative: str | PurePath, text: str) -> Path:
        return door.write_text(self.root, self.relative(relative), text)

    def write_json(self, relative: str | PurePath, data: Any) -> Path:
        return door.write_json(self.root, self.relative(relative), to_jsonable(data))

    def read_bytes(self, relative: str | PurePath, *, max_bytes: int = door.MAX_READ_BYTES) -> bytes:
        return door.read_bytes(self.root, self.relative(relative), max_bytes=max_bytes)

    def read_text(self, relative: str | PurePath, *, max_bytes: int = door.MAX_READ_BYTES) -> str:
        return door.read_text(self.root, self.relative(relative), max_bytes=max_bytes)

    def read_json(self, relative: str | PurePath, *, max_bytes: int = door.MAX_READ_BYTES) -> Any:
        return door.read_json(self.root, self.relative(relative), max_bytes=max_bytes)

    def exists(self, relative: str | PurePath) -> bool:
        """A regular file is there (no symlink on the way)."""
        return door.exists(self.root, self.relative(relative))

    def remove(self, relative: str | PurePath) -> None:
        door.remove(self.root, self.relative(relative))

    def make_dirs(self, relative: str | PurePath) -> Path:
        return door.make_dirs(self.root, self.relative(relative))

    def copy(self, source: str | PurePath, target: str | PurePath) -> Path:
        """Copy one regular file within the workspace."""
        return door.copy_file(self.root, self.relative(source), self.root, self.relative(target))

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the run's lock while working on it, so two processes never work on one run at once.

        The lock is an advisory ``flock``: the kernel releases it when the holder dies, even by ``kill -9``,
        so a killed run can be resumed at once without clearing anything."""
        fd = door.open_lock_file(self.root, self.relative(self.internal / "run.lock"))
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
