"""A university canteen wants to design the cheapest daily menu for its athletes' meal plan.
It can serve any (fractional) number of portions of the eight foods below, up to the
stated maximum per day:

| Food           | Cost ($) | Calories | Protein (g) | Fiber (g) | Fat (g) | Max portions |
|----------------|----------|----------|-------------|-----------|---------|--------------|
| Oatmeal        | 0.30     | 150      | 5           | 4         | 3       | 4            |
| Whole milk     | 0.25     | 150      | 8           | 0         | 8       | 4            |
| Eggs           | 0.35     | 140      | 12          | 0         | 10      | 3            |
| Brown rice     | 0.20     | 215      | 5           | 3.5       | 1.8     | 4            |
| Lentils        | 0.40     | 230      | 18          | 15.6      | 0.8     | 3            |
| Chicken breast | 1.10     | 165      | 31          | 0         | 3.6     | 3            |
| Broccoli       | 0.45     | 55       | 3.7         | 5.1       | 0.6     | 4            |
| Apple          | 0.50     | 95       | 0.5         | 4.4       | 0.3     | 4            |

The nutritionist requires between 2,400 and 3,000 calories, at least 120 g of protein,
at least 35 g of fiber and at most 60 g of fat per day. Costs are per portion.

Which portions should the canteen serve to meet every requirement at the lowest cost,
and what is the minimum daily cost per athlete?
"""

import pulp

ANSWER = 3.5540909090909096
SOLVER = "pulp"
TAGS = ("lp", "diet", "nutrition", "blending")

FOODS = {  # food -> (cost, calories, protein, fiber, fat, max portions)
    "oatmeal": (0.30, 150.0, 5.0, 4.0, 3.0, 4.0),
    "milk": (0.25, 150.0, 8.0, 0.0, 8.0, 4.0),
    "eggs": (0.35, 140.0, 12.0, 0.0, 10.0, 3.0),
    "brown_rice": (0.20, 215.0, 5.0, 3.5, 1.8, 4.0),
    "lentils": (0.40, 230.0, 18.0, 15.6, 0.8, 3.0),
    "chicken": (1.10, 165.0, 31.0, 0.0, 3.6, 3.0),
    "broccoli": (0.45, 55.0, 3.7, 5.1, 0.6, 4.0),
    "apple": (0.50, 95.0, 0.5, 4.4, 0.3, 4.0),
}
NUTRIENT_COLUMN = {"calories": 1, "protein": 2, "fiber": 3, "fat": 4}
# nutrient -> (minimum, maximum); None means no limit on that side.
LIMITS: dict[str, tuple[float | None, float | None]] = {
    "calories": (2400.0, 3000.0),
    "protein": (120.0, None),
    "fiber": (35.0, None),
    "fat": (None, 60.0),
}


def solve() -> float:
    prob = pulp.LpProblem("diet", pulp.LpMinimize)
    # The per-food maximum becomes the variable's upper bound rather than a separate constraint.
    portions = {f: pulp.LpVariable(f"portions_{f}", lowBound=0, upBound=row[5]) for f, row in FOODS.items()}
    prob += pulp.lpSum(FOODS[f][0] * portions[f] for f in FOODS)

    for nutrient, (low, high) in LIMITS.items():
        col = NUTRIENT_COLUMN[nutrient]
        intake = pulp.lpSum(FOODS[f][col] * portions[f] for f in FOODS)
        if low is not None:
            prob += intake >= low, f"min_{nutrient}"
        if high is not None:
            prob += intake <= high, f"max_{nutrient}"

    prob.solve(pulp.PULP_CBC_CMD(msg=False))
    if pulp.LpStatus[prob.status] != "Optimal":
        raise RuntimeError(f"solver status: {pulp.LpStatus[prob.status]}")
    for f, var in portions.items():
        print(f"{f}: {var.value():.3f}")
    return float(pulp.value(prob.objective))


if __name__ == "__main__":
    print(f"objective: {solve()}")
