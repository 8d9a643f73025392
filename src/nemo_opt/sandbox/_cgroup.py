"""A pids cgroup per command: the process cap that also binds root, and a sweep no daemon can leave.

RLIMIT_NPROC does not bind root (the kernel exempts uid 0, also inside a user namespace that root created), so a
fork bomb started by root would only end at the timeout, having used up the machine's pids. A pids cgroup caps the
number of tasks whatever the uid, and every process started inside it stays inside it — also one that called
``setsid`` or changed its environment — so killing the cgroup's members ends everything the command started.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
import uuid
from pathlib import Path

__all__ = ["PidsCgroup", "pids_cgroup_root"]

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


def pids_cgroup_root() -> Path | None:
    """A cgroup directory under which this process may create pids-limited children, or None when there is none.

    cgroup v1: this process's cgroup in the ``pids`` hierarchy. cgroup v2: this process's cgroup when its
    ``cgroup.subtree_control`` already enables ``pids`` (a delegated subtree); v2 forbids enabling it here ourselves
    while this process is a member.
    """
    for mount_point, fstype, options in _mounts():
        if fstype == "cgroup" and "pids" in options:
            own = _own_cgroup("pids")
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
            if "pids" in enabled and _writable_dir(candidate):
                return candidate
    return None


class PidsCgroup:
    """One command's cgroup: created before launch, joined by the launcher, emptied and removed after."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def create(cls, max_pids: int) -> PidsCgroup | None:
        """A fresh cgroup capped at ``max_pids`` tasks, or None when this machine offers no usable pids cgroup."""
        root = pids_cgroup_root()
        if root is None:
            return None
        path = root / f"{_GROUP_PREFIX}{uuid.uuid4().hex}"
        try:
            path.mkdir()
        except OSError as exc:
            logger.debug("cannot create a pids cgroup under %s: %s", root, exc)
            return None
        group = cls(path)
        try:
            (path / "pids.max").write_text(str(max_pids))
        except OSError as exc:
            logger.debug("cannot set pids.max in %s: %s", path, exc)
            group.remove()
            return None
        return group

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

    def hit_limit(self) -> bool:
        """Whether the kernel refused a fork or thread because the cgroup was at ``pids.max``."""
        try:
            lines = (self.path / "pids.events").read_text().splitlines()
        except OSError:
            return False
        return any(line.split()[:1] == ["max"] and int(line.split()[1]) > 0 for line in lines)

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
