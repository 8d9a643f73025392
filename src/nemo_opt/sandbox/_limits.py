"""Applying the resource limits (a tiny launcher process) and recognising which one stopped a command."""

from __future__ import annotations

import json
import os
import re
import resource
import signal
import sys
from collections.abc import Sequence

from nemo_opt.sandbox._proc import count_user_tasks
from nemo_opt.sandbox._process import ProcessOutcome
from nemo_opt.sandbox.base import Limit, Limits

__all__ = ["LAUNCHER_SRC", "MIB", "detect_limit", "launcher_argv", "rlimit_plan"]

MIB = 1024 * 1024

# Runs between fork and the command: joins the command's cgroups (a JSON list of their cgroup.procs files, empty when
# there are none), applies the rlimits, then becomes the command. A separate interpreter is used instead of
# ``preexec_fn`` because preexec_fn is unsafe when the calling process has threads.
LAUNCHER_SRC = (
    "import json, os, resource, sys\n"
    "for procs_file in json.loads(sys.argv[2]):\n"
    "    try:\n"
    "        with open(procs_file, 'w') as procs:\n"
    "            procs.write('0')\n"
    "    except OSError:\n"  # a cgroup we may create but not enter: the rlimits still apply
    "        pass\n"
    "for name, soft, hard in json.loads(sys.argv[1]):\n"
    "    resource.setrlimit(getattr(resource, name), (soft, hard))\n"
    "os.execv(sys.argv[3], sys.argv[3:])\n"
)

_MEMORY_TEXT = re.compile(
    r"MemoryError|Cannot allocate memory|std::bad_alloc|Unable to allocate|out of memory"
    r"|allocation (still )?failed|failed to allocate",  # OpenBLAS and C libraries under RLIMIT_AS
    re.IGNORECASE,
)
_EAGAIN_TEXT = re.compile(r"Resource temporarily unavailable", re.IGNORECASE)
_SPAWN_TEXT = re.compile(r"fork|thread|clone|spawn", re.IGNORECASE)
_NO_THREAD_TEXT = re.compile(r"can't start new thread", re.IGNORECASE)


def rlimit_plan(limits: Limits) -> list[tuple[str, int, int]]:
    """The (name, soft, hard) rlimits the launcher applies, never above the hard limits this process already has."""
    # RLIMIT_AS caps each process on its own; where the command has a memory cgroup, it bounds all of them together
    # (and the memory no address space holds), and RLIMIT_AS still turns one process's oversized allocation into a
    # clean allocation failure instead of an OOM kill.
    # RLIMIT_NPROC counts every process of the real uid, not just the command's, so the cap is set relative to
    # what this user already runs. Root is exempt (the kernel skips the check for uid 0, also inside bubblewrap's
    # user namespace when root created it), so for root the process cap does not bite; the command's pids
    # cgroup (see _cgroup.py) enforces it there.
    nproc = count_user_tasks(os.getuid()) + limits.max_processes
    wanted = [
        ("RLIMIT_AS", limits.memory_mb * MIB, limits.memory_mb * MIB),
        # SIGXCPU at the soft limit; one second later the kernel sends SIGKILL to code that ignores SIGXCPU.
        ("RLIMIT_CPU", limits.cpu_seconds, limits.cpu_seconds + 1),
        ("RLIMIT_FSIZE", limits.file_size_mb * MIB, limits.file_size_mb * MIB),
        ("RLIMIT_NPROC", nproc, nproc),
        ("RLIMIT_CORE", 0, 0),
    ]
    plan = []
    for name, soft, hard in wanted:
        _, current_hard = resource.getrlimit(getattr(resource, name))
        if current_hard != resource.RLIM_INFINITY:
            # An unprivileged process cannot raise its hard limit; asking for more would make the launcher fail.
            soft, hard = min(soft, current_hard), min(hard, current_hard)
        plan.append((name, soft, hard))
    return plan


def launcher_argv(limits: Limits, program: Sequence[str], cgroup_procs: Sequence[str] = ()) -> list[str]:
    """argv that joins the cgroups whose ``cgroup.procs`` files are ``cgroup_procs`` (none is fine), applies
    ``limits`` and then execs ``program`` (an absolute path followed by its arguments)."""
    plan, procs = json.dumps(rlimit_plan(limits)), json.dumps(list(cgroup_procs))
    return [sys.executable, "-S", "-c", LAUNCHER_SRC, plan, procs, *program]


def _hit_cpu_limit(outcome: ProcessOutcome, limits: Limits) -> bool:
    """Whether a SIGKILL we did not send is the kernel enforcing the hard CPU limit."""
    if outcome.cpu_seconds is not None:
        return outcome.cpu_seconds >= limits.cpu_seconds
    # Without the command's rusage the best evidence is that enough time passed for the hard limit to be reached.
    return outcome.seconds * (os.cpu_count() or 1) >= limits.cpu_seconds + 1


def detect_limit(outcome: ProcessOutcome, limits: Limits) -> Limit | None:
    """Which limit, if any, stopped the command, from how it ended and what it printed."""
    if outcome.timed_out:
        return Limit.TIMEOUT
    if outcome.output_exceeded:
        return Limit.OUTPUT
    if outcome.stopped_by is not None:
        return outcome.stopped_by
    if outcome.memory_exceeded:  # the memory cgroup's OOM killer killed a process, even if the rest carried on
        return Limit.MEMORY
    if outcome.processes_capped:  # the kernel refused a fork at the cap: a limit was hit even if the code coped
        return Limit.PROCESSES
    if outcome.exit_code == 0:
        return None
    signum = outcome.exit_code - 128 if outcome.exit_code > 128 else 0
    text = outcome.output
    # bash prints these names when a child it waited for died from SIGXCPU or SIGXFSZ.
    if signum == signal.SIGXCPU or "CPU time limit exceeded" in text:
        return Limit.CPU
    if signum == signal.SIGXFSZ or "File size limit exceeded" in text or "File too large" in text:
        return Limit.FILE_SIZE
    if signum == signal.SIGKILL and _hit_cpu_limit(outcome, limits):
        return Limit.CPU
    if (_EAGAIN_TEXT.search(text) and _SPAWN_TEXT.search(text)) or _NO_THREAD_TEXT.search(text):
        return Limit.PROCESSES
    if _MEMORY_TEXT.search(text):
        return Limit.MEMORY
    return None
