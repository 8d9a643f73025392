"""``nemo-opt memory …`` (import, search, stats, add) and ``nemo-opt embed download``."""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from nemo_opt.cli.app import cli, console, fail, out, settings_from
from nemo_opt.embed.download import HUB_URL, download_minilm
from nemo_opt.embed.minilm import MODEL_NAME
from nemo_opt.exceptions import BadInput, NemoError
from nemo_opt.memory import LeakGuard, open_memory
from nemo_opt.memory.growth import exemplar_from_run
from nemo_opt.store import RunStore, find_run_folder

__all__ = ["embed", "memory"]


@cli.group()
def memory() -> None:
    """The memory of solved examples the optimizer agents learn from."""


def _resolve_corpus(path: Path, memory_dir: Path | None) -> list[Path]:
    if path.is_dir():
        return sorted(path.glob("*.jsonl"))
    if path.exists() or memory_dir is None:
        return [path]
    return [memory_dir / path]


@memory.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--source", help="Source label for the records (default: the file name).")
@click.pass_context
def import_(ctx: click.Context, files: tuple[Path, ...], source: str | None) -> None:
    """Import JSONL files (or every *.jsonl of a folder); names are also looked up in the memory_dir setting."""
    try:
        settings = settings_from(ctx)
        store = open_memory(settings)
        paths = [p for f in files for p in _resolve_corpus(f, settings.memory_dir)]
        if not paths:
            raise BadInput(f"No .jsonl file found in {', '.join(map(str, files))}.")
        table = Table("file", "added", "exact duplicates", "near duplicates", "invalid lines")
        for path in paths:
            console.print(f"importing {path} with {store.embedder.name} …")
            report = store.import_jsonl(path, source=source)
            table.add_row(
                path.name,
                str(report.added),
                str(report.exact_duplicates),
                str(report.near_duplicates),
                str(len(report.invalid)),
            )
            for problem in report.invalid[:5]:
                console.print(f"  [yellow]skipped[/] {escape(problem)}")
    except NemoError as exc:
        fail(exc)
    out.print(table)
    out.print(f"{store.count()} exemplars in {store.path}")


@memory.command()
@click.argument("text")
@click.option("--k", type=int, help="How many exemplars (default: memory_k).")
@click.option("--benchmark-item", help="Apply the leak guard for this benchmark item id (e.g. nl4opt-0004).")
@click.pass_context
def search(ctx: click.Context, text: str, k: int | None, benchmark_item: str | None) -> None:
    """Show the exemplars diverse retrieval picks for TEXT (a problem description or a file path)."""
    try:
        settings = settings_from(ctx)
        query = Path(text).read_text(encoding="utf-8") if Path(text).is_file() else text
        store = open_memory(settings)
        guard = None
        if benchmark_item:
            guard = LeakGuard(item_id=benchmark_item, text=query, cosine_threshold=settings.memory_leak_similarity)
        hits, excluded = store.search(
            query, k=k or settings.memory_k, pool=settings.memory_pool, lam=settings.memory_lambda, guard=guard
        )
    except NemoError as exc:
        fail(exc)
    table = Table("id", "similarity", "score", "solver", "answer", "title")
    for hit in hits:
        exemplar = hit.exemplar
        answer = "-" if exemplar.answer is None else f"{exemplar.answer:.10g}"
        table.add_row(
            exemplar.id, f"{hit.similarity:.3f}", f"{hit.score:.3f}", exemplar.solver, answer, escape(exemplar.title)
        )
    out.print(table)
    if excluded:
        out.print("excluded by the leak guard: " + ", ".join(f"{n} ({why})" for why, n in excluded.items()))


@memory.command()
@click.pass_context
def stats(ctx: click.Context) -> None:
    """Counts by source and solver, answers, benchmark-tagged records, and vectors per embedder."""
    try:
        data = open_memory(settings_from(ctx)).stats()
    except NemoError as exc:
        fail(exc)
    out.print(f"[bold]{data['exemplars']}[/] exemplars in {data['path']} (embedder {data['embedder']})")
    for key in ("by_source", "by_solver", "vectors"):
        out.print(f"{key.replace('_', ' ')}: " + ", ".join(f"{k or '?'} {v}" for k, v in sorted(data[key].items())))
    out.print(f"with a known answer: {data['with_answer']}; tagged with benchmark overlaps: {data['benchmark_tagged']}")


@memory.command()
@click.argument("run")
@click.pass_context
def add(ctx: click.Context, run: str) -> None:
    """Add a verified run (id, id prefix or folder) to memory as a solved example."""
    try:
        settings = settings_from(ctx)
        folder = find_run_folder(RunStore(settings.store_path), run)
        report = open_memory(settings).add_many([exemplar_from_run(folder)])
    except NemoError as exc:
        fail(exc)
    added = "added" if report.added else "already in memory (duplicate)"
    out.print(f"{folder.name}: {added}")


@cli.group()
def embed() -> None:
    """The local embedding model used for memory retrieval and MBR."""


@embed.command()
@click.option("--url", default=HUB_URL, show_default=True, help="Where the model files are served.")
@click.pass_context
def download(ctx: click.Context, url: str) -> None:
    """Download all-MiniLM-L6-v2 into $NEMO_HOME/models (checked against known SHA-256 digests)."""
    try:
        settings = settings_from(ctx)
        target = download_minilm(settings.home / "models" / MODEL_NAME, base_url=url)
    except NemoError as exc:
        fail(exc)
    out.print(f"model files in {target}")
