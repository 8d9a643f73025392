"""An IT services firm has five open support tickets and five technicians on shift. Each
technician must take exactly one ticket and each ticket needs exactly one technician.
Because skills differ, the estimated time (in hours) to resolve a ticket depends on who
handles it:

| Technician | Network outage | Database crash | Email migration | Laptop fleet | Firewall audit |
|------------|----------------|----------------|-----------------|--------------|----------------|
| Ana        | 6              | 9              | 5               | 7            | 8              |
| Ben        | 5              | 7              | 8               | 6            | 9              |
| Chloe      | 8              | 4              | 7               | 9            | 5              |
| Dev        | 7              | 6              | 4               | 4            | 8              |
| Emma       | 9              | 8              | 6               | 4            | 3              |

The firm bills clients a flat fee per ticket, so it wants to free up its technicians as
quickly as possible: it wants to minimize the total number of technician-hours spent.

Who should handle which ticket, and what is the minimum total number of hours?
"""

import highspy

ANSWER = 21.0
SOLVER = "highs"
TAGS = ("milp", "assignment", "matching", "scheduling")

TICKETS = ["network", "database", "email", "laptops", "firewall"]
HOURS = {
    "ana": {"network": 6, "database": 9, "email": 5, "laptops": 7, "firewall": 8},
    "ben": {"network": 5, "database": 7, "email": 8, "laptops": 6, "firewall": 9},
    "chloe": {"network": 8, "database": 4, "email": 7, "laptops": 9, "firewall": 5},
    "dev": {"network": 7, "database": 6, "email": 4, "laptops": 4, "firewall": 8},
    "emma": {"network": 9, "database": 8, "email": 6, "laptops": 4, "firewall": 3},
}


def solve() -> float:
    h = highspy.Highs()  # highspy leaves __init__ unannotated
    h.silent()
    h.setOptionValue("mip_rel_gap", 0.0)  # prove optimality instead of stopping at a 0.01% gap
    # assign[w, t] = 1 if technician w takes ticket t. The assignment polytope is integral,
    # so the LP relaxation would already be 0/1; binaries make the intent explicit.
    assign = {(w, t): h.addBinary(name=f"assign_{w}_{t}") for w in HOURS for t in TICKETS}
    for w in HOURS:
        h.addConstr(h.qsum(assign[w, t] for t in TICKETS) == 1, name=f"one_ticket_{w}")
    for t in TICKETS:
        h.addConstr(h.qsum(assign[w, t] for w in HOURS) == 1, name=f"one_tech_{t}")

    h.minimize(h.qsum(HOURS[w][t] * assign[w, t] for w in HOURS for t in TICKETS))
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        raise RuntimeError(f"solver status: {h.modelStatusToString(h.getModelStatus())}")
    for (w, t), var in assign.items():
        if h.val(var) > 0.5:
            print(f"{w} -> {t} ({HOURS[w][t]} h)")
    return float(h.getObjectiveValue())


if __name__ == "__main__":
    print(f"objective: {solve()}")
