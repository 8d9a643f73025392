"""``nemo-opt solve``, ``show`` and ``runs``."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from nemo_opt.cli.app import EXIT_CODES, cli, console, fail, out, settings_from, stop_on_sigterm
from nemo_opt.exceptions import BadInput, NemoError
from nemo_opt.fsutil import read_json
from nemo_opt.pipeline import Pipeline
from nemo_opt.problem import read_problem
from nemo_opt.result import Event, RunResult
from nemo_opt.store import RunStore, find_run_folder

__all__ = ["runs", "show", "solve"]


class _Progress:
    """Prints one line per stage event, with the time since the stage started."""

    def __init__(self) -> None:
        self.started: dict[str, float] = {}

    def __call__(self, event: Event) -> None:
        now = time.monotonic()
        if event.status == "started":
            self.started[event.stage] = now
            console.print(f"[cyan]▶[/] {event.stage} …")
            return
        seconds = now - self.started.get(event.stage, now)
        mark = {"finished": "[green]✓[/]", "failed": "[red]✗[/]", "info": "[yellow]•[/]"}[event.status]
        timing = f" [dim]({seconds:.1f}s)[/]" if event.status != "info" else ""
        console.print(f"{mark} {event.stage}{timing} {escape(event.message)}".rstrip())


def _pass_at_1(first: dict[str, Any]) -> str:
    if not first:
        return "—"
    objective = first.get("objective")
    value = "" if objective is None else f" {objective:.10g}"
    level = first.get("level") or ("verified" if first.get("verified") else "")
    return f"{first.get('status')}{value}{f' ({level})' if level else ''}"


def _summary(result: RunResult) -> Table:
    table = Table(show_header=False, box=None, padding=(0, 2))
    usage = result.usage or {}
    cost = usage.get("cost_usd")
    rows = [
        ("status", result.status),
        ("objective", "—" if result.objective is None else f"{result.objective:.10g}"),
        ("verification", result.level + (f" ({result.level_reason})" if result.level_reason else "")),
        ("pass@1", _pass_at_1(result.pass_at_1)),
        ("tokens", f"{usage.get('prompt_tokens', 0):,} in / {usage.get('completion_tokens', 0):,} out"),
        ("cost", "unknown" if cost is None else f"{cost:.4f} USD"),
        ("seconds", f"{result.seconds:.1f} (model wait {result.llm_wait_seconds:.1f})"),
        ("package", str(result.package) if result.package else "—"),
        ("run folder", str(result.folder)),
    ]
    for key, value in rows:
        table.add_row(f"[bold]{key}[/]", escape(value))
    return table


_NO_OPTIMUM = {
    "infeasible": "no plan satisfies every constraint: the data or the limits contradict each other",
    "unbounded": "the objective can improve without end: a limit (capacity, budget, demand) is missing",
    "infeasible_or_unbounded": "the solver reports it infeasible or unbounded: check the limits and the data",
}


@cli.command(epilog=EXIT_CODES)
@click.argument("problem", required=False)
@click.option(
    "--resume",
    "resume_run",
    metavar="RUN",
    help="Continue a killed or stopped run (id, id prefix or folder): finished stages are not redone.",
)
@click.option("--model", help="Model as provider:name, e.g. openai:gpt-4.1 or openai-compatible:NAME@URL.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False), help="Where to write the package.")
@click.option("--optimizers", type=int, help="Number of optimizer agents (T).")
@click.option("--extractions", type=int, help="Number of sampled extractions (n).")
@click.option("--repair-rounds", type=int, help="Validation-repair rounds per optimizer (R).")
@click.option("--no-sim", is_flag=True, default=False, help="Skip the simulator and validation (ablation).")
@click.option("--no-memory", is_flag=True, default=False, help="Do not retrieve solved examples (ablation).")
@click.option("--no-mbr", is_flag=True, default=False, help="Take the first extraction instead of MBR + judge.")
@click.option("--protocol", type=click.Choice(["tools", "text", "files"]), help="Agent protocol.")
@click.option("--sandbox", type=click.Choice(["auto", "bwrap", "plain"]), help="Sandbox backend.")
@click.option("--no-cache", is_flag=True, default=False, help="Do not use the model reply cache.")
@click.option("--max-cost", type=float, help="Cost ceiling of the run in USD.")
@click.option("--max-seconds", type=float, help="Wall-clock limit of the run in seconds.")
@click.option("--json", "as_json", is_flag=True, default=False, help="Print the result as JSON on stdout.")
@click.pass_context
def solve(
    ctx: click.Context,
    /,
    problem: str | None,
    resume_run: str | None,
    out_dir: Path | None,
    as_json: bool,
    **flags: Any,
) -> None:
    """Solve PROBLEM (a text or Markdown file, or - for standard input), or continue a run with --resume RUN."""
    overrides = {
        "model": flags["model"],
        "optimizers": flags["optimizers"],
        "extractions": flags["extractions"],
        "repair_rounds": flags["repair_rounds"],
        "simulate": False if flags["no_sim"] else None,
        "memory": False if flags["no_memory"] else None,
        "mbr": False if flags["no_mbr"] else None,
        "agent_protocol": flags["protocol"],
        "sandbox": flags["sandbox"],
        "llm_cache": "off" if flags["no_cache"] else None,
        "max_cost_usd": flags["max_cost"],
        "run_max_seconds": flags["max_seconds"],
    }
    stop_on_sigterm()
    try:
        settings = settings_from(ctx, **overrides)
        pipeline = Pipeline(settings, on_event=_Progress())
        if resume_run is not None:
            if problem is not None:
                raise BadInput("Give either PROBLEM or --resume RUN, not both.")
            console.print(f"[bold]nemo-opt[/] resuming [cyan]{escape(resume_run)}[/]")
            result = pipeline.resume(resume_run, package_dir=out_dir)
        else:
            if problem is None:
                raise BadInput("Give the problem file (or - for standard input), or --resume RUN.")
            text, name = read_problem(problem, max_chars=settings.max_problem_chars)
            model = settings.model or "(no model)"
            console.print(f"[bold]nemo-opt[/] solving [cyan]{escape(name)}[/] with [cyan]{escape(model)}[/]")
            if model.startswith("local:"):
                console.print(
                    f"[dim]The local model {escape(Path(model[6:]).name)} runs on this machine's CPU (llama.cpp): "
                    "slow, and far weaker than a hosted model. A stronger model gives better results, e.g. "
                    "--model openai:gpt-4.1 or any OpenAI-compatible server.[/]"
                )
            result = pipeline.solve(text, package_dir=out_dir)
    except NemoError as exc:
        fail(exc)
    except KeyboardInterrupt:
        console.print(
            "[red]interrupted[/]; the run folder keeps everything finished so far. Continue it with: "
            "nemo-opt solve --resume RUN (nemo-opt runs lists the runs)."
        )
        sys.exit(130)
    console.print(_summary(result))
    if result.error:
        console.print(f"[red]error:[/] {escape(result.error)}\nEverything produced so far is in {result.folder}")
    elif result.status in _NO_OPTIMUM:
        console.print(
            f"[yellow]The problem is {result.status}[/]: {_NO_OPTIMUM[result.status]}. The optimizers confirmed it "
            f"after re-checking their models; their notes are in {result.folder}/result.json."
        )
    elif result.level == "objective-checked":
        console.print(
            f"[yellow]The answer is objective-checked, not verified[/]: {escape(result.level_reason)}. "
            f"Validation reports are in {result.folder}/optimizers/"
        )
    elif not result.verified:
        console.print(f"[yellow]The answer is not verified.[/] Validation reports are in {result.folder}/optimizers/")
    if as_json:
        out.print_json(data=read_json(result.folder / "result.json"))
    sys.exit(result.exit_code)


@cli.command()
@click.argument("run")
@click.pass_context
def show(ctx: click.Context, run: str) -> None:
    """Show a run: its result, stages, validation trail and model calls. RUN is an id, id prefix or folder."""
    try:
        settings = settings_from(ctx)
        store = RunStore(settings.store_path)
        folder = find_run_folder(store, run)
    except NemoError as exc:
        fail(exc)
    result_path = folder / "result.json"
    if not result_path.exists():
        out.print(f"Run folder {folder} has no result.json yet (the run is in progress or was killed).")
        sys.exit(1)
    data = read_json(result_path)
    out.print(f"[bold]Run[/] {data['run_id']}  ({folder})")
    level = data.get("level") or ("verified" if data.get("verified") else "unverified")
    reason = f" — {escape(str(data['level_reason']))}" if data.get("level_reason") else ""
    out.print(f"{data.get('status')}, objective {data.get('objective')}, [bold]{level}[/]{reason}")
    table = Table("stage", "status", "seconds")
    for stage in data.get("stages", []):
        table.add_row(stage["stage"], stage["status"], f"{stage['seconds']:.2f}")
    out.print(table)
    for opt in data.get("optimizers", []):
        out.print(
            f"[bold]{opt['name']}[/] ({opt['solver']}): {opt['status']}, objective {opt['objective']}, "
            f"{opt.get('level') or ('verified' if opt['verified'] else 'unverified')}. {escape(opt['note'])}"
        )
        for report in opt.get("reports", []):
            verdict = f"passed, {report.get('level', 'objective-checked')}" if report["passed"] else "failed"
            why = f" ({escape(report['level_reason'])})" if report["passed"] and report.get("level_reason") else ""
            out.print(f"  round {report['round']}: {verdict}{why}")
            for issue in report.get("issues", []):
                out.print(f"    - {escape('[' + issue['kind'] + '] ' + issue['message'][:300])}")
    calls = store.llm_totals(data["run_id"])
    calls_table = Table("stage", "calls", "tokens in", "tokens out", "seconds", "cost USD")
    for stage, row in calls["per_stage"].items():
        cost = "-" if row["cost_usd"] is None else f"{row['cost_usd']:.4f}"
        calls_table.add_row(
            stage,
            str(row["calls"]),
            str(row["prompt_tokens"]),
            str(row["completion_tokens"]),
            f"{row['seconds'] or 0:.1f}",
            cost,
        )
    out.print(calls_table)
    out.print(_summary(_result_from(data, folder)))
    if data.get("error"):
        out.print(f"[red]error:[/] {escape(data['error'])}")


def _result_from(data: dict[str, Any], folder: Path) -> RunResult:
    fields = {k: v for k, v in data.items() if k in RunResult.__dataclass_fields__}
    fields["folder"] = folder
    fields["package"] = Path(data["package"]) if data.get("package") else None
    return RunResult(**fields)


@cli.command()
@click.option("--limit", type=int, default=20, show_default=True)
@click.pass_context
def runs(ctx: click.Context, limit: int) -> None:
    """List recent runs."""
    settings = settings_from(ctx)
    table = Table("run", "status", "verification", "objective", "title")
    for row in RunStore(settings.store_path).recent_runs(limit):
        # Runs from before levels existed have only the verified flag.
        verified = row.get("level") or {None: "-", 0: "unverified", 1: "verified"}[row["verified"]]
        objective = "-" if row["objective"] is None else f"{row['objective']:.10g}"
        status = row["status"] + (f" (resumed {row['resumes']}x)" if row.get("resumes") else "")
        table.add_row(row["id"], status, verified, objective, escape(row["title"][:60]))
    out.print(table)
