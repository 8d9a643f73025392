"""An ambulance service wants the fastest route from its station to the regional hospital.
Between them lie six intersections (Elm, Oak, Pine, Maple, Cedar and Birch). The
dispatcher has the current driving times, in minutes, for every road segment; each road
can be driven in both directions in the same time, except the Pine-to-Oak connector,
which is one-way from Pine to Oak.

| Road                  | Minutes |
|-----------------------|---------|
| Station - Elm         | 4       |
| Station - Oak         | 6       |
| Station - Pine        | 8       |
| Elm - Oak             | 3       |
| Elm - Maple           | 8       |
| Oak - Maple           | 5       |
| Oak - Cedar           | 7       |
| Pine -> Oak (one-way) | 1       |
| Pine - Cedar          | 4       |
| Maple - Birch         | 6       |
| Cedar - Birch         | 3       |
| Maple - Hospital      | 11      |
| Birch - Hospital      | 5       |
| Cedar - Hospital      | 10      |

Which route should the ambulance take, and what is the shortest possible driving time
from the station to the hospital in minutes?
"""

import highspy

ANSWER = 20.0
SOLVER = "highs"
TAGS = ("lp", "shortest-path", "network", "routing")

ORIGIN, DESTINATION = "station", "hospital"
TWO_WAY = {
    ("station", "elm"): 4,
    ("station", "oak"): 6,
    ("station", "pine"): 8,
    ("elm", "oak"): 3,
    ("elm", "maple"): 8,
    ("oak", "maple"): 5,
    ("oak", "cedar"): 7,
    ("pine", "cedar"): 4,
    ("maple", "birch"): 6,
    ("cedar", "birch"): 3,
    ("maple", "hospital"): 11,
    ("birch", "hospital"): 5,
    ("cedar", "hospital"): 10,
}
ONE_WAY = {("pine", "oak"): 1}


def solve() -> float:
    # Each two-way road becomes two directed arcs with the same time.
    arcs = dict(ONE_WAY)
    for (a, b), minutes in TWO_WAY.items():
        arcs[a, b] = minutes
        arcs[b, a] = minutes
    nodes = {n for arc in arcs for n in arc}

    h = highspy.Highs()  # highspy leaves __init__ unannotated
    h.silent()
    # Shortest path as a min-cost flow: send one unit from origin to destination. The
    # constraint matrix is totally unimodular, so the LP optimum is a 0/1 path without
    # needing integer variables (all times are positive, so no cycles appear).
    use = {arc: h.addVariable(lb=0, ub=1, name=f"use_{arc[0]}_{arc[1]}") for arc in arcs}
    for n in sorted(nodes):
        net = 1 if n == ORIGIN else -1 if n == DESTINATION else 0
        outflow = h.qsum(use[a] for a in arcs if a[0] == n)
        inflow = h.qsum(use[a] for a in arcs if a[1] == n)
        h.addConstr(outflow - inflow == net, name=f"flow_{n}")

    h.minimize(h.qsum(minutes * use[a] for a, minutes in arcs.items()))
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        raise RuntimeError(f"solver status: {h.modelStatusToString(h.getModelStatus())}")
    # Walk the chosen arcs from the origin to print the route.
    route, here = [ORIGIN], ORIGIN
    while here != DESTINATION:
        here = next(b for (a, b) in arcs if a == here and h.val(use[a, b]) > 0.5)
        route.append(here)
    print("route:", " -> ".join(route))
    return float(h.getObjectiveValue())


if __name__ == "__main__":
    print(f"objective: {solve()}")
