"""A chemical plant makes a specialty resin in batches on a line that must be cleaned and
set up before every production run. A setup costs $500 no matter how much is produced
in that week, and the line is large enough to make any quantity in a week once it is set
up. Finished resin can be stored, costing $1.50 per drum for every week it is held
(charged on the stock left at the end of each week). The purchase and processing cost
per drum is the same every week, so it does not affect the plan.

Customer orders (in drums) for the next eight weeks are:

| Week   | 1  | 2   | 3   | 4   | 5   | 6  | 7   | 8   |
|--------|----|-----|-----|-----|-----|----|-----|-----|
| Orders | 60 | 100 | 140 | 200 | 120 | 80 | 160 | 100 |

Orders must be shipped in the week they are due (no backorders). There is no stock at
the start of week 1, and none is wanted after week 8.

In which weeks should the plant set up the line and how much should it make each time,
so that the total of setup and storage costs is as small as possible? What is that
minimum cost?
"""

import pulp

ANSWER = 2640.0
SOLVER = "pulp"
TAGS = ("milp", "lot-sizing", "setup-cost", "inventory", "fixed-charge")

WEEKS = list(range(1, 9))
ORDERS = {1: 60, 2: 100, 3: 140, 4: 200, 5: 120, 6: 80, 7: 160, 8: 100}
SETUP_COST = 500.0
HOLDING_COST = 1.5


def solve() -> float:
    prob = pulp.LpProblem("lot_sizing", pulp.LpMinimize)
    make = {t: pulp.LpVariable(f"make_{t}", lowBound=0) for t in WEEKS}
    stock = {t: pulp.LpVariable(f"stock_{t}", lowBound=0) for t in WEEKS}
    setup = {t: pulp.LpVariable(f"setup_{t}", cat=pulp.LpBinary) for t in WEEKS}

    prob += pulp.lpSum(SETUP_COST * setup[t] + HOLDING_COST * stock[t] for t in WEEKS)
    for t in WEEKS:
        previous = stock[t - 1] if t > 1 else 0
        prob += previous + make[t] - ORDERS[t] == stock[t], f"balance_{t}"
        # Production only in setup weeks. The smallest valid big-M is the demand still to
        # come (producing more would only create unsellable stock); a tight M gives a much
        # stronger LP relaxation than an arbitrary huge number.
        remaining = sum(ORDERS[s] for s in WEEKS if s >= t)
        prob += make[t] <= remaining * setup[t], f"setup_link_{t}"
    prob += stock[WEEKS[-1]] == 0, "no_final_stock"

    prob.solve(pulp.PULP_CBC_CMD(msg=False))
    if pulp.LpStatus[prob.status] != "Optimal":
        raise RuntimeError(f"solver status: {pulp.LpStatus[prob.status]}")
    for t in WEEKS:
        if setup[t].value() > 0.5:
            print(f"week {t}: make {make[t].value():.0f} drums")
    return float(pulp.value(prob.objective))


if __name__ == "__main__":
    print(f"objective: {solve()}")
