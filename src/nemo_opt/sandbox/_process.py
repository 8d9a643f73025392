"""Running one command as its own process group: wall-clock and output limits, group kill, head/tail output."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from nemo_opt.exceptions import SandboxError
from nemo_opt.sandbox._cgroup import CommandCgroups
from nemo_opt.sandbox.base import Limit

__all__ = ["ProcessOutcome", "kill_group", "run_process"]

HEAD_BYTES = 100 * 1024
TAIL_BYTES = 100 * 1024
_READ_CHUNK = 64 * 1024
_POLL_MS = 100
# How long to keep reading after the command and its group are dead. Only a process that escaped both the group
# kill and the backend's sweep can still hold the pipe open; the output is abandoned rather than waited for.
_DRAIN_GRACE_SECONDS = 1.0
_SIGKILLED = 128 + signal.SIGKILL


class Watch(Protocol):
    """Looks at a running command: the limit it has gone past, if any (``final``: it has ended, look thoroughly)."""

    def started(self, pid: int) -> None:
        """The launched process: its pid is also its process group's id."""

    def __call__(self, *, final: bool = False) -> Limit | None: ...


def kill_group(pgid: int) -> None:
    """SIGKILL every process of a process group; a group that is already gone is fine."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


@dataclass(frozen=True)
class ProcessOutcome:
    """What happened to one launched process group."""

    exit_code: int
    output: str
    truncated: bool
    output_bytes: int
    seconds: float
    timed_out: bool
    output_exceeded: bool
    cpu_seconds: float | None
    # A limit a watcher enforced by killing the command while it ran (processes, disk).
    stopped_by: Limit | None = None
    # The pids cgroup refused a fork or thread at its cap, even if the command then ended by itself.
    processes_capped: bool = False
    # The memory cgroup's OOM killer killed one of the command's processes, even if the others carried on.
    memory_exceeded: bool = False


class _OutputCapture:
    """Reads the merged stdout/stderr pipe on a thread, keeping only its head and tail."""

    def __init__(self, fd: int, limit_bytes: int, on_limit: Callable[[], None]) -> None:
        self._fd = fd
        self._limit = limit_bytes
        self._on_limit = on_limit
        self._head = bytearray()
        self._tail = bytearray()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name="sandbox-output", daemon=True)
        self.total = 0
        self.exceeded = False

    def start(self) -> None:
        self._thread.start()

    def finish(self) -> None:
        """Wait for end of output, giving up after a grace period if an escaped process keeps the pipe open."""
        self._thread.join(_DRAIN_GRACE_SECONDS)
        if self._thread.is_alive():
            self._stop.set()
            self._thread.join()

    def _read(self) -> None:
        poller = select.poll()
        poller.register(self._fd, select.POLLIN | select.POLLHUP | select.POLLERR)
        while not self._stop.is_set():
            if not poller.poll(_POLL_MS):
                continue
            try:
                chunk = os.read(self._fd, _READ_CHUNK)
            except OSError:
                return
            if not chunk:
                return
            self._keep(chunk)

    def _keep(self, chunk: bytes) -> None:
        self.total += len(chunk)
        if self.total > self._limit and not self.exceeded:
            self.exceeded = True
            self._on_limit()
        room = HEAD_BYTES - len(self._head)
        if room > 0:
            self._head += chunk[:room]
            chunk = chunk[room:]
        if chunk:
            self._tail += chunk
            # Trim only when the buffer has doubled, so trimming stays amortised O(1) per byte.
            if len(self._tail) > 2 * TAIL_BYTES:
                del self._tail[:-TAIL_BYTES]

    def text(self) -> tuple[str, bool]:
        """The kept output as text and whether anything was dropped from the middle."""
        tail = bytes(self._tail[-TAIL_BYTES:])
        omitted = self.total - len(self._head) - len(tail)
        head = self._head.decode("utf-8", errors="replace")
        if omitted <= 0:
            return head + tail.decode("utf-8", errors="replace"), False
        marker = f"\n[... {omitted} bytes of output omitted ...]\n"
        return head + marker + tail.decode("utf-8", errors="replace"), True


class _Waiter:
    """Reaps the launched process on a thread, keeping its rusage (``Popen.wait`` discards it)."""

    def __init__(self, pid: int, done: threading.Event) -> None:
        self._pid = pid
        self._done = done
        self.exit_code = -1
        self.cpu_seconds = 0.0
        self.ended_at = 0.0
        self.finished = threading.Event()
        self._thread = threading.Thread(target=self._wait, name="sandbox-wait", daemon=True)
        self._thread.start()

    def _wait(self) -> None:
        try:
            _, status, usage = os.wait4(self._pid, 0)
            code = os.waitstatus_to_exitcode(status)
            # Report signal deaths the way bash does (128 + signal) so both backends and nested shells agree.
            self.exit_code = 128 - code if code < 0 else code
            self.cpu_seconds = usage.ru_utime + usage.ru_stime
        except ChildProcessError:  # something else in this process reaped it; the status is lost
            self.exit_code = -1
        finally:
            self.ended_at = time.monotonic()
            self.finished.set()
            self._done.set()

    def join(self) -> None:
        self._thread.join()


def run_process(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: dict[str, str],
    timeout: float,
    max_output_bytes: int,
    pass_fds: Sequence[int] = (),
    after_exit: Callable[[], object] | None = None,
    watch: Watch | None = None,
    cgroups: CommandCgroups | None = None,
) -> ProcessOutcome:
    """Run ``argv`` in its own session, enforce the wall-clock and output limits, and clean up its process group.

    ``watch`` is called about every ``WATCH_SECONDS`` while the command runs; a limit it returns kills the command.
    ``cgroups`` are the command's cgroups (``argv`` joins them): every member is killed with the group.
    ``after_exit`` runs once the group has been killed, before the output is collected (backends sweep for
    processes that left the group there).
    """
    started = time.monotonic()
    try:
        proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            pass_fds=tuple(pass_fds),
        )
    except OSError as exc:
        raise SandboxError(f"Could not start the sandbox launcher {argv[0]}: {exc}") from exc
    assert proc.stdout is not None  # stdout=PIPE guarantees it
    if watch is not None:
        watch.started(proc.pid)
    done = threading.Event()
    capture = _OutputCapture(proc.stdout.fileno(), max_output_bytes, done.set)
    capture.start()
    waiter = _Waiter(proc.pid, done)
    timed_out, stopped_by = False, None
    try:
        timed_out, stopped_by = _wait(done, started + max(timeout, 0.0), watch)
    finally:
        # Still running here means: timed out, over a limit, or this thread was interrupted.
        if not waiter.finished.is_set():
            kill_group(proc.pid)
            if cgroups is not None:
                cgroups.kill_all()
        waiter.join()
        # The waiter reaped the child; telling Popen stops it from ever waiting for that pid again.
        proc.returncode = waiter.exit_code
        # Background children that outlived the command would keep the output pipe open; they end with it.
        kill_group(proc.pid)
        if cgroups is not None:
            cgroups.kill_all()
        if after_exit is not None:
            after_exit()
        if watch is not None and not timed_out and stopped_by is None and waiter.finished.is_set():
            # A command can exceed a limit faster than the watcher looks, and end before it does: it is reported.
            stopped_by = watch(final=True)
        capture.finish()
        proc.stdout.close()
    output, truncated = capture.text()
    return ProcessOutcome(
        exit_code=waiter.exit_code,
        output=output,
        truncated=truncated,
        output_bytes=capture.total,
        seconds=waiter.ended_at - started,
        timed_out=timed_out,
        output_exceeded=capture.exceeded and not timed_out and stopped_by is None,
        cpu_seconds=waiter.cpu_seconds,
        stopped_by=stopped_by,
        processes_capped=cgroups is not None and cgroups.processes_capped(),
        memory_exceeded=cgroups is not None and cgroups.memory_exceeded(sigkilled=waiter.exit_code == _SIGKILLED),
    )


# Each look costs a few microseconds (and a workspace walk when one is due); writes between looks overshoot.
WATCH_SECONDS = 0.02


def _wait(done: threading.Event, deadline: float, watch: Watch | None) -> tuple[bool, Limit | None]:
    """Wait for the command to end; (timed out, limit the watcher reported) when it has to be killed instead."""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return True, None
        if done.wait(remaining if watch is None else min(remaining, WATCH_SECONDS)):
            return False, None
        if watch is not None and (limit := watch()) is not None:
            return False, limit
