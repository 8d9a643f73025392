"""Do the T optimizer candidates differ? The same local model, the same problems, with and without diversity.

    python benchmarks/optimizer_diversity.py --gguf /path/qwen2.5-coder-1.5b-q4_k_m.gguf --limit 5

For each of the first ``--limit`` items of ``--bench`` the retrieved examples are found as a run finds them, and
T candidate programs are asked for in one call each (a complete PuLP program, the examples inlined), then run once
in the sandbox:

- **diverse** (``optimizer_diversity`` on, the default): candidate k gets the temperature and the subset of the
  examples that optimizer k of a run gets (:func:`nemo_opt.stages.agents.variant`): candidate 1 greedy with every
  example, the others at ``agent_temperature`` with all examples but one;
- **same** (the former default: every optimizer at temperature 0 with the same request): ``--same`` candidates.

Prints, per item and arm, how many distinct programs and distinct answers came out and how many were right
(strict scoring); ``--json FILE`` keeps every candidate.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "benchmarks"))

from real_model import ask_program  # noqa: E402

from nemo_opt.bench.datasets import load_dataset  # noqa: E402
from nemo_opt.bench.scoring import is_correct  # noqa: E402
from nemo_opt.llm.base import LLM  # noqa: E402
from nemo_opt.llm.registry import create_llm  # noqa: E402
from nemo_opt.settings import Settings, load_settings  # noqa: E402
from nemo_opt.stages.agents import variant  # noqa: E402
from nemo_opt.stages.retrieve import Retrieval, retrieve  # noqa: E402
from nemo_opt.workspace import Workspace  # noqa: E402

PROMPT = """Write a complete Python program that solves this optimization problem with PuLP and prints the optimal
objective value. Start with `from pulp import *`. Reply with the program in one ```python block.

{examples}Problem:

{question}"""


def candidate(llm: LLM, settings: Settings, question: str, examples: str, temperature: float) -> dict[str, Any]:
    row = ask_program(llm, PROMPT.format(question=question, examples=examples), settings, temperature)
    program = row.pop("program")
    return {
        "temperature": temperature,
        "program": hashlib.sha256(program.strip().encode()).hexdigest()[:12],
        "status": row["status"],
        "objective": row["objective"],
        "seconds": round(row["seconds"], 1),
        "prompt_tokens": row["prompt_tokens"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gguf", required=True, type=Path)
    parser.add_argument("--server-python", help="Python with llama-cpp-python[server] (default: this one)")
    parser.add_argument("--bench", default="nl4opt")
    parser.add_argument("--limit", type=int, default=5)
    parser.add_argument("--optimizers", type=int, default=3, help="T candidates of the diverse arm")
    parser.add_argument("--same", type=int, default=2, help="candidates of the same-request arm (0: skip it)")
    parser.add_argument("--temperature", type=float, help="agent_temperature of the diverse arm (default: the setting)")
    parser.add_argument("--json", type=Path, help="append every candidate to this JSONL file")
    args = parser.parse_args()
    overrides: dict[str, Any] = {
        "model": f"local:{args.gguf}",
        "local_server_python": args.server_python,
        "optimizers": args.optimizers,
    }
    if args.temperature is not None:
        overrides["agent_temperature"] = args.temperature
    settings = load_settings(overrides)
    llm = create_llm(settings.model or "", settings)
    items = load_dataset(args.bench, settings.benchmarks_dir).items[: args.limit]
    summary = []
    for item in items:
        with tempfile.TemporaryDirectory(prefix="nemo-diversity-ws-") as folder:
            workspace = Workspace(Path(folder))
            workspace.create()
            retrieval = retrieve(item.question, workspace, settings, item_id=item.id)
        arms: dict[str, list[dict[str, Any]]] = {"diverse": [], "same": []}
        for k in range(1, args.optimizers + 1):
            temperature, subset = variant(k, settings, retrieval)
            chosen = retrieval.hits if subset is None else [retrieval.hits[i] for i in subset]
            examples = Retrieval(chosen, [Path()] * len(chosen)).extraction_note()
            arms["diverse"].append(candidate(llm, settings, item.question, examples, temperature))
        for _ in range(args.same):
            arms["same"].append(candidate(llm, settings, item.question, retrieval.extraction_note(), 0.0))
        for arm, rows in arms.items():
            if not rows:
                continue
            for row in rows:
                row.update(arm=arm, id=item.id, gold=item.answer)
                row["correct"] = bool(is_correct("strict", item.gold, item.answer, row["status"], row["objective"]))
                if args.json:
                    with args.json.open("a") as handle:
                        handle.write(json.dumps(row, default=str) + "\n")
            programs = len({r["program"] for r in rows})
            answers = len({(r["status"], None if r["objective"] is None else round(r["objective"], 6)) for r in rows})
            correct = sum(r["correct"] for r in rows)
            summary.append((item.id, arm, len(rows), programs, answers, correct))
            print(
                f"{item.id:14} {arm:8} {len(rows)} candidates: {programs} distinct programs, {answers} distinct "
                f"answers, {correct} right (gold {item.answer}); "
                + ", ".join(f"T={r['temperature']:g}:{r['objective']}" for r in rows),
                flush=True,
            )
    print()
    for arm in ("diverse", "same"):
        mine = [s for s in summary if s[1] == arm]
        if mine:
            differ = sum(1 for s in mine if s[4] > 1)
            anyright = sum(1 for s in mine if s[5] > 0)
            print(
                f"{arm:8}: answers differ on {differ}/{len(mine)} items; programs differ on "
                f"{sum(1 for s in mine if s[3] > 1)}/{len(mine)}; at least one right on {anyright}/{len(mine)}"
            )


if __name__ == "__main__":
    main()
