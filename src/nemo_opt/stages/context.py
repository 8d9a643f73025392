"""Text both agents receive about P*: the spec itself, the data keys and the shape of every variable."""

from __future__ import annotations

import json
from dataclasses import dataclass

from nemo_opt.spec import ProblemSpec, VarType

__all__ = ["SpecContext", "spec_context"]


@dataclass(frozen=True)
class SpecContext:
    """Rendered pieces of the agent prompts."""

    spec_json: str
    data_keys: str
    variable_shapes: str


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
    return SpecContext(
        spec_json=json.dumps(spec.model_dump(mode="json"), indent=2),
        data_keys=", ".join(keys) if keys else "no parameters",
        variable_shapes="\n".join(shapes),
    )
