"""Find the JSON object in a model reply: fenced or bare, with prose around it, with common slips mended."""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["parse_json_object"]

_FENCED = re.compile(r"```(?:json|JSON|javascript)?[ \t]*\n(.*?)```", re.DOTALL)
_TRAILING_COMMA = re.compile(r",(\s*[}\]])")
_PY_LITERALS = {r"\bNone\b": "null", r"\bTrue\b": "true", r"\bFalse\b": "false"}


def _mend(text: str) -> str:
    """Fix slips small models make: trailing commas, Python literals, typographic quotes."""
    text = text.replace("\u201c", '"').replace("\u201d", '"')
    text = _TRAILING_COMMA.sub(r"\1", text)
    for pattern, replacement in _PY_LITERALS.items():
        text = re.sub(pattern, replacement, text)
    return text


def _decode_at(text: str, start: int) -> tuple[dict[str, Any] | None, str]:
    decoder = json.JSONDecoder()
    error = ""
    # Mending can change lengths, so the start of the mended text is the length of the mended prefix.
    for attempt, offset in ((text, start), (_mend(text), len(_mend(text[:start])))):
        try:
            value, _ = decoder.raw_decode(attempt, offset)
        except json.JSONDecodeError as exc:
            error = f"{exc.msg} (line {exc.lineno}, column {exc.colno})"
            continue
        if isinstance(value, dict):
            return value, ""
        error = f"found a JSON {type(value).__name__}, expected an object"
    return None, error


def parse_json_object(text: str) -> dict[str, Any]:
    """The JSON object in ``text``: a fenced block first, else a ``{`` opening the reply or a line.

    Raises ValueError saying what was wrong, for a repair round-trip.
    """
    last_error = "no '{' found"
    for block in _FENCED.findall(text):
        start = block.find("{")
        if start != -1:
            value, last_error = _decode_at(block, start)
            if value is not None:
                return value
    starts = [m.start() for m in re.finditer(r"(?:^|\n)[ \t]*\{", text)]
    starts = [text.index("{", s) for s in starts]
    if not starts and "{" in text:
        starts = [text.index("{")]
    for start in starts:
        value, error = _decode_at(text, start)
        if value is not None:
            return value
        last_error = error or last_error
    raise ValueError(f"the reply contains no valid JSON object: {last_error}")
