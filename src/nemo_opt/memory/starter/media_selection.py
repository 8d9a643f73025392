"""A regional furniture chain is planning the advertising for its spring sale and has a
budget of $150,000. Its agency quotes the following options; ads are bought whole, and
each outlet limits how many ads it will sell the chain during the campaign:

| Medium         | Cost per ad ($) | Exposures per ad | Max ads |
|----------------|-----------------|------------------|---------|
| Prime-time TV  | 20,000          | 450,000          | 6       |
| Daytime TV     | 8,000           | 160,000          | 10      |
| Radio          | 2,000           | 40,000           | 25      |
| Newspaper      | 4,000           | 70,000           | 12      |
| Social media   | 3,000           | 65,000           | 20      |

Marketing policy also requires that:
- at least 5 radio ads and at least 3 newspaper ads run (to reach older customers);
- total spending on television (prime-time plus daytime) is at most half of the budget;
- social media gets at least as many ads as daytime TV.

How many ads should the chain buy in each medium to maximize the total number of
exposures within the budget, and what is that maximum number of exposures?
"""

import pulp

ANSWER = 3220000.0
SOLVER = "pulp"
TAGS = ("milp", "media-selection", "advertising", "budget", "marketing")

BUDGET = 150_000
MEDIA = {  # medium -> (cost per ad, exposures per ad, max ads)
    "prime_tv": (20_000, 450_000, 6),
    "day_tv": (8_000, 160_000, 10),
    "radio": (2_000, 40_000, 25),
    "newspaper": (4_000, 70_000, 12),
    "social": (3_000, 65_000, 20),
}
MIN_ADS = {"radio": 5, "newspaper": 3}
TV = ("prime_tv", "day_tv")
TV_BUDGET_SHARE = 0.5


def solve() -> float:
    prob = pulp.LpProblem("media_selection", pulp.LpMaximize)
    # Outlet limits and policy minimums are variable bounds; ads are whole numbers.
    ads = {
        m: pulp.LpVariable(f"ads_{m}", lowBound=MIN_ADS.get(m, 0), upBound=max_ads, cat=pulp.LpInteger)
        for m, (_, _, max_ads) in MEDIA.items()
    }
    prob += pulp.lpSum(MEDIA[m][1] * ads[m] for m in MEDIA)

    prob += pulp.lpSum(MEDIA[m][0] * ads[m] for m in MEDIA) <= BUDGET, "budget"
    # The TV cap is a share of the fixed budget (not of actual spend), so it stays linear.
    prob += pulp.lpSum(MEDIA[m][0] * ads[m] for m in TV) <= TV_BUDGET_SHARE * BUDGET, "tv_share"
    prob += ads["social"] >= ads["day_tv"], "social_vs_daytime"

    prob.solve(pulp.PULP_CBC_CMD(msg=False))
    if pulp.LpStatus[prob.status] != "Optimal":
        raise RuntimeError(f"solver status: {pulp.LpStatus[prob.status]}")
    for m, var in ads.items():
        print(f"{m}: {var.value():.0f} ads")
    return float(pulp.value(prob.objective))


if __name__ == "__main__":
    print(f"objective: {solve()}")
