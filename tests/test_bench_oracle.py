"""Oracle mode: reading objectives from printed output, choosing reference programs, and running them for real."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from nemo_opt.bench.datasets import BenchItem, load_dataset
from nemo_opt.bench.oracle import Reference, parse_objective, reference_programs, solve_reference
from nemo_opt.bench.scoring import is_correct
from nemo_opt.bench.store import ItemResult
from nemo_opt.settings import Settings, load_settings
from tests.conftest import BENCHMARKS, MEMORY

# --- outputs in the styles of the corpus' programs (solver logs as the installed solvers print them) -----------

SCIP_OPTIMAL = """\
presolving:
(round 1, fast)       0 del vars, 0 del conss, 0 add conss, 3 chg bounds, 0 chg sides, 0 chg coeffs, 0 upgd conss
   (0.0s) symmetry computation finished: 1 generators found (max: 1500, log10 of symmetry group size: 0.3)
presolved problem has 2 variables (0 bin, 1 int, 1 cont) and 1 constraints
transformed objective value is always integral (scale: 1)
Presolving Time: 0.00

 time | node  | left  |LP iter|LP it/n|mem/heur|mdpt |vars |cons |rows |cuts |  dualbound   | primalbound
p 0.0s|     1 |     0 |     0 |     - |shiftand|   0 |   4 |   1 |   5 |   0 | 3.625000e+03 | 3.000000e+03

SCIP Status        : problem is solved [optimal solution found]
Solving Time (sec) : 0.00
Solving Nodes      : 1
Primal Bound       : +3.60000000000000e+03 (3 solutions)
Dual Bound         : +3.60000000000000e+03
Gap                : 0.00 %
----------
The number of times the price is reduced by 10 cents: 2.0
The maximum profit you can get:  3600.0
"""

CBC_OPTIMAL = """\
Welcome to the CBC MILP Solver
Version: 2.10.3
command line - /venv/lib/python3.11/site-packages/pulp/solverdir/cbc/linux/i64/cbc /tmp/x-pulp.mps -max -solve
Continuous objective value is 2250 - 0.00 seconds
Cgl0004I processed model has 2 rows, 2 columns (2 integer (0 of which binary)) and 4 elements
Cbc0038I Pass   1: suminf.    0.50000 (2) obj. -2240 iterations 1
Cbc0038I No solution found this major pass
Cbc0012I Integer solution of -2250 found by DiveCoefficient after 0 iterations and 0 nodes (0.01 seconds)
Cbc0001I Search completed - best objective -2250, took 0 iterations and 0 nodes (0.01 seconds)
Cuts at root node changed objective from -2250 to -2250

Result - Optimal solution found

Objective value:                2250.00000000
Enumerated nodes:               0
Total iterations:               0
Time (CPU seconds):             0.00
Total time (CPU seconds):       0.00   (Wallclock seconds):       0.01

The number of Process J: 0.0
The number of Process P: 250.0
The total metal extracted: 2250.0
"""

CBC_INFEASIBLE = """\
Welcome to the CBC MILP Solver
command line - /venv/lib/python3.11/site-packages/pulp/solverdir/cbc/linux/i64/cbc /tmp/y-pulp.mps -timeMode elapsed
Problem is infeasible - 0.00 seconds
Total time (CPU seconds):       0.00   (Wallclock seconds):       0.00

Status: Infeasible
Total cost: 10.0
"""

GUROBI_HEADER = """\
Restricted license - for non-production use only - expires 2027-11-29
Gurobi Optimizer version 13.0.3 build v13.0.3rc0 (linux64 - "Debian GNU/Linux 12 (bookworm)")
Optimize a model with 1 rows, 2 columns and 2 nonzeros (Max)
Model fingerprint: 0xd3d3c5ca
Model has 2 linear objective coefficients
Coefficient statistics:
  Matrix range     [2e+00, 3e+00]
  Objective range  [3e+00, 4e+00]
  RHS range        [1e+01, 1e+01]
"""

GUROBI_OPTIMAL = (
    GUROBI_HEADER
    + """\
Found heuristic solution: objective 16.7500000
Presolve time: 0.00s
Root relaxation: objective 1.900000e+01, 1 iterations, 0.00 seconds (0.00 work units)

    Nodes    |    Current Node    |     Objective Bounds      |     Work
 Expl Unexpl |  Obj  Depth IntInf | Incumbent    BestBd   Gap | It/Node Time
     0     0   19.00000    0    1   16.75000   19.00000  13.4%     -    0s
     0     0 infeasible    0        18.75000   18.75000  0.00%     -    0s

Explored 1 nodes (2 simplex iterations) in 0.00 seconds (0.00 work units)
Solution count 2: 18.75 16.75

Optimal solution found (tolerance 1.00e-04)
Best objective 1.875000000000e+01, best bound 1.875000000000e+01, gap 0.0000%
"""
)

COPT_OPTIMAL = """\
Cardinal Optimizer v7.1.3. Build date Apr 22 2024
Copyright Cardinal Operations 2024. All Rights Reserved

Minimizing an LP problem
Method   Iteration           Objective  Primal.NInf   Dual.NInf        Time
Dual             0    0.0000000000e+00            3           0       0.01s
Dual             3    2.7500000000e+04            0           0       0.01s

Solving finished
Status: Optimal  Objective: 2.7500000000e+04  Iterations: 3  Time: 0.01s
Minimum total cost: 27500.0 yuan
Optimal transportation plan:
Warehouse 1 -> Store 2: 150.0 units
"""

COPT_INFEASIBLE = """\
Cardinal Optimizer v7.1.3. Build date Apr 22 2024
Solving finished
Status: Infeasible  Objective: -  Iterations: 2  Time: 0.01s
No optimal solution found.
"""

HIGHS_OPTIMAL = """\
Running HiGHS 1.15.1 (git hash: 04024d7): Copyright (c) 2026 under MIT licence terms
Coefficient ranges:
  Cost    [3e+00, 4e+00]
Presolving model
Model status        : Optimal
Objective value     :  1.8000000000e+01
P-D objective error :  0.0000000000e+00
HiGHS run time      :          0.00
"""

PARSE_CASES: list[tuple[str, str, str | None, str, float | None]] = [
    ("scip optimal, objective key", SCIP_OPTIMAL, "The maximum profit you can get", "optimal", 3600.0),
    ("scip optimal, no key", SCIP_OPTIMAL, None, "optimal", 3600.0),
    ("cbc optimal, objective key", CBC_OPTIMAL, "The total metal extracted", "optimal", 2250.0),
    ("cbc optimal, weak label loses to the solver log", CBC_OPTIMAL, None, "optimal", 2250.0),
    ("key absent from the output", CBC_OPTIMAL, "Whether a station is built in City 6", "optimal", 2250.0),
    ("cbc infeasible beats the printed number", CBC_INFEASIBLE, "Total cost", "infeasible", None),
    (
        "gurobi optimal, program line",
        GUROBI_OPTIMAL + "Optimal objective value: 18.75\nx = 3.0\n",
        None,
        "optimal",
        18.75,
    ),
    ("gurobi log only", GUROBI_OPTIMAL + "Production plan:\n  Product 1: 3 units\n", None, "optimal", 18.75),
    (
        "gurobi infeasible with status code",
        GUROBI_HEADER + "Solution count 0\n\nModel is infeasible\nBest objective -, best bound -, gap -\nstatus 3\n",
        None,
        "infeasible",
        None,
    ),
    (
        "gurobi unbounded ignores the huge incumbent",
        GUROBI_HEADER + "Model is unbounded\nBest objective 2.000000000000e+30, best bound -, gap -\n",
        None,
        "unbounded",
        None,
    ),
    (
        "gurobi infeasible or unbounded",
        GUROBI_HEADER + "Infeasible or unbounded model\nModel is infeasible or unbounded.\n",
        None,
        "infeasible_or_unbounded",
        None,
    ),
    (
        "gurobi status code printed by the program",
        GUROBI_HEADER + "Optimization stopped with status: 3\n",
        None,
        "infeasible",
        None,
    ),
    ("logior dict", GUROBI_OPTIMAL + "{'status': 'optimal', 'obj': 537}\n", None, "optimal", 537.0),
    ("logior dict, status code", GUROBI_HEADER + "{'status': '3'}\n", None, "infeasible", None),
    (
        "scip unbounded then a vague message",
        "problem infeasible or unbounded: variable <t_y> with objective -1 can be made infinitely large\n"
        "presolving detected unboundedness\nSCIP Status        : problem is solved [unbounded]\n"
        "Primal Bound       : +1.00000000000000e+20 (3 solutions)\nunbounded\nNo solution found.\n",
        None,
        "unbounded",
        None,
    ),
    (
        "scip infeasible",
        "presolving detected infeasibility\nSCIP Status        : problem is solved [infeasible]\n"
        "Primal Bound       : +1.00000000000000e+20 (0 solutions)\ninfeasible\nNo solution found.\n",
        "Total Cost",
        "infeasible",
        None,
    ),
    (
        "cbc relaxation verdict after a vague one",
        "Analysis indicates model infeasible or unbounded\nPrimal infeasible - objective value 40\n"
        "Result - Linear relaxation infeasible\n\nThe total time: 40.0\n",
        "The total time",
        "infeasible",
        None,
    ),
    ("copt optimal with units", COPT_OPTIMAL, None, "optimal", 27500.0),
    ("copt infeasible", COPT_INFEASIBLE, None, "infeasible", None),
    ("highs log only", HIGHS_OPTIMAL, None, "optimal", 18.0),
    (
        "highs infeasible",
        "Model status        : Infeasible\nObjective value     :  0.0e+00\n",
        None,
        "infeasible",
        None,
    ),
    ("scientific notation", "Objective value: 1.2345e+05\n", None, "optimal", 123450.0),
    ("negative", "Optimal objective: -42.5\n", None, "optimal", -42.5),
    ("unicode minus", "Total profit: \u22121,200\n", None, "optimal", -1200.0),
    ("thousands, currency, units", "Minimum total cost: $1,234,567.89 dollars\n", None, "optimal", 1234567.89),
    ("sentence", "The maximum profit is $3,600.50 per week.\n", None, "optimal", 3600.5),
    ("label holding a number", "Total profit from product 2 is 100\n", None, "optimal", 100.0),
    ("expression then value", "Objective: 2x + 3y\nObjective value = 12\n", None, "optimal", 12.0),
    (
        "asides in parentheses are not labels",
        "Inspection and Sales Cost: 5500.00 yuan (Max: 5500 yuan)\nTotal Cost (in yuan): 30500.00\n",
        None,
        "optimal",
        30500.0,
    ),
    ("chinese label", "求解完成\n最小总成本为：12,345 元\n", None, "optimal", 12345.0),
    ("chinese objective", "最优目标值: 3.5e2\n", None, "optimal", 350.0),
    ("chinese infeasible", "模型无可行解\n", None, "infeasible", None),
    ("no number", "Optimal solution found.\n", None, "unknown", None),
    ("empty", "", "Total cost", "unknown", None),
    ("bare value printed last", "Solving...\nDone\n2250.0\n", None, "optimal", 2250.0),
    ("no solution found", "No feasible solution found.\n", None, "infeasible", None),
    (
        "exact key line beats a longer label",
        "Total cost: 300\nTotal cost of shipping: 40\n",
        "Total cost",
        "optimal",
        300.0,
    ),
    (
        "key with 'is' and colon",
        "The optimal number of stations to build is: 2.0\n",
        "The optimal number of stations to build is",
        "optimal",
        2.0,
    ),
    ("version strings are not values", "Solver v12.0.3 finished\n", None, "unknown", None),
]


@pytest.mark.parametrize(
    ("output", "key", "status", "value"), [c[1:] for c in PARSE_CASES], ids=[c[0] for c in PARSE_CASES]
)
def test_parse_objective(output: str, key: str | None, status: str, value: float | None) -> None:
    got_status, got_value = parse_objective(output, key)
    assert got_status == status
    if value is None:
        assert got_value is None
    else:
        assert got_value == pytest.approx(value)


# --- reference programs and the sandbox ---------------------------------------------------------------------

PULP_PROGRAM = """\
from pulp import LpMaximize, LpProblem, LpVariable, value

x = LpVariable("x", lowBound=0, cat="Integer")
y = LpVariable("y", lowBound=0, cat="Integer")
problem = LpProblem("metal", LpMaximize)
problem += 5 * x + 9 * y
problem += 8 * x + 6 * y <= 1500
problem += 3 * x + 5 * y <= 1350
problem.solve()
print("The number of Process P:", y.value())
print("The total metal extracted:", value(problem.objective))
"""

INFEASIBLE_PROGRAM = """\
from pulp import LpMinimize, LpProblem, LpStatus, LpVariable, PULP_CBC_CMD

x = LpVariable("x", lowBound=0)
problem = LpProblem("impossible", LpMinimize)
problem += x
problem += x >= 10
problem += x <= 5
problem.solve(PULP_CBC_CMD(msg=False))
print("Status:", LpStatus[problem.status])
"""


def _settings(tmp_path: Path, **extra: Any) -> Settings:
    return load_settings({"home": tmp_path / "home", **extra}, environ={})


def _item(item_id: str = "fixture-0001", gold: float | None = 2250.0, **extra: Any) -> BenchItem:
    kind = "number" if gold is not None else "infeasible"
    return BenchItem(item_id, "fixture", "Maximize metal extracted.", gold, str(gold), kind, extra)


def _base(item: BenchItem) -> ItemResult:
    return ItemResult(item.id, item.gold, item.answer, "failed", worker="test")


def _memory(folder: Path, records: list[dict[str, Any]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "solved.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    return folder


def test_gold_code_reproduces_its_gold(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    item = _item(gold_code=PULP_PROGRAM, gold_code_solver="pulp", objective_key="The total metal extracted")
    result = solve_reference(item, settings, _base(item))
    assert (result.status, result.pred_status, result.run_id) == ("done", "optimal", "gold_code")
    assert result.pred_answer == pytest.approx(2250.0)
    assert is_correct("strict", item.gold, item.answer, result.pred_status, result.pred_answer)
    assert result.error is None and result.error_category is None and result.worker == "test"
    folder = Path(str(result.folder))
    assert folder == settings.run_root / "oracle" / item.id / "1"
    assert (folder / "program.py").read_text() == PULP_PROGRAM
    assert "The total metal extracted: 2250.0" in (folder / "output.txt").read_text()


def test_infeasible_reference_is_an_answer(tmp_path: Path) -> None:
    item = _item(gold=None, gold_code=INFEASIBLE_PROGRAM)
    result = solve_reference(item, _settings(tmp_path), _base(item))
    assert (result.status, result.pred_status, result.pred_answer) == ("done", "infeasible", None)
    assert is_correct("strict", "infeasible", None, result.pred_status, result.pred_answer)


def test_missing_solver(tmp_path: Path) -> None:
    program = "import coptpy as cp\nfrom coptpy import COPT\nenv = cp.Envr()\n"
    item = _item(gold_code=program)
    result = solve_reference(item, _settings(tmp_path), _base(item))
    assert (result.status, result.error_category) == ("failed", "missing solver")
    assert "coptpy" in str(result.error) and result.pred_answer is None


def test_crash_moves_on_to_the_next_reference(tmp_path: Path) -> None:
    memory = _memory(
        tmp_path / "memory",
        [
            {"id": "unrelated-1", "code": "print('Objective: 1')", "near_dup_benchmark_ids": ["fixture-00010"]},
            {
                "id": "solved-7",
                "question": "Maximize metal extracted.",
                "code": PULP_PROGRAM,
                "solver": "pulp",
                "near_dup_benchmark_ids": ["other-0003", "fixture-0001"],
            },
        ],
    )
    item = _item(gold_code="raise RuntimeError('reference bug')\n")
    settings = _settings(tmp_path, memory_dir=memory)
    result = solve_reference(item, settings, _base(item))
    assert (result.status, result.run_id) == ("done", "solved-7")
    assert result.pred_answer == pytest.approx(2250.0)
    assert Path(str(result.folder)).name == "2"
    first = settings.run_root / "oracle" / item.id / "1" / "output.txt"
    assert "RuntimeError: reference bug" in first.read_text()


def test_no_reference(tmp_path: Path) -> None:
    item = _item()
    result = solve_reference(item, _settings(tmp_path, memory_dir=_memory(tmp_path / "m", [])), _base(item))
    assert (result.status, result.error_category) == ("failed", "no reference")


def test_unreadable_and_failing_references(tmp_path: Path) -> None:
    silent = _item(gold_code="print('done')\n")
    result = solve_reference(silent, _settings(tmp_path), _base(silent))
    assert (result.status, result.error_category) == ("failed", "parse")
    # A caught licence error followed by a "no solution" message is a failed run, not an infeasible model.
    caught = _item(
        gold_code="print('Gurobi error code 10010: Model too large for size-limited license')\n"
        "print('No feasible solution found.')\n"
    )
    result = solve_reference(caught, _settings(tmp_path), _base(caught))
    assert (result.status, result.error_category) == ("failed", "execution")
    slow = _item(gold_code="import time\ntime.sleep(30)\n")
    result = solve_reference(slow, _settings(tmp_path, sandbox_timeout=1), _base(slow))
    assert (result.status, result.error_category) == ("failed", "execution")
    assert "timed out" in str(result.error)


def test_reference_programs_order_and_matching(tmp_path: Path) -> None:
    memory = _memory(
        tmp_path / "memory",
        [
            {
                "id": "far",
                "question": "Something else entirely about trucks and roads.",
                "code": "print(1)",
                "solver": "pulp",
                "near_dup_benchmark_ids": ["fixture-0001"],
            },
            {
                "id": "near",
                "question": "Maximize metal extracted.",
                "code": "print(2)",
                "near_dup_benchmark_ids": ["fixture-0002", "fixture-0001"],
                "extra": {"results": {"x": "1", "Obj": "2"}},
            },
            {
                "id": "copy",
                "question": "Maximize metal extracted.",
                "code": PULP_PROGRAM,
                "near_dup_benchmark_ids": ["fixture-0001"],
            },
            {"id": "curated", "code": "print(3)", "near_dup_benchmark_ids": ["fixture_curated-0001"]},
            {
                "id": "own",
                "question": "A rewrite with other words.",
                "code": "print(4)",
                "overlaps_benchmark": ["fixture"],
                "near_dup_benchmark_ids": ["fixture-0001"],
            },
        ],
    )
    item = _item(gold_code=PULP_PROGRAM, gold_code_solver="pulp", results={"y": "250", "Total": "2250"})
    references = reference_programs(item, memory)
    # the gold code, then the record taken from the item's own benchmark, then by similarity; the exact copy of
    # the gold code and the record naming another item ("fixture_curated-0001") are left out
    assert [r.source for r in references] == ["gold_code", "own", "near", "far"]
    assert references[0] == Reference("gold_code", PULP_PROGRAM, "pulp", "Total")
    assert references[2].objective_key == "Obj" and references[2].solver == "unknown"
    assert reference_programs(item, None) == references[:1]


# --- the shipped OptiBench references ------------------------------------------------------------------------


def test_first_optibench_references_reproduce_their_gold(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if not (BENCHMARKS / "optibench.jsonl").exists():
        pytest.skip(f"OptiBench data not found at {BENCHMARKS} (set NEMO_BENCHMARKS_DIR to the shared benchmarks)")
    memory = MEMORY
    settings = _settings(tmp_path, memory_dir=memory if memory.is_dir() else None)
    items = load_dataset("optibench", BENCHMARKS).items[:10]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda item: solve_reference(item, settings, _base(item)), items))
    verdicts = [is_correct("strict", r.gold_kind, r.gold_answer, r.pred_status, r.pred_answer) for r in results]
    misses = [
        f"{r.item_id}: gold {r.gold_answer}, got {r.pred_status} {r.pred_answer}"
        for r, v in zip(results, verdicts, strict=True)
        if not v
    ]
    with capsys.disabled():
        print(f"\noracle reproduction (strict), first 10 OptiBench items: {sum(map(bool, verdicts))}/10; {misses}")
    assert all(r.status == "done" for r in results), [r.error for r in results]
    assert sum(map(bool, verdicts)) >= 8, misses
