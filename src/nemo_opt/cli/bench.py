"""``nemo-opt bench …``: run, resume, score and report the benchmarks; list datasets; download releases."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from nemo_opt.bench.datasets import expand_names, list_datasets
from nemo_opt.bench.runner import BenchRunner, BenchSummary
from nemo_opt.bench.scoring import PRESETS
from nemo_opt.bench.store import BenchStore
from nemo_opt.cli.app import cli, console, fail, out, settings_from, stop_on_sigterm
from nemo_opt.exceptions import BadInput, NemoError
from nemo_opt.store import RunStore

__all__ = ["bench"]


@cli.group()
def bench() -> None:
    """Benchmarks: NL4OPT, NLP4LP, MAMO-Easy/Complex, IndustryOR, OptiBench, OptMATH, ComplexOR, BWOR."""


def _summary_line(summary: BenchSummary) -> str:
    return (
        f"{summary.name}: accuracy {summary.accuracy:.1%} ({summary.correct}/{summary.graded} graded, "
        f"preset {summary.preset}); {summary.failed} failed; bench run {summary.bench_run}"
    )


@bench.command("run")
@click.argument("names", nargs=-1, required=True)
@click.option("--limit", type=int, help="Only the first N items.")
@click.option("--ids", help="Only these item ids (comma-separated).")
@click.option("--workers", type=int, default=4, show_default=True, help="Items in flight at once.")
@click.option("--preset", type=click.Choice(PRESETS), default="strict", show_default=True, help="Scoring preset.")
@click.option("--cluster", help="Run on a Dask cluster: an address (tcp://host:8786) or 'local'.")
@click.option("--oracle", is_flag=True, default=False, help="Run the reference programs instead of the pipeline.")
@click.option("--retry-failed", is_flag=True, default=False, help="Attempt failed items again.")
@click.option("--model", help="Model as provider:name.")
@click.option("--extract-model", help="Model for extraction.")
@click.option("--optimizer-model", help="Model for the optimizer agents.")
@click.option("--simulator-model", help="Model for the simulator agent.")
@click.option("--no-sim", is_flag=True, default=False, help="Ablation: no simulator, no validation.")
@click.option("--no-memory", is_flag=True, default=False, help="Ablation: no retrieved examples.")
@click.option("--no-mbr", is_flag=True, default=False, help="Ablation: first extraction, no MBR/judge.")
@click.option("--optimizers", type=int, help="Number of optimizer agents (T).")
@click.option("--extractions", type=int, help="Number of sampled extractions (n).")
@click.pass_context
def run(ctx: click.Context, /, names: tuple[str, ...], **options: Any) -> None:
    """Run (or resume) benchmark NAMES, e.g. nl4opt, nl4opt:curated, all, all:curated."""
    overrides = {
        "model": options["model"],
        "extract_model": options["extract_model"],
        "optimizer_model": options["optimizer_model"],
        "simulator_model": options["simulator_model"],
        "simulate": False if options["no_sim"] else None,
        "memory": False if options["no_memory"] else None,
        "mbr": False if options["no_mbr"] else None,
        "optimizers": options["optimizers"],
        "extractions": options["extractions"],
    }
    try:
        settings = settings_from(ctx, **overrides)
        if not options["oracle"] and not settings.model_for("extract"):
            raise BadInput("No model configured for the benchmark run: pass --model (see `nemo-opt solve --help`).")
        runner = BenchRunner(settings)
        stop_on_sigterm()
        ids = [i.strip() for i in options["ids"].split(",")] if options["ids"] else None
        summaries = []
        for name in expand_names(list(names), settings.benchmarks_dir):
            summaries.append(_run_one(runner, name, ids, options))
    except NemoError as exc:
        fail(exc)
    except KeyboardInterrupt:
        console.print("[red]interrupted[/]; finished items are stored — run the same command again to resume.")
        raise SystemExit(130) from None
    for summary in summaries:
        out.print(_summary_line(summary))


def _run_one(runner: BenchRunner, name: str, ids: list[str] | None, options: dict[str, Any]) -> BenchSummary:
    columns = (
        TextColumn(f"[bold]{escape(name)}[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[score]}"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console) as progress:
        task = progress.add_task(name, total=None, score="")
        counts = {"done": 0, "failed": 0}

        def started(todo: int) -> None:
            progress.update(task, total=todo)

        def finished(result: dict[str, Any]) -> None:
            counts["failed" if result["status"] == "failed" else "done"] += 1
            progress.update(task, advance=1, score=f"{counts['done']} done, {counts['failed']} failed")

        return runner.run(
            name,
            limit=options["limit"],
            ids=ids,
            workers=options["workers"],
            preset=options["preset"],
            cluster=options["cluster"],
            oracle=options["oracle"],
            retry_failed=options["retry_failed"],
            on_start=started,
            on_result=finished,
        )


def _resolve_runs(store: BenchStore, refs: tuple[str, ...]) -> list[str]:
    ids = []
    for ref in refs:
        matches = store.find_runs(ref)
        if not matches:
            raise BadInput(f"No bench run matches '{ref}'. List them with: nemo-opt bench list")
        ids.append(matches[0]["id"])
    return ids


@bench.command()
@click.argument("runs", nargs=-1, required=True)
@click.option("--preset", type=click.Choice(PRESETS), default="strict", show_default=True)
@click.pass_context
def score(ctx: click.Context, runs: tuple[str, ...], preset: str) -> None:
    """Re-score stored answers of RUNS under another preset (nothing is re-run)."""
    try:
        settings = settings_from(ctx)
        runner = BenchRunner(settings)
        for run_id in _resolve_runs(runner.store, runs):
            out.print(_summary_line(runner.score(run_id, preset)))
    except NemoError as exc:
        fail(exc)


@bench.command("list")
@click.pass_context
def list_(ctx: click.Context) -> None:
    """Bench runs in the store, and the datasets of the benchmarks directory."""
    try:
        settings = settings_from(ctx)
        store = BenchStore(RunStore(settings.store_path))
        runs = Table("bench run", "dataset", "preset", "items stored", "oracle")
        for row in store.recent_runs(50):
            runs.add_row(
                row["id"], row["name"], row["preset"], str(len(store.results(row["id"]))), str(bool(row["oracle"]))
            )
        out.print(runs)
        if settings.benchmarks_dir is not None:
            datasets = Table("dataset", "file", "role", "items", "graded")
            for entry in list_datasets(settings.benchmarks_dir):
                datasets.add_row(entry["name"], entry["file"], entry["role"], str(entry["items"]), str(entry["graded"]))
            out.print(datasets)
        else:
            out.print("No benchmarks directory set (NEMO_BENCHMARKS_DIR).")
    except NemoError as exc:
        fail(exc)


@bench.command()
@click.argument("runs", nargs=-1, required=True)
@click.option("--preset", type=click.Choice(PRESETS), default="strict", show_default=True)
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False), default=Path("bench-report"))
@click.pass_context
def report(ctx: click.Context, runs: tuple[str, ...], preset: str, out_dir: Path) -> None:
    """Markdown and a self-contained HTML page for RUNS: accuracy, failures, tokens and cost, latency."""
    from nemo_opt.bench.report import build_report, write_report

    try:
        settings = settings_from(ctx)
        store = BenchStore(RunStore(settings.store_path))
        built = build_report(store, _resolve_runs(store, runs), preset)
        markdown, html = write_report(built, out_dir)
    except NemoError as exc:
        fail(exc)
    out.print(f"report: {markdown} and {html}")


@bench.command()
@click.argument("names", nargs=-1)
@click.option(
    "--dest", type=click.Path(path_type=Path, file_okay=False), help="Where to write (default: benchmarks_dir)."
)
@click.option("--overwrite", is_flag=True, default=False)
@click.pass_context
def download(ctx: click.Context, names: tuple[str, ...], dest: Path | None, overwrite: bool) -> None:
    """Fetch the public releases of the benchmarks (all nine when no NAMES) and convert them to JSONL."""
    from nemo_opt.bench.download import download as fetch
    from nemo_opt.bench.download import known_names

    try:
        settings = settings_from(ctx)
        target = dest or settings.benchmarks_dir
        if target is None:
            raise BadInput("Give --dest DIR or set NEMO_BENCHMARKS_DIR.")
        written = fetch(list(names) or known_names(), target, overwrite=overwrite)
    except NemoError as exc:
        fail(exc)
    for path in written:
        out.print(f"wrote {path}")
