"""Reading and checking a problem description before any model is called."""

from __future__ import annotations

import sys
from pathlib import Path

from nemo_opt.exceptions import BadInput

__all__ = ["MAX_PROBLEM_CHARS", "check_problem", "read_problem"]

# Long enough for any benchmark item with its data tables; beyond this the text is almost surely a mistake
# (a log or a dataset) and would cost a fortune in tokens on every agent turn.
MAX_PROBLEM_CHARS = 200_000


def check_problem(text: str, *, source: str = "the problem description") -> str:
    """Return the stripped text, or raise :class:`BadInput` saying what is wrong and what to do."""
    if "\x00" in text:
        raise BadInput(f"{source} contains NUL bytes and looks like a binary file. Give a text or Markdown file.")
    stripped = text.strip()
    if not stripped:
        raise BadInput(f"{source} is empty. Write the decision problem in plain language (a .md or .txt file, or '-').")
    control = sum(1 for ch in stripped if ord(ch) < 32 and ch not in "\n\r\t")
    if control > max(10, len(stripped) // 100):
        raise BadInput(f"{source} is mostly control characters and looks binary. Give a text or Markdown file.")
    if len(stripped) > MAX_PROBLEM_CHARS:
        raise BadInput(
            f"{source} has {len(stripped):,} characters; the limit is {MAX_PROBLEM_CHARS:,}. Describe the problem "
            "in prose and put large data in a table of reasonable size."
        )
    if len(stripped.split()) < 5:
        raise BadInput(
            f"{source} is only '{stripped[:80]}'. Describe the decision, its limits and the goal in a few sentences."
        )
    return stripped


def read_problem(source: str) -> tuple[str, str]:
    """(text, name) from a file path, or from standard input when ``source`` is '-'."""
    if source == "-":
        raw = sys.stdin.buffer.read()
        name = "stdin"
    else:
        path = Path(source).expanduser()
        if not path.is_file():
            raise BadInput(f"{source} does not exist or is not a file. Give the path of a .md or .txt file, or '-'.")
        raw = path.read_bytes()
        name = path.name
    if b"\x00" in raw[:65536]:
        raise BadInput(f"{name} contains NUL bytes and looks like a binary file. Give a text or Markdown file.")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadInput(f"{name} is not UTF-8 text (byte {exc.start} cannot be decoded). Save it as UTF-8.") from exc
    return check_problem(text, source=name), name
