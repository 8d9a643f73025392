"""The common shape of a solver backend: problem classes, capabilities, availability and the model-file contract.

Subclasses set the class attributes and implement ``solve_model`` (translation of a ``CanonicalModel`` into the
library's API). Availability is probed once per process and cached, because a probe may import a large library or
solve a tiny model (Gurobi's licence check).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import math
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from nemo_opt.solvers.canonical import CanonicalModel

__all__ = [
    "EXPORT_CONTRACT",
    "INF",
    "ProblemClass",
    "RawResult",
    "SolverBackend",
    "as_float",
    "covered_classes",
    "importable",
    "no_export_contract",
]

INF = math.inf

# (native status, objective or None, values by variable name) as a backend reports it before normalization.
RawResult = tuple[object, float | None, dict[str, float]]


class ProblemClass(StrEnum):
    """Classes of optimization problems, as the recommender assigns them."""

    LP = "LP"
    MILP = "MILP"
    QP = "QP"
    MIQP = "MIQP"
    NLP = "NLP"
    MINLP = "MINLP"
    CP = "CP"


# A solver declaring a class also solves the classes it generalizes: an NLP solver handles LPs and QPs, a MIQP
# solver handles MILPs. CP stands alone: constraint programming solvers need integer-only models.
_COVERS: dict[ProblemClass, frozenset[ProblemClass]] = {
    ProblemClass.LP: frozenset({ProblemClass.LP}),
    ProblemClass.MILP: frozenset({ProblemClass.LP, ProblemClass.MILP}),
    ProblemClass.QP: frozenset({ProblemClass.LP, ProblemClass.QP}),
    ProblemClass.MIQP: frozenset({ProblemClass.LP, ProblemClass.MILP, ProblemClass.QP, ProblemClass.MIQP}),
    ProblemClass.NLP: frozenset({ProblemClass.LP, ProblemClass.QP, ProblemClass.NLP}),
    ProblemClass.MINLP: frozenset(set(ProblemClass) - {ProblemClass.CP}),
    ProblemClass.CP: frozenset({ProblemClass.CP}),
}


def covered_classes(features: frozenset[ProblemClass]) -> frozenset[ProblemClass]:
    """Every class a solver with these declared features can take."""
    covered: set[ProblemClass] = set()
    for feature in features:
        covered |= _COVERS[feature]
    return frozenset(covered)


def importable(module: str) -> bool:
    """True when ``module`` can be found without importing it (a missing parent package counts as missing)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


EXPORT_CONTRACT = """

**Model file.** After building the model (before or after solving), export it to `model.mps` in the working
directory ({how}), and add two keys to `solution.json`:
`"model_file": "model.mps"` and `"columns": {{"<column name exactly as written in model.mps>": "<reference>"}}`,
where the reference is `name` for a scalar variable and `name[i,j]` for an indexed one (set elements as strings,
comma-separated, no spaces). Give every variable a name made of `[A-Za-z0-9_]` only (e.g. `make_table`), unique
across the model, and build `columns` from the names the library actually wrote{rename}. A checker reads the file
with HiGHS and evaluates its rows at your reported values, so every decision variable of the problem must be a
column there and every constraint a row."""


def no_export_contract(reason: str) -> str:
    """The contract paragraph for a backend that cannot write an MPS/LP file."""
    return (
        f'\n\n**Model file.** {reason} cannot export an MPS or LP file: write `"model_file": null` and '
        '`"columns": null` in `solution.json`. Your reported values are then checked against the problem only.'
    )


_AVAILABLE: dict[str, bool] = {}


class SolverBackend:
    """One solver reachable from Python; subclasses fill the class attributes and implement ``solve_model``."""

    name: ClassVar[str]
    label: ClassVar[str]
    module: ClassVar[str]
    distribution: ClassVar[str]
    features: ClassVar[frozenset[ProblemClass]]
    hint: ClassVar[str]
    template: ClassVar[str]
    exports_model: ClassVar[bool]
    licence_limits: ClassVar[str | None] = None
    # Largest number of variables the installed licence accepts (None: no limit); the recommender uses it.
    max_variables: ClassVar[int | None] = None
    extra: ClassVar[str | None] = None

    @classmethod
    def is_available(cls) -> bool:
        """Installed and usable here; probed once per process (the probe may import or run the solver)."""
        if cls.name not in _AVAILABLE:
            try:
                _AVAILABLE[cls.name] = importable(cls.module) and cls.probe()
            except Exception:  # a broken install is "not available", never a crash of the caller
                _AVAILABLE[cls.name] = False
        return _AVAILABLE[cls.name]

    @classmethod
    def probe(cls) -> bool:
        """Whether the installed library works; the default imports it."""
        importlib.import_module(cls.module)
        return True

    @classmethod
    def version(cls) -> str | None:
        """The installed distribution's version, or None when it is not installed."""
        try:
            return importlib.metadata.version(cls.distribution)
        except importlib.metadata.PackageNotFoundError:
            return None

    @classmethod
    def supports(cls, problem_class: ProblemClass) -> bool:
        """True when ``problem_class`` is one of the declared features or a special case of one."""
        return problem_class in covered_classes(cls.features)

    @classmethod
    def check_model(cls, model: CanonicalModel) -> str | None:
        """Why this backend cannot take ``model``, or None when it can; by default the model's class decides."""
        problem_class = model.problem_class
        if cls.supports(problem_class):
            return None
        declared = ", ".join(sorted(cls.features))
        return f"{cls.label} does not take {problem_class.value} models (declares {declared})"

    @classmethod
    def solve_model(cls, model: CanonicalModel, time_limit: float) -> RawResult:
        """Build and solve ``model`` with this library; raises whatever the library raises."""
        raise NotImplementedError(f"{cls.__name__} does not implement solve_model")


def as_float(value: Any) -> float | None:
    """A finite float, or None (for NaN, infinities, None and anything non-numeric)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
