"""Reading and checking a problem description before any model is called.

Every way a description can be unusable ends here with :class:`BadInput` (exit code 2) and a message that
says what to do: no text at all, a binary file (NUL bytes, mostly control characters, not UTF-8), a text too
long to resend on every agent turn, or a few words that state no problem. Text in any language is accepted;
the extraction prompt asks for ASCII identifiers whatever the language.
"""

from __future__ import annotations

import sys
from pathlib import Path

from nemo_opt.exceptions import BadInput

__all__ = ["MAX_PROBLEM_CHARS", "check_problem", "read_problem"]

# The default of the ``max_problem_chars`` setting. Long enough for any benchmark item with its data tables
# (the longest is about 20,000 characters); beyond it the text is almost surely a mistake (a log or a dataset),
# and since the description is part of every agent's prompt, a megabyte of it would be resent on every turn
# (about 250,000 tokens a call, past most models' context windows).
MAX_PROBLEM_CHARS = 200_000
# How much of a file is scanned for NUL bytes: binary formats show them in their first block.
_SNIFF_BYTES = 65_536


def _too_long(source: str, size: str, needed: int, limit: int) -> BadInput:
    return BadInput(
        f"{source} has {size}; the limit is {limit:,} characters (setting max_problem_chars). Describe the "
        "problem in prose with data tables of reasonable size, or raise the limit if the text is really needed: "
        f"NEMO_MAX_PROBLEM_CHARS={needed} or max_problem_chars = {needed} in nemo.toml."
    )


def check_problem(text: str, *, source: str = "the problem description", max_chars: int = MAX_PROBLEM_CHARS) -> str:
    """Return the stripped text, or raise :class:`BadInput` saying what is wrong and what to do."""
    if "\x00" in text:
        raise BadInput(f"{source} contains NUL bytes and looks like a binary file. Give a text or Markdown file.")
    stripped = text.strip()
    if not stripped:
        raise BadInput(f"{source} is empty. Write the decision problem in plain language (a .md or .txt file, or '-').")
    control = sum(1 for ch in stripped if ord(ch) < 32 and ch not in "\n\r\t\f")
    if control > max(10, len(stripped) // 100):
        raise BadInput(f"{source} is mostly control characters and looks binary. Give a text or Markdown file.")
    if len(stripped) > max_chars:
        raise _too_long(source, f"{len(stripped):,} characters", len(stripped), max_chars)
    if len(stripped.split()) < 5:
        raise BadInput(
            f"{source} is only '{stripped[:80]}'. Describe the decision, its limits and the goal in a few sentences."
        )
    return stripped


def read_problem(source: str, *, max_chars: int = MAX_PROBLEM_CHARS) -> tuple[str, str]:
    """(text, name) from a file path, or from standard input when ``source`` is '-'.

    At most a little more than ``max_chars`` characters' worth of bytes is read, so a huge file or an endless
    pipe is refused without being loaded."""
    limit_bytes = max_chars * 4 + 16  # UTF-8 needs at most four bytes a character
    if source == "-":
        raw = sys.stdin.buffer.read(limit_bytes + 1)
        name = "stdin"
    else:
        path = Path(source).expanduser()
        if not path.is_file():
            raise BadInput(f"{source} does not exist or is not a file. Give the path of a .md or .txt file, or '-'.")
        with path.open("rb") as handle:
            raw = handle.read(limit_bytes + 1)
        name = path.name
    if b"\x00" in raw[:_SNIFF_BYTES]:
        raise BadInput(f"{name} contains NUL bytes and looks like a binary file. Give a text or Markdown file.")
    if len(raw) > limit_bytes:
        size = path.stat().st_size if source != "-" else len(raw)
        raise _too_long(name, f"more than {limit_bytes:,} bytes", size, max_chars)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadInput(
            f"{name} is not UTF-8 text (byte {exc.start} cannot be decoded); it may be a binary file or another "
            "encoding. Save it as UTF-8 text."
        ) from exc
    return check_problem(text, source=name, max_chars=max_chars), name
