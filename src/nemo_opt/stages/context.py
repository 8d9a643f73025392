"""Text both agents receive about P*: the spec itself, the data keys and the shape of every variable."""

from __future__ import annotations

import json
import keyword
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nemo_opt.spec import DecisionVariable, ProblemSpec, VarType, data_from_spec

__all__ = [
    "CHECK_PLACEHOLDER",
    "DATA_CHARS",
    "TESTS_HEADER",
    "TESTS_SKELETON",
    "SpecContext",
    "pulp_skeleton",
    "simulator_skeleton",
    "names_key",
    "sets_text",
    "spec_context",
    "with_simulator_helpers",
    "without_simulator_helpers",
    "with_tests_header",
]

# The whole-file prompts show data.json itself up to this size (about 1,000 tokens); beyond it, the keys only.
DATA_CHARS = 4000


@dataclass(frozen=True)
class SpecContext:
    """Rendered pieces of the agent prompts."""

    spec_json: str
    data_keys: str
    variable_shapes: str
    data_json: str = ""
    variable_list: str = ""
    objective: str = ""


def _domain(kind: VarType, lower: float | None, upper: float | None) -> str:
    if kind is VarType.BINARY:
        return "binary (0 or 1)"
    low = "-inf" if lower is None else f"{lower:g}"
    high = "+inf" if upper is None else f"{upper:g}"
    return f"{kind.value} in [{low}, {high}]"


def spec_context(spec: ProblemSpec) -> SpecContext:
    """Render P* for the agent prompts."""
    keys = [f"`{s.name}` (set)" for s in spec.sets] + [f"`{p.name}`" for p in spec.parameters]
    shapes = []
    for var in spec.variables:
        if var.indices:
            example_keys = " -> ".join(
                f"{name} ({', '.join(repr(e) for e in spec.set_elements(name)[:4])}"
                f"{', ...' if len(spec.set_elements(name)) > 4 else ''})"
                for name in var.indices
            )
            shape = f"nested object keyed by {example_keys}"
        else:
            shape = "a number"
        shapes.append(f"     - `{var.name}`: {shape}; {_domain(var.type, var.lower, var.upper)}")
    data = json.dumps(data_from_spec(spec), separators=(", ", ": "))
    if len(data) > DATA_CHARS:
        data = f"// {len(data):,} characters: too long to show; its keys are {', '.join(keys)}"
    listed = []
    for var in spec.variables:
        where = " and ".join(
            f"{name} ({', '.join(str(e) for e in spec.set_elements(name)[:6])}"
            f"{', ...' if len(spec.set_elements(name)) > 6 else ''})"
            for name in var.indices
        )
        head = f"`{var.name}`" + (f", indexed by {where}" if where else " (one number)")
        about = f" — {var.description}" if var.description else ""
        listed.append(f"- {head}: {_domain(var.type, var.lower, var.upper)}{about}")
    objective = f"{spec.objective.sense} {spec.objective.description or spec.objective.expression}"
    return SpecContext(
        spec_json=json.dumps(spec.model_dump(mode="json"), indent=2),
        data_keys=", ".join(keys) if keys else "no parameters",
        variable_shapes="\n".join(shapes),
        data_json=data,
        variable_list="\n".join(listed),
        objective=objective,
    )


def sets_text(spec: ProblemSpec) -> str:
    """The prompt line on the index sets the skeleton reads from data.json (empty when there are none)."""
    used = {name for var in spec.variables for name in var.indices}
    if not used:
        return ""
    listed = "; ".join(
        f"`{s.name}` = {', '.join(str(e) for e in s.elements[:8])}{', ...' if len(s.elements) > 8 else ''}"
        for s in spec.sets
        if s.name in used
    )
    return f"\n- `data` (from data.json) is read only for the index sets of the variables: {listed}."


def _identifier(name: str) -> str:
    ident = re.sub(r"\W", "_", name)
    return ident if ident.isidentifier() and not keyword.iskeyword(ident) else f"v_{ident}"


def _loops(var: DecisionVariable) -> tuple[str, str, str]:
    """(key expression, f-string suffix, for clauses) over ``var``'s index sets, read from ``data``."""
    names = [f"i{n}" if len(var.indices) > 1 else "i" for n in range(1, len(var.indices) + 1)]
    key = names[0] if len(names) == 1 else "(" + ", ".join(names) + ")"
    suffix = "".join(f"_{{{n}}}" for n in names)
    clauses = " ".join(f"for {n} in data[{s!r}]" for n, s in zip(names, var.indices, strict=True))
    return key, suffix, clauses


def pulp_skeleton(spec: ProblemSpec, untraced: Sequence[Mapping[str, Any]] = ()) -> str:
    """The opening of a PuLP model of ``spec``: imports, data, the problem and one declaration per decision
    variable of P* (its name, index sets, type and bounds). A mechanical translation of P*'s variables, so a
    small model spends its reply on the objective and the constraints; it may change what the text contradicts.
    The ``untraced`` bounds (see nemo_opt.stages.trace.untraced_bounds) are left out, and the skeleton says so: a
    number the skeleton states, every optimizer keeps."""
    left_out = {(b["variable"], b["bound"]) for b in untraced}
    sense = "pulp.LpMaximize" if spec.objective.sense == "maximize" else "pulp.LpMinimize"
    indexed = any(var.indices for var in spec.variables)
    lines = ["import json", "", "import pulp", ""] if indexed else ["import pulp", ""]
    if indexed:
        lines.append('data = json.load(open("data.json"))  # for the index sets')
    lines.append(f'prob = pulp.LpProblem("model", {sense})')
    mapping = []
    for var in spec.variables:
        ident = _identifier(var.name)
        args = []
        if var.type is not VarType.BINARY:
            if var.lower is not None and (var.name, "lower") not in left_out:
                args.append(f"lowBound={var.lower:g}")
            if var.upper is not None and (var.name, "upper") not in left_out:
                args.append(f"upBound={var.upper:g}")
        args.append(
            {VarType.BINARY: 'cat="Binary"', VarType.INTEGER: 'cat="Integer"'}.get(var.type, 'cat="Continuous"')
        )
        about = f"  # {var.description}" if var.description else ""
        if var.indices:
            key, suffix, clauses = _loops(var)
            lines.append(
                f'{ident} = {{{key}: pulp.LpVariable(f"{ident}{suffix}", {", ".join(args)}) {clauses}}}{about}'
            )
        else:
            lines.append(f'{ident} = pulp.LpVariable("{ident}", {", ".join(args)}){about}')
        mapping.append(f"{var.name!r}: {ident}")
    lines.append(f"VARIABLES = {{{', '.join(mapping)}}}  # P*'s name -> the variable (keep this line)")
    for b in untraced:
        lines.append(
            f"# (the {b['bound']} bound {b['value']:g} on {b['variable']} is not in the problem text: left out; "
            "add it only if the text says so)"
        )
    lines += [
        "",
        f"# objective ({spec.objective.sense}): {spec.objective.description or ''}".rstrip(),
        "prob += ...",
        "",
    ]
    lines.append("# one constraint per condition of the problem text, each with a unique name, e.g.")
    lines.append('# prob += <left side> <= <limit>, "name"')
    return "\n".join(lines) + "\n"


def simulator_skeleton(spec: ProblemSpec) -> str:
    """The simulator file the agent completes: reading each decision variable of P* from the solution by its name
    and index sets (a missing value is a violation), an open check to replace and the objective. The helpers it
    calls are put in by the system when the file is saved (see with_simulator_helpers). Only the shape comes from
    P*: the checks are the agent's, from D."""
    lines = [
        "def simulate(solution, data, atol=1e-6, rtol=1e-6):",
        "    violations = []",
        f"    {HELPERS_NOTE}",
    ]
    for var in spec.variables:
        ident = _identifier(var.name)
        if var.indices:
            key, _, clauses = _loops(var)
            keys = key.strip("()")
            lines.append(f"    {ident} = {{{key}: value({var.name!r}, {keys}) {clauses}}}")
        else:
            lines.append(f"    {ident} = value({var.name!r})")
    lines += [
        "",
        # Open calls, not commented examples: a 1.5B model filled `objective = ...` but left commented
        # example checks as they were, and its simulator checked nothing.
        "    # one line per condition of the problem text (at_most, at_least, exactly, whole):",
        f"    {CHECK_PLACEHOLDER}  # (name, amount used, limit from the text, variables)",
        "",
        "    objective = ...  # the objective value of this solution, computed from the problem text",
        '    return {"feasible": not violations, "objective": objective, "violations": violations}',
    ]
    return "\n".join(lines) + "\n"


CHECK_PLACEHOLDER = 'at_most("<condition>", ..., ..., [...])'
HELPERS_NOTE = "# value(name, *keys), at_most, at_least, exactly, whole: put here by the system"
# The checks a simulator needs, with the tolerance rule written once (problem-independent: which conditions
# to check and with which numbers stays the agent's, from D). A 1.5B model wrote each violation dict out in full
# (five lines per check) and its simulator was cut at the reply's token limit; with these a check is one line.
# They are not the agent's to write: shown in its skeleton, a 1.5B model copied them back in every reply (about
# 350 of its 1,005 tokens on NL4OPT item 10, some 35 s of generation here) and once left out value(), so its
# simulator stopped at a NameError. with_simulator_helpers puts them in the saved file.
_HELPERS_BEGIN = "# --- the system's check helpers (value, at_most, at_least, exactly, whole) ---"
_HELPERS_END = "# --- end of the system's check helpers ---"
_CHECK_HELPERS = {
    "violated": [
        "def violated(constraint, amount, variables, detail):",
        '    violations.append({"constraint": constraint, "amount": amount, "variables": variables, "detail": detail})',
    ],
    "at_most": [
        "def at_most(constraint, used, limit, variables):",
        "    if used - limit > atol + rtol * abs(limit):",
        '        violated(constraint, used - limit, variables, f"{used:g} > {limit:g}")',
    ],
    "at_least": [
        "def at_least(constraint, used, limit, variables):",
        "    if limit - used > atol + rtol * abs(limit):",
        '        violated(constraint, limit - used, variables, f"{used:g} < {limit:g}")',
    ],
    "exactly": [
        "def exactly(constraint, used, target, variables):",
        "    if abs(used - target) > atol + rtol * abs(target):",
        '        violated(constraint, abs(used - target), variables, f"{used:g} != {target:g}")',
    ],
    "whole": [
        "def whole(constraint, v, variables):",
        "    if abs(v - round(v)) > atol + rtol * abs(v):",
        '        violated(constraint, abs(v - round(v)), variables, f"{v:g} is not a whole number")',
    ],
    "value": [
        "def value(name, *keys):",
        "    try:",
        "        v = solution[name]",
        "        for k in keys:",
        "            v = v[str(k)]",
        "        return float(v)",
        "    except (KeyError, TypeError, ValueError):",
        '        violated("missing_value", 1.0, [name], f"no value for {name} {list(keys)}")',
        "        return 0.0",
    ],
}
_SIGNATURE = re.compile(r"^(\s*)def\s+simulate\s*\(")
# simulate's parameters (one level of parentheses inside, as in a default value), unrolled so it runs in linear time
_PARAMETERS = re.compile(r"def\s+simulate\s*\(([^()]*(?:\([^()]*\)[^()]*)*)\)\s*(?:->[^:\n]*)?:")


def without_simulator_helpers(text: str) -> str:
    """``text`` without the block with_simulator_helpers put in (what the agent is shown of its saved file)."""
    lines = [line.strip() for line in text.splitlines()]
    if _HELPERS_BEGIN not in lines or _HELPERS_END not in lines[lines.index(_HELPERS_BEGIN) :]:
        return text
    begin = lines.index(_HELPERS_BEGIN)
    end = lines.index(_HELPERS_END, begin)
    kept = text.splitlines()
    del kept[begin : end + 1]
    return "\n".join(kept) + "\n"


def with_simulator_helpers(text: str) -> str:
    """The simulator file as saved: the system's check helpers at the top of ``simulate``'s body (an earlier copy
    of them, sent back by the agent, is replaced). The names the helpers use (``solution``, ``atol``, ``rtol``)
    are bound from simulate's own parameters, whatever the agent called them; a file without ``def simulate``
    is left as it is (the submit check says what is missing)."""
    lines = without_simulator_helpers(text).splitlines()
    start = next((i for i, line in enumerate(lines) if _SIGNATURE.match(line)), None)
    match = _PARAMETERS.match("\n".join(lines[start : start + 12])[:4000].lstrip()) if start is not None else None
    if start is None or match is None:
        return text
    header_end = start + match.group(0).count("\n")
    outer = _SIGNATURE.match(lines[start]).group(1)  # type: ignore[union-attr]
    body = next((line for line in lines[header_end + 1 :] if line.strip()), "")
    inner = body[: len(body) - len(body.lstrip())]
    indent = inner if len(inner) > len(outer) else outer + "    "  # the body's own indentation
    names = [p.split("=")[0].split(":")[0].strip().lstrip("*") for p in match.group(1).split(",")]
    names = [n for n in names if n.isidentifier()]
    binds = []
    # solution, data and the tolerance come positionally: simulate(solution, data, tol)
    for wanted, position, default in (("solution", 0, None), ("atol", 2, "1e-6")):
        given = names[position] if len(names) > position else None
        if given and given != wanted:
            binds.append(f"{wanted} = {given}")
        elif not given and default is not None:
            binds.append(f"{wanted} = {default}")
    if "rtol" not in names:
        binds.append("rtol = 1e-6")
    block = [_HELPERS_BEGIN, *binds, "violations = []"]
    own = "\n".join(lines)
    for name, helper in _CHECK_HELPERS.items():  # one the agent defined itself (any signature) stays its own
        if not re.search(rf"^\s*def\s+{name}\s*\(", own, re.M):
            block += ["", *helper]
    block.append(_HELPERS_END)
    lines[header_end + 1 : header_end + 1] = [indent + line if line else "" for line in block]
    return "\n".join(lines) + "\n"


TESTS_HEADER = """import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from simulator.simulator import simulate  # noqa: E402

DATA = json.loads((ROOT / "data.json").read_text())
"""
TESTS_SKELETON = (
    TESTS_HEADER
    + """

def test_a_feasible_solution():
    solution = ...  # small values that meet every condition of the problem text
    verdict = simulate(solution, DATA)
    assert verdict["feasible"], verdict["violations"]
    expected = ...  # this solution's objective as arithmetic: <number from the text> * <value above> + ...
    assert abs(verdict["objective"] - expected) < 1e-6


def test_an_infeasible_solution():
    solution = ...  # a solution that breaks one condition of the problem text
    verdict = simulate(solution, DATA)
    assert not verdict["feasible"], verdict
"""
)
_OWN_IMPORT = re.compile(r"^\s*(from\s+(\.\S*|simulator(\.simulator)?|simulate)\s+import\b|import\s+simulator\b)")


def with_tests_header(body: str) -> str:
    """A test file as the simulator agent wrote it, opened by the fixed header that imports ``simulate`` and
    loads data.json (small models get the import wrong in every way: relative, from a module that does not
    exist, before the path is set); its own imports of the simulator are commented out."""
    if body.startswith(TESTS_HEADER):
        return body
    lines = [
        f"# (the header imports simulate) {line}" if _OWN_IMPORT.match(line) else line for line in body.splitlines()
    ]
    return TESTS_HEADER + "\n" + "\n".join(lines) + "\n"


def names_key(code: str, key: str) -> bool:
    """Whether ``code`` names the data.json entry ``key`` as a string (``data["cost"]``, ``data.get('cost')``)."""
    return re.search(rf"""['"]{re.escape(key)}['"]""", code) is not None
