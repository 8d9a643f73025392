"""A disaster-relief team is loading a light helicopter for a flight to a cut-off village.
The helicopter can carry at most 600 kg of cargo. The team has ten relief kits ready; each
kit can only be taken whole or left behind, and the coordinators have scored each one by
how urgently the village needs it:

| Kit                  | Weight (kg) | Priority score |
|----------------------|-------------|----------------|
| Water purification   | 95          | 60             |
| Field medical kit    | 70          | 75             |
| Tents                | 150         | 65             |
| Generator            | 180         | 70             |
| Food rations         | 120         | 80             |
| Blankets             | 60          | 30             |
| Satellite phone set  | 20          | 40             |
| Baby supplies        | 45          | 45             |
| Tools                | 85          | 35             |
| Hygiene kits         | 55          | 25             |

Which kits should be loaded so that the total weight stays within 600 kg and the total
priority score is as high as possible? What is the highest achievable total score?
"""

import pulp

ANSWER = 400.0
SOLVER = "pulp"
TAGS = ("milp", "knapsack", "binary", "selection")

CAPACITY_KG = 600
KITS = {  # kit -> (weight kg, priority score)
    "water_purification": (95, 60),
    "medical": (70, 75),
    "tents": (150, 65),
    "generator": (180, 70),
    "food": (120, 80),
    "blankets": (60, 30),
    "satellite_phones": (20, 40),
    "baby_supplies": (45, 45),
    "tools": (85, 35),
    "hygiene": (55, 25),
}


def solve() -> float:
    prob = pulp.LpProblem("knapsack", pulp.LpMaximize)
    # One binary per kit: kits are indivisible, so a continuous relaxation would cheat by
    # taking a fraction of the last kit.
    take = {k: pulp.LpVariable(f"take_{k}", cat=pulp.LpBinary) for k in KITS}
    prob += pulp.lpSum(score * take[k] for k, (_, score) in KITS.items())
    prob += pulp.lpSum(weight * take[k] for k, (weight, _) in KITS.items()) <= CAPACITY_KG, "weight"

    prob.solve(pulp.PULP_CBC_CMD(msg=False))
    if pulp.LpStatus[prob.status] != "Optimal":
        raise RuntimeError(f"solver status: {pulp.LpStatus[prob.status]}")
    chosen = [k for k, var in take.items() if var.value() > 0.5]
    print("loaded:", ", ".join(chosen))
    print("weight:", sum(KITS[k][0] for k in chosen))
    return float(pulp.value(prob.objective))


if __name__ == "__main__":
    print(f"objective: {solve()}")
