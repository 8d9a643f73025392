"""A county is planning where to base its ambulances. Its standard says every one of its
ten neighborhoods must be reachable within eight minutes from at least one ambulance
base. The planners have shortlisted eight possible sites; for each they know the cost of
building and equipping the base (in thousands of dollars) and which neighborhoods it can
reach within eight minutes:

| Site | Cost ($k) | Neighborhoods reached in 8 minutes |
|------|-----------|------------------------------------|
| A    | 450       | 1, 2, 4                            |
| B    | 380       | 2, 3, 5                            |
| C    | 520       | 1, 4, 5, 7                         |
| D    | 300       | 3, 6                               |
| E    | 410       | 5, 6, 8, 9                         |
| F    | 350       | 7, 8, 10                           |
| G    | 290       | 4, 7, 9                            |
| H    | 330       | 9, 10                              |

A neighborhood may be reachable from several bases; that is fine.

Which sites should the county build so that all ten neighborhoods meet the eight-minute
standard at the lowest total cost, and what is that minimum cost in thousands of
dollars?
"""

import pulp

ANSWER = 1510.0
SOLVER = "pulp"
TAGS = ("milp", "set-covering", "location", "emergency-services")

NEIGHBORHOODS = list(range(1, 11))
SITES = {  # site -> (cost $k, neighborhoods reached within 8 minutes)
    "A": (450, {1, 2, 4}),
    "B": (380, {2, 3, 5}),
    "C": (520, {1, 4, 5, 7}),
    "D": (300, {3, 6}),
    "E": (410, {5, 6, 8, 9}),
    "F": (350, {7, 8, 10}),
    "G": (290, {4, 7, 9}),
    "H": (330, {9, 10}),
}


def solve() -> float:
    prob = pulp.LpProblem("set_covering", pulp.LpMinimize)
    build = {s: pulp.LpVariable(f"build_{s}", cat=pulp.LpBinary) for s in SITES}
    prob += pulp.lpSum(cost * build[s] for s, (cost, _) in SITES.items())
    # Covering constraint: at least one built site must reach each neighborhood.
    for n in NEIGHBORHOODS:
        reaching = [s for s, (_, covered) in SITES.items() if n in covered]
        prob += pulp.lpSum(build[s] for s in reaching) >= 1, f"cover_{n}"

    prob.solve(pulp.PULP_CBC_CMD(msg=False))
    if pulp.LpStatus[prob.status] != "Optimal":
        raise RuntimeError(f"solver status: {pulp.LpStatus[prob.status]}")
    print("build:", [s for s in SITES if build[s].value() > 0.5])
    return float(pulp.value(prob.objective))


if __name__ == "__main__":
    print(f"objective: {solve()}")
