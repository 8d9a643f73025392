"""P*: the structured decision process extracted from a problem description.

The spec is the contract every later stage reads: the simulator and the optimizers get it verbatim, the
validator checks solutions against its variables (names, index sets, types, bounds), and ``data.json`` is
built from its sets and parameters.

Index conventions shared by ``data.json`` and ``solution.json``: a value indexed over sets ``(I, J)`` is a
nested JSON object ``{str(i): {str(j): value}}``; JSON keys are strings, so integer set elements appear as
``"1"``, ``"2"``, … A scalar is a plain number.
"""

from __future__ import annotations

import keyword
import math
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "Constraint",
    "DecisionVariable",
    "IndexSet",
    "Objective",
    "Parameter",
    "ProblemSpec",
    "StateVariable",
    "Transition",
    "VarType",
    "data_from_spec",
    "index_keys",
]

JSONValue = Any  # numbers, strings, lists and objects nested to any depth


def _check_identifier(name: str) -> str:
    if not name.isidentifier() or keyword.iskeyword(name):
        raise ValueError(f"'{name}' is not a valid Python identifier; use letters, digits and underscores")
    return name


class VarType(StrEnum):
    """Domain of a decision variable."""

    CONTINUOUS = "continuous"
    INTEGER = "integer"
    BINARY = "binary"


class _Named(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str
    description: str = ""

    @field_validator("name")
    @classmethod
    def _identifier(cls, value: str) -> str:
        return _check_identifier(value.strip())


class IndexSet(_Named):
    """A finite index set, e.g. products or periods."""

    elements: list[str | int] = Field(min_length=1)

    @field_validator("elements")
    @classmethod
    def _unique(cls, value: list[str | int]) -> list[str | int]:
        keys = [str(v) for v in value]
        if len(set(keys)) != len(keys):
            raise ValueError("set elements must be unique (compared as strings)")
        return value


class Parameter(_Named):
    """A given number (or table of numbers) from the description."""

    value: JSONValue
    indices: list[str] = Field(default_factory=list)
    unit: str = ""


class DecisionVariable(_Named):
    """A quantity the decision maker chooses."""

    type: VarType = VarType.CONTINUOUS
    indices: list[str] = Field(default_factory=list)
    lower: float | None = 0.0
    upper: float | None = None
    unit: str = ""

    @model_validator(mode="after")
    def _bounds(self) -> DecisionVariable:
        if self.type is VarType.BINARY:
            self.lower, self.upper = 0.0, 1.0
        if self.lower is not None and self.upper is not None and self.lower > self.upper:
            raise ValueError(f"variable {self.name}: lower bound {self.lower} exceeds upper bound {self.upper}")
        return self


class StateVariable(_Named):
    """A quantity determined by decisions over time (inventory, backlog, …)."""

    indices: list[str] = Field(default_factory=list)


class Transition(BaseModel):
    """How a state variable evolves, e.g. ``inv[t] = inv[t-1] + make[t] - demand[t]``."""

    model_config = ConfigDict(extra="ignore")
    state: str = ""
    expression: str
    description: str = ""


class Objective(BaseModel):
    """What to optimize."""

    model_config = ConfigDict(extra="ignore")
    sense: Literal["minimize", "maximize"]
    expression: str
    description: str = ""

    @field_validator("sense", mode="before")
    @classmethod
    def _normalize_sense(cls, value: Any) -> Any:
        if isinstance(value, str):
            lowered = value.strip().lower()
            if lowered in {"min", "minimise", "minimize", "minimization"}:
                return "minimize"
            if lowered in {"max", "maximise", "maximize", "maximization"}:
                return "maximize"
        return value


class Constraint(_Named):
    """One named (family of) constraint(s)."""

    expression: str
    for_all: str = ""
    meaning: str = ""


_TEXT_KEYS = ("unit", "description", "meaning", "for_all")


class ProblemSpec(BaseModel):
    """The structured decision process P*."""

    model_config = ConfigDict(extra="ignore")

    title: str = ""
    summary: str = ""
    sets: list[IndexSet] = Field(default_factory=list)
    parameters: list[Parameter] = Field(default_factory=list)
    variables: list[DecisionVariable] = Field(min_length=1)
    uncertainty: list[str] = Field(default_factory=list)
    state_variables: list[StateVariable] = Field(default_factory=list)
    transitions: list[Transition] = Field(default_factory=list)
    objective: Objective
    constraints: list[Constraint] = Field(default_factory=list)
    assumptions: list[str] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _symbolic_bounds(cls, data: Any) -> Any:
        """Null free text becomes empty; bounds written as a parameter's name take its value, other expressions
        are left to the constraints.

        Small models write ``"upper": "max_trips"`` or ``"upper": "total - x"``; the first is unambiguous, the
        second is a constraint in disguise, so the bound is dropped and an assumption says so.
        """
        if not isinstance(data, dict) or not isinstance(data.get("variables"), list):
            return data
        scalars = {
            p.get("name"): p.get("value")
            for p in data.get("parameters") or []
            if isinstance(p, dict) and isinstance(p.get("value"), int | float) and not p.get("indices")
        }
        notes: list[str] = []
        data = _misfiled_parameters(data, notes)
        for group in ("sets", "parameters", "variables", "constraints", "state_variables"):
            for entry in data.get(group) or []:
                if isinstance(entry, dict):  # null where free text belongs ("unit": null) means "none given"
                    for key in _TEXT_KEYS:
                        if key in entry and entry[key] is None:
                            entry[key] = ""
                        elif isinstance(entry.get(key), list):  # "for_all": ["i in items", "t in periods"]
                            entry[key] = ", ".join(str(part) for part in entry[key])
        for variable in data["variables"]:
            if not isinstance(variable, dict):
                continue
            for key in ("lower", "upper"):
                bound = variable.get(key)
                if not isinstance(bound, str):
                    continue
                text = bound.strip()
                try:
                    number = float(text)
                except ValueError:
                    pass
                else:
                    variable[key] = number if math.isfinite(number) else None
                    continue
                if text in scalars:
                    variable[key] = scalars[text]
                else:
                    variable[key] = None
                    if text.lower() in {"", "none", "null"}:
                        continue
                    notes.append(
                        f"the {key} bound of {variable.get('name')} was given as '{text}'; left to the constraints"
                    )
        if notes:
            data = {**data, "assumptions": [*(data.get("assumptions") or []), *notes]}
        return data

    @field_validator("uncertainty", "assumptions", mode="before")
    @classmethod
    def _as_list(cls, value: Any) -> Any:
        if value is None or value == "":
            return []
        if isinstance(value, str):
            return [value]
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ProblemSpec:
        names: dict[str, str] = {}
        for kind, items in (("set", self.sets), ("parameter", self.parameters), ("variable", self.variables)):
            for item in items:
                if item.name in names:
                    raise ValueError(f"name '{item.name}' is used by a {names[item.name]} and a {kind}")
                names[item.name] = kind
        set_names = {s.name for s in self.sets}
        holders: list[Parameter | DecisionVariable | StateVariable] = [
            *self.parameters,
            *self.variables,
            *self.state_variables,
        ]
        for holder in holders:
            missing = [i for i in holder.indices if i not in set_names]
            if missing:
                raise ValueError(f"'{holder.name}' is indexed over unknown set(s) {missing}; declare them in 'sets'")
        for param in self.parameters:
            _check_numbers(param.name, param.value)
        return self

    def variable(self, name: str) -> DecisionVariable:
        for var in self.variables:
            if var.name == name:
                return var
        raise KeyError(name)

    def set_elements(self, name: str) -> list[str]:
        for index_set in self.sets:
            if index_set.name == name:
                return [str(e) for e in index_set.elements]
        raise KeyError(name)

    def is_integer(self) -> bool:
        return any(v.type is not VarType.CONTINUOUS for v in self.variables)


def _misfiled_parameters(data: dict[str, Any], notes: list[str]) -> dict[str, Any]:
    """Parameters written with no value: one shaped like a variable (a type or bounds, as a 1.5B model listed
    ``total_cars`` on NL4OPT item 12) becomes a decision variable, any other is dropped; an assumption says so."""
    parameters = data.get("parameters")
    if not isinstance(parameters, list) or not any(isinstance(p, dict) and "value" not in p for p in parameters):
        return data
    variables = list(data["variables"])
    taken = {v.get("name") for v in variables if isinstance(v, dict)}
    kept = []
    for entry in parameters:
        if not isinstance(entry, dict) or "value" in entry:
            kept.append(entry)
            continue
        name = entry.get("name")
        if any(key in entry for key in ("type", "lower", "upper")) and name not in taken:
            fields = ("name", "description", "type", "indices", "lower", "upper", "unit")
            variables.append({k: entry[k] for k in fields if k in entry})
            notes.append(f"'{name}' was listed under parameters with no value; taken as a decision variable")
        else:
            notes.append(f"parameter '{name}' was given no value; dropped")
    return {**data, "parameters": kept, "variables": variables}


def _check_numbers(name: str, value: JSONValue) -> None:
    """Parameters must hold finite numbers (or strings as labels), possibly nested in lists and objects."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"parameter '{name}' holds a non-finite number {value}")
        return
    if isinstance(value, list):
        for item in value:
            _check_numbers(name, item)
        return
    if isinstance(value, dict):
        for item in value.values():
            _check_numbers(name, item)
        return
    raise ValueError(f"parameter '{name}' holds a value of unsupported type {type(value).__name__}")


def index_keys(spec: ProblemSpec, indices: list[str]) -> list[tuple[str, ...]]:
    """All index tuples (as strings) of something indexed over ``indices``."""
    keys: list[tuple[str, ...]] = [()]
    for set_name in indices:
        keys = [(*prefix, element) for prefix in keys for element in spec.set_elements(set_name)]
    return keys


def data_from_spec(spec: ProblemSpec) -> dict[str, JSONValue]:
    """The content of ``data.json``: every set's elements and every parameter's value, by name."""
    data: dict[str, JSONValue] = {}
    for index_set in spec.sets:
        data[index_set.name] = list(index_set.elements)
    for param in spec.parameters:
        data[param.name] = param.value
    return data
