"""A furniture retailer must deliver twelve flat-packed orders to the same neighborhood
tomorrow. It uses small electric vans, each of which can carry at most 100 kg of cargo.
An order cannot be split across vans. The order weights are:

| Order | Weight (kg) | Order | Weight (kg) |
|-------|-------------|-------|-------------|
| A     | 48          | G     | 30          |
| B     | 45          | H     | 27          |
| C     | 42          | I     | 25          |
| D     | 38          | J     | 22          |
| E     | 35          | K     | 18          |
| F     | 33          | L     | 15          |

Every van that goes out costs the same fixed amount for the driver and the day's rental,
regardless of how full it is, and there are six vans available in the depot.

How should the orders be assigned to vans so that the fewest vans are used, and what is
the minimum number of vans needed?
"""

import highspy

ANSWER = 4.0
SOLVER = "highs"
TAGS = ("milp", "bin-packing", "loading", "logistics")

CAPACITY_KG = 100
WEIGHTS = {
    "A": 48, "B": 45, "C": 42, "D": 38, "E": 35, "F": 33,
    "G": 30, "H": 27, "I": 25, "J": 22, "K": 18, "L": 15,
}  # fmt: skip
VANS = range(6)


def solve() -> float:
    h = highspy.Highs()  # highspy leaves __init__ unannotated
    h.silent()
    h.setOptionValue("mip_rel_gap", 0.0)  # prove optimality instead of stopping at a 0.01% gap
    use = {v: h.addBinary(name=f"use_{v}") for v in VANS}
    load = {(o, v): h.addBinary(name=f"load_{o}_{v}") for o in WEIGHTS for v in VANS}

    for o in WEIGHTS:  # every order goes in exactly one van
        h.addConstr(h.qsum(load[o, v] for v in VANS) == 1, name=f"ship_{o}")
    for v in VANS:
        # Capacity times the "van used" binary: an unused van can carry nothing.
        h.addConstr(h.qsum(WEIGHTS[o] * load[o, v] for o in WEIGHTS) <= CAPACITY_KG * use[v], name=f"cap_{v}")
    # The vans are identical, so force them to be used in order (van 0 before van 1, ...).
    # This removes symmetric copies of each solution and speeds up the branch-and-bound.
    for v in VANS[1:]:
        h.addConstr(use[v] <= use[v - 1], name=f"order_{v}")

    h.minimize(h.qsum(use.values()))
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        raise RuntimeError(f"solver status: {h.modelStatusToString(h.getModelStatus())}")
    for v in VANS:
        orders = [o for o in WEIGHTS if h.val(load[o, v]) > 0.5]
        if orders:
            print(f"van {v}: {orders} ({sum(WEIGHTS[o] for o in orders)} kg)")
    return float(h.getObjectiveValue())


if __name__ == "__main__":
    print(f"objective: {solve()}")
