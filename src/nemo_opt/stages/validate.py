"""Validate a model's solution: V(x*) = 1 iff the frozen simulator finds it feasible and the objectives agree.

Checks in order: ``solution.json`` is well-formed (read through the safe door: a regular file, size- and
depth-bounded); every variable of P* is present with the right index shape; values respect the declared types
and bounds; the frozen simulator (:mod:`nemo_opt.stages.referee`, run apart from the agents) finds no violation;
and ``|F_sim - F_opt| <= atol + rtol * |F_opt|``. Each failure becomes an :class:`Issue` that names the
constraint, the amount and the variables, so the report can go straight back to the optimizer agent.

A passed report then gets its verification level (:class:`~nemo_opt.solution.VerificationLevel`): the host
reads the exported model itself, ties it to x* (:mod:`nemo_opt.stages.tie`) and compares feasible regions
(:mod:`nemo_opt.stages.crosscheck`); what could not be done lowers the level, with the reason.
"""

from __future__ import annotations

import json
import logging
import math
import secrets
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from nemo_opt.exceptions import DoorRefused
from nemo_opt.solution import Issue, SimVerdict, Solution, SolveStatus, ValidationReport, VerificationLevel
from nemo_opt.spec import ProblemSpec, VarType, index_keys
from nemo_opt.stages.referee import Referee
from nemo_opt.workspace import Workspace

__all__ = [
    "INTEGRALITY_TOL",
    "PLAIN_CAP",
    "check_domains",
    "check_shapes",
    "load_solution",
    "validate",
]

# Solvers report integers like 2.9999999 and MIP tolerances are about 1e-6: integrality gets a little slack.
INTEGRALITY_TOL = 1e-5


# Solutions of real models with thousands of indexed variables stay well below this.
MAX_SOLUTION_BYTES = 32 * 1024 * 1024
logger = logging.getLogger("nemo_opt.validate")
PLAIN_CAP = (
    "the plain sandbox cannot keep the agents' code away from the referee's files or the host, so no answer "
    "is verified there; install bubblewrap (apt install bubblewrap) to reach 'verified'"
)


def load_solution(workspace: Workspace, path: Path) -> tuple[Solution | None, str]:
    """Parse ``solution.json`` through the safe door; on failure the second item says why."""
    try:
        raw = workspace.read_json(path, max_bytes=MAX_SOLUTION_BYTES)
        return Solution.model_validate(raw), ""
    except FileNotFoundError:
        return None, f"{path.name} was not written"
    except DoorRefused as exc:
        return None, f"{path.name} cannot be read: {exc}"
    except (OSError, json.JSONDecodeError) as exc:
        return None, f"{path.name} is not valid JSON: {exc}"
    except ValidationError as exc:
        first = exc.errors()[0]
        return None, f"{path.name} does not match the format: {'.'.join(map(str, first['loc']))}: {first['msg']}"


def _lookup(values: Any, key: tuple[str, ...]) -> Any:
    for part in key:
        if not isinstance(values, dict) or part not in values:
            return _MISSING
        values = values[part]
    return values


_MISSING = object()


def _is_number(value: Any) -> bool:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:  # an integer too large for a float is no usable value
        return False


def check_shapes(spec: ProblemSpec, variables: dict[str, Any]) -> list[Issue]:
    """Missing variables, missing index keys and non-numeric values (malformed, not a modeling error)."""
    issues: list[Issue] = []
    for var in spec.variables:
        if var.name not in variables:
            issues.append(
                Issue(kind="missing_variable", message=f"variable '{var.name}' is missing", variables=[var.name])
            )
            continue
        missing = []
        for key in index_keys(spec, var.indices):
            value = _lookup(variables[var.name], key)
            label = f"{var.name}[{','.join(key)}]" if key else var.name
            if value is _MISSING:
                missing.append(label)
            elif not _is_number(value):
                issues.append(
                    Issue(kind="malformed_solution", message=f"{label} is {value!r}, not a number", variables=[label])
                )
        if missing:
            issues.append(
                Issue(
                    kind="missing_variable",
                    message=f"{len(missing)} value(s) of '{var.name}' missing, e.g. {', '.join(missing[:5])}; index "
                    f"it as a nested object keyed by {' -> '.join(var.indices)}",
                    variables=missing[:20],
                )
            )
    return issues


def check_domains(spec: ProblemSpec, variables: dict[str, Any], atol: float, rtol: float) -> list[Issue]:
    """Values outside declared bounds or not integral where they must be."""
    issues: list[Issue] = []
    for var in spec.variables:
        for key in index_keys(spec, var.indices):
            value = _lookup(variables.get(var.name, {}), key)
            if not _is_number(value):
                continue
            label = f"{var.name}[{','.join(key)}]" if key else var.name
            if var.type is not VarType.CONTINUOUS and abs(value - round(value)) > max(
                INTEGRALITY_TOL, rtol * abs(value)
            ):
                issues.append(
                    Issue(
                        kind="variable_type", message=f"{label} = {value} must be {var.type.value}", variables=[label]
                    )
                )
            for bound, sign in ((var.lower, 1.0), (var.upper, -1.0)):
                if bound is None:
                    continue
                excess = sign * (bound - value)
                if excess > atol + rtol * abs(bound):
                    side = "below its lower" if sign > 0 else "above its upper"
                    issues.append(
                        Issue(
                            kind="variable_bounds",
                            message=f"{label} = {value} is {side} bound {bound}",
                            amount=excess,
                            variables=[label],
                        )
                    )
    return issues


def validate(
    spec: ProblemSpec,
    workspace: Workspace,
    referee: Referee,
    solution_path: Path,
    *,
    optimizer: str,
    round_number: int,
    atol: float,
    rtol: float,
    attempt: int = 0,
    probes: int = 0,
    time_limit: float = 60.0,
    records: Path | None = None,
) -> ValidationReport:
    """V(x*) for one solution, as a structured report with its verification level (also saved next to it, or in
    ``records``).

    ``attempt`` counts re-validations within a round (after the simulator was repaired), so no report is
    overwritten. ``time_limit`` bounds each HiGHS solve of the exported model."""
    referee = referee.pinned()  # one version judges all of this validation and is the one recorded
    solution, error = load_solution(workspace, solution_path)
    suffix = f"{round_number}" if attempt == 0 else f"{round_number}_{attempt}"
    folder = solution_path.parent
    records = records or folder
    if solution is None:
        report = ValidationReport(
            optimizer=optimizer,
            round=round_number,
            attempt=attempt,
            passed=False,
            status=SolveStatus.ERROR,
            issues=[Issue(kind="malformed_solution", message=error)],
        )
    else:
        report = _judge(spec, workspace, referee, solution, records / f"simulation_{suffix}.json", atol, rtol)
        report.optimizer, report.round, report.attempt = optimizer, round_number, attempt
        if solution.status is SolveStatus.UNBOUNDED:
            report.issues.extend(_unbounded_direction(spec, workspace, referee, solution, folder))
        if report.passed:
            _level(spec, workspace, referee, solution, folder, records, report, suffix, probes, atol, rtol, time_limit)
    report.referee_version = referee.current.number if referee.current else 0
    _record(workspace, records / f"validation_{suffix}.json", report.model_dump(mode="json"))
    return report


def _unbounded_direction(
    spec: ProblemSpec, workspace: Workspace, referee: Referee, solution: Solution, folder: Path
) -> list[Issue]:
    """For an unbounded model: the decisions of its exported model that can grow without end (empty when it
    exported none or no direction is found)."""
    from nemo_opt.stages.crosscheck import _reference, load_exported_model
    from nemo_opt.stages.ray import improving_direction

    loaded = load_exported_model(workspace, folder, solution, spec, referee.sandbox)
    if isinstance(loaded, str):
        return []
    model, mapping = loaded
    direction = improving_direction(model, {j: _reference(name, key) for j, (name, key) in mapping.items()})
    if not direction:
        return []
    moves = ", ".join(f"{name} {'up' if step > 0 else 'down'}" for name, step in list(direction.items())[:8])
    more = f" (and {len(direction) - 8} more)" if len(direction) > 8 else ""
    return [
        Issue(
            kind="unbounded_direction",
            message=f"in your model the objective improves without end by moving {moves}{more}: no constraint "
            "limits that. Find the condition of the problem text that limits these decisions (a resource they "
            "use, a demand, a budget) and make sure its constraint includes every decision that uses it.",
            variables=list(direction),
        )
    ]


def _record(workspace: Workspace, path: Path, data: Any) -> None:
    """Keep a record for people to read (never read back): in an agent's folder, where the agent may have put a
    folder or anything else in the way, it is given up rather than failing the validation."""
    try:
        workspace.write_json(path, data)
    except OSError as exc:  # DoorRefused included
        logger.warning("record %s not written: %s", path, exc)


def _level(
    spec: ProblemSpec,
    workspace: Workspace,
    referee: Referee,
    solution: Solution,
    folder: Path,
    records: Path,
    report: ValidationReport,
    suffix: str,
    probes: int,
    atol: float,
    rtol: float,
    time_limit: float,
) -> None:
    """Objective agreement passed: tie the exported model to x*, compare regions, and set the level."""
    from nemo_opt.stages.crosscheck import compare_regions, load_exported_model
    from nemo_opt.stages.tie import tie_check

    report.level = VerificationLevel.VERIFIED
    loaded = load_exported_model(workspace, folder, solution, spec, referee.sandbox)
    if isinstance(loaded, str):
        report.crosscheck = {"ran": False, "note": loaded}
        report.downgrade(VerificationLevel.OBJECTIVE_CHECKED, loaded)
    else:
        model, mapping = loaded
        assert solution.objective is not None  # a passed report has one
        tie = tie_check(
            model, mapping, solution.variables, solution.objective, atol=atol, rtol=rtol, time_limit=time_limit
        )
        report.tie = {
            "tied": tie.tied,
            "note": tie.note,
            "objective_at_x": tie.objective_at_x,
            "resolved_objective": tie.resolved_objective,
        }
        if tie.tied is False:
            report.issues.extend(tie.issues)
            report.passed = False
            report.downgrade(VerificationLevel.UNVERIFIED, tie.note)
            return
        if tie.tied is None:
            report.downgrade(
                VerificationLevel.OBJECTIVE_CHECKED, f"the exported model could not be tied to x*: {tie.note}"
            )
        if probes <= 0:
            report.crosscheck = {"ran": False, "note": "switched off (crosscheck_probes = 0)"}
            report.downgrade(
                VerificationLevel.OBJECTIVE_CHECKED,
                "the feasible-region cross-check is switched off (crosscheck_probes = 0)",
            )
        else:
            # A fresh seed each time: the probes must not be known in advance to whoever wrote the model.
            seed = secrets.randbelow(2**31)
            check = compare_regions(
                spec,
                solution.variables,
                model,
                mapping,
                lambda points: referee.check_batch(points, atol),
                probes=probes,
                atol=atol,
                rtol=rtol,
                seed=seed,
            )
            report.crosscheck = {
                "ran": check.ran,
                "note": check.note,
                "probes": check.probes,
                "mapped_columns": check.mapped_columns,
                "skipped_rows": check.skipped_rows,
                "auxiliary_columns": check.auxiliary_columns,
                "unknown_probes": check.unknown_probes,
                "disagreements": len(check.issues),
                "seed": seed,
            }
            if check.ran and not check.issues:
                relaxed = _relax(spec, referee, solution, model, mapping, report, atol, rtol, time_limit)
                report.crosscheck["relaxation"] = relaxed
                check.issues.extend(relaxed.pop("issues"))
                report.crosscheck["disagreements"] = len(check.issues)
            _record(workspace, records / f"crosscheck_{suffix}.json", {**report.crosscheck, "points": check.points})
            if check.issues:
                report.issues.extend(check.issues)
                report.passed = False
                report.downgrade(VerificationLevel.UNVERIFIED, "the feasible-region cross-check found disagreements")
                return
            if not check.ran:
                report.downgrade(
                    VerificationLevel.OBJECTIVE_CHECKED, f"the feasible region could not be checked: {check.note}"
                )
    if not referee.isolated:
        report.downgrade(VerificationLevel.OBJECTIVE_CHECKED, PLAIN_CAP)


def _relax(
    spec: ProblemSpec,
    referee: Referee,
    solution: Solution,
    model: Any,
    mapping: dict[int, tuple[str, tuple[str, ...]]],
    report: ValidationReport,
    atol: float,
    rtol: float,
    time_limit: float,
) -> dict[str, Any]:
    """Relax what binds at x* and ask the frozen simulator about better optima (:mod:`nemo_opt.stages.relax`)."""

    from nemo_opt.stages.crosscheck import complete_point, solution_point
    from nemo_opt.stages.relax import relaxation_check

    x = solution_point(model, mapping, solution.variables)
    if len(mapping) < len(model.columns):
        completion = complete_point(model, x, sorted(mapping), atol=atol, rtol=rtol, time_limit=time_limit)
        if completion.status != "optimal" or completion.values is None:
            return {"ran": False, "note": f"x* could not be completed: {completion.reason}", "issues": []}
        x = completion.values
    assert report.objective_simulator is not None  # the objective check passed
    relaxed = relaxation_check(
        model,
        mapping,
        solution.variables,
        x,
        report.objective_simulator,
        lambda points: referee.check_batch(points, atol),
        maximize=spec.objective.sense == "maximize",
        atol=atol,
        rtol=rtol,
        time_limit=min(time_limit, 10.0),
    )
    return {
        "ran": True,
        "groups": relaxed.groups,
        "solved": relaxed.solved,
        "judged": relaxed.judged,
        "note": relaxed.note,
        "tried": [
            {**t, "point": {f"{n}[{','.join(k)}]" if k else n: v for (n, k), v in t["point"].items()}}
            for t in relaxed.tried
        ],
        "issues": relaxed.issues,
    }


def _judge(
    spec: ProblemSpec,
    workspace: Workspace,
    referee: Referee,
    solution: Solution,
    verdict_record: Path,
    atol: float,
    rtol: float,
) -> ValidationReport:
    report = ValidationReport(
        optimizer="",
        round=0,
        passed=False,
        status=solution.status,
        objective_model=solution.objective,
    )
    if not solution.status.has_solution:
        report.checkable = False
        report.issues.append(
            Issue(kind="status", message=f"the model reports '{solution.status.value}'; there is no solution to check")
        )
        return report
    report.issues.extend(check_shapes(spec, solution.variables))
    if report.issues:
        return report
    report.issues.extend(check_domains(spec, solution.variables, atol, rtol))
    verdict: SimVerdict = referee.check(solution.variables, atol)
    _record(workspace, verdict_record, verdict.model_dump(mode="json"))
    if not verdict.ok:
        report.issues.append(
            Issue(kind="simulator_error", message=f"the simulator failed on this solution:\n{verdict.error}")
        )
        return report
    report.objective_simulator = verdict.objective
    for violation in verdict.violations:
        amount = f" by {violation.amount:g}" if violation.amount is not None else ""
        involved = f" (variables: {', '.join(violation.variables[:10])})" if violation.variables else ""
        detail = f": {violation.detail}" if violation.detail else ""
        report.issues.append(
            Issue(
                kind="constraint_violation",
                message=f"constraint '{violation.constraint}' is violated{amount}{involved}{detail}",
                constraint=violation.constraint,
                amount=violation.amount,
                variables=violation.variables,
            )
        )
    if not verdict.feasible and not verdict.violations:
        report.issues.append(Issue(kind="constraint_violation", message="the simulator judged the solution infeasible"))
    report.issues.extend(_objective_issues(solution.objective, verdict.objective, atol, rtol, report))
    report.passed = not report.issues
    if report.passed:
        report.level = VerificationLevel.OBJECTIVE_CHECKED
    return report


def _objective_issues(
    model_value: float | None, sim_value: float | None, atol: float, rtol: float, report: ValidationReport
) -> list[Issue]:
    if model_value is None:
        return [Issue(kind="objective_mismatch", message="the model wrote no objective value")]
    if sim_value is None or not math.isfinite(sim_value):
        return [Issue(kind="objective_mismatch", message="the simulator computed no objective value")]
    tolerance = atol + rtol * abs(model_value)
    report.tolerance = tolerance
    gap = abs(sim_value - model_value)
    if gap <= tolerance:
        return []
    return [
        Issue(
            kind="objective_mismatch",
            message=f"objective mismatch: the model reports {model_value:.10g} but the simulator computes "
            f"{sim_value:.10g} for the same solution (difference {gap:.6g}, tolerance {tolerance:.3g})",
            amount=gap,
        )
    ]
