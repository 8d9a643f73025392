"""Trace P*'s numbers to the problem text D, before any agent sees them.

The text outranks P*: an extracted number that the text never states is flagged *invented*, and a number the
text states that no parameter holds is flagged *missing*. Traced means stated, or derived from stated numbers
by one rule a modeler would apply: a percentage as a fraction (20% -> 0.2), a unit change (by 60, 100, 1000,
24, 7, 12 or 52), and, for a scalar parameter only, a product, quotient, sum or difference of two stated numbers
(8 h x 5 days). An entry of an indexed parameter must be stated itself (or a unit change of a stated number):
with pairs allowed there, almost any invented table entry would pass (``profit[chair] = 30`` is 3 x 10). It is
not a digit search: ``240`` is not traced by ``24`` or by ``2400``. The numbers 0 and 1 are always traced
(bounds and indicator values need no statement), and numbers written as words up to twelve are read too.

The flags go to ``extract/trace.json``, to the run's events, and into the whole-file agents' prompts, which tell
the agents that the text wins where data.json disagrees with it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from itertools import combinations_with_replacement
from typing import Any

from nemo_opt.spec import ProblemSpec

__all__ = ["Trace", "numbers_in_text", "repair_request", "trace_numbers", "untraced_bounds"]

_NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:\s*(%|percent\b))?", re.IGNORECASE)
_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
    "eleven": 11, "twelve": 12, "dozen": 12, "twice": 2, "double": 2, "triple": 3, "half": 0.5, "quarter": 0.25,
}  # fmt: skip
_WORD = re.compile(r"\b(" + "|".join(_WORDS) + r")\b", re.IGNORECASE)
_UNIT_FACTORS = (60.0, 100.0, 1000.0, 24.0, 7.0, 12.0, 52.0)
# More stated numbers than this and pairwise rules are skipped (MIPLIB-size texts: the pairs would trace anything).
_PAIR_LIMIT = 60


@dataclass
class Trace:
    """What the trace found: P* numbers the text does not state, and stated numbers P* does not hold."""

    invented: list[dict[str, Any]] = field(default_factory=list)  # {"parameter", "key", "value"}
    missing: list[float] = field(default_factory=list)
    stated: int = 0

    @property
    def clean(self) -> bool:
        return not self.invented and not self.missing

    def as_dict(self) -> dict[str, Any]:
        return {"stated": self.stated, "invented": self.invented, "missing": self.missing}

    def message(self) -> str:
        parts = []
        if self.invented:
            shown = ", ".join(f"{i['parameter']}{i['key']} = {_fmt(i['value'])}" for i in self.invented[:8])
            more = f" (+{len(self.invented) - 8} more)" if len(self.invented) > 8 else ""
            parts.append(f"numbers in data.json that the problem text does not state: {shown}{more}")
        if self.missing:
            shown = ", ".join(_fmt(v) for v in self.missing[:12])
            more = f" (+{len(self.missing) - 12} more)" if len(self.missing) > 12 else ""
            parts.append(f"numbers the problem text states that data.json does not hold: {shown}{more}")
        return "; ".join(parts)


def _fmt(value: float) -> str:
    return f"{value:g}"


def numbers_in_text(text: str) -> list[float]:
    """Every number stated in ``text`` (digits with thousands separators and decimals, percentages as both the
    number and its fraction, small numbers written as words), in order of first appearance."""
    found: list[float] = []
    for match in _NUMBER.finditer(text):
        raw = match.group(0)
        value = float(re.sub(r"[^\d.+-]", "", raw.split("%")[0].lower().replace("percent", "")))
        found.append(value)
        if match.group(1):
            found.append(value / 100.0)
    found.extend(float(_WORDS[m.group(1).lower()]) for m in _WORD.finditer(text))
    unique: list[float] = []
    for value in found:
        if not any(_same(value, seen) for seen in unique):
            unique.append(value)
    return unique


def _same(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)


def _derived(stated: list[float], pairs: bool) -> list[float]:
    values = list(stated)
    for value in stated:
        for factor in _UNIT_FACTORS:
            values += [value * factor, value / factor]
    if pairs and len(stated) <= _PAIR_LIMIT:
        for a, b in combinations_with_replacement(stated, 2):
            values += [a * b, a + b, abs(a - b)]
            if b:
                values.append(a / b)
            if a:
                values.append(b / a)
    return values


def _leaves(value: Any, key: str = "") -> list[tuple[str, float]]:
    if isinstance(value, bool):
        return [(key, float(value))]
    if isinstance(value, (int, float)):
        return [(key, float(value))]
    if isinstance(value, dict):
        return [leaf for k, v in value.items() for leaf in _leaves(v, f"{key}[{k}]")]
    if isinstance(value, list):
        return [leaf for i, v in enumerate(value) for leaf in _leaves(v, f"{key}[{i}]")]
    return []


def trace_numbers(spec: ProblemSpec, text: str) -> Trace:
    """Trace every parameter value of ``spec`` to ``text`` (see the module docstring)."""
    stated = numbers_in_text(text)
    single, paired = sorted(_derived(stated, False)), sorted(_derived(stated, True))
    trace = Trace(stated=len(stated))
    held: list[float] = []
    for parameter in spec.parameters:
        for key, value in _leaves(parameter.value):
            held.append(value)
            if not math.isfinite(value) or _same(value, 0.0) or _same(abs(value), 1.0):
                continue
            if not _near(abs(value), paired if not parameter.indices and not key else single):
                trace.invented.append({"parameter": parameter.name, "key": key, "value": value})
    # Set sizes and element names count as holding a number (e.g. "3 warehouses", "Week 1").
    for index_set in spec.sets:
        held.append(float(len(index_set.elements)))
        held.extend(float(e) for e in index_set.elements if isinstance(e, int | float))
        held.extend(float(n) for e in index_set.elements for n in re.findall(r"\d+(?:\.\d+)?", str(e)))
    labels = _labels(text)
    for value in stated:
        if _same(value, 0.0) or _same(value, 1.0) or any(_same(value, label) for label in labels):
            continue
        if not any(_same(value, h) or _same(value, abs(h)) or _same(value * 100.0, h) for h in held) and not any(
            _same(value / 100.0, h) for h in held
        ):
            trace.missing.append(value)
    return trace


_LABEL = re.compile(r"(?:\b[A-Z][a-z]*\.?\s+|#\s*)(\d+)\b(?!\s*%)|\b((?:19|20)\d\d)\b")


def untraced_bounds(spec: ProblemSpec, text: str) -> list[dict[str, Any]]:
    """The variable bounds of ``spec`` that ``text`` does not state, as {"variable", "bound", "value"}: traced like
    an entry of an indexed parameter (a stated number or a unit change of one); 0 and ±1 need no statement. On
    NL4OPT item 11 a 1.5B extraction put an upper bound of 16 cars that the text never states, the optimizer
    skeleton declared it, and all three optimizers kept it (a wrong "infeasible" they agreed on). Pairs of stated
    numbers would have traced it (40% of 40), as they would almost any bound."""
    single = sorted(_derived(numbers_in_text(text), False))
    found = []
    for var in spec.variables:
        for bound in ("lower", "upper"):
            value = getattr(var, bound)
            if value is None or not math.isfinite(value) or _same(value, 0.0) or _same(abs(value), 1.0):
                continue
            if not _near(abs(value), single):
                found.append({"variable": var.name, "bound": bound, "value": value})
    return found


def _labels(text: str) -> list[float]:
    """Numbers that name things rather than measure them ("Machine 2", "#3", the year 2024): a number stated
    only that way is not missing from P* (its sets name the things)."""
    found = [float(m.group(1) or m.group(2)) for m in _LABEL.finditer(text)]
    # A number that is also stated as a quantity somewhere is not a label.
    quantities = [
        float(re.sub(r"[^\d.+-]", "", m.group(0).split("%")[0].lower().replace("percent", "")))
        for m in _NUMBER.finditer(text)
        if not _is_label_at(text, m.start())
    ]
    return [n for n in found if not any(_same(n, q) for q in quantities)]


def _is_label_at(text: str, start: int) -> bool:
    before = text[max(0, start - 20) : start]
    return bool(re.search(r"(?:\b[A-Z][a-z]*\.?\s+|#\s*)$", before)) or bool(re.match(r"(?:19|20)\d\d\b", text[start:]))


def _near(value: float, sorted_values: list[float]) -> bool:
    """Whether ``value`` equals one of ``sorted_values`` (bisect on the sorted list)."""
    from bisect import bisect_left

    i = bisect_left(sorted_values, value)
    return any(0 <= j < len(sorted_values) and _same(value, sorted_values[j]) for j in (i - 1, i, i + 1))


def _context(text: str, value: float, width: int = 60) -> str:
    """The words around the first statement of ``value`` in ``text``."""
    for match in _NUMBER.finditer(text):
        raw = match.group(0).split("%")[0].lower().replace("percent", "")
        number = float(re.sub(r"[^\d.+-]", "", raw))
        if _same(number, value) or (match.group(1) and _same(number / 100.0, value)):
            start, end = max(0, match.start() - width), min(len(text), match.end() + width)
            return " ".join(text[start:end].split())
    for match in _WORD.finditer(text):
        if _same(float(_WORDS[match.group(1).lower()]), value):
            start, end = max(0, match.start() - width), min(len(text), match.end() + width)
            return " ".join(text[start:end].split())
    return ""


def repair_request(trace: Trace, text: str) -> str:
    """What an extraction repair is told: each flagged number, with the words around it in the text."""
    lines = []
    for value in trace.missing:
        lines.append(
            f'- {_fmt(value)} is stated in the text ("...{_context(text, value)}...") but no parameter holds it.'
        )
    for item in trace.invented:
        lines.append(
            f"- {item['parameter']}{item['key']} = {_fmt(item['value'])} is not a number the text states; use the "
            "text's number."
        )
    return (
        "Checked against the problem text, some numbers of your JSON do not match it:\n"
        + "\n".join(lines)
        + '\nPut every number the problem needs into "parameters" with the text\'s exact value (an indexed '
        "parameter has one entry per set element), and keep the rest as it is."
    )
