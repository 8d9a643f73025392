"""Choosing a sandbox backend: bubblewrap when it works, else a plain subprocess with a loud warning."""

from __future__ import annotations

import logging
import os
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from nemo_opt.exceptions import ConfigError, SandboxError
from nemo_opt.sandbox._env import SandboxWarning
from nemo_opt.sandbox.base import Limits
from nemo_opt.sandbox.bwrap import BWRAP_FIX, BwrapSandbox, bwrap_problem
from nemo_opt.sandbox.local import PlainSandbox, SubprocessSandbox

if TYPE_CHECKING:
    from nemo_opt.settings import Settings

__all__ = ["SandboxKind", "make_sandbox", "sandbox_from_settings"]

logger = logging.getLogger("nemo_opt.sandbox")

SandboxKind = Literal["auto", "bwrap", "plain"]

_fallback_lock = threading.Lock()
_fallback_warned = False


def _warn_fallback(problem: str) -> None:
    """Warn once per process that ``auto`` fell back to the plain backend, saying what that gives up."""
    global _fallback_warned
    with _fallback_lock:
        if _fallback_warned:
            return
        _fallback_warned = True
    message = (
        f"Sandboxed code runs as a plain subprocess because bubblewrap is unusable ({problem}). "
        "Only timeouts, resource limits and a scrubbed environment apply: the code can use the network, write "
        "outside its workspace, read this user's files, and leave behind daemons that change their environment. "
        f'{BWRAP_FIX} Set sandbox = "plain" to choose this mode deliberately.'
    )
    logger.warning(message)
    warnings.warn(message, SandboxWarning, stacklevel=3)


def make_sandbox(
    kind: SandboxKind,
    workspace: Path,
    limits: Limits,
    *,
    env_passthrough: Sequence[str] = (),
    slots: threading.BoundedSemaphore | None = None,
) -> SubprocessSandbox:
    """A sandbox of the requested kind for ``workspace``.

    ``auto`` picks bubblewrap when it is installed and a probe shows it can start, else the plain backend (warning
    once). ``bwrap`` raises :class:`SandboxError` when bubblewrap is unusable instead of falling back.
    """
    if kind == "plain":
        return PlainSandbox(workspace, limits, env_passthrough=env_passthrough, slots=slots)
    if kind not in ("auto", "bwrap"):
        raise ConfigError(f"Unknown sandbox kind {kind!r}; use auto, bwrap or plain.")
    problem = bwrap_problem()
    if problem is None:
        return BwrapSandbox(workspace, limits, env_passthrough=env_passthrough, slots=slots)
    if kind == "bwrap":
        raise SandboxError(f'sandbox = "bwrap" was requested but bubblewrap cannot be used: {problem}. {BWRAP_FIX}')
    _warn_fallback(problem)
    return PlainSandbox(workspace, limits, env_passthrough=env_passthrough, slots=slots)


_SLOTS: dict[int, threading.BoundedSemaphore] = {}


def shared_slots(count: int) -> threading.BoundedSemaphore:
    """The process-wide semaphore bounding concurrent sandboxed commands at ``count`` (0: the CPU count)."""
    size = count or os.cpu_count() or 1
    with _fallback_lock:
        if size not in _SLOTS:
            _SLOTS[size] = threading.BoundedSemaphore(size)
        return _SLOTS[size]


def sandbox_from_settings(settings: Settings, workspace: Path) -> SubprocessSandbox:
    """The sandbox the settings ask for (``sandbox`` and the ``sandbox_*`` limits) for ``workspace``, sharing
    the process-wide bound on concurrent commands (``sandbox_concurrency``)."""
    limits = Limits(
        timeout=settings.sandbox_timeout,
        memory_mb=settings.sandbox_memory_mb,
        cpu_seconds=settings.sandbox_cpu_seconds,
        file_size_mb=settings.sandbox_file_size_mb,
        max_processes=settings.sandbox_max_processes,
        max_output_mb=settings.sandbox_max_output_mb,
        disk_mb=settings.sandbox_disk_mb,
    )
    return make_sandbox(
        settings.sandbox,
        workspace,
        limits,
        env_passthrough=settings.sandbox_env_passthrough,
        slots=shared_slots(settings.sandbox_concurrency),
    )
