"""A bakery delivers fresh bread every morning from its central oven to six cafes. It has
two identical vans, each holding at most 15 crates, and a van may return to the bakery
only once it has finished its route (no reloading). Each cafe must be visited by exactly
one van, which drops its whole order. Today's orders are:

| Cafe   | C1 | C2 | C3 | C4 | C5 | C6 |
|--------|----|----|----|----|----|----|
| Crates | 4  | 6  | 3  | 5  | 7  | 2  |

Driving distances in kilometers (the same in both directions) are:

|        | C1 | C2 | C3 | C4 | C5 | C6 |
|--------|----|----|----|----|----|----|
| Bakery | 8  | 12 | 10 | 15 | 9  | 14 |
| C1     |    | 6  | 13 | 17 | 11 | 7  |
| C2     |    |    | 14 | 12 | 18 | 5  |
| C3     |    |    |    | 7  | 6  | 16 |
| C4     |    |    |    |    | 10 | 13 |
| C5     |    |    |    |    |    | 17 |

Both vans start and end at the bakery, and using a van costs nothing beyond the distance
it drives. How should the cafes be split between the vans, and in which order should
each van visit its cafes, to minimize the total distance driven? What is that minimum
total distance in kilometers?
"""

import highspy

ANSWER = 68.0
SOLVER = "highs"
TAGS = ("milp", "vehicle-routing", "cvrp", "routing", "mtz")

DEPOT = "bakery"
DEMAND = {"C1": 4, "C2": 6, "C3": 3, "C4": 5, "C5": 7, "C6": 2}
VAN_CAPACITY, NUM_VANS = 15, 2
KM = {  # upper triangle of a symmetric matrix
    ("bakery", "C1"): 8, ("bakery", "C2"): 12, ("bakery", "C3"): 10, ("bakery", "C4"): 15,
    ("bakery", "C5"): 9, ("bakery", "C6"): 14,
    ("C1", "C2"): 6, ("C1", "C3"): 13, ("C1", "C4"): 17, ("C1", "C5"): 11, ("C1", "C6"): 7,
    ("C2", "C3"): 14, ("C2", "C4"): 12, ("C2", "C5"): 18, ("C2", "C6"): 5,
    ("C3", "C4"): 7, ("C3", "C5"): 6, ("C3", "C6"): 16,
    ("C4", "C5"): 10, ("C4", "C6"): 13,
    ("C5", "C6"): 17,
}  # fmt: skip


def km(a: str, b: str) -> int:
    return KM[a, b] if (a, b) in KM else KM[b, a]


def solve() -> float:
    nodes = [DEPOT, *DEMAND]
    arcs = [(i, j) for i in nodes for j in nodes if i != j]
    h = highspy.Highs()  # highspy leaves __init__ unannotated
    h.silent()
    h.setOptionValue("mip_rel_gap", 0.0)  # prove optimality instead of stopping at a 0.01% gap
    x = {(i, j): h.addBinary(name=f"x_{i}_{j}") for i, j in arcs}
    # load[c] = crates delivered by the van up to and including cafe c.
    load = {c: h.addVariable(lb=d, ub=VAN_CAPACITY, name=f"load_{c}") for c, d in DEMAND.items()}

    for c in DEMAND:  # each cafe is entered and left exactly once
        h.addConstr(h.qsum(x[i, c] for i in nodes if i != c) == 1, name=f"enter_{c}")
        h.addConstr(h.qsum(x[c, j] for j in nodes if j != c) == 1, name=f"leave_{c}")
    # Routes leaving the bakery = routes returning, and at most one route per van.
    vans_out = h.qsum(x[DEPOT, c] for c in DEMAND)
    h.addConstr(vans_out - h.qsum(x[c, DEPOT] for c in DEMAND) == 0, name="depot_balance")
    h.addConstr(vans_out <= NUM_VANS, name="fleet")
    # Load-based MTZ: if a van drives i -> j, its cumulative load grows by j's order:
    #   load[j] >= load[i] + d[j] - Q * (1 - x[i, j]).
    # Big-M = Q is enough because load[i] <= Q and load[j] >= d[j]. This both enforces the
    # capacity (load <= Q) and forbids subtours that skip the bakery.
    for i in DEMAND:
        for j in DEMAND:
            if i != j:
                h.addConstr(load[j] - load[i] - VAN_CAPACITY * x[i, j] >= DEMAND[j] - VAN_CAPACITY, name=f"mtz_{i}_{j}")

    h.minimize(h.qsum(km(i, j) * x[i, j] for i, j in arcs))
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        raise RuntimeError(f"solver status: {h.modelStatusToString(h.getModelStatus())}")
    for first in (c for c in DEMAND if h.val(x[DEPOT, c]) > 0.5):
        route = [DEPOT, first]
        while route[-1] != DEPOT:
            route.append(next(j for j in nodes if j != route[-1] and h.val(x[route[-1], j]) > 0.5))
        print("van route:", " -> ".join(route))
    return float(h.getObjectiveValue())


if __name__ == "__main__":
    print(f"objective: {solve()}")
