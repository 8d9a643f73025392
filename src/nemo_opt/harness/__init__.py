"""Standalone scripts copied into workspaces and packages; they import nothing from nemo_opt."""

from __future__ import annotations

from importlib import resources

__all__ = ["harness_source"]


def harness_source(name: str) -> str:
    """Source text of the harness script ``name`` (e.g. ``check_solution.py``)."""
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")
