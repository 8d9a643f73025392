"""Wall time of one scripted end-to-end run, split into model wait and everything else.

The model is the loopback OpenAI-compatible server replaying the product-mix scenario of the test suite
(one extraction, a simulator agent, an optimizer that crashes once, is caught by the simulator and repairs).
``--delay`` adds a fixed latency to every reply to imitate a remote model. Everything except the model is
real: HTTP through the openai SDK, the sandbox, HiGHS, pytest, SQLite.

    python benchmarks/e2e_timing.py --runs 3 --sandbox bwrap --sandbox plain
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from nemo_opt.pipeline import Pipeline  # noqa: E402
from nemo_opt.settings import load_settings  # noqa: E402
from nemo_opt.testing import OpenAICompatServer, RoleRouter  # noqa: E402
from tests.scenarios import EXTRACT, OPTIMIZER, SIMULATOR, product_mix  # noqa: E402


def one_run(sandbox: str, delay: float) -> dict[str, float]:
    def slow(replies: list) -> list:  # type: ignore[type-arg]
        return [dataclasses.replace(r, delay=delay) for r in replies]

    router = RoleRouter(
        {
            EXTRACT: slow([product_mix.EXTRACTION]),
            SIMULATOR: slow(product_mix.SIMULATOR),
            OPTIMIZER: slow(product_mix.OPTIMIZER),
        }
    )
    problem = (REPO / "examples" / "product_mix.md").read_text()
    with tempfile.TemporaryDirectory() as home, OpenAICompatServer(router) as server:
        settings = load_settings(
            {"home": home, "llm_cache": "off", "sandbox": sandbox, "model": f"openai-compatible:bench@{server.url}"}
        )
        result = Pipeline(settings).solve(problem)
    if not result.verified:
        raise SystemExit(f"the scripted run did not verify: {result.error}")
    stages = {s["stage"]: s["seconds"] for s in result.stages}
    return {
        "total": result.seconds,
        "llm_wait": result.llm_wait_seconds,
        "other": result.seconds - result.llm_wait_seconds,
        "calls": float(result.usage.get("calls") or 0),
        **{f"stage:{k}": v for k, v in stages.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds added to every model reply")
    parser.add_argument("--sandbox", action="append", choices=["bwrap", "plain"], help="repeatable; default both")
    args = parser.parse_args()
    print("| sandbox | runs | model calls | total s | model wait s | everything else s | other share |")
    print("|---|---|---|---|---|---|---|")
    for sandbox in args.sandbox or ["bwrap", "plain"]:
        rows = [one_run(sandbox, args.delay) for _ in range(args.runs)]
        total = statistics.median(r["total"] for r in rows)
        wait = statistics.median(r["llm_wait"] for r in rows)
        other = statistics.median(r["other"] for r in rows)
        print(
            f"| {sandbox} | {args.runs} | {rows[0]['calls']:.0f} | {total:.2f} | {wait:.2f} | {other:.2f} | "
            f"{other / total:.0%} |"
        )
        stages = sorted(k for k in rows[0] if k.startswith("stage:"))
        detail = ", ".join(f"{k[6:]} {statistics.median(r[k] for r in rows):.2f}s" for k in stages)
        print(f"|  | stages (median) | {detail} | | | | |")


if __name__ == "__main__":
    main()
