"""Validate a model's solution: V(x*) = 1 iff the simulator finds it feasible and the objectives agree.

Checks in order: ``solution.json`` is well-formed; every variable of P* is present with the right index shape;
values respect the declared types and bounds; the simulator (run in the sandbox) finds no violation; and
``|F_sim - F_opt| <= atol + rtol * |F_opt|``. Each failure becomes an :class:`Issue` that names the
constraint, the amount and the variables, so the report can go straight back to the optimizer agent.
"""

from __future__ import annotations

import json
import math
import shlex
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from nemo_opt.harness import harness_source
from nemo_opt.sandbox.base import ExecResult, Sandbox
from nemo_opt.solution import Issue, SimVerdict, Solution, SolveStatus, ValidationReport
from nemo_opt.spec import ProblemSpec, VarType, index_keys
from nemo_opt.workspace import Workspace

__all__ = [
    "HARNESS",
    "check_shapes",
    "install_harness",
    "load_solution",
    "run_simulator",
    "run_simulator_batch",
    "validate",
]

HARNESS = "check_solution.py"
# Solvers report integers like 2.9999999 and MIP tolerances are about 1e-6: integrality gets a little slack.
INTEGRALITY_TOL = 1e-5


def install_harness(workspace: Workspace) -> Path:
    """Place the simulator-runner script in the workspace's internal folder."""
    return workspace.write_text(workspace.internal / HARNESS, harness_source(HARNESS))


def load_solution(path: Path) -> tuple[Solution | None, str]:
    """Parse ``solution.json``; on failure the second item says why."""
    try:
        return Solution.model_validate(json.loads(path.read_text(encoding="utf-8"))), ""
    except FileNotFoundError:
        return None, f"{path.name} was not written"
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
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


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


def _run_harness(
    workspace: Workspace,
    sandbox: Sandbox,
    input_path: Path,
    verdict_path: Path,
    tol: float,
    timeout: float,
    batch: bool,
) -> ExecResult:
    harness = workspace.internal / HARNESS
    if not harness.exists():
        install_harness(workspace)
    verdict_path.unlink(missing_ok=True)
    command = " ".join(
        shlex.quote(part)
        for part in ("python", workspace.rel(harness), workspace.rel(input_path), workspace.rel(verdict_path))
    )
    return sandbox.run(f"{command} --tol {tol!r}{' --batch' if batch else ''}", cwd=workspace.root, timeout=timeout)


def run_simulator_batch(
    workspace: Workspace, sandbox: Sandbox, points: list[dict[str, Any]], name: str, tol: float, timeout: float
) -> list[SimVerdict] | str:
    """Verdicts of ``simulate`` for many variable mappings in one sandboxed run; a string says why none came."""
    input_path = workspace.write_json(workspace.internal / f"{name}_points.json", points)
    verdict_path = workspace.internal / f"{name}_verdicts.json"
    result = _run_harness(workspace, sandbox, input_path, verdict_path, tol, timeout, batch=True)
    if not verdict_path.exists():
        return f"the simulator harness produced no verdicts ({result.describe()}):\n{result.output[-2000:]}"
    try:
        raw = json.loads(verdict_path.read_text(encoding="utf-8"))
        if isinstance(raw, dict):  # the whole batch failed (e.g. the simulator does not import)
            return str(raw.get("error", "the simulator failed"))
        return [SimVerdict.model_validate(v) for v in raw]
    except (json.JSONDecodeError, ValidationError) as exc:
        return f"unreadable simulator verdicts: {exc}"


def run_simulator(
    workspace: Workspace, sandbox: Sandbox, solution_path: Path, verdict_path: Path, tol: float, timeout: float
) -> SimVerdict:
    """Run ``simulate`` on a solution inside the sandbox and read back its verdict."""
    result = _run_harness(workspace, sandbox, solution_path, verdict_path, tol, timeout, batch=False)
    if not verdict_path.exists():
        return SimVerdict(
            ok=False, error=f"the simulator harness produced no verdict ({result.describe()}):\n{result.output[-3000:]}"
        )
    try:
        raw = json.loads(verdict_path.read_text(encoding="utf-8"))
        return SimVerdict.model_validate(raw)
    except (json.JSONDecodeError, ValidationError) as exc:
        return SimVerdict(ok=False, error=f"unreadable simulator verdict: {exc}")


def validate(
    spec: ProblemSpec,
    workspace: Workspace,
    sandbox: Sandbox,
    solution_path: Path,
    *,
    optimizer: str,
    round_number: int,
    atol: float,
    rtol: float,
    timeout: float,
    attempt: int = 0,
    probes: int = 0,
) -> ValidationReport:
    """V(x*) for one solution, as a structured report (also saved next to the solution).

    ``attempt`` counts re-validations within a round (after the simulator was repaired), so no report is
    overwritten.
    """
    solution, error = load_solution(solution_path)
    suffix = f"{round_number}" if attempt == 0 else f"{round_number}_{attempt}"
    report_path = solution_path.parent / f"validation_{suffix}.json"
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
        verdict_path = solution_path.parent / f"simulation_{suffix}.json"
        report = _judge(spec, workspace, sandbox, solution, solution_path, verdict_path, atol, rtol, timeout)
        report.optimizer, report.round, report.attempt = optimizer, round_number, attempt
        if report.passed and probes > 0:
            _cross_check(spec, workspace, sandbox, solution, solution_path, report, suffix, probes, atol, rtol, timeout)
    workspace.write_json(report_path, report.model_dump(mode="json"))
    return report


def _cross_check(
    spec: ProblemSpec,
    workspace: Workspace,
    sandbox: Sandbox,
    solution: Solution,
    solution_path: Path,
    report: ValidationReport,
    suffix: str,
    probes: int,
    atol: float,
    rtol: float,
    timeout: float,
) -> None:
    """Objective agreement passed; now compare feasible regions, and fail the report on disagreement."""
    from nemo_opt.stages.crosscheck import cross_check

    check = cross_check(
        spec, workspace, sandbox, solution, solution_path.parent, probes=probes, atol=atol, rtol=rtol, timeout=timeout
    )
    report.crosscheck = {
        "ran": check.ran,
        "note": check.note,
        "probes": check.probes,
        "mapped_columns": check.mapped_columns,
        "skipped_rows": check.skipped_rows,
        "disagreements": len(check.issues),
    }
    workspace.write_json(
        solution_path.parent / f"crosscheck_{suffix}.json", {**report.crosscheck, "points": check.points}
    )
    if check.issues:
        report.issues.extend(check.issues)
        report.passed = False


def _judge(
    spec: ProblemSpec,
    workspace: Workspace,
    sandbox: Sandbox,
    solution: Solution,
    solution_path: Path,
    verdict_path: Path,
    atol: float,
    rtol: float,
    timeout: float,
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
    verdict = run_simulator(workspace, sandbox, solution_path, verdict_path, atol, timeout)
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
