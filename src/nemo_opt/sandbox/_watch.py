"""Limits no rlimit expresses, enforced by looking while the command runs: the process cap and the disk quota.

The disk quota exists because RLIMIT_FSIZE caps one file, not how many a command writes, and the workspace lives on
the host's disk: without it a loop of files fills the machine's disk. It is measured by walking the workspace and
by adding the files the command's processes hold open after deleting them (a deleted file keeps its blocks until
the last descriptor closes, and no walk finds it). A command can overshoot the quota by what it writes between two
looks: about 20 ms of writing in a small workspace, more in a workspace so large that walking it takes longer.
Files deleted but still mapped into memory with no descriptor left are not seen; they stay within RLIMIT_AS.
"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

from nemo_opt.sandbox._cgroup import CommandCgroups
from nemo_opt.sandbox._proc import proc_pids, read_proc
from nemo_opt.sandbox.base import Limit

__all__ = ["LimitWatch", "command_pids", "deleted_open_bytes", "disk_usage"]

# Walking a big workspace costs time; it is never spent more than a twentieth of the wall clock.
_WALK_SHARE = 20.0
_MIN_WALK_GAP = 0.02


def disk_usage(root: Path) -> int:
    """Bytes of disk the files under ``root`` occupy (allocated blocks, symlinks not followed, each inode once)."""
    total = 0
    seen: set[tuple[int, int]] = set()
    pending = [str(root)]
    while pending:
        folder = pending.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:  # removed meanwhile, or unreadable: what cannot be read cannot be counted
            continue
        for entry in entries:
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            key = (info.st_dev, info.st_ino)
            if key in seen:
                continue
            seen.add(key)
            total += info.st_blocks * 512
            if stat.S_ISDIR(info.st_mode):
                pending.append(entry.path)
    return total


def deleted_open_bytes(pids: list[int], device: int, root: Path) -> int:
    """Bytes allocated to regular files that ``pids`` hold open with no name left, each inode once: those on
    ``device``, or whose last path was under ``root`` (on overlayfs a file's st_dev can differ from its folder's)."""
    total = 0
    seen: set[tuple[int, int]] = set()
    prefix = f"{root}/"
    for pid in pids:
        try:
            fds = list(os.scandir(f"/proc/{pid}/fd"))
        except OSError:  # gone, or not ours to look at
            continue
        for fd in fds:
            try:
                info = fd.stat()  # follows the magic link to the open file itself, deleted or not
            except OSError:
                continue
            key = (info.st_dev, info.st_ino)
            if info.st_nlink != 0 or not stat.S_ISREG(info.st_mode) or key in seen:
                continue
            if info.st_dev != device:
                try:
                    if not str(Path(fd.path).readlink()).startswith(prefix):
                        continue
                except OSError:
                    continue
            seen.add(key)
            total += info.st_blocks * 512
    return total


def _parent_and_group(pid: str) -> tuple[int, int] | None:
    raw = read_proc(pid, "stat")
    if raw is None:
        return None
    # The command name (in parentheses) may hold spaces; the fields after it are state, ppid, pgrp, ...
    fields = raw.rsplit(b")", 1)[-1].split()
    return (int(fields[1]), int(fields[2])) if len(fields) >= 3 else None


def command_pids(launched: int) -> list[int]:
    """The process group of ``launched`` and every descendant of its members, from one scan of /proc.

    Descendants are followed as well because bubblewrap starts the command in a new session of its own.
    """
    children: dict[int, list[int]] = {}
    found: list[int] = []
    for name in proc_pids():
        fields = _parent_and_group(name)
        if fields is None:
            continue
        pid, (parent, group) = int(name), fields
        children.setdefault(parent, []).append(pid)
        if group == launched:
            found.append(pid)
    members, pending = set(found), list(found)
    while pending:
        for child in children.get(pending.pop(), ()):
            if child not in members:
                members.add(child)
                pending.append(child)
    return sorted(members)


class LimitWatch:
    """Called by ``run_process`` while the command runs: which limit, if any, the command has gone past."""

    def __init__(self, cgroups: CommandCgroups, workspace: Path, disk_bytes: int) -> None:
        self._cgroups = cgroups
        self._workspace = workspace
        self._device = workspace.stat().st_dev
        self._launched: int | None = None
        # A workspace already over the quota is not held against the command (it could not even delete files
        # then): only growing it further is.
        self.disk_used = disk_usage(workspace)
        self._disk_bytes = max(disk_bytes, self.disk_used)
        self._next_walk = 0.0

    def started(self, pid: int) -> None:
        """The launched process (the leader of its process group), used when there is no cgroup to list members."""
        self._launched = pid

    def __call__(self, *, final: bool = False) -> Limit | None:
        # A refused fork means the command tried to run more processes than allowed: a fork bomb would otherwise
        # spin at the cap until the timeout. (After the end, ``processes_capped`` reports it.)
        if not final and self._cgroups.processes_capped():
            return Limit.PROCESSES
        now = time.monotonic()
        if final or now >= self._next_walk:
            if self.over_quota():
                return Limit.DISK
            spent = time.monotonic() - now
            self._next_walk = time.monotonic() + max(_MIN_WALK_GAP, spent * _WALK_SHARE)
        return None

    def _pids(self) -> list[int]:
        # A launcher that could not enter its cgroup leaves it empty: the process tree is the fallback then too.
        members = self._cgroups.members()
        if members or self._launched is None:
            return members
        return command_pids(self._launched)

    def over_quota(self) -> bool:
        """Measure the workspace and the deleted files the command holds open now; whether it is over the quota."""
        self.disk_used = disk_usage(self._workspace) + deleted_open_bytes(self._pids(), self._device, self._workspace)
        return self.disk_used > self._disk_bytes
