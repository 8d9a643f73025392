"""Starter memory: canonical operations-research models shipped with the package.

Each module in this folder is a self-contained, runnable script: its docstring is the
problem statement, its module-level constants ``ANSWER``, ``SOLVER`` and ``TAGS`` record
the optimal objective, the modelling library used and topic tags, and running it prints
``objective: <value>`` as its last line. :func:`load_starter` reads these files as text
and parses the constants with :mod:`ast`; it never imports or executes them.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "STARTER_DIR",
    "StarterExample",
    "StarterFormatError",
    "example_paths",
    "load_starter",
    "parse_example",
]

STARTER_DIR: Path = Path(__file__).resolve().parent

_SOLVERS = frozenset({"highs", "pulp"})


class StarterFormatError(ValueError):
    """A starter example file is missing a docstring or a required constant, or has a malformed one."""


@dataclass(frozen=True)
class StarterExample:
    """One solved example: the problem text, the full source that solves it, and its answer."""

    id: str
    title: str
    question: str
    code: str
    answer: float
    solver: str
    tags: tuple[str, ...]
    path: Path


def _constants(tree: ast.Module) -> dict[str, ast.expr]:
    """Module-level ``NAME = value`` (or ``NAME: T = value``) assignments, by name."""
    found: dict[str, ast.expr] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    found[target.id] = node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            found[node.target.id] = node.value
    return found


def _literal(path: Path, constants: dict[str, ast.expr], name: str) -> object:
    if name not in constants:
        raise StarterFormatError(f"{path.name}: missing module-level constant {name}")
    try:
        return ast.literal_eval(constants[name])
    except ValueError as exc:
        raise StarterFormatError(f"{path.name}: {name} must be a literal value") from exc


# Titles that the file stem alone would render poorly.
_TITLES = {"tsp": "Traveling salesman (TSP)"}


def _title(stem: str) -> str:
    return _TITLES.get(stem, stem.replace("_", " ").capitalize())


def parse_example(path: Path) -> StarterExample:
    """Read one example file without executing it."""
    code = path.read_text(encoding="utf-8")
    try:
        tree = ast.parse(code, filename=str(path))
    except SyntaxError as exc:
        raise StarterFormatError(f"{path.name}: not valid Python: {exc}") from exc
    question = ast.get_docstring(tree)
    if not question:
        raise StarterFormatError(f"{path.name}: missing module docstring (the problem statement)")
    constants = _constants(tree)

    answer = _literal(path, constants, "ANSWER")
    if isinstance(answer, bool) or not isinstance(answer, int | float):
        raise StarterFormatError(f"{path.name}: ANSWER must be a number, got {answer!r}")
    solver = _literal(path, constants, "SOLVER")
    if solver not in _SOLVERS:
        raise StarterFormatError(f"{path.name}: SOLVER must be one of {sorted(_SOLVERS)}, got {solver!r}")
    tags = _literal(path, constants, "TAGS")
    if not isinstance(tags, tuple) or not tags or not all(isinstance(t, str) and t for t in tags):
        raise StarterFormatError(f"{path.name}: TAGS must be a non-empty tuple of strings, got {tags!r}")

    return StarterExample(
        id=f"starter-{path.stem}",
        title=_title(path.stem),
        question=question,
        code=code,
        answer=float(answer),
        solver=str(solver),
        tags=tuple(str(t) for t in tags),
        path=path,
    )


def example_paths(directory: Path = STARTER_DIR) -> list[Path]:
    """The example files in ``directory``, sorted by name (private modules excluded)."""
    return sorted(p for p in directory.glob("*.py") if not p.name.startswith("_"))


def load_starter(directory: Path = STARTER_DIR) -> list[StarterExample]:
    """Parse every example in the starter folder (or another folder with the same layout)."""
    return [parse_example(path) for path in example_paths(directory)]
