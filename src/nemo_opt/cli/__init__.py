"""The ``nemo-opt`` command line: parse, call the library, render."""

from __future__ import annotations

from nemo_opt.cli import bench, doctor, memory, package, runs
from nemo_opt.cli.app import cli, fail
from nemo_opt.exceptions import NemoError

__all__ = ["bench", "cli", "doctor", "main", "memory", "package", "runs"]


def main() -> None:
    """Entry point of the ``nemo-opt`` script."""
    try:
        cli(obj={})
    except NemoError as exc:
        fail(exc)
