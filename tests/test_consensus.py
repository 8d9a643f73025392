"""Self-consistency over optimizers: status vote, objective clusters, preference for verified members."""

from __future__ import annotations

from pathlib import Path

import pytest

from nemo_opt.solution import SolveStatus, VerificationLevel
from nemo_opt.stages.consensus import decide
from nemo_opt.stages.optimize import OptimizerOutcome

TOL = (1e-6, 1e-6)


def _o(name: str, status: str, objective: float | None = None, verified: bool = False) -> OptimizerOutcome:
    return OptimizerOutcome(name, 1, "highs", Path("."), SolveStatus(status), objective, verified)


def test_majority_status_then_median_of_the_largest_cluster() -> None:
    outcomes = [
        _o("a", "optimal", 100.0),
        _o("b", "optimal", 100.00000001),
        _o("c", "optimal", 120.0),
        _o("d", "infeasible"),
    ]
    result = decide(outcomes, *TOL)
    # The answer is a value an optimizer produced (the member nearest the median), never the average of two.
    assert result.status is SolveStatus.OPTIMAL and result.objective in (100.0, 100.00000001)
    assert result.chosen is not None and result.objective == result.chosen.objective
    assert sorted(result.cluster) == ["a", "b"] and result.votes == {"optimal": 3, "infeasible": 1}
    assert result.pass_at_1 == {"status": "optimal", "objective": 100.0, "verified": False, "level": "unverified"}


def test_status_ties_are_broken_by_the_order() -> None:
    assert decide([_o("a", "infeasible"), _o("b", "optimal", 3.0)], *TOL).status is SolveStatus.OPTIMAL
    assert decide([_o("a", "unbounded"), _o("b", "infeasible")], *TOL).status is SolveStatus.INFEASIBLE
    assert decide([_o("a", "error"), _o("b", "time_limit", 4.0)], *TOL).status is SolveStatus.TIME_LIMIT


def test_majority_infeasible_beats_a_lone_optimal() -> None:
    result = decide([_o("a", "optimal", 5.0), _o("b", "infeasible"), _o("c", "infeasible")], *TOL)
    assert result.status is SolveStatus.INFEASIBLE and result.objective is None and result.chosen is not None
    assert result.chosen.name in {"b", "c"} and result.pass_at_1["status"] == "optimal"


def test_all_errors() -> None:
    result = decide([_o("a", "error"), _o("b", "error"), _o("c", "error")], *TOL)
    assert result.status is SolveStatus.ERROR and result.objective is None and not result.verified
    assert decide([], *TOL).chosen is None


def test_solver_noise_within_tolerance_is_one_cluster() -> None:
    values = [42.0, 42.0 + 2e-5, 42.0 - 1e-5]
    result = decide([_o(str(i), "optimal", v) for i, v in enumerate(values)], 1e-6, 1e-6)
    assert len(result.cluster) == 3 and result.objective == pytest.approx(42.0)


def test_one_outlier_is_outvoted() -> None:
    result = decide([_o("a", "optimal", 7.0), _o("b", "optimal", 9.5), _o("c", "optimal", 7.0)], *TOL)
    assert result.objective == 7.0 and sorted(result.cluster) == ["a", "c"] and result.chosen is not None
    assert result.chosen.name in {"a", "c"}


def test_verified_members_are_preferred_over_a_larger_unverified_cluster() -> None:
    outcomes = [_o("a", "optimal", 90.0), _o("b", "optimal", 90.0), _o("c", "optimal", 95.0, verified=True)]
    result = decide(outcomes, *TOL)
    assert result.objective == 95.0 and result.verified and result.chosen is outcomes[2]


def test_higher_verification_levels_are_preferred() -> None:
    checked = _o("a", "optimal", 90.0)
    checked.level = VerificationLevel.OBJECTIVE_CHECKED
    result = decide(
        [_o("u1", "optimal", 80.0), _o("u2", "optimal", 80.0), checked, _o("v", "optimal", 100.0, True)], *TOL
    )
    assert result.level is VerificationLevel.VERIFIED and result.objective == 100.0 and result.cluster == ["v"]
    result = decide([_o("u1", "optimal", 80.0), _o("u2", "optimal", 80.0), checked], *TOL)
    assert result.level is VerificationLevel.OBJECTIVE_CHECKED and result.objective == 90.0 and not result.verified


def test_a_verified_optimum_outvotes_unchecked_infeasible_claims() -> None:
    # Two optimizers say "infeasible" (nothing checks that claim); one found a plan the frozen simulator accepted.
    outcomes = [_o("a", "infeasible"), _o("b", "infeasible"), _o("c", "optimal", 12.0, verified=True)]
    result = decide(outcomes, *TOL)
    assert result.status is SolveStatus.OPTIMAL and result.objective == 12.0 and result.verified
    assert result.votes == {"infeasible": 2, "optimal": 1}
    assert result.weighted_votes == {"optimal": {"verified": 1}, "infeasible": {"unverified": 2}}
    # Without a verified vote, the count decides (then the status order).
    assert decide([_o("a", "infeasible"), _o("b", "infeasible"), _o("c", "optimal", 12.0)], *TOL).status is (
        SolveStatus.INFEASIBLE
    )


def test_clusters_do_not_chain_from_neighbour_to_neighbour() -> None:
    # Each step is within the tolerance (atol 1) of the next, but 100 and 102.7 are not within it of each other.
    values = [100.0, 100.9, 101.8, 102.7]
    outcomes = [_o(f"o{i}", "optimal", v) for i, v in enumerate(values)]
    for i, outcome in enumerate(outcomes):
        outcome.index = i + 1
    result = decide(outcomes, 1.0, 0.0)
    assert len(result.cluster) == 3, "single linkage would have put all four in one cluster"
    assert sorted(result.cluster) == ["o0", "o1", "o2"] and result.objective == 100.9


def test_the_answer_of_an_even_cluster_is_a_members_value_not_an_average() -> None:
    result = decide([_o("a", "optimal", 10.0), _o("b", "optimal", 10.5)], 1.0, 0.0)
    assert sorted(result.cluster) == ["a", "b"] and result.objective in (10.0, 10.5)
    assert result.chosen is not None and result.objective == result.chosen.objective


def test_the_tolerance_is_relative_to_each_centre() -> None:
    # rtol 1e-3 around 1000 is 1.0: 1000.9 agrees with 1000, 1002 does not.
    result = decide([_o("a", "optimal", 1000.0), _o("b", "optimal", 1000.9), _o("c", "optimal", 1002.0)], 0.0, 1e-3)
    assert sorted(result.cluster) == ["a", "b"] and result.objective == 1000.0


def test_values_that_are_not_finite_join_no_cluster() -> None:
    # Finite values are guaranteed by the solution reader; a forged checkpoint is the only way in.
    result = decide([_o("a", "optimal", float("nan"))], *TOL)
    assert result.objective is None and result.level is VerificationLevel.UNVERIFIED
    result = decide([_o("a", "optimal", float("inf")), _o("b", "optimal", 1.0), _o("c", "optimal", 1000.0)], *TOL)
    assert result.objective in (1.0, 1000.0) and len(result.cluster) == 1
