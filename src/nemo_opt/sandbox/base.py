"""The sandbox seam: run one shell command in a workspace, under limits, and report what happened."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol, runtime_checkable

__all__ = ["ExecResult", "Limit", "Limits", "Sandbox", "WorkspaceSandbox"]


class Limit(StrEnum):
    """Which limit stopped a command."""

    TIMEOUT = "timeout"
    MEMORY = "memory"
    CPU = "cpu"
    FILE_SIZE = "file_size"
    PROCESSES = "processes"
    OUTPUT = "output"
    DISK = "disk"


@dataclass(frozen=True)
class Limits:
    """Resource limits of one command."""

    timeout: float = 120.0
    memory_mb: int = 4096
    cpu_seconds: int = 300
    file_size_mb: int = 512
    max_processes: int = 256
    max_output_mb: int = 64
    # The whole workspace, all files together: RLIMIT_FSIZE caps one file, not how many a command writes.
    disk_mb: int = 2048


@dataclass(frozen=True)
class ExecResult:
    """Outcome of one sandboxed command.

    ``output`` is stdout and stderr interleaved as the command wrote them, shortened to its head and tail
    when long (``truncated`` then says so and ``output_bytes`` gives the full size).
    """

    command: str
    exit_code: int
    output: str
    seconds: float
    limit_hit: Limit | None = None
    truncated: bool = False
    output_bytes: int = 0
    backend: str = ""

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and self.limit_hit is None

    def describe(self) -> str:
        """One line for humans and agents: exit code, limit, time."""
        parts = [f"exit code {self.exit_code}", f"{self.seconds:.2f}s"]
        if self.limit_hit is not None:
            parts.insert(0, f"stopped: {self.limit_hit.value} limit reached")
        if self.truncated:
            parts.append(f"output shortened from {self.output_bytes} bytes")
        return ", ".join(parts)


@runtime_checkable
class Sandbox(Protocol):
    """Runs shell commands confined to a workspace directory."""

    name: str

    def run(
        self,
        command: str,
        *,
        cwd: Path,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
    ) -> ExecResult:
        """Run ``command`` with bash in ``cwd`` (which must lie inside the workspace) and wait for it."""
        ...


@runtime_checkable
class WorkspaceSandbox(Sandbox, Protocol):
    """A sandbox on one workspace that the pipeline can narrow per agent and move for the referee."""

    @property
    def enforces_scope(self) -> bool:
        """Whether commands of a :meth:`scoped` sandbox really cannot write outside its folders."""
        ...

    def scoped(self, writable: Sequence[Path]) -> WorkspaceSandbox:
        """A sandbox like this one whose commands may write only inside ``writable``."""
        ...

    def relocated(self, workspace: Path) -> WorkspaceSandbox:
        """A sandbox like this one on another workspace (all of it writable)."""
        ...

    def describe_containment(self) -> str:
        """What this backend contains and what it does not, in one sentence."""
        ...
