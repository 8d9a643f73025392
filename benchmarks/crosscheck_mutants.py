"""Mutation study of the feasible-region cross-check.

    python benchmarks/crosscheck_mutants.py [--shared ../shared] [--gurobi-examples 40] [--probes 24] [--no-auxiliary]

Programs: the 30 starter models shipped with nemo-opt and, when gurobipy is installed and the shared memory
corpus is present, the first N SIRL Gurobi examples. Each program's model is captured, mutated and judged by
objective-only validation and by validation plus the cross-check, with the unmutated model as the simulator.
A second table repeats the study with every row routed through an auxiliary column (the cross-check then
completes those columns with HiGHS at each probe): a correct model must raise no alarm there either.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from nemo_opt.evaluation.mutants import MutantOutcome, capture_model, evaluate_program  # noqa: E402
from nemo_opt.memory.starter import load_starter  # noqa: E402


def programs(shared: Path, gurobi_examples: int, folder: Path) -> list[tuple[str, Path]]:
    found = [(example.id, example.path) for example in load_starter()]
    corpus = shared / "memory" / "sirl_gurobi_examples.jsonl"
    if gurobi_examples and corpus.exists() and importlib.util.find_spec("gurobipy") is not None:
        for line in corpus.open(encoding="utf-8").readlines()[:gurobi_examples]:
            record = json.loads(line)
            path = folder / f"{record['id']}.py"
            path.write_text(record["code"], encoding="utf-8")
            found.append((record["id"], path))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    parser.add_argument("--gurobi-examples", type=int, default=40)
    parser.add_argument("--probes", type=int, default=24)
    parser.add_argument("--per-kind", type=int, default=2)
    parser.add_argument("--no-auxiliary", action="store_true", help="skip the study with auxiliary columns")
    args = parser.parse_args()
    started = time.perf_counter()
    outcomes: list[MutantOutcome] = []
    lifted: list[MutantOutcome] = []
    evaluated, false_alarms, lifted_alarms, skipped = 0, 0, 0, []
    with tempfile.TemporaryDirectory() as folder:
        for name, program in programs(args.shared, args.gurobi_examples, Path(folder)):
            base = Path(folder) / f"{name}.mps"
            if not capture_model(program, base):
                skipped.append(f"{name} (no model captured)")
                continue
            try:
                found, alarm = evaluate_program(name, base, probes=args.probes, per_kind=args.per_kind)
                if not args.no_auxiliary:
                    found_lifted, alarm_lifted = evaluate_program(
                        name, base, probes=args.probes, per_kind=args.per_kind, auxiliary=True
                    )
                    lifted.extend(found_lifted)
                    lifted_alarms += alarm_lifted
            except ValueError as exc:
                skipped.append(str(exc))
                continue
            evaluated += 1
            false_alarms += alarm
            outcomes.extend(found)
    print(f"programs evaluated: {evaluated}; skipped: {len(skipped)}; time {time.perf_counter() - started:.0f} s")
    for reason in skipped[:10]:
        print(f"  skipped: {reason}")
    print(f"false alarms on unmutated programs (cross-check, {args.probes} probes): {false_alarms} of {evaluated}\n")
    table(outcomes)
    if not args.no_auxiliary:
        checked = [o for o in lifted if not o.note]
        unknown = sum(o.unknown_probes for o in checked)
        print(
            f"\nthe same programs with every row through an auxiliary column: false alarms {lifted_alarms} of "
            f"{evaluated}; mutant probes HiGHS could not complete: {unknown} of {args.probes * len(checked)}\n"
        )
        table(lifted)


def table(outcomes: list[MutantOutcome]) -> None:
    groups: dict[tuple[str, bool], list[MutantOutcome]] = defaultdict(list)
    for outcome in outcomes:
        if not outcome.note:
            groups[(outcome.kind, outcome.keeps_optimum)].append(outcome)
    print("| mutant | optimum | mutants | invisible | caught by objective-only V | caught by V + cross-check |")
    print("|---|---|---|---|---|---|")
    totals = {True: [0, 0, 0, 0], False: [0, 0, 0, 0]}
    for (kind, keeps), rows in sorted(groups.items()):
        visible = [r for r in rows if not r.redundant]
        v_only = sum(r.caught_objective_only for r in visible)
        with_cc = sum(r.caught_with_crosscheck for r in visible)
        label = "kept" if keeps else "changed"
        print(
            f"| {kind} | {label} | {len(rows)} | {len(rows) - len(visible)} | {v_only}/{len(visible)} | "
            f"{with_cc}/{len(visible)} |"
        )
        for index, value in enumerate((len(rows), len(rows) - len(visible), v_only, with_cc)):
            totals[keeps][index] += value
    for keeps, (count, invisible, v_only, with_cc) in totals.items():
        visible = count - invisible
        if visible:
            print(
                f"| all | {'kept' if keeps else 'changed'} | {count} | {invisible} | {v_only}/{visible} "
                f"({v_only / visible:.0%}) | {with_cc}/{visible} ({with_cc / visible:.0%}) |"
            )
    unsolved = [o for o in outcomes if o.note]
    print(f"\nmutants without an optimal solution (infeasible/unbounded: caught by status): {len(unsolved)}")


if __name__ == "__main__":
    main()
