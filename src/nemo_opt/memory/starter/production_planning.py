"""A maker of air-conditioning units is planning production for January to June. Forecast
demand (units) is:

| Month  | Jan   | Feb   | Mar   | Apr   | May   | Jun   |
|--------|-------|-------|-------|-------|-------|-------|
| Demand | 1,200 | 1,500 | 2,100 | 2,900 | 1,800 | 1,400 |

Each month the plant can build up to 1,600 units on regular time at $30 per unit and up
to 400 more on overtime at $42 per unit. Units can be stored to meet later demand at a
cost of $2 per unit per month, based on the stock on hand at the end of each month; the
warehouse holds at most 800 units. Customers accept late delivery, but every unit
delivered one month late costs $8 in discounts (a unit two months late costs $16, and
so on, charged on the backlog at the end of each month). All orders must be delivered by
the end of June.

There are 200 units in stock at the start of January, and the company wants at least
300 units in stock at the end of June for July's early orders.

How much should be produced on regular time and on overtime each month to minimize
the total production, overtime, storage and late-delivery cost over the six months?
What is that minimum total cost?
"""

import highspy

ANSWER = 353200.0
SOLVER = "highs"
TAGS = ("lp", "production-planning", "inventory", "overtime", "backlog", "multi-period")

MONTHS = ["jan", "feb", "mar", "apr", "may", "jun"]
DEMAND = {"jan": 1200, "feb": 1500, "mar": 2100, "apr": 2900, "may": 1800, "jun": 1400}
REGULAR_CAP, REGULAR_COST = 1600, 30.0
OVERTIME_CAP, OVERTIME_COST = 400, 42.0
HOLDING_COST, BACKLOG_COST = 2.0, 8.0
STORAGE_CAP = 800
INITIAL_STOCK, FINAL_STOCK_MIN = 200, 300


def solve() -> float:
    h = highspy.Highs()  # highspy leaves __init__ unannotated
    h.silent()
    regular = {m: h.addVariable(lb=0, ub=REGULAR_CAP, name=f"regular_{m}") for m in MONTHS}
    overtime = {m: h.addVariable(lb=0, ub=OVERTIME_CAP, name=f"overtime_{m}") for m in MONTHS}
    stock = {m: h.addVariable(lb=0, ub=STORAGE_CAP, name=f"stock_{m}") for m in MONTHS}
    backlog = {m: h.addVariable(lb=0, name=f"backlog_{m}") for m in MONTHS}

    # Flow balance per month, with net inventory = stock - backlog:
    #   (stock - backlog) at end of previous month + production - demand = (stock - backlog) now.
    # Both stock and backlog cost money, so the optimum never carries both in the same month.
    for k, m in enumerate(MONTHS):
        if k == 0:
            h.addConstr(regular[m] + overtime[m] - stock[m] + backlog[m] == DEMAND[m] - INITIAL_STOCK, name=f"bal_{m}")
        else:
            prev = MONTHS[k - 1]
            h.addConstr(
                stock[prev] - backlog[prev] + regular[m] + overtime[m] - stock[m] + backlog[m] == DEMAND[m],
                name=f"bal_{m}",
            )
    # Everything must be delivered by June, and July needs a safety stock.
    h.addConstr(backlog["jun"] == 0, name="no_final_backlog")
    h.addConstr(stock["jun"] >= FINAL_STOCK_MIN, name="final_stock")

    h.minimize(
        h.qsum(
            REGULAR_COST * regular[m]
            + OVERTIME_COST * overtime[m]
            + HOLDING_COST * stock[m]
            + BACKLOG_COST * backlog[m]
            for m in MONTHS
        )
    )
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        raise RuntimeError(f"solver status: {h.modelStatusToString(h.getModelStatus())}")
    for m in MONTHS:
        print(
            f"{m}: regular {h.val(regular[m]):.0f}, overtime {h.val(overtime[m]):.0f}, "
            f"stock {h.val(stock[m]):.0f}, backlog {h.val(backlog[m]):.0f}"
        )
    return float(h.getObjectiveValue())


if __name__ == "__main__":
    print(f"objective: {solve()}")
