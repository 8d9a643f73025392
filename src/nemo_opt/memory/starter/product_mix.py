"""Oakline Furniture builds three products in its workshop: dining tables, chairs and
bookcases. Every unit needs lumber, carpentry time and finishing time:

| Product   | Lumber (board-feet) | Carpentry (h) | Finishing (h) | Profit ($) |
|-----------|---------------------|---------------|---------------|------------|
| Table     | 30                  | 5             | 2             | 120        |
| Chair     | 12                  | 2             | 1             | 45         |
| Bookcase  | 20                  | 4             | 2             | 90         |

Next week the workshop has 1,800 board-feet of lumber, 320 carpentry hours and 180
finishing hours. The sales team says the market will take at most 100 chairs, and because
chairs are sold in dining sets, at least two chairs must be built for every table.
Partly finished pieces simply carry over to the following week, so fractional quantities
are acceptable in the plan.

How many tables, chairs and bookcases should Oakline build next week to maximize its
total profit, and what is that maximum profit?
"""

import highspy

ANSWER = 7366.666666666667
SOLVER = "highs"
TAGS = ("lp", "product-mix", "production")

PROFIT = {"table": 120.0, "chair": 45.0, "bookcase": 90.0}
USAGE = {  # resource -> product -> amount used by one unit
    "lumber": {"table": 30.0, "chair": 12.0, "bookcase": 20.0},
    "carpentry": {"table": 5.0, "chair": 2.0, "bookcase": 4.0},
    "finishing": {"table": 2.0, "chair": 1.0, "bookcase": 2.0},
}
AVAILABLE = {"lumber": 1800.0, "carpentry": 320.0, "finishing": 180.0}
MAX_CHAIRS = 100.0
CHAIRS_PER_TABLE = 2.0


def solve() -> float:
    h = highspy.Highs()  # highspy leaves __init__ unannotated
    h.silent()
    # Continuous quantities: the story allows fractional units (work in progress carries over).
    make = {p: h.addVariable(lb=0.0, name=f"make_{p}") for p in PROFIT}
    for resource, per_unit in USAGE.items():
        h.addConstr(h.qsum(per_unit[p] * make[p] for p in PROFIT) <= AVAILABLE[resource], name=resource)
    # Market cap on chairs is a simple upper bound.
    h.addConstr(make["chair"] <= MAX_CHAIRS, name="chair_market")
    # "At least two chairs per table" is linear: chairs - 2 * tables >= 0.
    h.addConstr(make["chair"] - CHAIRS_PER_TABLE * make["table"] >= 0.0, name="chairs_per_table")

    h.maximize(h.qsum(PROFIT[p] * make[p] for p in PROFIT))
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        raise RuntimeError(f"solver status: {h.modelStatusToString(h.getModelStatus())}")
    for p in PROFIT:
        print(f"{p}: {h.val(make[p]):.2f}")
    return float(h.getObjectiveValue())


if __name__ == "__main__":
    print(f"objective: {solve()}")
