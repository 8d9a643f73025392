"""Text both agents receive about P*: the spec itself, the data keys and the shape of every variable."""

from __future__ import annotations

import json
from dataclasses import dataclass

from nemo_opt.spec import ProblemSpec, VarType, data_from_spec

__all__ = ["DATA_CHARS", "SpecContext", "spec_context", "trace_text"]

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


def trace_text(note: str) -> str:
    """The prompt line for what tracing P*'s numbers to the text found (empty when nothing was flagged)."""
    if not note:
        return ""
    return (
        f"\nChecked against the problem text: {note}. Where data.json and the text disagree, follow the text: "
        "use the text's number (write it in the code with a comment naming where it comes from).\n"
    )
