"""Self-consistency over the T optimizers: vote on the status, then take the median of the largest cluster.

Status vote: majority, ties broken by Optimal > TimeLimit > Infeasible > Unbounded > (the rest) > Error.
Among the winners, members at the highest verification level are preferred: only the winners at the best
level any of them reached are clustered. Objective values within the validation tolerance of a neighbour form
one cluster; the answer is the value of an actual member, the one nearest the median of the largest cluster
(ties: the cluster with more verified members, then the first), never an average of two members. The answer's
level is the chosen member's level.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from nemo_opt.solution import SolveStatus, VerificationLevel
from nemo_opt.stages.optimize import OptimizerOutcome

__all__ = ["Consensus", "STATUS_ORDER", "decide"]

STATUS_ORDER: list[SolveStatus] = [
    SolveStatus.OPTIMAL,
    SolveStatus.TIME_LIMIT,
    SolveStatus.INFEASIBLE,
    SolveStatus.UNBOUNDED,
    SolveStatus.INFEASIBLE_OR_UNBOUNDED,
    SolveStatus.UNKNOWN,
    SolveStatus.ERROR,
]


@dataclass
class Consensus:
    """The answer of a run."""

    status: SolveStatus
    objective: float | None
    level: VerificationLevel
    chosen: OptimizerOutcome | None
    votes: dict[str, int] = field(default_factory=dict)
    cluster: list[str] = field(default_factory=list)
    pass_at_1: dict[str, object] = field(default_factory=dict)
    level_reason: str = ""

    @property
    def verified(self) -> bool:
        return self.level is VerificationLevel.VERIFIED


def _clusters(members: list[OptimizerOutcome], atol: float, rtol: float) -> list[list[OptimizerOutcome]]:
    ordered = sorted(members, key=lambda m: m.objective if m.objective is not None else 0.0)
    groups: list[list[OptimizerOutcome]] = []
    for member in ordered:
        value = member.objective if member.objective is not None else 0.0
        if groups:
            previous = groups[-1][-1].objective or 0.0
            if abs(value - previous) <= atol + rtol * max(abs(value), abs(previous)):
                groups[-1].append(member)
                continue
        groups.append([member])
    return groups


def decide(outcomes: list[OptimizerOutcome], atol: float, rtol: float) -> Consensus:
    """Combine the optimizers' outcomes into one answer (pass@1 = the first optimizer alone)."""
    first = outcomes[0] if outcomes else None
    pass_at_1: dict[str, object] = (
        {
            "status": first.status.value,
            "objective": first.objective,
            "verified": first.verified,
            "level": first.level.value,
        }
        if first
        else {}
    )
    unverified = VerificationLevel.UNVERIFIED
    if not outcomes:
        return Consensus(SolveStatus.ERROR, None, unverified, None, pass_at_1=pass_at_1)
    votes = Counter(o.status for o in outcomes)
    status = min(votes, key=lambda s: (-votes[s], STATUS_ORDER.index(s)))
    winners = [o for o in outcomes if o.status is status]
    best_level = max(o.level.rank for o in winners)
    pool = [o for o in winners if o.level.rank == best_level]
    vote_table = {s.value: n for s, n in votes.items()}
    if not status.has_solution:
        chosen = pool[0]
        return Consensus(
            status, None, chosen.level, chosen, vote_table, [o.name for o in pool], pass_at_1, chosen.level_reason
        )
    with_value = [o for o in pool if o.objective is not None]
    if not with_value:
        return Consensus(status, None, unverified, pool[0], vote_table, [], pass_at_1, "no optimizer reported a value")
    groups = _clusters(with_value, atol, rtol)
    best = max(groups, key=lambda g: (len(g), sum(m.verified for m in g), -groups.index(g)))
    values = sorted(m.objective for m in best if m.objective is not None)
    middle = len(values) // 2
    median = values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2
    chosen = min(best, key=lambda m: abs((m.objective or 0.0) - median))
    return Consensus(
        status,
        chosen.objective,
        chosen.level,
        chosen,
        vote_table,
        [m.name for m in best],
        pass_at_1,
        chosen.level_reason,
    )
