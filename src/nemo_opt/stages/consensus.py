"""Self-consistency over the T optimizers: a vote on the status, then the answer of the largest cluster.

The definition, step by step (``tests/test_consensus.py`` holds one case per step):

1. **Status vote, weighted by verification level.** Each optimizer votes for its status. Votes are compared level
   by level, highest first: the status with the most *verified* votes wins; a tie (or no verified vote at all)
   is decided by the *objective-checked* votes, then by the *unverified* ones, and a tie at every level by the
   paper's status order Optimal > Time limit > Infeasible > Unbounded > Infeasible-or-unbounded > Unknown >
   Error. A verified solution is a feasible point the frozen simulator accepted, so no number of unchecked
   "infeasible" claims outvotes it.
2. **Members.** Among the optimizers with the winning status, only those at the best level any of them reached
   are kept.
3. **Clusters (centre linkage, no chaining).** Around each member c with an objective value, its cluster is every
   member m with ``|F(m) - F(c)| <= atol + rtol * |F(c)|``: the validation tolerance of V(x*) centred on c.
   Every member of a cluster agrees with its centre, so values cannot drift along a chain of neighbours (single
   linkage would join 100, 100.9, 101.8 ... whenever each step is within tolerance).
4. **The largest cluster** wins; ties go to the cluster with more verified members, then to the one whose centre
   is the earliest optimizer.
5. **The answer is an actual member's value**: the member nearest the cluster's median (the lower of the two
   middle values for an even count, so the median itself is always a member's value), never an average of two.
   The answer's level is that member's level.

``atol`` and ``rtol`` are the run's validation tolerances (``atol``/``rtol`` settings, δ = atol + rtol·|F|).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nemo_opt.solution import SolveStatus, VerificationLevel
from nemo_opt.stages.base import BaseStage, RunContext
from nemo_opt.stages.optimize import OptimizerOutcome, outcome_dict

__all__ = ["STATUS_ORDER", "Consensus", "ConsensusStage", "decide"]

STATUS_ORDER: list[SolveStatus] = [
    SolveStatus.OPTIMAL,
    SolveStatus.TIME_LIMIT,
    SolveStatus.INFEASIBLE,
    SolveStatus.UNBOUNDED,
    SolveStatus.INFEASIBLE_OR_UNBOUNDED,
    SolveStatus.UNKNOWN,
    SolveStatus.ERROR,
]
_LEVELS_HIGH_FIRST = sorted(VerificationLevel, key=lambda level: -level.rank)


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
    # Votes per status and level, e.g. {"optimal": {"verified": 1}, "infeasible": {"unverified": 2}}.
    weighted_votes: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def verified(self) -> bool:
        return self.level is VerificationLevel.VERIFIED


def _vote_key(status: SolveStatus, ballots: Counter[tuple[SolveStatus, VerificationLevel]]) -> tuple[int, ...]:
    """Sort key (smaller wins): more votes at each level, highest level first, then the status order."""
    return (*(-ballots[(status, level)] for level in _LEVELS_HIGH_FIRST), STATUS_ORDER.index(status))


def _tolerance(value: float, atol: float, rtol: float) -> float:
    return atol + rtol * abs(value)


def _clusters(members: list[OptimizerOutcome], atol: float, rtol: float) -> list[list[OptimizerOutcome]]:
    """One cluster per member (its centre, in optimizer order): the members within tolerance of the centre."""
    clusters = []
    for centre in members:
        c = centre.objective if centre.objective is not None else 0.0
        clusters.append(
            [m for m in members if m.objective is not None and abs(m.objective - c) <= _tolerance(c, atol, rtol)]
        )
    return clusters


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
    ballots = Counter((o.status, o.level) for o in outcomes)
    statuses = {o.status for o in outcomes}
    status = min(statuses, key=lambda s: _vote_key(s, ballots))
    votes = Counter(o.status for o in outcomes)
    vote_table = {s.value: n for s, n in votes.items()}
    weighted: dict[str, dict[str, int]] = {}
    for (s, level), n in sorted(ballots.items(), key=lambda kv: (STATUS_ORDER.index(kv[0][0]), -kv[0][1].rank)):
        weighted.setdefault(s.value, {})[level.value] = n
    winners = [o for o in outcomes if o.status is status]
    best_level = max(o.level.rank for o in winners)
    pool = [o for o in winners if o.level.rank == best_level]

    def answer(chosen: OptimizerOutcome | None, objective: float | None, cluster: list[str], reason: str) -> Consensus:
        level = (
            chosen.level if chosen is not None and (objective is not None or not status.has_solution) else unverified
        )
        return Consensus(status, objective, level, chosen, vote_table, cluster, pass_at_1, reason, weighted)

    if not status.has_solution:
        return answer(pool[0], None, [o.name for o in pool], pool[0].level_reason)
    with_value = [o for o in pool if o.objective is not None and math.isfinite(o.objective)]
    if not with_value:
        return answer(pool[0], None, [], "no optimizer reported a value")
    clusters = _clusters(with_value, atol, rtol)
    best = min(range(len(clusters)), key=lambda i: (-len(clusters[i]), -sum(m.verified for m in clusters[i]), i))
    cluster = clusters[best]
    values = sorted(m.objective for m in cluster if m.objective is not None)
    median = values[(len(values) - 1) // 2]  # the lower middle value: always a member's own
    chosen = min(cluster, key=lambda m: (abs((m.objective or 0.0) - median), m.index))
    return answer(chosen, chosen.objective, [m.name for m in cluster], chosen.level_reason)


class ConsensusStage(BaseStage):
    """T outcomes -> one answer (``consensus.json``), put on the run's result."""

    name = "consensus"
    needs_model = False

    def inputs(self, ctx: RunContext) -> list[Path]:
        ws = ctx.workspace
        return [ws.checkpoints / f"outcome_{k}.json" for k in range(1, ctx.settings.optimizers + 1)]

    def run(self, ctx: RunContext, detail: dict[str, Any]) -> None:
        consensus = ctx.consensus = decide(ctx.outcomes, ctx.settings.atol, ctx.settings.rtol)
        ctx.workspace.write_json(
            "consensus.json",
            {
                "status": consensus.status.value,
                "objective": consensus.objective,
                "verified": consensus.verified,
                "level": consensus.level.value,
                "level_reason": consensus.level_reason,
                "chosen": consensus.chosen.name if consensus.chosen else None,
                "votes": consensus.votes,
                "weighted_votes": consensus.weighted_votes,
                "cluster": consensus.cluster,
                "pass_at_1": consensus.pass_at_1,
            },
        )
        detail.update(votes=consensus.votes, weighted_votes=consensus.weighted_votes, cluster=consensus.cluster)
        detail["message"] = f"{consensus.status.value}, objective {consensus.objective}, {consensus.level.value}"
        _publish(ctx)

    def load(self, ctx: RunContext) -> bool:
        if not ctx.workspace.exists("consensus.json"):
            return False
        data = ctx.workspace.read_json("consensus.json")
        chosen = next((o for o in ctx.outcomes if o.name == data["chosen"]), None)
        ctx.consensus = Consensus(
            status=SolveStatus(data["status"]),
            objective=data["objective"],
            # The chosen optimizer's own (checked, possibly capped) standing, not what the file says.
            level=chosen.level if chosen is not None else VerificationLevel.UNVERIFIED,
            level_reason=chosen.level_reason if chosen is not None else "",
            chosen=chosen,
            votes=dict(data["votes"]),
            cluster=list(data["cluster"]),
            pass_at_1=dict(data["pass_at_1"]),
            weighted_votes=dict(data.get("weighted_votes", {})),
        )
        _publish(ctx)
        return True


def _publish(ctx: RunContext) -> None:
    """The answer on the run's result (what the CLI, the store and result.json show)."""
    consensus, result = ctx.need_consensus(), ctx.result
    result.status = consensus.status.value
    result.objective, result.verified = consensus.objective, consensus.verified
    result.level, result.level_reason = consensus.level.value, consensus.level_reason
    result.pass_at_1 = consensus.pass_at_1
    result.optimizers = [outcome_dict(o) for o in ctx.outcomes]
