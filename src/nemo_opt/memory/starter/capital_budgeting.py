"""The board of a logistics company must choose which of eight proposed projects to fund
over the next two years. Each project is either funded in full or not at all. The
finance team estimated each project's net present value (NPV) and the capital it needs
in each year, all in thousands of dollars:

| Project                | NPV | Year-1 capital | Year-2 capital |
|------------------------|-----|----------------|----------------|
| Solar roof             | 180 | 120            | 40             |
| Warehouse East         | 260 | 200            | 100            |
| Warehouse West         | 240 | 180            | 120            |
| ERP upgrade            | 150 | 60             | 80             |
| Data center refresh    | 90  | 90             | 30             |
| Robotic packing line   | 310 | 220            | 150            |
| Fleet electrification  | 130 | 70             | 90             |
| Training academy       | 70  | 30             | 40             |

The capital budget is $600k in year 1 and $350k in year 2; unspent money cannot be
carried over. In addition:
- the company needs at most one new warehouse (East or West, not both);
- the ERP upgrade can only run on the refreshed data center, so it requires that project;
- the robotic packing line must be installed in a new warehouse, so it requires East or West.

Which projects should the board fund to maximize the total NPV, and what is the maximum
total NPV in thousands of dollars?
"""

import highspy

ANSWER = 820.0
SOLVER = "highs"
TAGS = ("milp", "capital-budgeting", "binary", "logical-constraints", "finance")

PROJECTS = {  # project -> (NPV, year-1 capital, year-2 capital), $k
    "solar": (180, 120, 40),
    "warehouse_east": (260, 200, 100),
    "warehouse_west": (240, 180, 120),
    "erp": (150, 60, 80),
    "data_center": (90, 90, 30),
    "robot_line": (310, 220, 150),
    "fleet": (130, 70, 90),
    "academy": (70, 30, 40),
}
BUDGET = {1: 600, 2: 350}


def solve() -> float:
    h = highspy.Highs()  # highspy leaves __init__ unannotated
    h.silent()
    # Default MIP gap is 1e-4; ask for a proven optimum so the reported NPV is exact.
    h.setOptionValue("mip_rel_gap", 0.0)
    fund = {p: h.addBinary(name=f"fund_{p}") for p in PROJECTS}

    for year, budget in BUDGET.items():
        h.addConstr(h.qsum(PROJECTS[p][year] * fund[p] for p in PROJECTS) <= budget, name=f"budget_y{year}")
    # Logical rules written as linear inequalities on binaries:
    #   "at most one of A, B"   -> A + B <= 1
    #   "A requires B"          -> A <= B
    #   "A requires B or C"     -> A <= B + C
    h.addConstr(fund["warehouse_east"] + fund["warehouse_west"] <= 1, name="one_warehouse")
    h.addConstr(fund["erp"] <= fund["data_center"], name="erp_needs_dc")
    h.addConstr(fund["robot_line"] <= fund["warehouse_east"] + fund["warehouse_west"], name="robot_needs_wh")

    h.maximize(h.qsum(PROJECTS[p][0] * fund[p] for p in PROJECTS))
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        raise RuntimeError(f"solver status: {h.modelStatusToString(h.getModelStatus())}")
    print("funded:", [p for p in PROJECTS if h.val(fund[p]) > 0.5])
    return float(h.getObjectiveValue())


if __name__ == "__main__":
    print(f"objective: {solve()}")
