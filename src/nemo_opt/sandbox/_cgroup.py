"""Cgroups per command: a pids cgroup (a process cap that also binds root) and a memory cgroup (one bound on all the
memory of all the command's processes), and a sweep no daemon can leave.

RLIMIT_NPROC does not bind root (the kernel exempts uid 0, also inside a user namespace that root created), so a
fork bomb started by root would only end at the timeout, having used up the machine's pids. A pids cgroup caps the
number of tasks whatever the uid, and every process started inside it stays inside it — also one that called
``setsid`` or changed its environment — so killing the cgroup's members ends everything the command started.

RLIMIT_AS caps one process's address space: N processes use N times the limit, and memory mapped by no process is
not counted at all (SysV shared memory once detached, memfd and tmpfs files written with ``write``). A memory cgroup
is charged with every page its members touch — their own memory, shared memory, memfd and tmpfs pages, page cache of
the files they write, kernel memory — so the command's total stays under the limit: past it the kernel reclaims what
it can (clean page cache, written back dirty pages) and else its OOM killer kills a member, which is counted.

Each controller lives in its own hierarchy on cgroup v1 and all in one on v2, where a process belongs to exactly one
cgroup: controllers whose hierarchy is the same share one directory.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
import uuid
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Self

__all__ = ["CommandCgroups", "MemoryCgroup", "PidsCgroup", "memory_cgroup_root", "pids_cgroup_root"]

logger = logging.getLogger("nemo_opt.sandbox")

_GROUP_PREFIX = "nemo-sandbox-"
_KILL_PASSES = 50
_REMOVE_WAIT_SECONDS = 2.0


def _mounts() -> list[tuple[str, str, list[str]]]:
    """(mount point, filesystem type, super options) of every mount of this process."""
    found = []
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) >= 5 and len(tail) >= 3:
            found.append((fields[4], tail[0], tail[2].split(",")))
    return found


def _own_cgroup(controller: str | None) -> str | None:
    """This process's cgroup path in the v1 hierarchy of ``controller``, or in the unified one when None."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if (controller is None and controllers == "") or (controller in controllers.split(",")):
            return path
    return None


def _writable_dir(path: Path) -> bool:
    return path.is_dir() and os.access(path, os.W_OK)


def _cgroup_root(controller: str) -> Path | None:
    """A cgroup directory under which this process may create children with ``controller``, or None.

    cgroup v1: this process's cgroup in the hierarchy of ``controller``. cgroup v2: this process's cgroup when its
    ``cgroup.subtree_control`` already enables ``controller`` (a delegated subtree); v2 forbids enabling it here
    ourselves while this process is a member.
    """
    for mount_point, fstype, options in _mounts():
        if fstype == "cgroup" and controller in options:
            own = _own_cgroup(controller)
            if own is not None:
                candidate = Path(mount_point) / own.lstrip("/")
                if _writable_dir(candidate):
                    return candidate
        if fstype == "cgroup2":
            own = _own_cgroup(None)
            if own is None:
                continue
            candidate = Path(mount_point) / own.lstrip("/")
            try:
                enabled = (candidate / "cgroup.subtree_control").read_text().split()
            except OSError:
                continue
            if controller in enabled and _writable_dir(candidate):
                return candidate
    return None


def pids_cgroup_root() -> Path | None:
    """Where this process may create pids-limited cgroups, or None when the machine offers no writable one."""
    return _cgroup_root("pids")


def memory_cgroup_root() -> Path | None:
    """Where this process may create memory-limited cgroups, or None when the machine offers no writable one."""
    return _cgroup_root("memory")


def _new_directory(root: Path) -> Path | None:
    path = root / f"{_GROUP_PREFIX}{uuid.uuid4().hex}"
    try:
        path.mkdir()
    except OSError as exc:
        logger.debug("cannot create a cgroup under %s: %s", root, exc)
        return None
    return path


def _write(path: Path, value: str) -> bool:
    try:
        path.write_text(value)
    except OSError as exc:
        logger.debug("cannot write %s to %s: %s", value, path, exc)
        return False
    return True


def _counter(path: Path, key: str) -> int | None:
    """The value of the ``key N`` line of a flat-keyed cgroup file, None when the file or the line is missing."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.split()
        if len(parts) == 2 and parts[0] == key and parts[1].isdigit():
            return int(parts[1])
    return None


def _number(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


class Cgroup(ABC):
    """One command's cgroup directory: created before launch, joined by the launcher, emptied and removed after."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def made(cls, root: Path | None, value: int) -> Self | None:
        """A fresh cgroup under ``root`` limited to ``value``; None when there is no root or it cannot be made."""
        path = None if root is None else _new_directory(root)
        if path is None:
            return None
        group = cls(path)
        if not group.limit(value):
            group.remove()
            return None
        return group

    @abstractmethod
    def limit(self, value: int) -> bool:
        """Set this controller's limit; whether it took."""

    @property
    def procs_file(self) -> str:
        """The file the launcher writes ``0`` to, joining the cgroup before it execs the command."""
        return str(self.path / "cgroup.procs")

    def members(self) -> list[int]:
        try:
            text = (self.path / "cgroup.procs").read_text()
        except OSError:
            return []
        return [int(pid) for pid in text.split()]

    def kill_all(self) -> int:
        """SIGKILL every member until none is left (a forking member can add one between passes); returns kills."""
        killed = 0
        for _ in range(_KILL_PASSES):
            pids = self.members()
            if not pids:
                break
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
                    killed += 1
            time.sleep(0.01)
        return killed

    def remove(self) -> None:
        """Delete the cgroup once its killed members are gone (they leave it only when reaped)."""
        deadline = time.monotonic() + _REMOVE_WAIT_SECONDS
        while True:
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError as exc:
                if time.monotonic() > deadline:
                    logger.warning("could not remove the sandbox cgroup %s: %s", self.path, exc)
                    return
                self.kill_all()
                time.sleep(0.02)


class PidsCgroup(Cgroup):
    """A cgroup whose ``pids`` controller caps the command's tasks."""

    @classmethod
    def create(cls, max_pids: int) -> PidsCgroup | None:
        """A fresh cgroup capped at ``max_pids`` tasks, or None when this machine offers no usable pids cgroup."""
        return cls.made(pids_cgroup_root(), max_pids)

    def limit(self, value: int) -> bool:
        return _write(self.path / "pids.max", str(value))

    def hit_limit(self) -> bool:
        """Whether the kernel refused a fork or thread because the cgroup was at ``pids.max``."""
        return (_counter(self.path / "pids.events", "max") or 0) > 0


class MemoryCgroup(Cgroup):
    """A cgroup whose ``memory`` controller bounds everything the command's processes hold in memory."""

    @classmethod
    def create(cls, limit_bytes: int) -> MemoryCgroup | None:
        """A fresh cgroup bounded at ``limit_bytes``, or None when this machine offers no usable memory cgroup."""
        return cls.made(memory_cgroup_root(), limit_bytes)

    @property
    def v1(self) -> bool:
        return (self.path / "memory.limit_in_bytes").exists()

    def limit(self, value: int) -> bool:
        """Bound memory at ``value`` bytes, swap included where the kernel counts it (so swap cannot extend it)."""
        if self.v1:
            if not _write(self.path / "memory.limit_in_bytes", str(value)):
                return False
            # memsw is memory plus swap; it must not be below the memory limit, so it is set second.
            if (self.path / "memory.memsw.limit_in_bytes").exists():
                _write(self.path / "memory.memsw.limit_in_bytes", str(value))
            else:  # swap is not accounted for (swapaccount=0): keep the cgroup's memory out of swap instead
                _write(self.path / "memory.swappiness", "0")
            return True
        if not _write(self.path / "memory.max", str(value)):
            return False
        if (self.path / "memory.swap.max").exists():
            _write(self.path / "memory.swap.max", "0")
        return True

    def oom_kills(self) -> int | None:
        """How many members the kernel's OOM killer killed for this cgroup's limit; None when the kernel does not
        count them (cgroup v1 before Linux 4.13)."""
        if self.v1:
            return _counter(self.path / "memory.oom_control", "oom_kill")
        return _counter(self.path / "memory.events", "oom_kill")

    def reached_limit(self) -> bool:
        """Whether usage ever reached the limit. Page cache fills a cgroup to its limit too, and is reclaimed there,
        so this alone does not mean anything was killed."""
        if self.v1:
            peak, limit = _number(self.path / "memory.max_usage_in_bytes"), _number(self.path / "memory.limit_in_bytes")
        else:
            peak, limit = _number(self.path / "memory.peak"), _number(self.path / "memory.max")
        return peak is not None and limit is not None and peak >= limit


class CommandCgroups:
    """The cgroups of one command (either may be None where the machine offers none); one directory per hierarchy."""

    def __init__(self, pids: PidsCgroup | None = None, memory: MemoryCgroup | None = None) -> None:
        self.pids = pids
        self.memory = memory

    @classmethod
    def create(cls, *, max_pids: int, memory_bytes: int) -> CommandCgroups:
        """The cgroups this machine lets us make for a command capped at ``max_pids`` tasks and ``memory_bytes``."""
        pids_root, memory_root = pids_cgroup_root(), memory_cgroup_root()
        if pids_root is not None and pids_root == memory_root:  # one hierarchy (cgroup v2): one directory
            path = _new_directory(pids_root)
            if path is None:
                return cls()
            pids, memory = PidsCgroup(path), MemoryCgroup(path)
            both = cls(pids if pids.limit(max_pids) else None, memory if memory.limit(memory_bytes) else None)
            if both.pids is None and both.memory is None:
                pids.remove()  # the shared directory: either controller removes it
            return both
        return cls(PidsCgroup.made(pids_root, max_pids), MemoryCgroup.made(memory_root, memory_bytes))

    def _groups(self) -> list[Cgroup]:
        groups: list[Cgroup] = []
        for group in (self.pids, self.memory):
            if group is not None and all(group.path != other.path for other in groups):
                groups.append(group)
        return groups

    @property
    def procs_files(self) -> list[str]:
        """The ``cgroup.procs`` files the launcher joins, one per directory (none when there is no cgroup)."""
        return [group.procs_file for group in self._groups()]

    def members(self) -> list[int]:
        return sorted({pid for group in self._groups() for pid in group.members()})

    def kill_all(self) -> int:
        return sum(group.kill_all() for group in self._groups())

    def remove(self) -> None:
        for group in self._groups():
            group.remove()

    def processes_capped(self) -> bool:
        """Whether the pids cgroup refused a fork or thread at its cap."""
        return self.pids is not None and self.pids.hit_limit()

    def memory_exceeded(self, *, sigkilled: bool) -> bool:
        """Whether the memory cgroup's OOM killer killed a member. Where the kernel does not count its kills, a
        command that died of SIGKILL after its usage reached the limit is taken to have been killed for it."""
        if self.memory is None:
            return False
        kills = self.memory.oom_kills()
        if kills is not None:
            return kills > 0
        return sigkilled and self.memory.reached_limit()
