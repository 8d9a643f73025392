"""Sandboxes that run agent-written shell commands in a workspace, under limits.

``make_sandbox`` / ``sandbox_from_settings`` pick a backend: ``bwrap`` (bubblewrap namespaces: no network, only the
workspace writable) or ``plain`` (a subprocess with timeouts, rlimits and a scrubbed environment only).
"""

from __future__ import annotations

from nemo_opt.sandbox._env import SandboxWarning, is_secret_name
from nemo_opt.sandbox.base import ExecResult, Limit, Limits, Sandbox
from nemo_opt.sandbox.bwrap import BwrapSandbox, bwrap_available, bwrap_problem
from nemo_opt.sandbox.factory import SandboxKind, make_sandbox, sandbox_from_settings
from nemo_opt.sandbox.local import PlainSandbox, SubprocessSandbox, kill_marked_processes

__all__ = [
    "BwrapSandbox",
    "ExecResult",
    "Limit",
    "Limits",
    "PlainSandbox",
    "Sandbox",
    "SandboxKind",
    "SandboxWarning",
    "SubprocessSandbox",
    "bwrap_available",
    "bwrap_problem",
    "is_secret_name",
    "kill_marked_processes",
    "make_sandbox",
    "sandbox_from_settings",
]
