"""Workshop product mix (examples/product_mix.md), an integer program, with native tool calls.

Hand computation of the answer: with 2T + C <= 100 and 4T + 3C <= 240 both tight, T = 30 and C = 40, profit
70*30 + 50*40 = 4100; the other vertices give less (C = 10: T = 45, 3650; T = 0: C = 80, 4000).
The first accepted model forgets the finishing hours and returns 51 tables and 12 chairs (profit 4170),
which uses 2*51 + 12 = 114 finishing hours of 100: the simulator must name `finishing_capacity`.
"""

from __future__ import annotations

from nemo_opt.spec import ProblemSpec, data_from_spec
from nemo_opt.testing import Reply
from nemo_opt.workspace import Workspace
from tests.scenarios import call, say, spec_reply

EXPECTED_OBJECTIVE = 4100.0
WRONG_OBJECTIVE = 4170.0
VIOLATED = "finishing_capacity"

SPEC = {
    "title": "Workshop production plan",
    "summary": "Choose how many tables and chairs to make this week to maximize profit within the carpentry "
    "and finishing hours, making at least the ordered chairs.",
    "sets": [{"name": "products", "elements": ["table", "chair"], "description": "furniture items"}],
    "parameters": [
        {"name": "profit", "indices": ["products"], "value": {"table": 70, "chair": 50}, "unit": "USD/unit"},
        {"name": "carpentry_hours", "indices": ["products"], "value": {"table": 4, "chair": 3}, "unit": "h/unit"},
        {"name": "finishing_hours", "indices": ["products"], "value": {"table": 2, "chair": 1}, "unit": "h/unit"},
        {"name": "carpentry_available", "value": 240, "unit": "h"},
        {"name": "finishing_available", "value": 100, "unit": "h"},
        {"name": "min_chairs", "value": 10, "unit": "chairs"},
    ],
    "variables": [
        {
            "name": "make",
            "indices": ["products"],
            "type": "integer",
            "lower": 0,
            "upper": None,
            "description": "units produced this week",
        }
    ],
    "objective": {
        "sense": "maximize",
        "expression": "sum(profit[p] * make[p] for p in products)",
        "description": "weekly profit",
    },
    "constraints": [
        {
            "name": "carpentry_capacity",
            "expression": "sum(carpentry_hours[p] * make[p] for p in products) <= carpentry_available",
            "meaning": "carpentry hours used cannot exceed the 240 available",
        },
        {
            "name": "finishing_capacity",
            "expression": "sum(finishing_hours[p] * make[p] for p in products) <= finishing_available",
            "meaning": "finishing hours used cannot exceed the 100 available",
        },
        {
            "name": "chair_orders",
            "expression": "make['chair'] >= min_chairs",
            "meaning": "at least 10 chairs are ordered",
        },
    ],
    "assumptions": ["Products are made in whole units."],
}

EXTRACTION = spec_reply(SPEC, "The workshop decides weekly production; here is the decision process.")

SIMULATOR_CODE = '''"""Simulator of the workshop week: count the hours each plan uses and the profit it earns."""


def _value(solution, name, key, violations):
    try:
        return float(solution[name][key])
    except (KeyError, TypeError, ValueError):
        violations.append(
            {"constraint": "missing_value", "amount": 1.0, "variables": [f"{name}[{key}]"],
             "detail": f"no numeric value for {name}[{key}]"}
        )
        return 0.0


def _over(used, limit, tol):
    return used - limit > tol * (1 + abs(limit))


def simulate(solution, data, tol=1e-6):
    violations = []
    products = data["products"]
    make = {p: _value(solution, "make", p, violations) for p in products}
    for p, qty in make.items():
        if qty < -tol:
            violations.append({"constraint": "nonnegativity", "amount": -qty, "variables": [f"make[{p}]"],
                               "detail": f"make[{p}] = {qty} is negative"})
        if abs(qty - round(qty)) > tol * (1 + abs(qty)):
            violations.append({"constraint": "integrality", "amount": abs(qty - round(qty)),
                               "variables": [f"make[{p}]"], "detail": f"make[{p}] = {qty} is not whole"})
    carpentry = sum(data["carpentry_hours"][p] * make[p] for p in products)
    if _over(carpentry, data["carpentry_available"], tol):
        violations.append({"constraint": "carpentry_capacity", "amount": carpentry - data["carpentry_available"],
                           "variables": [f"make[{p}]" for p in products],
                           "detail": f"{carpentry:g} carpentry hours used, {data['carpentry_available']} available"})
    finishing = sum(data["finishing_hours"][p] * make[p] for p in products)
    if _over(finishing, data["finishing_available"], tol):
        violations.append({"constraint": "finishing_capacity", "amount": finishing - data["finishing_available"],
                           "variables": [f"make[{p}]" for p in products],
                           "detail": f"{finishing:g} finishing hours used, {data['finishing_available']} available"})
    if _over(data["min_chairs"], make["chair"], tol):
        violations.append({"constraint": "chair_orders", "amount": data["min_chairs"] - make["chair"],
                           "variables": ["make[chair]"], "detail": f"only {make['chair']:g} chairs made"})
    profit = sum(data["profit"][p] * make[p] for p in products)
    return {"feasible": not violations, "objective": profit, "violations": violations}
'''

SIMULATOR_TESTS = """import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from simulator.simulator import simulate  # noqa: E402

DATA = json.loads((ROOT / "data.json").read_text())


def test_plan_using_all_hours():
    # 30 tables + 40 chairs: carpentry 4*30 + 3*40 = 240, finishing 2*30 + 40 = 100, profit 2100 + 2000
    verdict = simulate({"make": {"table": 30, "chair": 40}}, DATA)
    assert verdict["feasible"]
    assert abs(verdict["objective"] - 4100) < 1e-9


def test_finishing_overrun_is_reported():
    # 51 tables + 12 chairs need 2*51 + 12 = 114 finishing hours > 100
    verdict = simulate({"make": {"table": 51, "chair": 12}}, DATA)
    assert not verdict["feasible"]
    names = [v["constraint"] for v in verdict["violations"]]
    assert names == ["finishing_capacity"]


def test_too_few_chairs():
    verdict = simulate({"make": {"table": 10, "chair": 5}}, DATA)
    assert "chair_orders" in [v["constraint"] for v in verdict["violations"]]
"""


def simulator_replies(tests: str) -> list[Reply]:
    """The simulator agent's turns, with the given test file."""
    return [
        say(
            "I'll write the simulator first, following the story: hours used per product and the profit.",
            call("write_file", path="simulator/simulator.py", content=SIMULATOR_CODE),
        ),
        say("Now the hand-computed tests.", call("write_file", path="simulator/test_simulator.py", content=tests)),
        say("", call("bash", command="python -m pytest -q simulator/test_simulator.py")),
        say("All tests pass.", call("submit", summary="Simulator checks hours, chair orders, integrality and profit.")),
    ]


SIMULATOR = simulator_replies(SIMULATOR_TESTS)

MODEL_HEAD = """import json
import time

import highspy

data = json.load(open("data.json"))
products = data["products"]

h = highspy.Highs()
h.silent()
make = {p: h.addIntegral(lb=0, name=f"make_{p}") for p in products}
h.addConstr(sum(data["carpentry_hours"][p] * make[p] for p in products) <= data["carpentry_available"])
"""

FINISHING = """h.addConstr(sum(data["finishing_hours"][p] * make[p] for p in products) <= data["finishing_available"])
"""

MODEL_TAIL = """h.addConstr(make["chair"] >= data["min_chairs"])
start = time.time()
h.maximize(sum(data["PROFIT_KEY"][p] * make[p] for p in products))
names = {
    highspy.HighsModelStatus.kOptimal: "optimal",
    highspy.HighsModelStatus.kInfeasible: "infeasible",
    highspy.HighsModelStatus.kUnbounded: "unbounded",
    highspy.HighsModelStatus.kUnboundedOrInfeasible: "infeasible_or_unbounded",
    highspy.HighsModelStatus.kTimeLimit: "time_limit",
}
status = names.get(h.getModelStatus(), "unknown")
solution = {"status": status, "objective": None, "variables": {}, "solver": "highs",
            "solve_seconds": time.time() - start}
if status == "optimal":
    solution["objective"] = h.getObjectiveValue()
    solution["variables"] = {"make": {p: h.val(make[p]) for p in products}}
h.writeModel("model.mps")
solution["model_file"] = "model.mps"
solution["columns"] = {f"make_{p}": f"make[{p}]" for p in products}
with open("solution.json", "w") as f:
    json.dump(solution, f, indent=2)
print(status, solution["objective"])
"""

# The first draft reads a key that does not exist (a crash) and lacks the finishing constraint (a modeling error).
MODEL_DRAFT = MODEL_HEAD + MODEL_TAIL.replace("PROFIT_KEY", "profits")

# The draft with both mistakes fixed: the model a careful optimizer ends with.
RIGHT_MODEL = MODEL_HEAD + FINISHING + MODEL_TAIL.replace("PROFIT_KEY", "profit")

OPTIMIZER = [
    say("Let me look at the data first.", call("bash", command="cat data.json")),
    say("I'll write the model with HiGHS.", call("write_file", path="model.py", content=MODEL_DRAFT)),
    say("", call("bash", command="python model.py")),
    say(
        "The data key is `profit`, not `profits`.",
        call("edit_file", path="model.py", old_text='data["profits"]', new_text='data["profit"]'),
    ),
    say("", call("bash", command="python model.py && cat solution.json")),
    say("The model solves to optimality.", call("submit", summary="Integer model of the weekly plan.")),
    # Repair round after the simulator reports the finishing-hours violation.
    say(
        "The simulator is right: I never limited the finishing hours. Adding that constraint.",
        call(
            "edit_file",
            path="model.py",
            old_text='h.addConstr(make["chair"] >= data["min_chairs"])',
            new_text=FINISHING.strip() + '\nh.addConstr(make["chair"] >= data["min_chairs"])',
        ),
    ),
    say("", call("bash", command="python model.py")),
    say("Fixed and re-solved.", call("submit", summary="Added the finishing-hours capacity.")),
]

# A second optimizer, on PuLP/CBC, right the first time.
PULP_MODEL = """import json
import time

import pulp

data = json.load(open("data.json"))
products = data["products"]
prob = pulp.LpProblem("workshop", pulp.LpMaximize)
make = {p: pulp.LpVariable(f"make_{p}", lowBound=0, cat="Integer") for p in products}
prob += pulp.lpSum(data["profit"][p] * make[p] for p in products)
prob += pulp.lpSum(data["carpentry_hours"][p] * make[p] for p in products) <= data["carpentry_available"], "carpentry"
prob += pulp.lpSum(data["finishing_hours"][p] * make[p] for p in products) <= data["finishing_available"], "finishing"
prob += make["chair"] >= data["min_chairs"], "chair_orders"
start = time.time()
prob.solve(pulp.PULP_CBC_CMD(msg=False))
status = {"Optimal": "optimal", "Infeasible": "infeasible", "Unbounded": "unbounded"}.get(
    pulp.LpStatus[prob.status], "unknown"
)
solution = {"status": status, "objective": pulp.value(prob.objective), "solver": "cbc",
            "variables": {"make": {p: make[p].varValue for p in products}}, "solve_seconds": time.time() - start,
            "model_file": "model.mps", "columns": {f"make_{p}": f"make[{p}]" for p in products}}
prob.writeMPS("model.mps", with_objsense=True)
json.dump(solution, open("solution.json", "w"), indent=2)
print(status, solution["objective"])
"""

OPTIMIZER_PULP = [
    say(
        "I'll read one of the solved examples first.",
        call("bash", command="ls ../../memory && head -20 ../../memory/ex_1.py"),
    ),
    say("Now the model with PuLP.", call("write_file", path="model.py", content=PULP_MODEL)),
    say("", call("bash", command="python model.py")),
    say("", call("submit", summary="PuLP model of the weekly plan.")),
]


def write_workspace(ws: Workspace, tests: str = SIMULATOR_TESTS) -> Workspace:
    """A created workspace holding this problem's data and its accepted-looking simulator files."""
    ws.create()
    ws.write_json("data.json", data_from_spec(ProblemSpec.model_validate(SPEC)))
    ws.write_text("simulator/__init__.py", "")
    ws.write_text("simulator/simulator.py", SIMULATOR_CODE)
    ws.write_text("simulator/test_simulator.py", tests)
    return ws
