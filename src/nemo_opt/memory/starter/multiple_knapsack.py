"""A freight forwarder has two trucks leaving for the same city tonight: a large truck
that can carry 800 kg and a small one that can carry 650 kg. Nine consignments are
waiting at the dock. A consignment cannot be split between trucks, and anything not
loaded tonight goes to a partner carrier, which earns the forwarder nothing. The weight
of each consignment and the fee the forwarder earns for delivering it are:

| Consignment | Weight (kg) | Fee ($) |
|-------------|-------------|---------|
| 1           | 310         | 620     |
| 2           | 260         | 540     |
| 3           | 190         | 430     |
| 4           | 420         | 760     |
| 5           | 150         | 300     |
| 6           | 230         | 480     |
| 7           | 340         | 650     |
| 8           | 120         | 260     |
| 9           | 280         | 500     |

Which consignments should go on which truck to maximize the total fees earned tonight,
and what is that maximum total fee?
"""

import highspy

ANSWER = 2980.0
SOLVER = "highs"
TAGS = ("milp", "multiple-knapsack", "loading", "binary")

TRUCKS = {"large": 800, "small": 650}  # truck -> capacity in kg
CONSIGNMENTS = {  # consignment -> (weight kg, fee $)
    1: (310, 620),
    2: (260, 540),
    3: (190, 430),
    4: (420, 760),
    5: (150, 300),
    6: (230, 480),
    7: (340, 650),
    8: (120, 260),
    9: (280, 500),
}


def solve() -> float:
    h = highspy.Highs()  # highspy leaves __init__ unannotated
    h.silent()
    h.setOptionValue("mip_rel_gap", 0.0)  # prove optimality instead of stopping at a 0.01% gap
    load = {(c, t): h.addBinary(name=f"load_{c}_{t}") for c in CONSIGNMENTS for t in TRUCKS}

    # Each consignment rides on at most one truck ("<= 1": leaving it behind is allowed).
    for c in CONSIGNMENTS:
        h.addConstr(h.qsum(load[c, t] for t in TRUCKS) <= 1, name=f"once_{c}")
    for t, capacity in TRUCKS.items():
        h.addConstr(h.qsum(CONSIGNMENTS[c][0] * load[c, t] for c in CONSIGNMENTS) <= capacity, name=f"cap_{t}")

    h.maximize(h.qsum(CONSIGNMENTS[c][1] * load[c, t] for c in CONSIGNMENTS for t in TRUCKS))
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        raise RuntimeError(f"solver status: {h.modelStatusToString(h.getModelStatus())}")
    for t in TRUCKS:
        items = [c for c in CONSIGNMENTS if h.val(load[c, t]) > 0.5]
        print(f"{t} truck: {items} ({sum(CONSIGNMENTS[c][0] for c in items)} kg)")
    return float(h.getObjectiveValue())


if __name__ == "__main__":
    print(f"objective: {solve()}")
