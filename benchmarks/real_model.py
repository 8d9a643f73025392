"""A real local model on benchmark items: the full pipeline vs. a single-call baseline, with the same model.

    python benchmarks/real_model.py --gguf /path/qwen2.5-coder-1.5b-q4_k_m.gguf --limit 10 --mode both

The model runs as a managed llama.cpp server (``local:PATH.gguf``; ``--server-python`` names a Python with
llama-cpp-python[server] when this one has none). For each of the first ``--limit`` items of ``--bench``:

- **baseline**: one prompt asking for a complete PuLP program that prints the optimal objective, at temperature
  0; the program runs once in the sandbox; its printed objective is read like a reference program's;
- **pipeline**: ``Pipeline.solve`` with the settings given (defaults: the local-model profile);
- **samples** (alone, not part of ``both``): ``--samples K`` baseline programs per item at ``--temperature``,
  each run once; the row is correct when the most common objective among the programs that ran is (the
  self-consistency vote of one-call programs), and it also records how many of the K were correct, so
  ``pass@K`` (any of them correct) is the ceiling for any method that only *selects* among K such programs.

Scored with the ``strict`` preset. Prints one row per item and mode, then accuracy, verified rate, seconds and
tokens per item; ``--json FILE`` keeps every row (appended as it is made, so a long run loses nothing) and
``--table FILE`` writes the per-item table of both arms side by side (Markdown) when the run ends.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from nemo_opt.bench.datasets import BenchItem, load_dataset  # noqa: E402
from nemo_opt.bench.oracle import parse_objective  # noqa: E402
from nemo_opt.bench.scoring import is_correct  # noqa: E402
from nemo_opt.llm.base import LLM, Message  # noqa: E402
from nemo_opt.llm.registry import create_llm  # noqa: E402
from nemo_opt.pipeline import Pipeline  # noqa: E402
from nemo_opt.sandbox import sandbox_from_settings  # noqa: E402
from nemo_opt.settings import Settings, load_settings  # noqa: E402

BASELINE_PROMPT = """Write a complete Python program that solves this optimization problem with PuLP and prints
the optimal objective value. Start with `from pulp import *`. Reply with the program in one ```python block.

{question}"""
_CODE = re.compile(r"```(?:python|py)?\s*\n(.*?)```", re.DOTALL)


def ask_program(llm: LLM, prompt: str, settings: Settings, temperature: float = 0.0) -> dict[str, Any]:
    """One call for a complete program, and one sandboxed run of it: status, objective, the program, tokens."""
    started = time.monotonic()
    reply = llm.complete([Message("user", prompt)], temperature=temperature)
    text = reply.choices[0].text if reply.choices else ""
    blocks = _CODE.findall(text)
    code = max(blocks, key=len) if blocks else text
    with tempfile.TemporaryDirectory(prefix="nemo-program-") as folder:
        root = Path(folder)
        (root / "model.py").write_text(code)
        run = sandbox_from_settings(settings, root).run("python model.py", cwd=root, timeout=120)
    status, objective = parse_objective(run.output, None) if run.exit_code == 0 else ("error", None)
    return {
        "status": status,
        "objective": objective,
        "program": code,
        "seconds": time.monotonic() - started,
        "prompt_tokens": reply.usage.prompt_tokens,
        "tokens": reply.usage.prompt_tokens + reply.usage.completion_tokens,
        "calls": 1,
        "error": "" if run.exit_code == 0 else run.output.strip().splitlines()[-1:],
    }


def baseline(item: BenchItem, settings: Settings) -> dict[str, Any]:
    """One prompt, one program, one run."""
    llm = create_llm(settings.model or "", settings)
    row = ask_program(llm, BASELINE_PROMPT.format(question=item.question), settings)
    row.pop("program")
    return {**row, "verified": False}


def samples(item: BenchItem, settings: Settings, k: int, temperature: float) -> dict[str, Any]:
    """K one-call programs at a temperature: the vote over the objectives that ran, and each one's score."""
    llm = create_llm(settings.model or "", settings)
    prompt = BASELINE_PROMPT.format(question=item.question)
    runs = [ask_program(llm, prompt, settings, temperature) for _ in range(k)]
    scores = [bool(is_correct("strict", item.gold, item.answer, r["status"], r["objective"])) for r in runs]
    answers = [r["objective"] for r in runs if r["status"] == "optimal" and r["objective"] is not None]
    tally = Counter(round(a, 6) for a in answers)
    vote = tally.most_common(1)[0][0] if tally else None
    return {
        "status": "optimal" if vote is not None else runs[0]["status"],
        "objective": vote,
        "verified": False,
        "seconds": sum(r["seconds"] for r in runs),
        "tokens": sum(r["tokens"] for r in runs),
        "calls": k,
        "sample_objectives": [r["objective"] for r in runs],
        "sample_correct": sum(scores),
        "error": "",
    }


def pipeline(item: BenchItem, settings: Settings) -> dict[str, Any]:
    result = Pipeline(settings).solve(item.question, item_id=item.id)
    usage = result.usage or {}
    return {
        "status": result.status,
        "objective": result.objective,
        "verified": result.verified,
        "seconds": result.seconds,
        "tokens": int(usage.get("prompt_tokens", 0)) + int(usage.get("completion_tokens", 0)),
        "calls": int(usage.get("calls", 0)),
        "level": result.level,
        "error": result.error or "",
        "run": result.run_id,
        "pass_at_1": result.pass_at_1,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gguf", required=True, type=Path)
    parser.add_argument("--server-python", help="Python with llama-cpp-python[server] (default: this one)")
    parser.add_argument("--bench", default="nl4opt")
    parser.add_argument("--limit", type=int, default=10)
    parser.add_argument("--skip", type=int, default=0, help="start after this many items")
    parser.add_argument("--mode", choices=["baseline", "pipeline", "both", "samples"], default="both")
    parser.add_argument("--samples", type=int, default=5, help="programs per item in --mode samples")
    parser.add_argument("--temperature", type=float, default=0.7, help="their temperature in --mode samples")
    parser.add_argument("--set", action="append", default=[], help="setting=value for the pipeline (repeatable)")
    parser.add_argument("--json", type=Path, help="append every row to this JSONL file")
    parser.add_argument("--table", type=Path, help="write the per-item table of both arms here (Markdown)")
    args = parser.parse_args()

    overrides: dict[str, Any] = {"model": f"local:{args.gguf}", "local_server_python": args.server_python}
    for pair in args.set:
        key, _, value = pair.partition("=")
        overrides[key] = value
    settings = load_settings(overrides)
    items = load_dataset(args.bench, settings.benchmarks_dir).items[args.skip : args.skip + args.limit]
    modes = ["baseline", "pipeline"] if args.mode == "both" else [args.mode]
    rows: list[dict[str, Any]] = []
    for mode in modes:
        for item in items:
            if mode == "samples":
                row = samples(item, settings, args.samples, args.temperature)
            else:
                row = (baseline if mode == "baseline" else pipeline)(item, settings)
            row.update(mode=mode, id=item.id, gold=item.answer)
            row["correct"] = bool(is_correct("strict", item.gold, item.answer, row["status"], row["objective"]))
            rows.append(row)
            print(
                f"{mode:9} {item.id:14} gold {item.answer!s:>10} got {row['objective']!s:>12} {row['status']:10} "
                f"{'✓' if row['correct'] else '✗'} {'verified' if row['verified'] else '':8} "
                f"{row['seconds']:7.1f}s {row['tokens']:7} tok {str(row['error'])[:80]}",
                flush=True,
            )
            if args.json:
                with args.json.open("a") as handle:
                    handle.write(json.dumps(row, default=str) + "\n")
    print()
    print(f"{'mode':9} {'correct':>8} {'verified':>9} {'s/item':>8} {'tok/item':>9}")
    for mode in modes:
        mine = [r for r in rows if r["mode"] == mode]
        if not mine:
            continue
        n = len(mine)
        correct = sum(r["correct"] for r in mine)
        verified = sum(bool(r["verified"]) for r in mine)
        seconds = sum(r["seconds"] for r in mine) / n
        tokens = sum(r["tokens"] for r in mine) / n
        print(f"{mode:9} {correct:>4}/{n:<3} {verified:>5}/{n:<3} {seconds:8.1f} {tokens:9.0f}")
        if mode == "samples":
            print(
                f"samples   pass@{args.samples} {sum(r['sample_correct'] > 0 for r in mine)}/{n}, "
                f"mean pass@1 {sum(r['sample_correct'] for r in mine) / (n * args.samples):.2f}, "
                f"vote {correct}/{n} (temperature {args.temperature})"
            )
    if args.table:
        args.table.write_text(markdown_table(rows, modes), encoding="utf-8")


def markdown_table(rows: list[dict[str, Any]], modes: list[str]) -> str:
    """Per item, each arm's answer, correctness, verification, seconds, calls and tokens; then the totals."""
    head = "| item | gold | " + " | ".join(f"{m}: answer | ✓ | verified | s | calls | tokens" for m in modes) + " |"
    lines = [head, "|" + "---|" * (2 + 6 * len(modes))]
    by_item: dict[str, dict[str, dict[str, Any]]] = {}
    for row in rows:
        by_item.setdefault(row["id"], {})[row["mode"]] = row
    for item, arms in by_item.items():
        cells = [item, str(next(iter(arms.values()))["gold"])]
        for mode in modes:
            r = arms.get(mode)
            if r is None:
                cells += [""] * 6
                continue
            answer = "—" if r["objective"] is None else f"{r['objective']:g}"
            if "sample_correct" in r:
                answer += f", {r['sample_correct']}/{r['calls']} samples correct"
            cells += [
                f"{answer} ({r['status']})",
                "✓" if r["correct"] else "✗",
                str(r.get("level") or ("verified" if r["verified"] else "unverified")),
                f"{r['seconds']:.0f}",
                str(r.get("calls", "")),
                str(r["tokens"]),
            ]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    for mode in modes:
        mine = [r for r in rows if r["mode"] == mode]
        if mine:
            median = statistics.median(r["seconds"] for r in mine)
            lines.append(
                f"- **{mode}**: {sum(r['correct'] for r in mine)}/{len(mine)} correct, "
                f"{sum(bool(r['verified']) for r in mine)} verified, "
                f"{sum(bool(r['verified']) and not r['correct'] for r in mine)} verified but wrong, median "
                f"{median:.0f} s/item, {sum(r.get('calls', 0) for r in mine) / len(mine):.1f} calls/item"
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
