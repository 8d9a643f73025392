"""Find the JSON object in a model reply: fenced or bare, with prose around it, with common slips mended.

Small models write JSON-like text: trailing commas, Python literals and dict reprs, single quotes, unquoted keys,
an ellipsis standing for "and so on" inside a list, a bare name or expression where a value belongs
(``"upper": max_trips``), ``//`` comments. The repair is json_repair's (``json_repair.repair_json``), which leaves
text inside strings as written. This module only finds the object (a fenced block first, else a ``{`` opening the
reply or a line; the first when there are several), writes a value given as arithmetic as its value (numbers
alone) or as a string (with names), and refuses two slips that cannot be mended without guessing: an object
that never closes (a cut-off reply, ``_object_end``) and a value json_repair would change (a number that runs
on into more text, "10 000", "[1 2]"; a sign before a word: ``_refusal``); the caller then asks the model again.

Cost, from ``benchmarks/json_repair_corpus.py`` on the 78 replies of ``tests/fixtures/json_replies.jsonl`` (CPU
time per reply, best of 15, 5 runs on a busy 2-core machine): 54-61 us with json_repair (once 89) against
106-117 us with the hand-written repair it replaced; the 28 replies whose object is valid JSON as written 8-13 us
against 110-136 us (the old code mended every reply before trying it as written), the 27 that need mending
128-149 us against 51-60 us (once 89). Either is negligible beside the model call that produced the reply. On
the corpus the old repair passed 62 of the 78 cases, json_repair alone 63, this module 78.
"""

from __future__ import annotations

import ast
import json
import math
import re
from typing import Any, NamedTuple

from json_repair import repair_json

__all__ = ["parse_json_object"]

# An unclosed fence runs to the end of the reply, so a cut-off fenced reply is reported as a broken block.
_FENCED = re.compile(r"```(?:json|JSON|javascript)?[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL)
# What is not structure: strings (an unterminated one runs to the end) and comments.
_NOT_STRUCTURE = re.compile(r'"(?:[^"\\]|\\.)*(?:"|\Z)|\'(?:[^\'\\\n]|\\.)*\'|//[^\n]*|/\*.*?(?:\*/|\Z)', re.DOTALL)
_STRUCTURE = re.compile(_NOT_STRUCTURE.pattern + r"|[{}\[\]]", re.DOTALL)
# In value position: a number followed on its line by more of the value ("10 000", "[1 2]", "2 * cap",
# "100 - x"), or a sign before something that is not a number ("-max_trips", "-Infinity", "- 5").
_VALUE_END = re.compile(r"[,}\]\n]")
_GUESSED_VALUE = re.compile(
    r"[:\[,]\s*(?:(?>(?P<number>[-+]?(?:\d[\d_]*\.?\d*|\.\d+)(?:[eE][-+]?\d+)?))[ \t]*+(?=[\w.*+\-(]|/(?![/*]))"
    r"|(?P<sign>[-+])(?![\d.]))"
)


def _object_end(text: str, start: int) -> int | None:
    """Index just past the ``}`` closing the object opened at ``start``, or None when it never closes.

    Kept beside json_repair, which closes a cut-off object silently (no log entry, nothing to tell it from a whole
    one): on the corpus all 6 cut-off replies came out as objects, 3 of them the product-mix extraction missing the
    rest of its constraints, where each must be refused so the model is asked again. It also bounds the text
    handed to json_repair, which otherwise merges a following object of the same shape into the first (1 corpus
    case, the first object needing mending: json_repair alone returned the second).
    """
    depth = 0
    for match in _STRUCTURE.finditer(text, start):
        token = match.group()
        if token in "{[":
            depth += 1
        elif token in "}]":
            depth -= 1
            if depth == 0:
                return match.end()
    return None


class _Problem(NamedTuple):
    """What is wrong, at a position of the reply; only the message raised is given a line and column, since
    counting lines for every refused ``{`` of a long reply would cost time quadratic in its length."""

    before: str
    at: int
    after: str

    def message(self, text: str) -> str:
        line, column = text.count("\n", 0, self.at) + 1, self.at - text.rfind("\n", 0, self.at)
        return f"{self.before}line {line}, column {column}{self.after}"


def _refusal(text: str, start: int, end: int | None) -> _Problem | None:
    """Why the object at ``start`` is not mended, or None.

    A run-on number or a signed word is refused because json_repair keeps a part and drops or splits the rest: on
    the corpus all 5 run-on replies came out with numbers nobody wrote ("10 000" as 10, "[1 200, 3 400]" as
    [1, 200, 3, 400], "2 * cap" as 2, "100 - x" as 100, "[1 2]" as [1, 2]) and all 3 signed ones without their
    sign ("-max_trips" as "max_trips", a lower bound flipped; "-Infinity" as "Infinity", "[- 5, 3]" as [5, 3]).
    """
    if end is None:
        return _Problem(
            "the object that opens at ", start, " never closes (the reply may be cut off); send the whole object"
        )
    # Strings and comments blanked in place (same length, a string keeps its opening quote), so indices match.
    structure = _NOT_STRUCTURE.sub(lambda m: m.group()[0].replace("/", " ").ljust(len(m.group())), text[start:end])
    guessed = _GUESSED_VALUE.search(structure)
    if guessed is None:
        return None
    group = "number" if guessed.group("number") else "sign"
    at = start + guessed.start(group)
    stop = _VALUE_END.search(text, start + guessed.end(), end)
    snippet = text[at : stop.start() if stop else end][:40].strip()
    if group == "sign":
        return _Problem(
            f"a '{guessed.group(group)}' stands before a value that is not a number at ",
            at,
            f" ({snippet!r}); write the number, or put the expression in quotes",
        )
    return _Problem(
        "a number runs on into more text at ",
        at,
        f" ({snippet!r}); write one JSON number (no spaces or thousands separators), separate list items with "
        "commas, or quote an expression",
    )


# In value position: arithmetic starting with a number ("0.4 * 40", "(100 - 20) / 2", "2 * cap", "100 - x"):
# operators between the operands, none of them two numbers side by side ("10 000" stays refused).
_OPERAND = r"(?:\d+(?:\.\d+)?|[A-Za-z_]\w*(?:\[[^\]\n]*\])?)"
_ARITHMETIC = re.compile(
    rf"(?<=[:\[,])(?P<space>[ \t]*)(?P<expr>[-+(]*[ \t]*\d+(?:\.\d+)?[ \t]*\)*(?:[ \t]*[-+*/][ \t]*[-+(]*[ \t]*"
    rf"{_OPERAND}[ \t]*\)*)+)(?=[ \t]*[,}}\]\n])"
)


_ARITHMETIC_NODES = (
    ast.Expression,
    ast.BinOp,
    ast.UnaryOp,
    ast.Constant,
    ast.Add,
    ast.Sub,
    ast.Mult,
    ast.Div,
    ast.USub,
)


def _literal_value(expression: str) -> float | None:
    """The value of ``expression`` when it is +, -, *, / and parentheses over number literals only."""
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError:
        return None
    if not all(isinstance(node, _ARITHMETIC_NODES) for node in ast.walk(tree)):
        return None
    if any(isinstance(n, ast.Constant) and not isinstance(n.value, int | float) for n in ast.walk(tree)):
        return None
    try:
        # Only number literals and + - * / are in the tree (checked above): nothing else can run.
        value = eval(compile(tree, "<arithmetic>", "eval"), {"__builtins__": {}}, {})
    except (ArithmeticError, ValueError):
        return None
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def _evaluate_arithmetic(obj: str) -> str | None:
    """``obj`` with each value written as arithmetic mended, or None when there is none: on numbers alone it is
    replaced by its value, with names in it (``0.4 * birds``, ``2 * cap``) it becomes a string, exactly as
    written, for the layer that reads it (a bound or a parameter given as an expression is left to the
    constraints there). Nothing is dropped or guessed, unlike json_repair's mending of the same text.

    Measured on the 1.5B local model: three of ten NL4OPT extractions wrote a value as ``0.4 * 40`` or
    ``0.4 * birds`` (and its repair wrote the same reply again); refusing them cost the whole run."""
    structure = _NOT_STRUCTURE.sub(lambda m: m.group()[0].ljust(len(m.group())), obj)
    pieces, last, changed = [], 0, False
    for match in _ARITHMETIC.finditer(structure):
        expression = obj[match.start("expr") : match.end("expr")].strip()
        if not re.search(r"[-+*/]", expression.lstrip("-+( \t")):
            continue  # a signed or bracketed number alone is JSON's business
        value = _literal_value(expression)
        if value is not None:
            text = repr(int(value)) if value.is_integer() else repr(value)
        else:
            text = json.dumps(expression)
        pieces += [obj[last : match.start("expr")], text]
        last, changed = match.end("expr"), True
    return "".join([*pieces, obj[last:]]) if changed else None


def _decode_at(text: str, start: int) -> tuple[dict[str, Any] | None, _Problem | None, int | None]:
    """(object, problem, end of the object's text or None when it never closes) for the ``{`` at ``start``."""
    try:
        value, decoded_end = json.JSONDecoder().raw_decode(text, start)
    except json.JSONDecodeError:
        pass
    else:
        if isinstance(value, dict):
            return value, None, decoded_end
    end = _object_end(text, start)
    refusal = _refusal(text, start, end)
    if refusal is not None and end is not None:
        mended = _evaluate_arithmetic(text[start:end])
        if mended is not None:  # arithmetic on numbers alone has one reading: its value
            value, problem, _ = _decode_at(mended, 0)
            if value is not None:
                return value, None, end
    if refusal is not None:
        return None, refusal, end
    assert end is not None
    repaired = repair_json(text[start:end], return_objects=True, skip_json_loads=True)
    if isinstance(repaired, dict):
        return repaired, None, end
    shape = "nothing usable" if repaired in ("", None) else f"a JSON {type(repaired).__name__}"
    return None, _Problem("the text at ", start, f" reads as {shape}, expected an object"), end


def parse_json_object(text: str) -> dict[str, Any]:
    """The JSON object in ``text``: a fenced block first, else a ``{`` opening the reply or a line.

    Raises ValueError saying what was wrong, for a repair round-trip.
    """
    problem: _Problem | None = None
    fenced_failed = False
    for fence in _FENCED.finditer(text):
        start = text.find("{", fence.start(1), fence.end(1))
        if start != -1:  # the reply up to the block's end, so positions in messages are the reply's
            value, problem, _ = _decode_at(text[: fence.end(1)], start)
            if value is not None:
                return value
            fenced_failed = True
    if fenced_failed and problem is not None:  # objects nested inside the broken block would only be fragments of it
        raise ValueError(f"the JSON block in the reply is not valid JSON: {problem.message(text)}")
    starts = [m.start() for m in re.finditer(r"(?:^|\n)[ \t]*\{", text)]
    starts = [text.index("{", s) for s in starts]
    if not starts and "{" in text:
        starts = [text.index("{")]
    skip_to = 0
    for start in starts:
        if start < skip_to:  # inside a "{...}" already tried: only a fragment of it
            continue
        value, problem, end = _decode_at(text, start)
        if value is not None:
            return value
        if end is None:  # it never closes, so every later '{' is inside it
            break
        skip_to = end
    reason = problem.message(text) if problem is not None else "no '{' found"
    raise ValueError(f"the reply contains no valid JSON object: {reason}")
