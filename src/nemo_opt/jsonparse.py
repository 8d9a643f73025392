"""Find the JSON object in a model reply: fenced or bare, with prose around it, with common slips mended.

Small models write JSON-like text: trailing commas, Python literals, an ellipsis standing for "and so on"
inside a list, a bare name or expression where a value belongs (``"upper": max_trips``), ``//`` comments.
Mending keeps what they meant where it is unambiguous: an ellipsis is dropped, a bare value becomes a string
(the schema then decides whether it can be used), a comment is removed.
"""

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


_BARE_STOP = ",}]\n"
_LITERAL_START = '"{[-0123456789'
_ELLIPSIS = {"...", "\u2026", "etc", "etc."}


def _quote_bare_values(text: str) -> str:
    """Quote bare values (names, expressions) and drop ellipses and ``//`` comments, outside strings."""
    out: list[str] = []
    stack: list[str] = []  # "{" or "["
    expect_value = False
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == '"':
            end = i + 1
            while end < n and text[end] != '"':
                end += 2 if text[end] == "\\" else 1
            out.append(text[i : end + 1])
            i = end + 1
            expect_value = False
            continue
        if ch == "/" and text.startswith("//", i):
            while i < n and text[i] != "\n":
                i += 1
            continue
        if ch in "{[":
            stack.append(ch)
            expect_value = ch == "["
        elif ch in "}]":
            if stack:
                stack.pop()
            expect_value = False
        elif ch == ":":
            expect_value = True
        elif ch == ",":
            expect_value = bool(stack) and stack[-1] == "["
        elif not ch.isspace() and (not expect_value or ch in _LITERAL_START):
            expect_value = False  # a number or literal has started (or text outside a value position)
        elif not ch.isspace():
            end = i
            while end < n and text[end] not in _BARE_STOP:
                end += 1
            token = text[i:end].strip()
            if token in {"true", "false", "null"}:
                out.append(token)
            elif token.rstrip(",") not in _ELLIPSIS:
                out.append(json.dumps(token))
            i, expect_value = end, False
            continue
        out.append(ch)
        i += 1
    return _EMPTY_ITEM.sub("", "".join(out))


_EMPTY_ITEM = re.compile(r",\s*(?=,)")


def _decode_at(text: str, start: int) -> tuple[dict[str, Any] | None, str]:
    decoder = json.JSONDecoder()
    error = ""
    # Mending can change lengths, so the start of the mended text is the length of the mended prefix.
    lenient = _mend(text[:start]) + _mend(_quote_bare_values(_mend(text[start:])))
    attempts = ((text, start), (_mend(text), len(_mend(text[:start]))), (lenient, len(_mend(text[:start]))))
    for attempt, offset in attempts:
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
    fenced_failed = False
    for block in _FENCED.findall(text):
        start = block.find("{")
        if start != -1:
            value, last_error = _decode_at(block, start)
            if value is not None:
                return value
            fenced_failed = True
    if fenced_failed:  # objects nested inside the broken block would only be fragments of it
        raise ValueError(f"the JSON block in the reply is not valid JSON: {last_error}")
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
