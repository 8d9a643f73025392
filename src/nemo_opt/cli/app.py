"""The ``nemo-opt`` command group and what every command shares: consoles, settings, error exits."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.markup import escape

from nemo_opt import __version__
from nemo_opt.exceptions import BadInput, NemoError, UserError
from nemo_opt.settings import Settings, load_settings

__all__ = ["EXIT_CODES", "cli", "console", "fail", "out", "settings_from", "stop_on_sigterm"]

EXIT_CODES = """Exit codes: 0 verified answer (the frozen simulator agrees, the exported model is tied to the answer
and the feasible-region cross-check agrees); 6 objective-checked (the simulator agrees, the rest could not be
checked: see the reason); 1 unverified; 2 bad input; 3 configuration problem (no model, missing key, bad
setting); 4 run failure (model service unreachable, agents out of budget, cost ceiling, internal error);
5 the solver reports infeasible or unbounded; 130 interrupted."""

console = Console(stderr=True)
out = Console()


def stop_on_sigterm() -> None:
    """Let SIGTERM (a service manager, ``kill``, a batch system's time limit) end a run the way Ctrl-C does: the
    run is finished as interrupted, with its result.json and store row, instead of dying mid-write."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def exit_code_for(exc: NemoError) -> int:
    if isinstance(exc, BadInput):
        return 2
    if isinstance(exc, UserError):
        return 3
    return 4


def settings_from(ctx: click.Context, **overrides: Any) -> Settings:
    return load_settings(overrides, config=ctx.obj.get("config"))


@click.group(epilog=EXIT_CODES, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="nemo-opt")
@click.option("--config", type=click.Path(path_type=Path, dir_okay=False), help="nemo.toml to use.")
@click.pass_context
def cli(ctx: click.Context, config: Path | None) -> None:
    """Turn a decision problem written in plain language into a verified, runnable optimization model."""
    ctx.ensure_object(dict)
    if config is not None and not config.is_file():
        raise click.BadParameter(f"{config} does not exist", param_hint="--config")
    ctx.obj["config"] = config


def fail(exc: NemoError) -> NoReturn:
    """Print a library error without a traceback and exit with its documented code."""
    console.print(f"[red]error:[/] {escape(str(exc))}")
    sys.exit(exit_code_for(exc))
