"""A craft brewery's sales representative is based in Bristol and must visit bars in five
other towns this week: Bath, Swindon, Gloucester, Cardiff and Newport. She will drive a
single loop that starts and ends in Bristol and visits every other town exactly once.
Road distances in miles are the same in both directions:

|            | Bath | Swindon | Gloucester | Cardiff | Newport |
|------------|------|---------|------------|---------|---------|
| Bristol    | 13   | 41      | 35         | 44      | 32      |
| Bath       |      | 33      | 48         | 56      | 45      |
| Swindon    |      |         | 35         | 83      | 71      |
| Gloucester |      |         |            | 60      | 47      |
| Cardiff    |      |         |            |         | 12      |

In which order should she visit the towns to make the total driving distance as short as
possible, and how many miles is that shortest loop?
"""

import pulp

ANSWER = 184.0
SOLVER = "pulp"
TAGS = ("milp", "tsp", "routing", "mtz", "subtour-elimination")

TOWNS = ["bristol", "bath", "swindon", "gloucester", "cardiff", "newport"]
DEPOT = "bristol"
MILES = {  # upper triangle; the matrix is symmetric
    ("bristol", "bath"): 13, ("bristol", "swindon"): 41, ("bristol", "gloucester"): 35,
    ("bristol", "cardiff"): 44, ("bristol", "newport"): 32,
    ("bath", "swindon"): 33, ("bath", "gloucester"): 48, ("bath", "cardiff"): 56, ("bath", "newport"): 45,
    ("swindon", "gloucester"): 35, ("swindon", "cardiff"): 83, ("swindon", "newport"): 71,
    ("gloucester", "cardiff"): 60, ("gloucester", "newport"): 47,
    ("cardiff", "newport"): 12,
}  # fmt: skip


def dist(a: str, b: str) -> int:
    return MILES[a, b] if (a, b) in MILES else MILES[b, a]


def solve() -> float:
    prob = pulp.LpProblem("tsp", pulp.LpMinimize)
    arcs = [(i, j) for i in TOWNS for j in TOWNS if i != j]
    x = {(i, j): pulp.LpVariable(f"x_{i}_{j}", cat=pulp.LpBinary) for i, j in arcs}
    # MTZ order variables: u[town] = position of the town in the tour (depot fixed at 0).
    n = len(TOWNS)
    u = {t: pulp.LpVariable(f"u_{t}", lowBound=1, upBound=n - 1) for t in TOWNS if t != DEPOT}

    prob += pulp.lpSum(dist(i, j) * x[i, j] for i, j in arcs)
    for t in TOWNS:  # leave and enter every town exactly once
        prob += pulp.lpSum(x[t, j] for j in TOWNS if j != t) == 1, f"leave_{t}"
        prob += pulp.lpSum(x[i, t] for i in TOWNS if i != t) == 1, f"enter_{t}"
    # Miller-Tucker-Zemlin: if the tour goes i -> j (both non-depot) then u[j] >= u[i] + 1.
    # With big-M = n - 1 the constraint is slack when x[i, j] = 0. Any subtour that avoids
    # the depot would need strictly increasing positions around a cycle, which is
    # impossible, so only a single tour through the depot survives.
    for i, j in arcs:
        if i != DEPOT and j != DEPOT:
            prob += u[i] - u[j] + (n - 1) * x[i, j] <= n - 2, f"mtz_{i}_{j}"

    prob.solve(pulp.PULP_CBC_CMD(msg=False))
    if pulp.LpStatus[prob.status] != "Optimal":
        raise RuntimeError(f"solver status: {pulp.LpStatus[prob.status]}")
    tour, here = [DEPOT], DEPOT
    while len(tour) <= n - 1:
        here = next(j for j in TOWNS if j != here and x[here, j].value() > 0.5)
        tour.append(here)
    print("tour:", " -> ".join([*tour, DEPOT]))
    return float(pulp.value(prob.objective))


if __name__ == "__main__":
    print(f"objective: {solve()}")
