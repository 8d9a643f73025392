"""Component-wise minimum-Bayes-risk selection among sampled extractions.

For each component type j (decision variables, exogenous parameters, uncertainty, state variables, transition
dynamics, objective, constraints) every candidate's component is embedded; S(c_j^i) is candidate i's mean cosine
similarity to the other candidates' component j, and U(i) = Σ_j w_j · S(c_j^i). Each S lies in [-1, 1] whatever
the component's length, so one long component (a large data table) cannot outweigh the others, as it would if
whole candidates were embedded at once. Two empty components agree (similarity 1); empty against non-empty
disagrees (0).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from nemo_opt.embed.base import Embedder, Vectors
from nemo_opt.spec import ProblemSpec

__all__ = ["COMPONENTS", "MBRScores", "components", "mbr_scores"]

COMPONENTS = (
    "decision_variables",
    "parameters",
    "uncertainty",
    "state_variables",
    "transitions",
    "objective",
    "constraints",
)


def components(spec: ProblemSpec) -> dict[str, str]:
    """Each component of P* rendered as text in a canonical form: the mathematical content only (names,
    domains, values, expressions; sorted where order carries no meaning). Free-text descriptions are left out:
    samples word them differently even when they agree, and that noise would drown real disagreements."""

    def value(v: object) -> str:
        return json.dumps(v, sort_keys=True)

    variables = sorted(
        f"{v.name}[{','.join(v.indices)}] {v.type.value} in [{v.lower}, {v.upper}]" for v in spec.variables
    )
    parameters = sorted(f"{p.name}[{','.join(p.indices)}] = {value(p.value)} {p.unit}".strip() for p in spec.parameters)
    states = sorted(f"{s.name}[{','.join(s.indices)}]" for s in spec.state_variables)
    transitions = [f"{t.state}: {t.expression}" for t in spec.transitions]
    constraints = [
        f"{c.name}: {c.expression} {('for ' + c.for_all) if c.for_all else ''}".strip() for c in spec.constraints
    ]
    return {
        "decision_variables": "\n".join(variables),
        "parameters": "\n".join(parameters),
        "uncertainty": "\n".join(spec.uncertainty),
        "state_variables": "\n".join(states),
        "transitions": "\n".join(transitions),
        "objective": f"{spec.objective.sense} {spec.objective.expression}",
        "constraints": "\n".join(constraints),
    }


@dataclass(frozen=True)
class MBRScores:
    """Per-component agreement S[j][i] and the weighted utility U[i] of every candidate."""

    per_component: dict[str, list[float]]
    utility: list[float]

    def ranking(self) -> list[int]:
        """Candidate indices, highest utility first (ties: earlier sample first)."""
        return sorted(range(len(self.utility)), key=lambda i: (-self.utility[i], i))


def mbr_scores(specs: list[ProblemSpec], embedder: Embedder, weights: dict[str, float] | None = None) -> MBRScores:
    """Component-wise MBR utilities of the candidates (all texts embedded in one batch)."""
    n = len(specs)
    texts = [components(spec) for spec in specs]
    weights = weights or {}
    flat = [texts[i][j] for j in COMPONENTS for i in range(n)]
    unique = list(dict.fromkeys(t for t in flat if t.strip()))
    vectors = dict(zip(unique, embedder.embed(unique), strict=True)) if unique else {}
    per_component: dict[str, list[float]] = {}
    utility = [0.0] * n
    for j in COMPONENTS:
        scores = []
        for i in range(n):
            others = [k for k in range(n) if k != i]
            if not others:
                scores.append(1.0)
                continue
            sims = [_similarity(texts[i][j], texts[k][j], vectors) for k in others]
            scores.append(float(np.mean(sims)))
        per_component[j] = scores
        weight = float(weights.get(j, 1.0))
        utility = [u + weight * s for u, s in zip(utility, scores, strict=True)]
    return MBRScores(per_component, utility)


def _similarity(a: str, b: str, vectors: dict[str, Vectors]) -> float:
    if not a.strip() and not b.strip():
        return 1.0
    if not a.strip() or not b.strip():
        return 0.0
    return float(vectors[a] @ vectors[b])
