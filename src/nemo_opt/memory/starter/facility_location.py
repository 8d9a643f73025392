"""A grocery chain is redesigning its French distribution network. It can rent warehouses in
up to four cities; each has a fixed weekly operating cost and a weekly capacity:

| Warehouse  | Fixed cost (EUR/week) | Capacity (pallets/week) |
|------------|-----------------------|-------------------------|
| Lyon       | 12,000                | 900                     |
| Lille      | 10,000                | 700                     |
| Bordeaux   | 9,000                 | 600                     |
| Strasbourg | 11,000                | 800                     |

Six regional store clusters need these weekly volumes: Paris 480, Marseille 320,
Toulouse 260, Nice 180, Nantes 220 and Rennes 150 pallets. The trucking cost per pallet
(EUR) from each warehouse to each cluster is:

| From \\ To  | Paris | Marseille | Toulouse | Nice | Nantes | Rennes |
|------------|-------|-----------|----------|------|--------|--------|
| Lyon       | 46    | 32        | 54       | 44   | 68     | 70     |
| Lille      | 22    | 98        | 90       | 104  | 64     | 58     |
| Bordeaux   | 58    | 64        | 25       | 80   | 33     | 45     |
| Strasbourg | 48    | 80        | 96       | 75   | 87     | 85     |

A cluster may be served from several warehouses, but only from warehouses that are open.

Which warehouses should the chain open, and how should the volumes flow, to minimize the
total weekly cost of fixed charges plus trucking? What is that minimum weekly cost?
"""

import pulp

ANSWER = 80620.0
SOLVER = "pulp"
TAGS = ("milp", "facility-location", "capacitated", "fixed-charge", "logistics")

WAREHOUSES = {  # site -> (fixed weekly cost, capacity)
    "lyon": (12000, 900),
    "lille": (10000, 700),
    "bordeaux": (9000, 600),
    "strasbourg": (11000, 800),
}
DEMAND = {"paris": 480, "marseille": 320, "toulouse": 260, "nice": 180, "nantes": 220, "rennes": 150}
COST = {
    "lyon": {"paris": 46, "marseille": 32, "toulouse": 54, "nice": 44, "nantes": 68, "rennes": 70},
    "lille": {"paris": 22, "marseille": 98, "toulouse": 90, "nice": 104, "nantes": 64, "rennes": 58},
    "bordeaux": {"paris": 58, "marseille": 64, "toulouse": 25, "nice": 80, "nantes": 33, "rennes": 45},
    "strasbourg": {"paris": 48, "marseille": 80, "toulouse": 96, "nice": 75, "nantes": 87, "rennes": 85},
}


def solve() -> float:
    prob = pulp.LpProblem("facility_location", pulp.LpMinimize)
    is_open = {w: pulp.LpVariable(f"open_{w}", cat=pulp.LpBinary) for w in WAREHOUSES}
    flow = {(w, c): pulp.LpVariable(f"flow_{w}_{c}", lowBound=0) for w in WAREHOUSES for c in DEMAND}

    prob += pulp.lpSum(WAREHOUSES[w][0] * is_open[w] for w in WAREHOUSES) + pulp.lpSum(
        COST[w][c] * flow[w, c] for w in WAREHOUSES for c in DEMAND
    )
    for c, need in DEMAND.items():
        prob += pulp.lpSum(flow[w, c] for w in WAREHOUSES) == need, f"demand_{c}"
    for w, (_, capacity) in WAREHOUSES.items():
        # Capacity is only available when the warehouse is open.
        prob += pulp.lpSum(flow[w, c] for c in DEMAND) <= capacity * is_open[w], f"capacity_{w}"
        # Redundant for integer solutions but a much tighter LP relaxation: no single lane
        # can carry more than the cluster's demand, and nothing at all if the site is closed.
        for c, need in DEMAND.items():
            prob += flow[w, c] <= need * is_open[w], f"link_{w}_{c}"

    prob.solve(pulp.PULP_CBC_CMD(msg=False))
    if pulp.LpStatus[prob.status] != "Optimal":
        raise RuntimeError(f"solver status: {pulp.LpStatus[prob.status]}")
    print("open:", [w for w in WAREHOUSES if is_open[w].value() > 0.5])
    for (w, c), var in flow.items():
        if var.value() > 1e-6:
            print(f"{w} -> {c}: {var.value():.0f}")
    return float(pulp.value(prob.objective))


if __name__ == "__main__":
    print(f"objective: {solve()}")
