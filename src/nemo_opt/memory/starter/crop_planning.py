"""A family farm has 400 acres of cropland and must decide how to plant it this season.
The candidate crops, their expected yields and prices, and their per-acre requirements
are:

| Crop      | Yield per acre | Price          | Growing cost ($/acre) | Labor (h/acre) | Irrigation (acre-ft/acre) |
|-----------|----------------|----------------|-----------------------|----------------|---------------------------|
| Wheat     | 60 bushels     | $6.00/bushel   | 140                   | 4              | 1.5                       |
| Corn      | 170 bushels    | $4.20/bushel   | 404                   | 6              | 2.5                       |
| Soybeans  | 50 bushels     | $11.20/bushel  | 300                   | 5              | 1.8                       |
| Sunflower | 1,500 lb       | $0.22/lb       | 140                   | 3              | 1.2                       |

The family can put in at most 1,900 hours of labor over the season, and the irrigation
district has allotted the farm 720 acre-feet of water. The farm has a contract to supply
corn silage to a neighboring dairy, which requires at least 60 acres of corn. For crop
rotation, soybeans may take up at most 40% of the acreage that is actually planted. Not
all land has to be planted, and acreages can be fractional.

How many acres of each crop should the farm plant to maximize its net profit (sales
revenue minus growing costs), and what is that maximum profit?
"""

import highspy

ANSWER = 100850.0
SOLVER = "highs"
TAGS = ("lp", "crop-planning", "agriculture", "resource-allocation")

CROPS = {  # crop -> (yield per acre, price per unit, cost/acre, labor h/acre, water acre-ft/acre)
    "wheat": (60.0, 6.00, 140.0, 4.0, 1.5),
    "corn": (170.0, 4.20, 404.0, 6.0, 2.5),
    "soybeans": (50.0, 11.20, 300.0, 5.0, 1.8),
    "sunflower": (1500.0, 0.22, 140.0, 3.0, 1.2),
}
LAND, LABOR, WATER = 400.0, 1900.0, 720.0
MIN_CORN_ACRES = 60.0
MAX_SOY_SHARE = 0.40


def solve() -> float:
    h = highspy.Highs()  # highspy leaves __init__ unannotated
    h.silent()
    acres = {c: h.addVariable(lb=0.0, name=f"acres_{c}") for c in CROPS}
    # Net profit per acre is computed from the data rather than typed in by hand.
    margin = {c: yld * price - cost for c, (yld, price, cost, _, _) in CROPS.items()}

    planted = h.qsum(acres.values())
    h.addConstr(planted <= LAND, name="land")
    h.addConstr(h.qsum(CROPS[c][3] * acres[c] for c in CROPS) <= LABOR, name="labor")
    h.addConstr(h.qsum(CROPS[c][4] * acres[c] for c in CROPS) <= WATER, name="water")
    h.addConstr(acres["corn"] >= MIN_CORN_ACRES, name="corn_contract")
    # "Soybeans <= 40% of planted area" is a ratio; multiplying out keeps it linear:
    # soy - 0.4 * (sum of all acres) <= 0.
    h.addConstr(acres["soybeans"] - MAX_SOY_SHARE * planted <= 0.0, name="rotation")

    h.maximize(h.qsum(margin[c] * acres[c] for c in CROPS))
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        raise RuntimeError(f"solver status: {h.modelStatusToString(h.getModelStatus())}")
    for c in CROPS:
        print(f"{c}: {h.val(acres[c]):.1f} acres")
    return float(h.getObjectiveValue())


if __name__ == "__main__":
    print(f"objective: {solve()}")
