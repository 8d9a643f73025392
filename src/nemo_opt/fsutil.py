"""Crash-safe file writes (a temporary file in the same directory, fsync, then an atomic rename), and file hashes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from nemo_opt import door

__all__ = ["atomic_copy", "atomic_write_json", "atomic_write_text", "read_json", "sha256_file", "to_jsonable"]


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see either the old or the new content, never a mix.

    Goes through the safe door (:mod:`nemo_opt.door`): a symlink at ``path`` is replaced, never written through."""
    path.parent.mkdir(parents=True, exist_ok=True)
    door.write_text(path.parent, path.name, text)


def atomic_copy(source: Path, target: Path) -> None:
    """Copy the regular file ``source`` to ``target`` so that readers see either the old or the whole new file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    door.copy_file(source.parent, source.name, target.parent, target.name)


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks (model weights run to gigabytes)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def to_jsonable(value: Any) -> Any:
    """Convert dataclasses, pydantic models, paths, enums and numpy scalars into plain JSON values."""
    if hasattr(value, "model_dump"):
        return to_jsonable(value.model_dump(mode="json"))
    if hasattr(value, "__dataclass_fields__"):
        return {name: to_jsonable(getattr(value, name)) for name in value.__dataclass_fields__}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [to_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return value.item()
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def atomic_write_json(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON, atomically."""
    atomic_write_text(path, json.dumps(to_jsonable(data), indent=2, ensure_ascii=False) + "\n")


def read_json(path: Path) -> Any:
    """Read a JSON file (a regular file, size- and depth-bounded, through the safe door)."""
    return door.read_json(path.parent, path.name)
