"""``nemo-opt resolve``: re-solve a delivered package with changed data, no model service involved."""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from nemo_opt.cli.app import cli, console, fail, out, settings_from
from nemo_opt.exceptions import NemoError
from nemo_opt.resolve import parse_assignment, resolve_package

__all__ = ["resolve"]


@cli.command(
    epilog="Exit codes: 0 solved and confirmed by the simulator; 1 the simulator disagrees; 2 bad "
    "input; 4 the model did not run; 5 infeasible or unbounded."
)
@click.argument("package", type=click.Path(path_type=Path, file_okay=False, exists=True))
@click.option("--set", "assignments", multiple=True, metavar="NAME=VALUE", help="Change one data value.")
@click.option(
    "--data",
    "data_file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="JSON object whose keys replace data.json's.",
)
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False), help="Folder for this re-solve.")
@click.pass_context
def resolve(
    ctx: click.Context, package: Path, assignments: tuple[str, ...], data_file: Path | None, out_dir: Path | None
) -> None:
    """Re-solve PACKAGE with changed data (e.g. --set demand.north=120) and check it with its simulator."""
    try:
        settings = settings_from(ctx)
        result = resolve_package(
            package, settings, assignments=[parse_assignment(a) for a in assignments], data_file=data_file, out=out_dir
        )
    except NemoError as exc:
        fail(exc)
    table = Table(show_header=False, box=None, padding=(0, 2))
    table.add_row("[bold]changes[/]", escape("; ".join(result.changes) or "none"))
    table.add_row("[bold]status[/]", result.status.value)
    table.add_row("[bold]objective[/]", "—" if result.objective is None else f"{result.objective:.10g}")
    if result.verdict is not None:
        verdict = result.verdict
        if not verdict.ok:
            check = f"the simulator failed: {verdict.error.splitlines()[-1] if verdict.error else ''}"
        else:
            check = f"feasible: {'yes' if verdict.feasible else 'no'}, objective {verdict.objective}"
        table.add_row("[bold]simulator[/]", escape(check))
        table.add_row("[bold]confirmed[/]", "yes" if result.agrees else "no")
        for violation in result.verdict.violations[:5]:
            table.add_row("", escape(f"violated: {violation.constraint} {violation.detail}"))
    table.add_row("[bold]folder[/]", str(result.folder))
    out.print(table)
    if result.error:
        console.print(f"[red]error:[/] {escape(result.error)}")
    raise SystemExit(result.exit_code)
