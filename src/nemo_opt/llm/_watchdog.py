"""Runs a command and stops it when the parent process goes away: ``python -m nemo_opt.llm._watchdog PID -- CMD…``.

A managed model server must not outlive the nemo-opt process that started it, even after ``kill -9``, which
runs no exit handlers. The watchdog polls its parent; when the parent is gone (or the watchdog is asked to
stop), it terminates the command's process group, then kills it after a grace period.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from types import FrameType

GRACE_SECONDS = 10.0


def _stop(child: subprocess.Popen[bytes]) -> int:
    if child.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGTERM)
        try:
            child.wait(GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
            child.wait()
    return child.returncode or 0


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print("usage: python -m nemo_opt.llm._watchdog PARENT_PID -- COMMAND ...", file=sys.stderr)
        return 2
    parent = int(argv[0])
    child = subprocess.Popen(argv[2:], start_new_session=True)
    stopping = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while not stopping and child.poll() is None:
        if os.getppid() != parent:
            break
        time.sleep(0.5)
    return _stop(child)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
