"""NL4OPT nl4opt-0004 (feed mix), a linear program, with the plain-text protocol (one bash block per reply).

The simulator agent once sends two bash blocks in one reply, which the protocol refuses.
Gold answer from the benchmark file: 327.659574... (= 100*100/94 + 80*260/94).
"""

from __future__ import annotations

from nemo_opt.testing import Reply
from tests.scenarios import bash_reply, spec_reply

BENCHMARK_FILE = "nl4opt.jsonl"
ITEM_ID = "nl4opt-0004"

SPEC = {
    "title": "Feed mix",
    "summary": "Mix feeds A and B to reach minimum protein and fat at least cost.",
    "sets": [{"name": "feeds", "elements": ["A", "B"]}],
    "parameters": [
        {"name": "cost", "indices": ["feeds"], "value": {"A": 100, "B": 80}, "unit": "USD/kg"},
        {"name": "protein", "indices": ["feeds"], "value": {"A": 10, "B": 7}, "unit": "units/kg"},
        {"name": "fat", "indices": ["feeds"], "value": {"A": 8, "B": 15}, "unit": "units/kg"},
        {"name": "min_protein", "value": 30},
        {"name": "min_fat", "value": 50},
    ],
    "variables": [{"name": "kg", "indices": ["feeds"], "type": "continuous", "lower": 0, "upper": None}],
    "objective": {"sense": "minimize", "expression": "sum(cost[f] * kg[f] for f in feeds)"},
    "constraints": [
        {"name": "protein_requirement", "expression": "sum(protein[f] * kg[f] for f in feeds) >= min_protein"},
        {"name": "fat_requirement", "expression": "sum(fat[f] * kg[f] for f in feeds) >= min_fat"},
    ],
}

EXTRACTION = spec_reply(SPEC, "Sure. The decision is how many kilograms of each feed to mix.")

SIMULATOR_CODE = """def simulate(solution, data, tol=1e-6):
    violations = []
    kg = {}
    for f in data["feeds"]:
        try:
            kg[f] = float(solution["kg"][f])
        except (KeyError, TypeError, ValueError):
            violations.append({"constraint": "missing_value", "amount": 1.0, "variables": [f"kg[{f}]"],
                               "detail": f"no amount for feed {f}"})
            kg[f] = 0.0
        if kg[f] < -tol:
            violations.append({"constraint": "nonnegative", "amount": -kg[f], "variables": [f"kg[{f}]"],
                               "detail": "negative amount"})
    for nutrient, minimum in (("protein", "min_protein"), ("fat", "min_fat")):
        got = sum(data[nutrient][f] * kg[f] for f in kg)
        if data[minimum] - got > tol * (1 + abs(data[minimum])):
            violations.append({"constraint": f"{nutrient}_requirement", "amount": data[minimum] - got,
                               "variables": [f"kg[{f}]" for f in kg],
                               "detail": f"mixture has {got:g} {nutrient}, needs {data[minimum]}"})
    cost = sum(data["cost"][f] * kg[f] for f in kg)
    return {"feasible": not violations, "objective": cost, "violations": violations}
"""

SIMULATOR_TESTS = """import json
from pathlib import Path

from simulator.simulator import simulate

DATA = json.loads((Path(__file__).resolve().parent.parent / "data.json").read_text())


def test_three_kg_of_b_and_one_of_a():
    # protein 10 + 21 = 31 >= 30, fat 8 + 45 = 53 >= 50, cost 100 + 240 = 340
    verdict = simulate({"kg": {"A": 1, "B": 3}}, DATA)
    assert verdict["feasible"] and abs(verdict["objective"] - 340) < 1e-9


def test_only_feed_a_lacks_fat():
    verdict = simulate({"kg": {"A": 3, "B": 0}}, DATA)
    assert [v["constraint"] for v in verdict["violations"]] == ["fat_requirement"]
"""

SIMULATOR = [
    Reply(text="First the simulator, then its tests.\n\n```bash\nmkdir -p simulator\n```\n\nand\n\n```bash\nls\n```"),
    bash_reply(
        "Understood, one block per reply. Writing the simulator.",
        f"cat > simulator/simulator.py <<'PYEOF'\n{SIMULATOR_CODE}PYEOF",
    ),
    bash_reply(
        "Now the tests, then run them.",
        f"cat > simulator/test_simulator.py <<'PYEOF'\n{SIMULATOR_TESTS}PYEOF\n"
        "python -m pytest -q simulator/test_simulator.py",
    ),
    bash_reply("Tests pass; submitting.", "echo NEMO_SUBMIT"),
]

MODEL = """import json
import time

import highspy

data = json.load(open("data.json"))
feeds = data["feeds"]
h = highspy.Highs()
h.silent()
kg = {f: h.addVariable(lb=0, name=f"kg[{f}]") for f in feeds}
h.addConstr(sum(data["protein"][f] * kg[f] for f in feeds) >= data["min_protein"])
h.addConstr(sum(data["fat"][f] * kg[f] for f in feeds) >= data["min_fat"])
start = time.time()
h.minimize(sum(data["cost"][f] * kg[f] for f in feeds))
ok = h.getModelStatus() == highspy.HighsModelStatus.kOptimal
solution = {
    "status": "optimal" if ok else "unknown",
    "objective": h.getObjectiveValue() if ok else None,
    "variables": {"kg": {f: h.val(kg[f]) for f in feeds}} if ok else {},
    "solver": "highs",
    "solve_seconds": time.time() - start,
    "model_file": "model.mps",
}
h.writeModel("model.mps")
json.dump(solution, open("solution.json", "w"), indent=2)
print(solution["status"], solution["objective"])
"""

OPTIMIZER = [
    bash_reply("Let me check the data.", "cat data.json"),
    bash_reply(
        "A small LP; writing it with HiGHS and running it.", f"cat > model.py <<'PYEOF'\n{MODEL}PYEOF\npython model.py"
    ),
    bash_reply("The model is optimal; submitting.", "echo NEMO_SUBMIT"),
]
