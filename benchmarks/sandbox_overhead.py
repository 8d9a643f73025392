"""Wall-clock overhead of the sandbox backends against a bare ``subprocess.run``, printed as a Markdown table.

Usage: ``python benchmarks/sandbox_overhead.py [--runs N]``. Each command runs once untimed to warm caches, then
``N`` timed times per runner. The bwrap rows are skipped (with a note) when bubblewrap is unusable.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from nemo_opt.sandbox import Limits, bwrap_available, bwrap_problem, make_sandbox

Runner = Callable[[str], object]

COMMANDS = {"true": "true", "python -c pass": f"{shlex.quote(sys.executable)} -c pass"}
BARE = "bare subprocess.run"


def bare_run(command: str) -> object:
    """The baseline: the same bash command with its output captured, and nothing else."""
    return subprocess.run(["/bin/bash", "-c", command], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)


def timings_ms(runner: Runner, command: str, runs: int) -> list[float]:
    """Wall time of each of ``runs`` executions of ``command``, in milliseconds, after one warm-up run."""
    runner(command)
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        runner(command)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def runners_for(workspace: Path) -> dict[str, Runner]:
    """Every runner that can work on this machine, the baseline first."""
    runners: dict[str, Runner] = {BARE: bare_run}
    for kind in ("plain", "bwrap"):
        if kind == "bwrap" and not bwrap_available():
            continue
        box = make_sandbox(kind, workspace, Limits())
        runners[f"{kind} sandbox"] = lambda command, box=box: box.run(command, cwd=workspace)
    return runners


def table(runs: int) -> str:
    """The Markdown table of mean and median wall time per runner and command, with the ratio to bare."""
    lines = [
        "| command | runner | mean ms | median ms | × bare (median) |",
        "|---|---|---:|---:|---:|",
    ]
    with tempfile.TemporaryDirectory(prefix="nemo-sandbox-bench-") as tmp:
        runners = runners_for(Path(tmp))
        for label, command in COMMANDS.items():
            baseline = 0.0
            for name, runner in runners.items():
                samples = timings_ms(runner, command, runs)
                median = statistics.median(samples)
                baseline = baseline or median
                lines.append(
                    f"| `{label}` | {name} | {statistics.mean(samples):.1f} | {median:.1f} | {median / baseline:.1f} |"
                )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, run the measurements and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=30, help="timed runs per command and runner (default: 30)")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    print(table(args.runs))
    problem = bwrap_problem()
    if problem is not None:
        print(f"\nbwrap rows skipped: {problem}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
