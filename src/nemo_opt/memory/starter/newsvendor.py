"""A merchandise vendor must order commemorative T-shirts for a championship final two
weeks before the game; there is no chance to reorder. Each shirt costs $8 from the
printer and sells for $25 at the stadium. Shirts left over after the game are sold to a
discount outlet for $5 each, and unmet demand is simply lost.

Based on ticket sales and past finals, the vendor's demand forecast is:

| Demand scenario (shirts) | 800  | 1,200 | 1,600 | 2,000 | 2,400 |
|--------------------------|------|-------|-------|-------|-------|
| Probability              | 0.10 | 0.25  | 0.30  | 0.25  | 0.10  |

The printer can deliver at most 3,000 shirts, and any quantity up to that (including
quantities between the scenario values) can be ordered.

How many shirts should the vendor order to maximize expected profit, and what is the
maximum expected profit in dollars?
"""

import highspy

ANSWER = 25200.0
SOLVER = "highs"
TAGS = ("lp", "newsvendor", "inventory", "stochastic", "scenarios")

UNIT_COST, PRICE, SALVAGE = 8.0, 25.0, 5.0
MAX_ORDER = 3000.0
SCENARIOS = {  # demand -> probability
    800: 0.10,
    1200: 0.25,
    1600: 0.30,
    2000: 0.25,
    2400: 0.10,
}


def solve() -> float:
    h = highspy.Highs()  # highspy leaves __init__ unannotated
    h.silent()
    # First-stage decision (before demand is known): the order quantity.
    order = h.addVariable(lb=0, ub=MAX_ORDER, name="order")
    # Second-stage decisions, one copy per scenario: shirts sold at full price.
    sold = {d: h.addVariable(lb=0, ub=d, name=f"sold_{d}") for d in SCENARIOS}
    for d in SCENARIOS:
        # Cannot sell more than was ordered (the bound above caps sales at demand).
        h.addConstr(sold[d] <= order, name=f"stock_{d}")

    # Expected profit = -cost*order + sum_s p_s * (price*sold_s + salvage*(order - sold_s)).
    # Collecting terms keeps it linear: order gets (-cost + salvage), sold_s gets
    # p_s * (price - salvage). Maximizing pushes sold_s up to min(order, demand_s).
    h.maximize((SALVAGE - UNIT_COST) * order + h.qsum(p * (PRICE - SALVAGE) * sold[d] for d, p in SCENARIOS.items()))
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        raise RuntimeError(f"solver status: {h.modelStatusToString(h.getModelStatus())}")
    print(f"order {h.val(order):.0f} shirts")
    return float(h.getObjectiveValue())


if __name__ == "__main__":
    print(f"objective: {solve()}")
