"""A paint manufacturer makes two products, interior and exterior paint, sold in drums.
Next month it can sell up to 600 drums of interior paint at $28 per drum and up to 500
drums of exterior paint at $40 per drum (other variable costs are already deducted from
these prices). Quantities do not have to be whole drums, since partial batches are
stored as bulk.

Each drum of interior paint needs 2 kg of acrylic resin and 1 hour of mixing time; each
drum of exterior paint needs 3 kg of resin and 1.5 hours of mixing. The mixing area has
1,100 hours available.

The resin supplier offers incremental volume discounts on the month's total purchase:

| Resin purchased       | Price per kg |
|-----------------------|--------------|
| First 1,000 kg        | $6.00        |
| Next 1,000 kg         | $4.50        |
| Next 1,500 kg         | $3.50        |

The supplier cannot deliver more than 3,500 kg in the month, and resin that is bought
but not used has no value.

How many drums of each paint should be made, and how much resin bought, to maximize the
month's profit (sales minus resin cost)? What is that maximum profit?
"""

import pulp

ANSWER = 18933.333333333332
SOLVER = "pulp"
TAGS = ("milp", "piecewise-linear", "quantity-discount", "production", "non-convex")

PRODUCTS = {  # product -> (price $/drum, max sales, resin kg/drum, mixing h/drum)
    "interior": (28.0, 600.0, 2.0, 1.0),
    "exterior": (40.0, 500.0, 3.0, 1.5),
}
MIXING_HOURS = 1100.0
SEGMENTS = [(1000.0, 6.00), (1000.0, 4.50), (1500.0, 3.50)]  # (kg in tier, $/kg), in order


def solve() -> float:
    prob = pulp.LpProblem("piecewise_production", pulp.LpMaximize)
    make = {p: pulp.LpVariable(f"make_{p}", lowBound=0, upBound=PRODUCTS[p][1]) for p in PRODUCTS}
    # Incremental formulation: tier[k] = kg bought at tier k's price.
    tier = [pulp.LpVariable(f"tier_{k}", lowBound=0, upBound=size) for k, (size, _) in enumerate(SEGMENTS)]
    # The cost is concave (cheaper per kg at higher volume), so maximizing profit would
    # happily fill the cheap tiers first. Binaries force the tiers to fill in order:
    # used[k] = 1 if tier k is used at all; tier k - 1 must then be full.
    used = [pulp.LpVariable(f"used_{k}", cat=pulp.LpBinary) for k in range(len(SEGMENTS))]
    for k, (size, _) in enumerate(SEGMENTS):
        prob += tier[k] <= size * used[k], f"tier_open_{k}"
        if k > 0:
            prob += tier[k - 1] >= SEGMENTS[k - 1][0] * used[k], f"tier_full_{k - 1}"

    resin_bought = pulp.lpSum(tier)
    prob += pulp.lpSum(make[p] * PRODUCTS[p][2] for p in PRODUCTS) <= resin_bought, "resin"
    prob += pulp.lpSum(make[p] * PRODUCTS[p][3] for p in PRODUCTS) <= MIXING_HOURS, "mixing"

    revenue = pulp.lpSum(PRODUCTS[p][0] * make[p] for p in PRODUCTS)
    resin_cost = pulp.lpSum(price * tier[k] for k, (_, price) in enumerate(SEGMENTS))
    prob += revenue - resin_cost

    prob.solve(pulp.PULP_CBC_CMD(msg=False))
    if pulp.LpStatus[prob.status] != "Optimal":
        raise RuntimeError(f"solver status: {pulp.LpStatus[prob.status]}")
    for p in PRODUCTS:
        print(f"{p}: {make[p].value():.1f} drums")
    print(f"resin bought: {sum(t.value() for t in tier):.1f} kg")
    return float(pulp.value(prob.objective))


if __name__ == "__main__":
    print(f"objective: {solve()}")
