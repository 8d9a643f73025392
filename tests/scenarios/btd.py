"""OptiBench optibench-0126 (six-month wrench production with overtime and inventory), multi-period LP.

The simulator's first test has an arithmetic slip (a wrong hand total); pytest fails, the agent re-adds the
numbers and fixes the test. The optimizer is right the first time. Gold answer from the benchmark: 103960.
"""

from __future__ import annotations

from tests.scenarios import call, say, spec_reply

BENCHMARK_FILE = "optibench.jsonl"
ITEM_ID = "optibench-0126"

MONTHS = [1, 2, 3, 4, 5, 6]
SPEC = {
    "title": "BTD wrench production plan",
    "summary": "Plan regular and overtime production and inventory for six months to meet demand at least cost.",
    "sets": [{"name": "months", "elements": MONTHS, "description": "January to June"}],
    "parameters": [
        {
            "name": "demand",
            "indices": ["months"],
            "value": {"1": 370, "2": 430, "3": 380, "4": 450, "5": 520, "6": 440},
        },
        {"name": "regular_capacity", "value": 420, "unit": "wrenches/month"},
        {"name": "regular_cost", "value": 40, "unit": "USD/wrench"},
        {"name": "overtime_capacity", "value": 80, "unit": "wrenches/month"},
        {"name": "overtime_cost", "value": 45, "unit": "USD/wrench"},
        {"name": "holding_cost", "value": 3, "unit": "USD/wrench/month"},
        {"name": "initial_inventory", "value": 10, "unit": "wrenches"},
    ],
    "variables": [
        {"name": "regular", "indices": ["months"], "type": "continuous", "lower": 0, "upper": 420},
        {"name": "overtime", "indices": ["months"], "type": "continuous", "lower": 0, "upper": 80},
        {
            "name": "inventory",
            "indices": ["months"],
            "type": "continuous",
            "lower": 0,
            "upper": None,
            "description": "wrenches held at the end of the month",
        },
    ],
    "state_variables": [{"name": "inventory", "indices": ["months"], "description": "end-of-month stock"}],
    "transitions": [
        {
            "state": "inventory",
            "expression": "inventory[t] = inventory[t-1] + regular[t] + overtime[t] - demand[t]",
            "description": "stock balance; inventory[0] = initial_inventory",
        }
    ],
    "objective": {
        "sense": "minimize",
        "expression": "sum(regular_cost*regular[t] + overtime_cost*overtime[t] + holding_cost*inventory[t] "
        "for t in months)",
    },
    "constraints": [
        {
            "name": "inventory_balance",
            "for_all": "t in months",
            "expression": "inventory[t] == inventory[t-1] + regular[t] + overtime[t] - demand[t]",
            "meaning": "demand is met every month from production and stock",
        },
        {"name": "regular_limit", "for_all": "t in months", "expression": "regular[t] <= regular_capacity"},
        {"name": "overtime_limit", "for_all": "t in months", "expression": "overtime[t] <= overtime_capacity"},
    ],
}

EXTRACTION = spec_reply(SPEC)

SIMULATOR_CODE = '''"""Walk through the six months: produce, ship the demand, carry the rest, add up the costs."""


def _get(solution, name, month, violations):
    try:
        return float(solution[name][str(month)])
    except (KeyError, TypeError, ValueError):
        violations.append({"constraint": "missing_value", "amount": 1.0, "variables": [f"{name}[{month}]"],
                           "detail": f"no value for {name}[{month}]"})
        return 0.0


def simulate(solution, data, tol=1e-6):
    violations = []
    stock = float(data["initial_inventory"])
    cost = 0.0
    for month in data["months"]:
        reg = _get(solution, "regular", month, violations)
        over = _get(solution, "overtime", month, violations)
        held = _get(solution, "inventory", month, violations)
        for name, amount, cap in (("regular_limit", reg, data["regular_capacity"]),
                                  ("overtime_limit", over, data["overtime_capacity"])):
            if amount - cap > tol * (1 + cap):
                violations.append({"constraint": name, "amount": amount - cap,
                                   "variables": [f"{name.split('_')[0]}[{month}]"],
                                   "detail": f"month {month}: {amount:g} made, capacity {cap}"})
            if amount < -tol:
                violations.append({"constraint": "nonnegative", "amount": -amount, "variables": [],
                                   "detail": f"month {month}: negative production"})
        stock = stock + reg + over - data["demand"][str(month)]
        if stock < -tol * (1 + data["demand"][str(month)]):
            violations.append({"constraint": "inventory_balance", "amount": -stock,
                               "variables": [f"regular[{month}]", f"overtime[{month}]"],
                               "detail": f"month {month}: demand short by {-stock:g}"})
        if abs(held - stock) > tol * (1 + abs(stock)):
            violations.append({"constraint": "inventory_balance", "amount": abs(held - stock),
                               "variables": [f"inventory[{month}]"],
                               "detail": f"month {month}: reported stock {held:g}, actual {stock:g}"})
        cost += data["regular_cost"] * reg + data["overtime_cost"] * over + data["holding_cost"] * max(stock, 0.0)
    return {"feasible": not violations, "objective": cost, "violations": violations}
'''

TESTS_WITH_SLIP = """import json
from pathlib import Path

from simulator.simulator import simulate

DATA = json.loads((Path(__file__).resolve().parent.parent / "data.json").read_text())
MONTHS = ["1", "2", "3", "4", "5", "6"]


def plan(regular, overtime, inventory):
    return {"regular": dict(zip(MONTHS, regular)), "overtime": dict(zip(MONTHS, overtime)),
            "inventory": dict(zip(MONTHS, inventory))}


def test_hand_plan():
    # regular 370,420x5 = 2470 at 40 = 98800; overtime 0,0,0,10,80,20 = 110 at 45 = 4950;
    # stock 10,0,40,20,0,0 = 70 at 3 = 210; total EXPECTED
    verdict = simulate(plan([370, 420, 420, 420, 420, 420], [0, 0, 0, 10, 80, 20], [10, 0, 40, 20, 0, 0]), DATA)
    assert verdict["feasible"], verdict["violations"]
    assert abs(verdict["objective"] - EXPECTED) < 1e-6


def test_shortage_in_may():
    verdict = simulate(plan([370, 420, 420, 420, 420, 420], [0, 0, 0, 10, 0, 20], [10, 0, 40, 20, 0, 0]), DATA)
    assert not verdict["feasible"]
    assert "inventory_balance" in [v["constraint"] for v in verdict["violations"]]
"""

SIMULATOR = [
    say("Simulator first.", call("write_file", path="simulator/simulator.py", content=SIMULATOR_CODE)),
    say(
        "Tests with a hand-computed plan.",
        call("write_file", path="simulator/test_simulator.py", content=TESTS_WITH_SLIP.replace("EXPECTED", "103950")),
    ),
    say("", call("bash", command="python -m pytest -q simulator/test_simulator.py")),
    say(
        "The test total is wrong: 98800 + 4950 + 210 = 103960, not 103950. Fixing the test, not the simulator.",
        call(
            "edit_file",
            path="simulator/test_simulator.py",
            old_text='verdict["objective"] - 103950',
            new_text='verdict["objective"] - 103960',
        ),
    ),
    say("", call("bash", command="python -m pytest -q simulator/test_simulator.py")),
    say("", call("submit", summary="Month-by-month simulator with capacity and stock checks.")),
]

MODEL = """import json
import time

import highspy

data = json.load(open("data.json"))
months = [str(m) for m in data["months"]]
h = highspy.Highs()
h.silent()
reg = {t: h.addVariable(lb=0, ub=data["regular_capacity"], name=f"regular[{t}]") for t in months}
ot = {t: h.addVariable(lb=0, ub=data["overtime_capacity"], name=f"overtime[{t}]") for t in months}
inv = {t: h.addVariable(lb=0, name=f"inventory[{t}]") for t in months}
previous = data["initial_inventory"]
for t in months:
    h.addConstr(inv[t] == previous + reg[t] + ot[t] - data["demand"][t])
    previous = inv[t]
start = time.time()
h.minimize(sum(data["regular_cost"] * reg[t] + data["overtime_cost"] * ot[t] + data["holding_cost"] * inv[t]
               for t in months))
ok = h.getModelStatus() == highspy.HighsModelStatus.kOptimal
solution = {
    "status": "optimal" if ok else "unknown",
    "objective": h.getObjectiveValue() if ok else None,
    "variables": {
        "regular": {t: h.val(reg[t]) for t in months},
        "overtime": {t: h.val(ot[t]) for t in months},
        "inventory": {t: h.val(inv[t]) for t in months},
    } if ok else {},
    "solver": "highs",
    "solve_seconds": time.time() - start,
    "model_file": "model.mps",
}
h.writeModel("model.mps")
json.dump(solution, open("solution.json", "w"), indent=2)
print(solution["status"], solution["objective"])
"""

OPTIMIZER = [
    say("Multi-period LP with inventory balance.", call("write_file", path="model.py", content=MODEL)),
    say("", call("bash", command="python model.py")),
    say("", call("submit", summary="Six-month production LP.")),
]
