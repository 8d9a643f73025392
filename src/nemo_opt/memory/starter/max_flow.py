"""During a drought, a water utility wants to know the most water it can move from the
mountain reservoir to the city's treatment plant through its existing network of
aqueducts and pumping stations (A to E). Each aqueduct carries water in one direction
only, with these capacities in thousand cubic meters per day:

| Aqueduct             | Capacity |
|----------------------|----------|
| Reservoir -> A       | 30       |
| Reservoir -> B       | 25       |
| Reservoir -> C       | 20       |
| A -> B               | 8        |
| A -> D               | 18       |
| B -> D               | 10       |
| B -> E               | 15       |
| C -> B               | 5        |
| C -> E               | 22       |
| D -> E               | 6        |
| D -> Treatment plant | 30       |
| E -> Treatment plant | 40       |

Pumping stations cannot store water, so whatever flows into a station must flow out.

What is the maximum daily volume of water (in thousand cubic meters) that can be
delivered from the reservoir to the treatment plant, and how should it be routed?
"""

import pulp

ANSWER = 63.0
SOLVER = "pulp"
TAGS = ("lp", "max-flow", "network")

SOURCE, SINK = "reservoir", "plant"
CAPACITY = {
    ("reservoir", "A"): 30,
    ("reservoir", "B"): 25,
    ("reservoir", "C"): 20,
    ("A", "B"): 8,
    ("A", "D"): 18,
    ("B", "D"): 10,
    ("B", "E"): 15,
    ("C", "B"): 5,
    ("C", "E"): 22,
    ("D", "E"): 6,
    ("D", "plant"): 30,
    ("E", "plant"): 40,
}


def solve() -> float:
    prob = pulp.LpProblem("max_flow", pulp.LpMaximize)
    flow = {(i, j): pulp.LpVariable(f"flow_{i}_{j}", lowBound=0, upBound=cap) for (i, j), cap in CAPACITY.items()}
    nodes = {n for arc in CAPACITY for n in arc}
    # Objective: net flow into the sink (there are no arcs leaving it here, but writing it
    # as in - out keeps the model correct for any network).
    prob += pulp.lpSum(flow[a] for a in CAPACITY if a[1] == SINK) - pulp.lpSum(
        flow[a] for a in CAPACITY if a[0] == SINK
    )
    # Conservation at every intermediate station; source and sink are left free.
    for n in sorted(nodes - {SOURCE, SINK}):
        inflow = pulp.lpSum(flow[a] for a in CAPACITY if a[1] == n)
        outflow = pulp.lpSum(flow[a] for a in CAPACITY if a[0] == n)
        prob += inflow == outflow, f"conserve_{n}"

    prob.solve(pulp.PULP_CBC_CMD(msg=False))
    if pulp.LpStatus[prob.status] != "Optimal":
        raise RuntimeError(f"solver status: {pulp.LpStatus[prob.status]}")
    for (i, j), var in flow.items():
        print(f"{i} -> {j}: {var.value():.0f} / {CAPACITY[i, j]}")
    return float(pulp.value(prob.objective))


if __name__ == "__main__":
    print(f"objective: {solve()}")
