"""The exception tree drawn in ``nemo_opt.exceptions`` is the tree the classes form."""

from __future__ import annotations

import re

import pytest

from nemo_opt import exceptions
from nemo_opt.exceptions import (
    AgentFailed,
    BadInput,
    CostCeilingReached,
    LLMUnavailable,
    NemoError,
    RunTimeLimitReached,
    failure_category,
)


def _drawn_tree() -> dict[str, str]:
    """{class name: parent name} from the module docstring's drawing."""
    doc = exceptions.__doc__ or ""
    drawing = doc[doc.index("NemoError\n") :].split("\n\n")[0]
    parents: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    for line in drawing.splitlines():
        match = re.match(r"^(\s*(?:[│ ]   )*)(?:[├└]── )?([A-Z]\w+)", line)
        if match is None or not match.group(2):
            continue
        depth = len(match.group(1)) // 4 + (1 if "──" in line else 0)
        while stack and stack[-1][0] >= depth:
            stack.pop()
        if stack:
            parents[match.group(2)] = stack[-1][1]
        stack.append((depth, match.group(2)))
    return parents


def test_the_drawing_matches_the_classes() -> None:
    drawn = _drawn_tree()
    assert len(drawn) >= 20, drawn
    for name, parent in drawn.items():
        cls = getattr(exceptions, name)
        assert getattr(exceptions, parent) in cls.__mro__[1:], f"{name} is drawn under {parent}"
    defined = {
        name
        for name, obj in vars(exceptions).items()
        if isinstance(obj, type) and issubclass(obj, NemoError) and obj is not NemoError
    }
    assert defined == set(drawn), f"drawn but not defined or defined but not drawn: {defined ^ set(drawn)}"
    assert set(exceptions.__all__) >= defined


@pytest.mark.parametrize(
    ("exc", "category"),
    [
        (LLMUnavailable("down"), "model service"),
        (CostCeilingReached("ceiling"), "cost"),
        (RunTimeLimitReached("late"), "timeout"),
        (AgentFailed("no model"), "execution"),
        (BadInput("empty"), "bad input"),
        (KeyboardInterrupt(), "interrupted"),
        (ZeroDivisionError(), "crash"),
    ],
)
def test_failure_category_follows_the_type(exc: BaseException, category: str) -> None:
    assert failure_category(exc) == category
