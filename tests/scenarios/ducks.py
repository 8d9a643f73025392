"""NL4OPT nl4opt-0000 (boats and canoes carrying ducks), an integer program, modeled with PuLP/CBC.

The simulator agent's first tool call carries malformed JSON arguments, as real models sometimes send.
The optimizer's first model bounds boat trips by ducks/capacity (30) instead of the stated 12, so it returns
14 boat and 21 canoe trips (1120 minutes): the simulator must name `boat_limit`, violated by 2.
The gold answer (1160) comes from the benchmark file.
"""

from __future__ import annotations

from nemo_opt.testing import Reply
from tests.scenarios import call, say, spec_reply

BENCHMARK_FILE = "nl4opt.jsonl"
ITEM_ID = "nl4opt-0000"
VIOLATED = "boat_limit"

SPEC = {
    "title": "Duck rescue transport",
    "summary": "Choose boat and canoe trips to carry at least 300 ducks in the least total time.",
    "parameters": [
        {"name": "boat_capacity", "value": 10, "unit": "ducks/trip"},
        {"name": "canoe_capacity", "value": 8, "unit": "ducks/trip"},
        {"name": "boat_minutes", "value": 20, "unit": "min/trip"},
        {"name": "canoe_minutes", "value": 40, "unit": "min/trip"},
        {"name": "max_boat_trips", "value": 12, "unit": "trips"},
        {"name": "min_canoe_share", "value": 0.6, "unit": "fraction of trips"},
        {"name": "ducks_required", "value": 300, "unit": "ducks"},
    ],
    "variables": [
        {"name": "boat_trips", "type": "integer", "lower": 0, "upper": None, "description": "boat trips"},
        {"name": "canoe_trips", "type": "integer", "lower": 0, "upper": None, "description": "canoe trips"},
    ],
    "objective": {
        "sense": "minimize",
        "expression": "boat_minutes * boat_trips + canoe_minutes * canoe_trips",
        "description": "total transport time in minutes",
    },
    "constraints": [
        {"name": "boat_limit", "expression": "boat_trips <= max_boat_trips", "meaning": "at most 12 boat trips"},
        {
            "name": "canoe_share",
            "expression": "canoe_trips >= min_canoe_share * (boat_trips + canoe_trips)",
            "meaning": "at least 60% of trips are by canoe",
        },
        {
            "name": "ducks_transported",
            "expression": "boat_capacity * boat_trips + canoe_capacity * canoe_trips >= ducks_required",
            "meaning": "at least 300 ducks reach the shore",
        },
    ],
}

EXTRACTION = spec_reply(SPEC)

SIMULATOR_CODE = '''"""Replay the rescue: trips made, ducks carried, minutes spent."""


def _trips(solution, name, violations, tol):
    value = solution.get(name)
    if not isinstance(value, (int, float)):
        violations.append({"constraint": "missing_value", "amount": 1.0, "variables": [name],
                           "detail": f"{name} has no numeric value"})
        return 0.0
    if value < -tol:
        violations.append({"constraint": "nonnegative_trips", "amount": -value, "variables": [name],
                           "detail": f"{name} = {value} is negative"})
    if abs(value - round(value)) > tol * (1 + abs(value)):
        violations.append({"constraint": "whole_trips", "amount": abs(value - round(value)), "variables": [name],
                           "detail": f"{name} = {value} is not a whole number of trips"})
    return float(value)


def simulate(solution, data, tol=1e-6):
    violations = []
    boats = _trips(solution, "boat_trips", violations, tol)
    canoes = _trips(solution, "canoe_trips", violations, tol)

    if boats - data["max_boat_trips"] > tol * (1 + data["max_boat_trips"]):
        violations.append({"constraint": "boat_limit", "amount": boats - data["max_boat_trips"],
                           "variables": ["boat_trips"],
                           "detail": f"{boats:g} boat trips, at most {data['max_boat_trips']} allowed"})
    needed = data["min_canoe_share"] * (boats + canoes)
    if needed - canoes > tol * (1 + needed):
        violations.append({"constraint": "canoe_share", "amount": needed - canoes,
                           "variables": ["boat_trips", "canoe_trips"],
                           "detail": f"{canoes:g} canoe trips, at least {needed:g} needed"})
    carried = data["boat_capacity"] * boats + data["canoe_capacity"] * canoes
    if data["ducks_required"] - carried > tol * (1 + data["ducks_required"]):
        violations.append({"constraint": "ducks_transported", "amount": data["ducks_required"] - carried,
                           "variables": ["boat_trips", "canoe_trips"],
                           "detail": f"only {carried:g} ducks carried"})

    minutes = data["boat_minutes"] * boats + data["canoe_minutes"] * canoes
    return {"feasible": not violations, "objective": minutes, "violations": violations}
'''

SIMULATOR_TESTS = """import json
from pathlib import Path

from simulator.simulator import simulate

DATA = json.loads((Path(__file__).resolve().parent.parent / "data.json").read_text())


def test_twelve_boats_twenty_three_canoes():
    # 12*10 + 23*8 = 304 ducks; canoes 23 >= 0.6 * 35 = 21; time 12*20 + 23*40 = 1160
    verdict = simulate({"boat_trips": 12, "canoe_trips": 23}, DATA)
    assert verdict["feasible"]
    assert verdict["objective"] == 1160


def test_too_many_boat_trips():
    verdict = simulate({"boat_trips": 14, "canoe_trips": 21}, DATA)
    assert [v["constraint"] for v in verdict["violations"]] == ["boat_limit"]


def test_not_enough_ducks():
    verdict = simulate({"boat_trips": 0, "canoe_trips": 10}, DATA)
    assert "ducks_transported" in [v["constraint"] for v in verdict["violations"]]
"""

SIMULATOR = [
    # A real-world slip: the arguments are cut off mid-string, so they are not valid JSON.
    Reply(
        text="Writing the simulator.",
        tool_calls=[("write_file", '{"path": "simulator/simulator.py", "content": "def simulate(solution, data')],
    ),
    say(
        "My previous call was malformed; sending it again.",
        call("write_file", path="simulator/simulator.py", content=SIMULATOR_CODE),
    ),
    say("", call("write_file", path="simulator/test_simulator.py", content=SIMULATOR_TESTS)),
    say("", call("bash", command="python -m pytest -q simulator/test_simulator.py")),
    say("", call("submit", summary="Simulator replays trips, capacity, canoe share and time.")),
]

MODEL = """import json
import time

from pulp import LpMinimize, LpProblem, LpStatus, LpVariable, PULP_CBC_CMD, value

with open("data.json") as f:
    data = json.load(f)

prob = LpProblem("ducks", LpMinimize)
boats = LpVariable("boat_trips", lowBound=0, upBound=BOAT_BOUND, cat="Integer")
canoes = LpVariable("canoe_trips", lowBound=0, cat="Integer")
prob += data["boat_minutes"] * boats + data["canoe_minutes"] * canoes
prob += canoes >= data["min_canoe_share"] * (boats + canoes), "canoe_share"
prob += data["boat_capacity"] * boats + data["canoe_capacity"] * canoes >= data["ducks_required"], "ducks"
start = time.time()
prob.solve(PULP_CBC_CMD(msg=False))
status = {"Optimal": "optimal", "Infeasible": "infeasible", "Unbounded": "unbounded"}.get(
    LpStatus[prob.status], "unknown"
)
solution = {"status": status, "objective": value(prob.objective) if status == "optimal" else None,
            "variables": {"boat_trips": boats.varValue, "canoe_trips": canoes.varValue},
            "solver": "cbc", "solve_seconds": time.time() - start, "model_file": "model.mps"}
prob.writeMPS("model.mps", with_objsense=True)
with open("solution.json", "w") as f:
    json.dump(solution, f, indent=2)
print(status, solution["objective"])
"""

WRONG_BOUND = 'data["ducks_required"] / data["boat_capacity"]'
RIGHT_BOUND = 'data["max_boat_trips"]'

OPTIMIZER = [
    say(
        "I'll model this with PuLP and CBC.",
        call("write_file", path="model.py", content=MODEL.replace("BOAT_BOUND", WRONG_BOUND)),
    ),
    say("", call("bash", command="python model.py")),
    say("Solved.", call("submit", summary="Integer program for boat and canoe trips.")),
    say(
        "I bounded boat trips by ducks per boat instead of the stated maximum of 12 trips. Fixing.",
        call("edit_file", path="model.py", old_text=WRONG_BOUND, new_text=RIGHT_BOUND),
    ),
    say("", call("bash", command="python model.py")),
    say("", call("submit", summary="Boat trips now limited to max_boat_trips.")),
]
