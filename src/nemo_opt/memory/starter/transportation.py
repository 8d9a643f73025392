"""A bottled-water company has three plants and four regional distribution centers. Next
month the plants can ship at most the following numbers of pallets: Austin 400, Memphis
550 and Reno 350. The distribution centers have ordered exactly: Atlanta 300, Chicago
400, Denver 250 and Seattle 280 pallets.

The freight cost per pallet (in dollars) depends on the lane:

| From \\ To | Atlanta | Chicago | Denver | Seattle |
|-----------|---------|---------|--------|---------|
| Austin    | 9       | 11      | 8      | 15      |
| Memphis   | 5       | 6       | 10     | 16      |
| Reno      | 17      | 14      | 7      | 6       |

Any lane can carry any number of pallets, and a plant does not have to ship its full
capacity.

How many pallets should be shipped on each lane so that every distribution center
receives its order and the total freight cost is as small as possible? What is the
minimum total freight cost?
"""

import pulp

ANSWER = 8110.0
SOLVER = "pulp"
TAGS = ("lp", "transportation", "logistics", "network")

SUPPLY = {"austin": 400, "memphis": 550, "reno": 350}
DEMAND = {"atlanta": 300, "chicago": 400, "denver": 250, "seattle": 280}
COST = {
    "austin": {"atlanta": 9, "chicago": 11, "denver": 8, "seattle": 15},
    "memphis": {"atlanta": 5, "chicago": 6, "denver": 10, "seattle": 16},
    "reno": {"atlanta": 17, "chicago": 14, "denver": 7, "seattle": 6},
}


def solve() -> float:
    prob = pulp.LpProblem("transportation", pulp.LpMinimize)
    lanes = [(i, j) for i in SUPPLY for j in DEMAND]
    # With integer supplies and demands the transportation LP has an integral optimal
    # vertex, so continuous variables already give whole pallets.
    ship = {(i, j): pulp.LpVariable(f"ship_{i}_{j}", lowBound=0) for i, j in lanes}
    prob += pulp.lpSum(COST[i][j] * ship[i, j] for i, j in lanes)

    # Supply exceeds demand (1,300 vs 1,230), so plants get "<=" and customers get "==".
    for i, cap in SUPPLY.items():
        prob += pulp.lpSum(ship[i, j] for j in DEMAND) <= cap, f"supply_{i}"
    for j, need in DEMAND.items():
        prob += pulp.lpSum(ship[i, j] for i in SUPPLY) == need, f"demand_{j}"

    prob.solve(pulp.PULP_CBC_CMD(msg=False))
    if pulp.LpStatus[prob.status] != "Optimal":
        raise RuntimeError(f"solver status: {pulp.LpStatus[prob.status]}")
    for (i, j), var in ship.items():
        if var.value() > 1e-6:
            print(f"{i} -> {j}: {var.value():.0f}")
    return float(pulp.value(prob.objective))


if __name__ == "__main__":
    print(f"objective: {solve()}")
