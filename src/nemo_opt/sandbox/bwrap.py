"""The bubblewrap backend: the plain machinery, plus fresh namespaces and a filesystem holding only what code needs."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from nemo_opt.exceptions import SandboxError
from nemo_opt.sandbox._limits import MIB, launcher_argv
from nemo_opt.sandbox._process import ProcessOutcome, run_process
from nemo_opt.sandbox.base import Limits
from nemo_opt.sandbox.local import BASH, SubprocessSandbox

__all__ = ["BWRAP_FIX", "BwrapSandbox", "bwrap_available", "bwrap_problem", "disables_userns"]

BWRAP_FIX = (
    "Install bubblewrap (Debian/Ubuntu: `apt install bubblewrap`; Fedora: `dnf install bubblewrap`) and make sure "
    "unprivileged user namespaces are enabled (sysctl user.max_user_namespaces > 0)."
)
_NOT_INSTALLED = "bwrap is not installed (not found on PATH)"
_PROBE_TIMEOUT = 10.0
# Used when the caller is root: a non-zero uid inside the namespace leaves the command without capabilities.
_SANDBOX_UID = "1000"
_SYSTEM_DIRS = ("/bin", "/lib", "/lib32", "/lib64", "/libx32", "/sbin")
# What programs read from /etc to start, resolve users and names, and verify TLS; everything else stays hidden.
_ETC_ENTRIES = (
    "alternatives",
    "ca-certificates",
    "fonts",
    "group",
    "host.conf",
    "hosts",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "localtime",
    "mime.types",
    "nsswitch.conf",
    "os-release",
    "passwd",
    "protocols",
    "services",
    "ssl",
    "timezone",
)


def _namespace_args() -> list[str]:
    args = ["--unshare-all", "--unshare-user", "--die-with-parent", "--new-session", "--hostname", "nemo-sandbox"]
    if os.getuid() == 0:
        args += ["--uid", _SANDBOX_UID, "--gid", _SANDBOX_UID, "--cap-drop", "ALL"]
    return args


def _python_roots() -> list[Path]:
    """Directories holding this interpreter and its packages, outermost first, none inside another or /usr."""
    interpreter_dir = Path(sys.executable).parent
    candidates = {Path(sys.prefix), Path(sys.base_prefix), Path(sys.exec_prefix), interpreter_dir.resolve()}
    # A symlinked prefix is reached by both names: the one Python reports and the one its symlinks point to.
    candidates |= {path.resolve() for path in candidates}
    kept: list[Path] = [Path("/usr")]
    for path in sorted(candidates, key=lambda p: len(p.parts)):
        if path.is_dir() and not any(path.is_relative_to(root) for root in kept):
            kept.append(path)
    return kept[1:]


@functools.cache
def _system_args() -> tuple[str, ...]:
    """Read-only binds of the system (the host layout does not change while we run)."""
    args = ["--ro-bind", "/usr", "/usr"]
    for name in _SYSTEM_DIRS:
        path = Path(name)
        if path.is_symlink():
            args += ["--symlink", str(path.readlink()), name]
        elif path.is_dir():
            args += ["--ro-bind", name, name]
    for entry in _ETC_ENTRIES:
        path = Path("/etc", entry)
        if path.exists():
            args += ["--ro-bind", str(path), str(path)]
    return tuple(args)


@functools.cache
def _python_args() -> tuple[str, ...]:
    """Read-only binds of the Python environment; they come after the private /tmp so a venv under /tmp shows."""
    args: list[str] = []
    for root in _python_roots():
        args += ["--ro-bind", str(root), str(root)]
    return tuple(args)


def _memory_fs_args(memory_bytes: int) -> list[str]:
    """/dev read-only, and /tmp and /dev/shm, the filesystems held in memory, sized so that together they fit the limit.

    tmpfs pages belong to no process's address space, so RLIMIT_AS does not bound them; --size does. /tmp gets half
    of the memory limit and /dev/shm a quarter, leaving a quarter for the processes' own pages. The rest of /dev is
    remounted read-only: otherwise it is one more unbounded tmpfs to fill.
    """
    return [
        "--dev",
        "/dev",
        "--size",
        str(memory_bytes // 4),
        "--tmpfs",
        "/dev/shm",
        "--remount-ro",
        "/dev",
        "--size",
        str(memory_bytes // 2),
        "--tmpfs",
        "/tmp",
    ]


# The root bwrap builds the sandbox on is a tmpfs of its own, unbounded; made read-only once every mount is in place.
_SEAL_ROOT = ("--remount-ro", "/")
# Without it, `unshare -rm` inside the sandbox gives back the capabilities to mount tmpfs of any size (bwrap >= 0.8).
_DISABLE_USERNS = ("--disable-userns",)


def _probe_argv(bwrap: str, extra: Sequence[str] = ()) -> list[str]:
    argv = [bwrap, *_namespace_args(), *_system_args(), "--proc", "/proc", *_memory_fs_args(64 * MIB)]
    return [*argv, *_python_args(), *_SEAL_ROOT, *extra, "--", "/bin/true"]


def _try(argv: Sequence[str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        list(argv), stdin=subprocess.DEVNULL, capture_output=True, env={}, timeout=_PROBE_TIMEOUT, check=False
    )


@functools.cache
def _probe(bwrap: str) -> str | None:
    """Start ``true`` in a sandbox like the real ones; the reason it failed, or None when it works."""
    try:
        done = _try(_probe_argv(bwrap))
    except (OSError, subprocess.SubprocessError) as exc:
        return f"running {bwrap} failed: {exc}"
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).decode("utf-8", errors="replace").strip()
        return f"{bwrap} cannot create a sandbox here: {detail or f'exit code {done.returncode}'}"
    return None


@functools.cache
def disables_userns(bwrap: str) -> bool:
    """Whether this bwrap can forbid new user namespaces inside the sandbox here (probed once per process)."""
    try:
        return _try(_probe_argv(bwrap, (*_DISABLE_USERNS, "--assert-userns-disabled"))).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def bwrap_problem() -> str | None:
    """Why bubblewrap cannot be used on this machine, or None when it can (probed once per process)."""
    path = shutil.which("bwrap")
    if path is None:
        return _NOT_INSTALLED
    return _probe(path)


def bwrap_available() -> bool:
    """Whether ``bwrap`` is on PATH and can actually start a sandbox here."""
    return bwrap_problem() is None


def _read_available(fd: int) -> bytes:
    os.set_blocking(fd, False)
    chunks = []
    with contextlib.suppress(BlockingIOError):
        while chunk := os.read(fd, 4096):
            chunks.append(chunk)
    return b"".join(chunks)


class BwrapSandbox(SubprocessSandbox):
    """Runs each command in fresh namespaces (no network), seeing the system read-only and only the workspace."""

    name: str = "bwrap"
    containment: str = (
        "bubblewrap: no network, system and Python environment read-only, the workspace the only writable host "
        "path, home directories and other files hidden, /tmp and /dev/shm sized to fit the memory limit, every "
        "process killed with the command, plus timeouts, rlimits and a scrubbed environment; not contained: "
        "kernel exploits, and CPU and memory use up to the limits"
    )

    def __init__(
        self,
        workspace: Path,
        limits: Limits | None = None,
        *,
        env_passthrough: Sequence[str] = (),
        slots: threading.BoundedSemaphore | None = None,
        bwrap: str | None = None,
    ) -> None:
        path = bwrap or shutil.which("bwrap")
        problem = _NOT_INSTALLED if path is None else _probe(path)
        if path is None or problem is not None:
            raise SandboxError(f"The bubblewrap sandbox cannot be used: {problem}. {BWRAP_FIX}")
        super().__init__(workspace, limits, env_passthrough=env_passthrough, slots=slots)
        self.bwrap = path
        self.userns_disabled = disables_userns(path)

    @property
    def enforces_scope(self) -> bool:
        return True

    def describe_containment(self) -> str:
        userns = "nested user namespaces refused"
        if not self.userns_disabled:
            userns = "nested user namespaces allowed (this bwrap cannot refuse them; 0.8.0 or newer can)"
        return f"{super().describe_containment()}; {userns}; {self._scope_text()}"

    def _tmpdir(self) -> str:
        return "/tmp"

    def _workspace_args(self) -> list[str]:
        """The workspace read-write, or read-only with the scope's folders bound writable over it (in that order)."""
        workspace = str(self.workspace)
        if self.writable is None:
            return ["--bind", workspace, workspace]
        args = ["--ro-bind", workspace, workspace]
        for folder in self.writable:
            # A folder swapped for a symlink since the scope was made would carry the writable bind elsewhere.
            if folder.is_symlink() or not folder.is_dir() or folder.resolve() != folder:
                raise SandboxError(f"Writable folder {folder} is no longer a directory of the workspace.")
            args += ["--bind", str(folder), str(folder)]
        return args

    def _arguments(self, cwd: Path, env: dict[str, str], status_fd: int) -> list[str]:
        args = [*_namespace_args(), *_system_args(), "--proc", "/proc"]
        args += [*_memory_fs_args(self.limits.memory_mb * MIB), *_python_args()]
        # Bound after /tmp so that a workspace living under /tmp is not hidden by the tmpfs.
        args += [*self._workspace_args(), *_SEAL_ROOT]
        if self.userns_disabled:
            args += _DISABLE_USERNS
        args += ["--chdir", str(cwd), "--clearenv"]
        for name, value in env.items():
            args += ["--setenv", name, value]
        # bwrap writes the command's exit code to this fd only when the sandbox was set up and the command started;
        # its absence tells bwrap's own failures apart from a command that failed.
        args += ["--json-status-fd", str(status_fd), "--"]
        return args

    def _execute(self, command: str, cwd: Path, env: dict[str, str], timeout: float) -> ProcessOutcome:
        read_fd, write_fd = os.pipe()
        try:
            with self._guards() as (cgroups, watch):
                program = [self.bwrap, *self._arguments(cwd, env, write_fd), BASH, "-c", command]
                outcome = run_process(
                    launcher_argv(self.limits, program, cgroups.procs_files),
                    cwd=cwd,
                    env=env,
                    timeout=timeout,
                    max_output_bytes=self.max_output_bytes,
                    pass_fds=(write_fd,),
                    watch=watch,
                    cgroups=cgroups,
                )
            os.close(write_fd)
            write_fd = -1
            status = _read_available(read_fd)
        finally:
            for fd in (read_fd, write_fd):
                if fd >= 0:
                    os.close(fd)
        killed_by_us = outcome.timed_out or outcome.output_exceeded or outcome.stopped_by is not None
        if b'"exit-code"' not in status and not killed_by_us:
            detail = outcome.output.strip()[-2000:] or f"exit code {outcome.exit_code}"
            raise SandboxError(f"bubblewrap could not start the command: {detail}. {BWRAP_FIX}")
        # bwrap exits before its in-namespace init is reaped, so the rusage wait4 returned is bwrap's own CPU time.
        return dataclasses.replace(outcome, cpu_seconds=None)
