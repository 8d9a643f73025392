"""Limits no rlimit expresses, enforced by looking while the command runs: the process cap and the disk quota.

The disk quota exists because RLIMIT_FSIZE caps one file, not how many a command writes, and the workspace lives on
the host's disk: without it a loop of files fills the machine's disk. It is measured by walking the workspace, so a
command can overshoot it by what it writes between two looks: about 20 ms of writing in a small workspace, more
in a workspace so large that walking it takes longer.
"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

from nemo_opt.sandbox._cgroup import PidsCgroup
from nemo_opt.sandbox.base import Limit

__all__ = ["LimitWatch", "disk_usage"]

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


class LimitWatch:
    """Called by ``run_process`` while the command runs: which limit, if any, the command has gone past."""

    def __init__(self, cgroup: PidsCgroup | None, workspace: Path, disk_bytes: int) -> None:
        self._cgroup = cgroup
        self._workspace = workspace
        # A workspace already over the quota is not held against the command (it could not even delete files
        # then): only growing it further is.
        self.disk_used = disk_usage(workspace)
        self._disk_bytes = max(disk_bytes, self.disk_used)
        self._next_walk = 0.0

    def __call__(self, *, final: bool = False) -> Limit | None:
        # A refused fork means the command tried to run more processes than allowed: a fork bomb would otherwise
        # spin at the cap until the timeout. (After the end, ``processes_capped`` reports it.)
        if not final and self._cgroup is not None and self._cgroup.hit_limit():
            return Limit.PROCESSES
        now = time.monotonic()
        if final or now >= self._next_walk:
            if self.over_quota():
                return Limit.DISK
            spent = time.monotonic() - now
            self._next_walk = time.monotonic() + max(_MIN_WALK_GAP, spent * _WALK_SHARE)
        return None

    def over_quota(self) -> bool:
        """Measure the workspace now; whether it holds more than the quota."""
        self.disk_used = disk_usage(self._workspace)
        return self.disk_used > self._disk_bytes
