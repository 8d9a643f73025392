"""The frozen referee: the accepted simulator, its tests, the data and the check harness, fixed and run apart.

An optimizer is judged by the simulator, so it must not be able to change it. Once the simulator agent's work is
accepted, its files (every regular ``.py`` file of ``simulator/``, except a ``conftest.py``) are read through the
safe door and kept as a *version*: their bytes in memory, a copy under ``.nemo/referee/v<N>/`` and their SHA-256
in ``.nemo/referee/referee.json``. The data is the host's own (computed from P*, never read back from the
workspace) and the harness is nemo-opt's own source. Every judgement runs that version in isolation:

- a fresh folder holding only the frozen files and a copy of the candidate the host wrote itself;
- a sandbox on that folder alone (the agents' workspace is not visible in it under bubblewrap);
- ``python -I -B``: no user site, no ``PYTHON*`` variables, nothing from the current directory on the import
  path, no bytecode read from or written to anywhere an agent wrote;
- pytest with its plugin autoload off, no conftest and an ini file of the host's own;
- the verdict read back through the safe door (size- and depth-bounded).

A repaired simulator becomes a new version (its tests run again in isolation before it is adopted);
:meth:`Referee.tampering` reports when files only the host or the simulator agent may change were changed by
someone else, and :meth:`Referee.restore_live` puts the frozen files back.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import shutil
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from nemo_opt import door
from nemo_opt.exceptions import DoorRefused
from nemo_opt.harness import harness_source
from nemo_opt.sandbox.base import ExecResult, WorkspaceSandbox
from nemo_opt.solution import SimVerdict
from nemo_opt.workspace import Workspace

__all__ = ["HARNESS", "Referee", "RefereeVersion", "simulator_files"]

logger = logging.getLogger("nemo_opt.referee")

HARNESS = "check_solution.py"
# A simulator is a few small modules; anything bigger is not one.
_MAX_SIMULATOR_FILE = 2 * 1024 * 1024
_MAX_VERDICT_BYTES = 8 * 1024 * 1024
_PYTEST_INI = "[pytest]\naddopts = -p no:cacheprovider\n"
_TESTS = "simulator/test_simulator.py"


def _remove(folder: Path) -> None:
    """Remove a check folder; one the simulator filled with thousands of nested folders is left behind (Python's
    rmtree recurses per level) rather than failing the check."""
    try:
        shutil.rmtree(folder, ignore_errors=True)
    except RecursionError:
        logger.warning("check folder %s left behind: nested too deeply to remove", folder)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def simulator_files(name: str) -> bool:
    """Which files of ``simulator/`` belong to the simulator: Python modules, never a pytest ``conftest.py``."""
    return name.endswith(".py") and name != "conftest.py"


@dataclass(frozen=True)
class RefereeVersion:
    """One frozen referee: file path (in the referee's layout) -> bytes, with their hashes."""

    number: int
    files: Mapping[str, bytes]
    refused: Mapping[str, str] = field(default_factory=dict)

    @property
    def hashes(self) -> dict[str, str]:
        return {name: _sha(data) for name, data in sorted(self.files.items())}

    @property
    def simulator(self) -> dict[str, bytes]:
        return {k: v for k, v in self.files.items() if k.startswith("simulator/")}


class Referee:
    """Freezes accepted simulators and judges solutions with the frozen version, apart from the agents."""

    def __init__(
        self, workspace: Workspace, sandbox: WorkspaceSandbox, data: Any, *, timeout: float, rtol: float = 1e-6
    ) -> None:
        self.workspace = workspace
        self.rtol = rtol  # every judgement passes the run's rtol with the atol it is given
        self.sandbox = sandbox
        self.timeout = timeout
        self._fixed = {
            "data.json": (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8"),
            HARNESS: harness_source(HARNESS).encode("utf-8"),
        }
        self.current: RefereeVersion | None = None
        self.history: list[dict[str, Any]] = []
        # What simulator/ held when the current version was adopted: a later change the simulator agent did not
        # make (it was not working) is someone else's.
        self._adopted_state: dict[str, str] = {}
        self._lock = threading.Lock()

    # --- versions -------------------------------------------------------------------------------------------
    @property
    def isolated(self) -> bool:
        """Whether agents are kept from the referee (bubblewrap with write scopes); the plain backend cannot."""
        return bool(getattr(self.sandbox, "enforces_scope", False))

    def candidate(self, *, tests: bool = True) -> RefereeVersion | str:
        """The live ``simulator/`` as a would-be version; a string says why it cannot be one. ``tests=False``:
        a draft whose tests are still to come (to run it, never to adopt it)."""
        staged: dict[str, bytes] = {}
        refused: dict[str, str] = {}
        try:
            entries = door.list_files(self.workspace.root, "simulator")
        except DoorRefused as exc:
            return str(exc)
        for name, kind in entries.items():
            if not simulator_files(name):
                continue
            if kind != "file":
                refused[name] = f"{'a directory' if kind == 'dir' else kind}, not a regular file"
                continue
            try:
                staged[f"simulator/{name}"] = door.read_bytes(
                    self.workspace.root, f"simulator/{name}", max_bytes=_MAX_SIMULATOR_FILE
                )
            except (DoorRefused, OSError) as exc:
                refused[name] = str(exc)
        for required in ("simulator.py", "test_simulator.py") if tests else ("simulator.py",):
            if f"simulator/{required}" not in staged:
                why = refused.get(required, "it does not exist")
                return f"simulator/{required} cannot be used: {why}"
        staged.setdefault("simulator/__init__.py", b"")
        number = (self.current.number + 1) if self.current else 1
        return RefereeVersion(number, {**staged, **self._fixed}, refused)

    def candidate_from(self, simulator: Mapping[str, bytes]) -> RefereeVersion:
        """A version made of given simulator files (e.g. a delivered package's) with the host's data and harness."""
        return RefereeVersion(0, {**simulator, **self._fixed})

    def pinned(self) -> Referee:
        """This referee held at its current version: a simulator the agent repairs meanwhile (a new version
        adopted by another thread) does not change what judges, or what is recorded as having judged, one
        validation."""
        twin = copy.copy(self)
        twin.adopt = self._refuse_adopt  # type: ignore[method-assign]
        return twin

    def _refuse_adopt(self, version: RefereeVersion) -> None:
        raise RuntimeError("a pinned referee does not adopt new versions")

    def adopt(self, version: RefereeVersion) -> None:
        """Make ``version`` the referee from now on, and record it in the run folder."""
        with self._lock:
            folder = self.workspace.referee_dir / f"v{version.number}"
            for name, data in version.files.items():
                door.write_bytes(self.workspace.root, self.workspace.relative(folder / name), data)
            self.current = version
            self._adopted_state = self._live_state()
            self.history.append({"version": version.number, "hashes": version.hashes, "refused": dict(version.refused)})
            self.workspace.write_json(self.workspace.referee_dir / "referee.json", {"versions": self.history})

    def restore(self) -> bool:
        """On a resume: the last recorded version, if its frozen copy still has its recorded hashes."""
        try:
            record = self.workspace.read_json(self.workspace.referee_dir / "referee.json")
            last = record["versions"][-1]
            folder = self.workspace.referee_dir / f"v{int(last['version'])}"
            files = {name: self.workspace.read_bytes(folder / name) for name in last["hashes"]}
        except (OSError, KeyError, IndexError, TypeError, ValueError):
            return False
        if any(_sha(data) != last["hashes"][name] for name, data in files.items()):
            return False
        files.update(self._fixed)  # the host's own data and harness, whatever the copy on disk says
        self.history = list(record["versions"])
        self.current = RefereeVersion(int(last["version"]), files, dict(last.get("refused", {})))
        self._adopted_state = self._live_state()
        return True

    # --- judging --------------------------------------------------------------------------------------------
    def _fresh(self, version: RefereeVersion) -> Path:
        parent = self.workspace.make_dirs(self.workspace.referee_dir / "checks")
        folder = Path(tempfile.mkdtemp(prefix="check-", dir=parent))
        for name, data in version.files.items():
            door.write_bytes(folder, name, data)
        door.write_text(folder, "pytest.ini", _PYTEST_INI)
        return folder

    def _run(self, folder: Path, command: str, timeout: float | None = None) -> ExecResult:
        sandbox = self.sandbox.relocated(folder)
        return sandbox.run(
            command,
            cwd=folder,
            timeout=timeout or self.timeout,
            env={"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "PYTHONNOUSERSITE": "1"},
        )

    def _judge(self, payload: Any, batch: bool, tol: float, version: RefereeVersion | None) -> tuple[Any, str]:
        version = version or self.current
        if version is None:
            return None, "no simulator has been accepted yet"
        folder = self._fresh(version)
        try:
            door.write_json(folder, "candidate.json", payload)
            flag = " --batch" if batch else ""
            result = self._run(
                folder, f"python -I -B {HARNESS} candidate.json verdict.json --tol {tol!r} --rtol {self.rtol!r}{flag}"
            )
            try:
                return door.read_json(folder, "verdict.json", max_bytes=_MAX_VERDICT_BYTES), ""
            except FileNotFoundError:
                return (
                    None,
                    f"the simulator harness produced no verdict ({result.describe()}):\n{result.output[-3000:]}",
                )
            except (DoorRefused, OSError, json.JSONDecodeError) as exc:
                return None, f"unreadable simulator verdict: {exc}"
        finally:
            _remove(folder)

    def check(self, variables: Any, tol: float, version: RefereeVersion | None = None) -> SimVerdict:
        """The frozen simulator's verdict on one solution's variables."""
        raw, error = self._judge({"variables": variables}, False, tol, version)
        if raw is None:
            return SimVerdict(ok=False, error=error)
        try:
            return SimVerdict.model_validate(raw)
        except ValidationError as exc:
            return SimVerdict(ok=False, error=f"unreadable simulator verdict: {exc.errors()[0]['msg']}")

    def check_batch(
        self, points: list[dict[str, Any]], tol: float, version: RefereeVersion | None = None
    ) -> list[SimVerdict] | str:
        """Verdicts for many variable mappings in one isolated run; a string says why none came."""
        raw, error = self._judge(points, True, tol, version)
        if raw is None:
            return error
        if isinstance(raw, dict):  # the whole batch failed (e.g. the simulator does not import)
            return str(raw.get("error", "the simulator failed"))
        try:
            verdicts = [SimVerdict.model_validate(v) for v in raw]
        except (ValidationError, TypeError) as exc:
            return f"unreadable simulator verdicts: {exc}"
        if len(verdicts) != len(points):
            return f"the simulator returned {len(verdicts)} verdicts for {len(points)} points"
        return verdicts

    def run_tests(self, version: RefereeVersion | None = None) -> ExecResult | str:
        """The frozen simulator's own pytest cases, run in isolation; a string when there is no version."""
        version = version or self.current
        if version is None:
            return "no simulator has been accepted yet"
        folder = self._fresh(version)
        try:
            return self._run(folder, f"python -I -B -m pytest -q --noconftest -c pytest.ini {_TESTS}")
        finally:
            _remove(folder)

    # --- tampering ------------------------------------------------------------------------------------------
    def tampering(self, *, simulator_idle: bool) -> list[str]:
        """Files changed by someone who may not change them: the frozen copy on disk, the problem's data in the
        workspace, and (while the simulator agent is not working) ``simulator/`` itself."""
        version = self.current
        if version is None:
            return []
        found: list[str] = []
        folder = self.workspace.referee_dir / f"v{version.number}"
        for name, data in version.files.items():
            if not self._same(folder / name, data):
                found.append(f"{self.workspace.rel(folder / name)} (the frozen referee)")
        if simulator_idle and self._live_state() != self._adopted_state:
            found.append("simulator/ (changed after the simulator agent's work was accepted)")
        try:
            data_ok = self.workspace.read_json("data.json") == json.loads(self._fixed["data.json"])
        except (OSError, ValueError):
            data_ok = False
        if not data_ok:
            found.append("data.json (the problem's data)")
        return found

    def _live_state(self) -> dict[str, str]:
        """simulator/'s entries as name -> content hash (regular files) or what else they are."""
        state: dict[str, str] = {}
        try:
            entries = door.list_files(self.workspace.root, "simulator")
        except (OSError, DoorRefused) as exc:
            return {"": str(exc)}
        for name, kind in entries.items():
            if kind == "file" and simulator_files(name):
                try:
                    state[name] = _sha(
                        door.read_bytes(self.workspace.root, f"simulator/{name}", max_bytes=_MAX_SIMULATOR_FILE)
                    )
                except (OSError, DoorRefused) as exc:
                    state[name] = str(exc)
            elif kind != "dir":
                state[name] = kind
        return state

    def _same(self, path: Path, data: bytes) -> bool:
        try:
            return self.workspace.read_bytes(path, max_bytes=max(len(data), 1) * 2 + 1024) == data
        except (OSError, DoorRefused):
            return False

    def restore_live(self) -> None:
        """Put the frozen simulator, the data and the harness back where agents read them."""
        version = self.current
        if version is None:
            return
        with self._lock:
            folder = self.workspace.referee_dir / f"v{version.number}"
            # Only what differs is written: files that are as frozen keep their times (a resume touches nothing).
            for name, data in version.files.items():
                if not self._same(folder / name, data):
                    door.write_bytes(self.workspace.root, self.workspace.relative(folder / name), data)
            for name, data in version.simulator.items():
                if not self._same(self.workspace.root / name, data):
                    door.write_bytes(self.workspace.root, name, data)
            for name in door.list_files(self.workspace.root, "simulator"):
                if simulator_files(name) and f"simulator/{name}" not in version.files:
                    door.remove(self.workspace.root, f"simulator/{name}")
            if not self._same(self.workspace.root / "data.json", self._fixed["data.json"]):
                door.write_bytes(self.workspace.root, "data.json", self._fixed["data.json"])
            self._adopted_state = self._live_state()
