"""A cement producer ships bagged cement from two plants to three building-supply stores,
either directly or through two cross-dock hubs. This week the North plant has 60 tonnes
to ship and the South plant has 40 tonnes; store 1 needs 30 tonnes, store 2 needs 40
and store 3 needs 30. Hubs neither produce nor keep cement: whatever enters a hub must
leave it.

The usable lanes, their weekly capacity and the cost per tonne are:

| Lane               | Capacity (t) | Cost ($/t) |
|--------------------|--------------|------------|
| North -> Hub A     | 50           | 4          |
| North -> Hub B     | 40           | 6          |
| North -> Store 1   | 15           | 9          |
| South -> Hub A     | 30           | 5          |
| South -> Hub B     | 40           | 3          |
| South -> Store 3   | 10           | 7          |
| Hub A -> Hub B     | 20           | 1          |
| Hub A -> Store 1   | 30           | 3          |
| Hub A -> Store 2   | 25           | 6          |
| Hub B -> Store 2   | 35           | 4          |
| Hub B -> Store 3   | 40           | 5          |

Lanes are one-way. How should the cement be routed so that every store gets exactly what
it needs at the lowest total shipping cost, and what is that cost?
"""

import highspy

ANSWER = 795.0
SOLVER = "highs"
TAGS = ("lp", "min-cost-flow", "network", "transshipment")

# Net supply at each node: positive = source, negative = demand, zero = transshipment hub.
SUPPLY = {"north": 60, "south": 40, "hub_a": 0, "hub_b": 0, "store_1": -30, "store_2": -40, "store_3": -30}
ARCS = {  # (from, to) -> (capacity, cost per tonne)
    ("north", "hub_a"): (50, 4),
    ("north", "hub_b"): (40, 6),
    ("north", "store_1"): (15, 9),
    ("south", "hub_a"): (30, 5),
    ("south", "hub_b"): (40, 3),
    ("south", "store_3"): (10, 7),
    ("hub_a", "hub_b"): (20, 1),
    ("hub_a", "store_1"): (30, 3),
    ("hub_a", "store_2"): (25, 6),
    ("hub_b", "store_2"): (35, 4),
    ("hub_b", "store_3"): (40, 5),
}


def solve() -> float:
    h = highspy.Highs()  # highspy leaves __init__ unannotated
    h.silent()
    flow = {(i, j): h.addVariable(lb=0, ub=cap, name=f"flow_{i}_{j}") for (i, j), (cap, _) in ARCS.items()}
    # Flow conservation: outflow - inflow = net supply. Total supply equals total demand
    # (100 t), so equalities are consistent; with integer data the optimal flows are integer.
    for node, net_supply in SUPPLY.items():
        outflow = h.qsum(flow[a] for a in ARCS if a[0] == node)
        inflow = h.qsum(flow[a] for a in ARCS if a[1] == node)
        h.addConstr(outflow - inflow == net_supply, name=f"balance_{node}")

    h.minimize(h.qsum(cost * flow[a] for a, (_, cost) in ARCS.items()))
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        raise RuntimeError(f"solver status: {h.modelStatusToString(h.getModelStatus())}")
    for (i, j), var in flow.items():
        if h.val(var) > 1e-6:
            print(f"{i} -> {j}: {h.val(var):.0f} t")
    return float(h.getObjectiveValue())


if __name__ == "__main__":
    print(f"objective: {solve()}")
