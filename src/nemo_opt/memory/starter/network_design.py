"""A regional internet provider must carry traffic from its data center to three towns:
Ashford needs 40 Gbps, Brook needs 35 Gbps and Carlow needs 25 Gbps. It can lease fiber
links between its sites; a leased link has a fixed monthly fee, a maximum capacity and a
usage cost per Gbps carried. Traffic flows one way, from the data center toward the towns,
and may pass through two relay stations (R1 and R2):

| Link                   | Fixed fee ($/month) | Capacity (Gbps) | Usage cost ($/Gbps) |
|------------------------|---------------------|-----------------|---------------------|
| Data center -> R1      | 300                 | 80              | 2                   |
| Data center -> R2      | 250                 | 70              | 3                   |
| Data center -> Ashford | 400                 | 40              | 5                   |
| R1 -> R2               | 100                 | 30              | 1                   |
| R1 -> Ashford          | 150                 | 50              | 2                   |
| R1 -> Brook            | 200                 | 50              | 3                   |
| R1 -> Carlow           | 220                 | 30              | 4                   |
| R2 -> Brook            | 180                 | 40              | 2                   |
| R2 -> Carlow           | 120                 | 40              | 2                   |

A link that is not leased cannot carry traffic; a leased link costs its full fee even
if lightly used. Relay stations only forward traffic.

Which links should the provider lease, and how should traffic be routed, to serve all
three towns at minimum total monthly cost? What is that minimum cost?
"""

import highspy

ANSWER = 1450.0
SOLVER = "highs"
TAGS = ("milp", "network-design", "fixed-charge", "telecom", "network")

DEMAND = {"ashford": 40, "brook": 35, "carlow": 25}
SOURCE = "datacenter"
LINKS = {  # (from, to) -> (fixed fee, capacity, usage cost)
    ("datacenter", "r1"): (300, 80, 2),
    ("datacenter", "r2"): (250, 70, 3),
    ("datacenter", "ashford"): (400, 40, 5),
    ("r1", "r2"): (100, 30, 1),
    ("r1", "ashford"): (150, 50, 2),
    ("r1", "brook"): (200, 50, 3),
    ("r1", "carlow"): (220, 30, 4),
    ("r2", "brook"): (180, 40, 2),
    ("r2", "carlow"): (120, 40, 2),
}


def solve() -> float:
    nodes = sorted({n for link in LINKS for n in link})
    net_supply = {n: -DEMAND.get(n, 0) for n in nodes}
    net_supply[SOURCE] = sum(DEMAND.values())

    h = highspy.Highs()  # highspy leaves __init__ unannotated
    h.silent()
    h.setOptionValue("mip_rel_gap", 0.0)  # prove optimality instead of stopping at a 0.01% gap
    lease = {a: h.addBinary(name=f"lease_{a[0]}_{a[1]}") for a in LINKS}
    flow = {a: h.addVariable(lb=0, name=f"flow_{a[0]}_{a[1]}") for a in LINKS}

    for n in nodes:
        out_flow = h.qsum(flow[a] for a in LINKS if a[0] == n)
        in_flow = h.qsum(flow[a] for a in LINKS if a[1] == n)
        h.addConstr(out_flow - in_flow == net_supply[n], name=f"balance_{n}")
    for a, (_, capacity, _) in LINKS.items():
        # Fixed-charge link: flow is allowed only if the link is leased. The natural big-M
        # is the link capacity, which is also a real limit, so one constraint does both.
        h.addConstr(flow[a] <= capacity * lease[a], name=f"capacity_{a[0]}_{a[1]}")

    h.minimize(h.qsum(fee * lease[a] + usage * flow[a] for a, (fee, _, usage) in LINKS.items()))
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        raise RuntimeError(f"solver status: {h.modelStatusToString(h.getModelStatus())}")
    for a in LINKS:
        if h.val(lease[a]) > 0.5:
            print(f"lease {a[0]} -> {a[1]}: {h.val(flow[a]):.0f} Gbps")
    return float(h.getObjectiveValue())


if __name__ == "__main__":
    print(f"objective: {solve()}")
