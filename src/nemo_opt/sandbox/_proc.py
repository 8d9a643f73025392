"""Reading /proc quickly: it is scanned for every process on the machine around every sandboxed command."""

from __future__ import annotations

import os

__all__ = ["count_user_tasks", "proc_pids", "read_proc"]


def proc_pids() -> list[str]:
    """The pids currently listed in /proc, as strings."""
    with os.scandir("/proc") as entries:
        return [entry.name for entry in entries if entry.name.isdigit()]


def read_proc(pid: str, name: str) -> bytes | None:
    """The whole of /proc/<pid>/<name>, or None when the process is gone or not ours to read."""
    # os-level calls rather than pathlib: about five times faster, which matters at hundreds of files per command.
    try:
        fd = os.open(f"/proc/{pid}/{name}", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)


def _status_field(status: bytes, field: bytes) -> int | None:
    start = status.find(b"\n" + field + b":")
    if start < 0:
        return None
    values = status[start + len(field) + 2 : status.find(b"\n", start + 1)].split()
    return int(values[0]) if values else None


def count_user_tasks(uid: int) -> int:
    """Tasks (threads included, as the kernel counts them for RLIMIT_NPROC) whose real uid is ``uid``."""
    total = 0
    for pid in proc_pids():
        status = read_proc(pid, "status")
        if status is None:
            continue
        # The Uid line lists real, effective, saved and filesystem uid; RLIMIT_NPROC is charged to the real one.
        if _status_field(status, b"Uid") == uid:
            total += _status_field(status, b"Threads") or 0
    return total
