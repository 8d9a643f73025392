"""The plain subprocess backend, and the base class every subprocess-based backend shares."""

from __future__ import annotations

import contextlib
import copy
import os
import signal
import threading
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from nemo_opt.exceptions import SandboxError
from nemo_opt.sandbox._cgroup import CommandCgroups, memory_cgroup_root, pids_cgroup_root
from nemo_opt.sandbox._env import MARKER_VAR, accepted_names, add_variables, base_environment
from nemo_opt.sandbox._limits import MIB, detect_limit, launcher_argv
from nemo_opt.sandbox._proc import proc_pids, read_proc
from nemo_opt.sandbox._process import ProcessOutcome, run_process
from nemo_opt.sandbox._watch import LimitWatch
from nemo_opt.sandbox.base import ExecResult, Limits

__all__ = ["PlainSandbox", "SubprocessSandbox", "kill_marked_processes"]

BASH = "/bin/bash"
# A sweep that keeps finding new marked processes is racing a fork loop; each pass kills what it saw.
_MAX_SWEEPS = 10


class SubprocessSandbox(ABC):
    """Runs each command as a fresh process group under rlimits, a timeout and an output cap.

    Subclasses decide how the command is wrapped (``_execute``) and what they can contain (``containment``).
    """

    name: str
    containment: str

    def __init__(
        self,
        workspace: Path,
        limits: Limits | None = None,
        *,
        env_passthrough: Sequence[str] = (),
        slots: threading.BoundedSemaphore | None = None,
    ) -> None:
        workspace.mkdir(parents=True, exist_ok=True)
        self.workspace = workspace.resolve()
        self.limits = limits or Limits()
        self.env_passthrough = accepted_names(env_passthrough)
        # Shared by every sandbox of the process when set: bounds CPU-heavy commands run at once.
        self.slots = slots
        # The folders commands may write to; None: the whole workspace.
        self.writable: tuple[Path, ...] | None = None

    @property
    def enforces_scope(self) -> bool:
        """Whether commands of a ``scoped`` sandbox really cannot write outside its folders."""
        return False

    def scoped(self, writable: Sequence[Path]) -> SubprocessSandbox:
        """A sandbox like this one (limits, passthrough and ``slots`` shared) whose commands see the whole
        workspace but may write only inside ``writable``: existing folders inside the workspace (and inside this
        sandbox's own scope, if it has one), relative ones taken from it. Only backends whose ``enforces_scope`` is
        True hold commands to it."""
        folders: list[Path] = []
        for folder in writable:
            path = (self.workspace / folder).resolve()
            if not path.is_relative_to(self.workspace):
                raise SandboxError(f"Writable folder {folder} is outside the sandbox workspace {self.workspace}.")
            if self.writable is not None and not any(path.is_relative_to(outer) for outer in self.writable):
                raise SandboxError(f"Writable folder {path} is outside this sandbox's scope (a scope only narrows).")
            if not path.is_dir():
                raise SandboxError(f"Writable folder {path} does not exist or is not a directory.")
            if path not in folders:
                folders.append(path)
        twin = copy.copy(self)
        twin.writable = tuple(folders)
        return twin

    def relocated(self, workspace: Path) -> SubprocessSandbox:
        """A sandbox of the same kind, limits, passthrough and ``slots`` on ``workspace`` (created if missing),
        all of it writable: a write scope names folders of the old workspace and does not carry over."""
        workspace.mkdir(parents=True, exist_ok=True)
        twin = copy.copy(self)
        twin.workspace = workspace.resolve()
        twin.writable = None
        return twin

    def describe(self) -> str:
        """One line for the CLI: the backend, its workspace and its limits."""
        lim = self.limits
        return (
            f"{self.name} sandbox in {self.workspace}: timeout {lim.timeout:g}s, memory {lim.memory_mb} MiB, "
            f"CPU {lim.cpu_seconds}s, files {lim.file_size_mb} MiB, {lim.max_processes} processes, "
            f"output {lim.max_output_mb} MiB, workspace disk {lim.disk_mb} MiB"
        )

    def describe_containment(self) -> str:
        """What this backend contains and what it does not, in one sentence (with this machine's cgroups)."""
        if pids_cgroup_root() is not None:
            processes = "a pids cgroup caps the processes and ends every one of them, daemons included"
        else:
            processes = "RLIMIT_NPROC caps the processes"
            if os.getuid() == 0:
                processes = "no pids cgroup is writable and root is exempt from RLIMIT_NPROC: no process cap holds"
            if self.name == "plain":
                processes += "; daemons that drop their environment can outlive the command"
        if memory_cgroup_root() is not None:
            memory = (
                f"a memory cgroup holds all the command's processes together to {self.limits.memory_mb} MiB, "
                "shared memory, memfd and tmpfs pages and page cache included"
            )
            if self.name == "plain":
                memory += ", while it runs (what it leaves in the host's /dev/shm or SysV shared memory outlives it)"
        else:
            memory = (
                f"no memory cgroup is writable: RLIMIT_AS caps each process at {self.limits.memory_mb} MiB on its "
                "own, so several processes use several times that, and SysV shared memory and memfd are not counted"
            )
        return f"{self.containment}; {processes}; {memory}; the workspace is held to {self.limits.disk_mb} MiB of disk"

    def _scope_text(self) -> str:
        if self.writable is None:
            return "the whole workspace is writable"
        where = ", ".join(str(path) for path in self.writable) or "nothing"
        return f"writes are scoped to {where}"

    def resolve_cwd(self, cwd: Path) -> Path:
        """``cwd`` as an absolute directory inside the workspace (relative paths are taken from the workspace)."""
        path = (self.workspace / cwd).resolve()
        if not path.is_relative_to(self.workspace):
            raise SandboxError(f"Working directory {cwd} is outside the sandbox workspace {self.workspace}.")
        if not path.is_dir():
            raise SandboxError(f"Working directory {path} does not exist or is not a directory.")
        return path

    def run(
        self,
        command: str,
        *,
        cwd: Path,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
    ) -> ExecResult:
        """Run ``command`` with bash in ``cwd`` (inside the workspace) under the limits, and wait for it.

        ``timeout`` overrides ``limits.timeout``; ``env`` adds variables (secret-looking names are refused).
        """
        workdir = self.resolve_cwd(cwd)
        variables = base_environment(self.name, self.workspace, self._tmpdir())
        add_variables(variables, self.env_passthrough, env)
        wall = self.limits.timeout if timeout is None else timeout
        with self.slots or contextlib.nullcontext():
            outcome = self._execute(command, workdir, variables, wall)
        return ExecResult(
            command=command,
            exit_code=outcome.exit_code,
            output=outcome.output,
            seconds=outcome.seconds,
            limit_hit=detect_limit(outcome, self.limits),
            truncated=outcome.truncated,
            output_bytes=outcome.output_bytes,
            backend=self.name,
        )

    @contextlib.contextmanager
    def _guards(self) -> Iterator[tuple[CommandCgroups, LimitWatch]]:
        """The command's pids and memory cgroups (those the machine offers) and the watcher of its limits."""
        cgroups = CommandCgroups.create(max_pids=self.limits.max_processes, memory_bytes=self.limits.memory_mb * MIB)
        try:
            yield cgroups, LimitWatch(cgroups, self.workspace, self.limits.disk_mb * MIB)
        finally:
            cgroups.remove()

    @property
    def max_output_bytes(self) -> int:
        """Output beyond this many bytes kills the command."""
        return self.limits.max_output_mb * MIB

    @abstractmethod
    def _tmpdir(self) -> str:
        """TMPDIR as the command sees it."""

    @abstractmethod
    def _execute(self, command: str, cwd: Path, env: dict[str, str], timeout: float) -> ProcessOutcome:
        """Launch ``command`` in ``cwd`` with exactly ``env`` and return how it ended."""


class PlainSandbox(SubprocessSandbox):
    """A plain subprocess: timeouts, rlimits and a scrubbed environment, but no filesystem or network isolation."""

    name: str = "plain"
    containment: str = (
        "plain subprocess: timeouts, rlimits and a scrubbed environment only; code can reach the network, "
        "write anywhere and read any file this user can (including /proc/<pid>/environ of this user's processes)"
    )

    def describe_containment(self) -> str:
        scope = "write scopes are not enforced: every command can write the whole workspace and beyond"
        if self.writable is not None:
            scope = f"{self._scope_text()} but not enforced: the command can write the whole workspace and beyond"
        return f"{super().describe_containment()}; {scope}"

    def _tmpdir(self) -> str:
        return str(self.workspace / ".tmp")

    def _execute(self, command: str, cwd: Path, env: dict[str, str], timeout: float) -> ProcessOutcome:
        Path(self._tmpdir()).mkdir(exist_ok=True)
        marker = uuid.uuid4().hex
        env[MARKER_VAR] = marker
        with self._guards() as (cgroups, watch):
            return run_process(
                launcher_argv(self.limits, [BASH, "-c", command], cgroups.procs_files),
                cwd=cwd,
                env=env,
                timeout=timeout,
                max_output_bytes=self.max_output_bytes,
                after_exit=lambda: kill_marked_processes(marker),
                watch=watch,
                cgroups=cgroups,
            )


def _environ_has(pid: str, needle: bytes) -> bool:
    environ = read_proc(pid, "environ")  # None: gone already, or another user's process
    return environ is not None and needle in environ.split(b"\0")


def kill_marked_processes(marker: str) -> int:
    """SIGKILL every process whose initial environment carries ``NEMO_SANDBOX_ID=<marker>``; returns how many.

    This catches what a process-group kill misses: processes that called ``setsid`` or ``setpgid`` to leave the
    group (daemons). A process that exec'd with a new environment no longer carries the marker and is not found.
    """
    needle = f"{MARKER_VAR}={marker}".encode()
    own = str(os.getpid())
    killed: set[str] = set()
    for _ in range(_MAX_SWEEPS):
        found = [pid for pid in proc_pids() if pid != own and pid not in killed and _environ_has(pid, needle)]
        if not found:
            break
        for pid in found:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(pid), signal.SIGKILL)
            killed.add(pid)
    return len(killed)
