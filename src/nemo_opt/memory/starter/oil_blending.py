"""A small refinery blends three crude streams into three saleable products. The crudes
available each day are:

| Crude       | Available (bbl/day) | Cost ($/bbl) | Octane | Sulfur (%) |
|-------------|---------------------|--------------|--------|------------|
| Light sweet | 5,000               | 78           | 94     | 0.3        |
| Medium      | 6,000               | 70           | 88     | 1.0        |
| Heavy sour  | 8,000               | 62           | 82     | 2.2        |

The products, their selling prices and their quality and market limits are:

| Product         | Price ($/bbl) | Min octane | Max sulfur (%) | Min sales | Max sales |
|-----------------|---------------|------------|----------------|-----------|-----------|
| Premium         | 104           | 92         | 0.8            | 2,000     | 4,000     |
| Regular         | 94            | 87         | 1.5            | 3,000     | 9,000     |
| Marine diesel   | 76            | none       | 2.0            | 0         | 6,000     |

Octane and sulfur blend linearly by volume, there is no volume loss in blending, and every
barrel blended costs an extra $4 to process. Unused crude can stay in the tanks.

How many barrels of each crude should go into each product to maximize the refinery's
daily profit (sales revenue minus crude and processing costs), and what is that profit?
"""

import highspy

ANSWER = 338727.2727272727
SOLVER = "highs"
TAGS = ("lp", "blending", "refinery", "quality-constraints")

CRUDES = {  # crude -> (available bbl, cost $/bbl, octane, sulfur %)
    "light_sweet": (5000.0, 78.0, 94.0, 0.3),
    "medium": (6000.0, 70.0, 88.0, 1.0),
    "heavy_sour": (8000.0, 62.0, 82.0, 2.2),
}
PRODUCTS = {  # product -> (price, min octane or None, max sulfur, min sales, max sales)
    "premium": (104.0, 92.0, 0.8, 2000.0, 4000.0),
    "regular": (94.0, 87.0, 1.5, 3000.0, 9000.0),
    "marine_diesel": (76.0, None, 2.0, 0.0, 6000.0),
}
PROCESSING_COST = 4.0


def solve() -> float:
    h = highspy.Highs()  # highspy leaves __init__ unannotated
    h.silent()
    # blend[c, p] = barrels of crude c put into product p.
    blend = {(c, p): h.addVariable(lb=0.0, name=f"blend_{c}_{p}") for c in CRUDES for p in PRODUCTS}

    for c, (available, _, _, _) in CRUDES.items():
        h.addConstr(h.qsum(blend[c, p] for p in PRODUCTS) <= available, name=f"supply_{c}")

    for p, (_, min_octane, max_sulfur, min_sales, max_sales) in PRODUCTS.items():
        volume = h.qsum(blend[c, p] for c in CRUDES)
        h.addConstr(volume >= min_sales, name=f"min_sales_{p}")
        h.addConstr(volume <= max_sales, name=f"max_sales_{p}")
        # A quality bound on a ratio, sum(q_c x_c) / sum(x_c) >= q_min, is linearized by
        # multiplying through by the (non-negative) volume: sum((q_c - q_min) x_c) >= 0.
        if min_octane is not None:
            h.addConstr(h.qsum((CRUDES[c][2] - min_octane) * blend[c, p] for c in CRUDES) >= 0.0, name=f"oct_{p}")
        h.addConstr(h.qsum((CRUDES[c][3] - max_sulfur) * blend[c, p] for c in CRUDES) <= 0.0, name=f"sulfur_{p}")

    # Margin per barrel of crude c in product p: price - crude cost - processing cost.
    h.maximize(
        h.qsum((PRODUCTS[p][0] - CRUDES[c][1] - PROCESSING_COST) * blend[c, p] for c in CRUDES for p in PRODUCTS)
    )
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        raise RuntimeError(f"solver status: {h.modelStatusToString(h.getModelStatus())}")
    for (c, p), var in blend.items():
        if h.val(var) > 1e-6:
            print(f"{c} -> {p}: {h.val(var):.1f} bbl")
    return float(h.getObjectiveValue())


if __name__ == "__main__":
    print(f"objective: {solve()}")
