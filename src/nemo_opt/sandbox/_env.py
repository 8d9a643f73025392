"""The scrubbed environment of sandboxed commands: built from scratch, with secret-looking names refused."""

from __future__ import annotations

import logging
import os
import re
import sys
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path

__all__ = ["SandboxWarning", "accepted_names", "add_variables", "base_environment", "is_secret_name"]

logger = logging.getLogger("nemo_opt.sandbox")

BACKEND_VAR = "NEMO_SANDBOX"
MARKER_VAR = "NEMO_SANDBOX_ID"
# Set by the backend itself; letting callers override them would break the plain backend's process sweep.
_RESERVED = frozenset({BACKEND_VAR, MARKER_VAR})
_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH|COOKIE|SESSION", re.IGNORECASE)


class SandboxWarning(UserWarning):
    """The sandbox is weaker than asked for, or refused part of what it was given."""


def is_secret_name(name: str) -> bool:
    """Whether an environment variable name looks like it holds a credential."""
    return _SECRET_NAME.search(name) is not None


def _refusal(name: str) -> str | None:
    if not name or "=" in name or "\0" in name:
        return "it is not a valid variable name"
    if name in _RESERVED:
        return "the sandbox sets it itself"
    if is_secret_name(name):
        return "its name looks like a secret (key, token, password, ...), and secrets never enter the sandbox"
    return None


def _warn_refused(name: str, reason: str) -> None:
    message = f"Environment variable {name!r} is not passed into the sandbox: {reason}."
    logger.warning(message)
    warnings.warn(message, SandboxWarning, stacklevel=4)


def accepted_names(names: Iterable[str]) -> tuple[str, ...]:
    """The passthrough names that may enter the sandbox; each refused one is warned about."""
    kept: list[str] = []
    for name in names:
        reason = _refusal(name)
        if reason is not None:
            _warn_refused(name, reason)
        elif name not in kept:
            kept.append(name)
    return tuple(kept)


def base_environment(backend: str, home: Path, tmpdir: str) -> dict[str, str]:
    """The fixed variables every sandboxed command gets; nothing is copied from ``os.environ``."""
    # The interpreter's own directory (a venv's bin, unresolved) comes first so `python` means this environment.
    interpreter_bin = str(Path(sys.executable).parent)
    return {
        "PATH": f"{interpreter_bin}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "TMPDIR": tmpdir,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        # BLAS/OpenMP pools sized to the machine multiply memory and CPU use far past the rlimits' intent.
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "NUMEXPR_NUM_THREADS": "1",
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "MPLBACKEND": "Agg",
        BACKEND_VAR: backend,
    }


def add_variables(env: dict[str, str], passthrough: Iterable[str], extra: Mapping[str, str] | None) -> None:
    """Add the passthrough variables present in ``os.environ``, then ``extra``, refusing unsafe names."""
    for name in passthrough:
        value = os.environ.get(name)
        if value is not None and "\0" not in value:
            env[name] = value
    for name, value in (extra or {}).items():
        reason = _refusal(name)
        if reason is None and "\0" in value:
            reason = "its value contains a NUL byte"
        if reason is None:
            env[name] = value
        else:
            _warn_refused(name, reason)
