"""Ray against Dask distributed for nemo-opt's bench workload, measured on this machine, printed as Markdown.

Usage: ``python benchmarks/distributed_engines.py [--engines ray ray-actors dask] [--slots 8 32] [--repeat N]``, with
the engines measured installed next to nemo-opt (``pip install ray distributed``).

Bench items mostly wait on a remote model service, so what matters is how cheaply an engine keeps many mostly
sleeping tasks in flight, not its raw compute. Every (engine, slots) measurement runs in a fresh interpreter so
that import time is cold and no cluster state leaks from one run into the next. Each child:

1. imports the engine (import time);
2. starts a local cluster sized for ``slots`` concurrent tasks (start time), runs one no-op task per slot so every
   worker exists, then sums the RSS of the driver and every process it spawned (idle memory);
3. runs ``--noop`` no-op tasks, all submitted at once (per-task overhead as tasks/s);
4. runs a first wave of one task per slot that imports ``--task-import`` (what unpickling ``solve_item`` does on a
   worker) and ``time.sleep(--sleep)``: its wall time against the ideal ``--sleep`` is the cost of loading the
   workload's code in every process that runs tasks;
5. runs ``--sleep-tasks`` such tasks once the code is loaded (the steady state of a bench run): wall time against the
   ideal ``ceil(tasks / slots) * sleep``, and the peak RSS of the process tree while they run;
6. shuts the cluster down (shutdown time) and counts the processes still left after one second (not counting
   multiprocessing's resource tracker, which every interpreter that used multiprocessing keeps until it exits).

Engines: ``ray`` runs one Ray task per slot (Ray runs each task in its own worker process, so ``slots`` processes);
``ray-actors`` runs ``min(slots, cores)`` threaded Ray actors with ``max_concurrency`` threads each, the Ray
counterpart of Dask's threads; ``dask`` runs a ``LocalCluster`` with ``min(slots, cores)`` worker processes and
enough threads each. Install size is the sum of the files (as ``pip show -f`` lists them) of every distribution the
engine needs that nemo-opt's core dependencies do not already bring. RSS sums count shared pages once per process.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ENGINES = {"ray": "ray", "ray-actors": "ray", "dask": "distributed"}  # engine -> distribution it needs
MARKER = "RESULT-JSON "
CORES = os.cpu_count() or 1


# --- install size ------------------------------------------------------------------------------------------------


def closure(name: str) -> set[str]:
    """Canonical names of ``name`` and every installed distribution it requires, transitively (no extras)."""
    seen: set[str] = set()
    todo = [name]
    while todo:
        current = canonicalize_name(todo.pop())
        if current in seen:
            continue
        try:
            dist = metadata.distribution(current)
        except metadata.PackageNotFoundError:
            continue
        seen.add(current)
        for text in dist.requires or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
    return seen


def dist_bytes(name: str) -> int:
    """Bytes on disk of the files a distribution's RECORD lists (what ``pip show -f`` shows)."""
    dist = metadata.distribution(name)
    total = 0
    for file in dist.files or []:
        path = Path(str(dist.locate_file(file)))
        if path.is_file():
            total += path.stat().st_size
    return total


def install_size(distribution: str) -> tuple[int, list[str]]:
    """Bytes and names of the distributions ``distribution`` adds on top of nemo-opt's core dependencies."""
    added = sorted(closure(distribution) - closure("nemo-opt"))
    return sum(dist_bytes(name) for name in added), added


# --- process tree memory (read from /proc, so the parent needs neither engine nor psutil) -------------------------


def descendants(root: int, skip: str = "") -> list[int]:
    """Pids of every live process below ``root``, without those whose command line contains ``skip``."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may itself contain spaces or parentheses.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    if skip:
        found = [pid for pid in found if skip not in _cmdline(pid)]
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def tree_rss() -> int:
    """RSS of this process plus everything it spawned (the driver and the local cluster's processes)."""
    me = os.getpid()
    return sum(rss_bytes(pid) for pid in [me, *descendants(me)])


class PeakSampler:
    """Samples :func:`tree_rss` on a thread and keeps the maximum."""

    def __init__(self, interval: float = 0.25) -> None:
        self.interval, self.peak = interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_rss())
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


# --- the tasks (module level: pickled by reference or by value, as each engine does) ------------------------------


def noop(_: int = 0) -> int:
    return 0


def sleeper(seconds: float, module: str) -> int:
    """One bench-like task: load the code a real item needs, then wait (as on the model service)."""
    if module:
        importlib.import_module(module)
    time.sleep(seconds)
    return os.getpid()


# --- engines ------------------------------------------------------------------------------------------------------


def split(slots: int) -> tuple[int, int]:
    """Processes and threads per process for ``slots`` concurrent tasks: at most one process per core."""
    processes = max(1, min(slots, CORES))
    return processes, math.ceil(slots / processes)


class Engine:
    """A local cluster that runs batches of calls: the child measures these four operations."""

    def start(self, slots: int) -> None:
        raise NotImplementedError

    def run(self, fn: Callable[..., Any], calls: list[tuple[Any, ...]]) -> list[Any]:
        raise NotImplementedError

    def shutdown(self) -> None:
        raise NotImplementedError


class RayTasks(Engine):
    """Plain Ray tasks; ``num_cpus=slots`` lets ``slots`` of them (so ``slots`` worker processes) run at once."""

    def start(self, slots: int) -> None:
        import ray

        self.ray = ray
        ray.init(num_cpus=slots, include_dashboard=False, log_to_driver=False, logging_level="ERROR")

    def run(self, fn: Callable[..., Any], calls: list[tuple[Any, ...]]) -> list[Any]:
        remote = self.ray.remote(num_cpus=1)(fn)
        return list(self.ray.get([remote.remote(*call) for call in calls]))

    def shutdown(self) -> None:
        self.ray.shutdown()


class RayActors(Engine):
    """Threaded Ray actors: one per core, each running ``max_concurrency`` calls at once on threads."""

    def start(self, slots: int) -> None:
        import ray

        self.ray = ray
        processes, threads = split(slots)
        ray.init(num_cpus=processes, include_dashboard=False, log_to_driver=False, logging_level="ERROR")

        class Slot:
            def call(self, fn: Callable[..., Any], *args: Any) -> Any:
                return fn(*args)

        actor = ray.remote(num_cpus=1, max_concurrency=threads)(Slot)
        self.actors = [actor.remote() for _ in range(processes)]

    def run(self, fn: Callable[..., Any], calls: list[tuple[Any, ...]]) -> list[Any]:
        fn_ref = self.ray.put(fn)
        refs = [self.actors[i % len(self.actors)].call.remote(fn_ref, *call) for i, call in enumerate(calls)]
        return list(self.ray.get(refs))

    def shutdown(self) -> None:
        self.ray.shutdown()


class Dask(Engine):
    """A Dask ``LocalCluster``: ``min(slots, cores)`` worker processes (with nannies) and enough threads each."""

    def start(self, slots: int) -> None:
        import logging

        import dask
        from distributed import Client, LocalCluster

        processes, threads = split(slots)
        # As nemo_opt.bench.distributed does: hand a worker only as many tasks as it has threads, so that no task
        # waits in one worker's queue while another worker's thread is free.
        with dask.config.set({"distributed.scheduler.worker-saturation": 1.0}):
            self.cluster = LocalCluster(
                n_workers=processes,
                threads_per_worker=threads,
                processes=True,
                dashboard_address=None,
                silence_logs=logging.ERROR,
            )
        self.client = Client(self.cluster)

    def run(self, fn: Callable[..., Any], calls: list[tuple[Any, ...]]) -> list[Any]:
        futures = [self.client.submit(fn, *call, pure=False) for call in calls]
        return list(self.client.gather(futures))

    def shutdown(self) -> None:
        self.client.close()
        self.cluster.close()


def measure(engine_name: str, slots: int, noops: int, sleep_tasks: int, seconds: float, module: str) -> dict[str, Any]:
    """Every number of one (engine, slots) row, measured in this (fresh) process."""
    result: dict[str, Any] = {"engine": engine_name, "slots": slots}
    started = time.perf_counter()
    importlib.import_module("ray" if engine_name.startswith("ray") else "distributed")
    result["import_s"] = time.perf_counter() - started

    engine: Engine = {"ray": RayTasks, "ray-actors": RayActors, "dask": Dask}[engine_name]()
    started = time.perf_counter()
    engine.start(slots)
    result["start_s"] = time.perf_counter() - started
    engine.run(noop, [(i,) for i in range(slots)])  # every worker process exists and has run once
    time.sleep(1.0)
    result["idle_rss_mb"] = tree_rss() / 2**20
    result["processes"] = len(descendants(os.getpid()))

    started = time.perf_counter()
    engine.run(noop, [(i,) for i in range(noops)])
    result["noop_per_s"] = noops / (time.perf_counter() - started)

    # First wave: one task per slot, each loading the workload's code in whatever process runs it. Ideal: seconds.
    started = time.perf_counter()
    engine.run(sleeper, [(seconds, module)] * slots)
    result["first_wave_s"] = time.perf_counter() - started

    # Steady state, as through most of a bench run: the code is loaded, the tasks only wait.
    with PeakSampler() as sampler:
        started = time.perf_counter()
        pids = engine.run(sleeper, [(seconds, module)] * sleep_tasks)
        result["sleep_wall_s"] = time.perf_counter() - started
    result["ideal_s"] = math.ceil(sleep_tasks / slots) * seconds
    result["load_rss_mb"] = sampler.peak / 2**20
    result["task_processes"] = len(set(pids))

    started = time.perf_counter()
    engine.shutdown()
    result["shutdown_s"] = time.perf_counter() - started
    time.sleep(1.0)
    result["leftover"] = len(descendants(os.getpid(), skip="multiprocessing.resource_tracker"))
    return result


# --- the parent: one child per measurement, then the table --------------------------------------------------------


def run_child(engine: str, slots: int, args: argparse.Namespace) -> dict[str, Any]:
    """Measure one (engine, slots) in a fresh interpreter and return its numbers."""
    command = [
        sys.executable,
        __file__,
        "--child",
        engine,
        "--slots",
        str(slots),
        "--noop",
        str(args.noop),
        "--sleep-tasks",
        str(args.sleep_tasks),
        "--sleep",
        str(args.sleep),
        "--task-import",
        args.task_import,
    ]
    # No usage reporting from Ray: there is no internet here, and a benchmark should not phone home anyway.
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900, check=False)
    for line in done.stdout.splitlines():
        if line.startswith(MARKER):
            return dict(json.loads(line[len(MARKER) :]))
    raise RuntimeError(f"{engine} with {slots} slots failed (exit {done.returncode}):\n{done.stderr[-3000:]}")


def median_row(runs: list[dict[str, Any]]) -> dict[str, Any]:
    row = dict(runs[0])
    for key, value in runs[0].items():
        if isinstance(value, int | float) and key not in ("slots",):
            row[key] = statistics.median(run[key] for run in runs)
    return row


def table(rows: list[dict[str, Any]], sizes: dict[str, tuple[int, list[str]]]) -> str:
    lines = [
        "| engine | slots | install MB (dists) | import s | start s | idle RSS MB (procs) | no-op tasks/s "
        "| first wave s | sleep wall s (ideal) | efficiency | RSS under load MB | shutdown s | leftover procs |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        size, dists = sizes[ENGINES[row["engine"]]]
        lines.append(
            f"| {row['engine']} | {row['slots']} | {size / 2**20:.0f} ({len(dists)}) | {row['import_s']:.2f} "
            f"| {row['start_s']:.2f} | {row['idle_rss_mb']:.0f} ({row['processes']:.0f}) "
            f"| {row['noop_per_s']:.0f} | {row['first_wave_s']:.1f} | {row['sleep_wall_s']:.1f} ({row['ideal_s']:g}) "
            f"| {row['ideal_s'] / row['sleep_wall_s']:.0%} | {row['load_rss_mb']:.0f} | {row['shutdown_s']:.2f} "
            f"| {row['leftover']:.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, measure every engine and slot count in its own interpreter, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--engines", nargs="+", choices=list(ENGINES), default=list(ENGINES))
    parser.add_argument("--slots", nargs="+", type=int, default=[8, 32], help="concurrent tasks (default: 8 32)")
    parser.add_argument("--noop", type=int, default=1000, help="no-op tasks for the overhead (default: 1000)")
    parser.add_argument("--sleep-tasks", type=int, default=64, help="I/O-bound tasks (default: 64)")
    parser.add_argument("--sleep", type=float, default=2.0, help="seconds each I/O-bound task sleeps (default: 2)")
    parser.add_argument(
        "--task-import",
        default="nemo_opt.bench.runner",
        help="module each I/O-bound task imports, as a worker does to unpickle solve_item ('' for none)",
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs per row; the table shows medians (default: 1)")
    parser.add_argument("--json", type=Path, help="also write the raw measurements to this file")
    parser.add_argument("--child", choices=list(ENGINES), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if min(args.slots) < 1 or args.repeat < 1 or args.noop < 1 or args.sleep_tasks < 1:
        parser.error("--slots, --repeat, --noop and --sleep-tasks must be at least 1")

    if args.child:
        numbers = measure(args.child, args.slots[0], args.noop, args.sleep_tasks, args.sleep, args.task_import)
        print(MARKER + json.dumps(numbers), flush=True)
        return 0

    sizes: dict[str, tuple[int, list[str]]] = {}
    for engine in args.engines:
        try:
            metadata.distribution(ENGINES[engine])
        except metadata.PackageNotFoundError:
            parser.error(f"{ENGINES[engine]} is not installed: pip install {ENGINES[engine]}")
        sizes[ENGINES[engine]] = install_size(ENGINES[engine])
    rows, raw = [], []
    for engine in args.engines:
        for slots in args.slots:
            runs = [run_child(engine, slots, args) for _ in range(args.repeat)]
            raw.extend(runs)
            rows.append(median_row(runs))
            print(f"measured {engine} with {slots} slots", file=sys.stderr, flush=True)
    print(table(rows, sizes))
    print()
    for distribution, (size, dists) in sizes.items():
        print(f"- {distribution} adds {size / 2**20:.1f} MB: {', '.join(dists)}")
    print(f"- {CORES} cores; I/O-bound tasks import {args.task_import or 'nothing'} and sleep {args.sleep:g} s")
    if args.json:
        args.json.write_text(json.dumps({"rows": raw, "sizes": sizes}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
