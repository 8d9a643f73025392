"""Latency model of a benchmark batch: wall time vs. model waits vs. the longest dependent chain of calls.

A scripted model (loopback OpenAI-compatible server) answers every call after a configurable latency plus
token-rate time; everything else is real (pipeline, sandbox, solvers, SQLite). For each worker count W the
script runs a batch of the workshop benchmark and reports:

- wall time of the batch and instances per hour;
- the sum of model waits (per instance, wall time with at least one call in flight);
- the longest dependent chain of calls: for each instance, its extraction calls followed by the longer of the
  simulator's and each optimizer's sequential calls; the batch's chain is the longest instance chain — no
  amount of concurrency can finish the batch faster;
- non-model overhead per instance (instance wall time minus its model waits).

    python benchmarks/bench_latency.py --latency 2 --workers 1 8 32
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from nemo_opt.bench.runner import BenchRunner  # noqa: E402
from nemo_opt.settings import load_settings  # noqa: E402
from nemo_opt.store import RunStore  # noqa: E402
from nemo_opt.testing import OpenAICompatServer  # noqa: E402
from tests.scenarios import bench  # noqa: E402


def dependent_chain(store: RunStore, run_id: str) -> float:
    """Extraction calls, then the longest sequential chain among the agents of one instance."""
    per_stage: dict[str, float] = defaultdict(float)
    for call in store.llm_calls(run_id):
        per_stage[call["stage"]] += float(call["seconds"])
    agents = [seconds for stage, seconds in per_stage.items() if stage.startswith(("simulator", "optimizer"))]
    return per_stage["extract"] + per_stage["judge"] + per_stage["recommend"] + max(agents, default=0.0)


def one_batch(workers: int, items: int, latency: float, prompt_rate: float, completion_rate: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        bench.FINISHING[:] = [80 + (k * 7) % 60 for k in range(items)]
        bench.write_dataset(root / "benchmarks", items)
        script = bench.BenchScript(delay=latency, prompt_rate=prompt_rate, completion_rate=completion_rate)
        with OpenAICompatServer(script) as server:
            settings = load_settings(
                {
                    "home": root / "home",
                    "benchmarks_dir": root / "benchmarks",
                    "model": f"openai-compatible:scripted@{server.url}",
                    "extractions": 1,
                    "optimizers": 1,
                    "memory": False,
                    "llm_cache": "off",
                    "crosscheck_probes": 0,
                    "llm_concurrency": 64,
                },
                environ={},
            )
            started = time.monotonic()
            summary = BenchRunner(settings).run("nl4opt", workers=workers)
            wall = time.monotonic() - started
        store = RunStore(settings.store_path)
        results = summary.results
        chains = [dependent_chain(store, r["run_id"]) for r in results if r["run_id"]]
        return {
            "wall": wall,
            "per_hour": 3600 * len(results) / wall,
            "waits": sum(r["llm_wait_seconds"] for r in results),
            "chain": max(chains, default=0.0),
            "overhead": statistics.median(r["seconds"] - r["llm_wait_seconds"] for r in results),
            "calls": sum(len(store.llm_calls(r["run_id"])) for r in results if r["run_id"]) / max(len(results), 1),
            "accuracy": summary.accuracy,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency", type=float, default=2.0, help="seconds per call before tokens")
    parser.add_argument("--prompt-rate", type=float, default=0.0, help="prompt tokens per second (0: free)")
    parser.add_argument("--completion-rate", type=float, default=0.0, help="completion tokens per second (0: free)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--items", type=int, nargs="+", help="batch size per worker count (default: max(8, W))")
    args = parser.parse_args()
    sizes = args.items or [max(8, w) for w in args.workers]
    print(
        f"model: {args.latency}s per call, prompt {args.prompt_rate or 'free'} tok/s, "
        f"completion {args.completion_rate or 'free'} tok/s\n"
    )
    print(
        "| W | items | calls/item | wall s | instances/hour | sum of model waits s | longest chain s | "
        "non-model overhead s/item | accuracy |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for workers, items in zip(args.workers, sizes, strict=True):
        row = one_batch(workers, items, args.latency, args.prompt_rate, args.completion_rate)
        print(
            f"| {workers} | {items} | {row['calls']:.1f} | {row['wall']:.1f} | {row['per_hour']:.0f} | "
            f"{row['waits']:.1f} | {row['chain']:.1f} | {row['overhead']:.2f} | {row['accuracy']:.0%} |"
        )


if __name__ == "__main__":
    main()
