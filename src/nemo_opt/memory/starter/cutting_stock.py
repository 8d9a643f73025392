"""A metal workshop buys reinforcing steel in standard bars 600 cm long and cuts them into
shorter pieces for a construction client. This week's order is:

| Piece length (cm) | Pieces ordered |
|-------------------|----------------|
| 250               | 14             |
| 180               | 20             |
| 130               | 26             |
| 95                | 32             |

Each standard bar can be cut into any combination of piece lengths whose total does not
exceed 600 cm (the saw kerf is negligible); leftover ends are scrap. Extra pieces beyond
the order are allowed and simply go to stock. Every bar costs the same, so the workshop
wants to use as few bars as possible.

How many bars should be cut with each cutting pattern so that the whole order is
covered, and what is the minimum number of standard bars needed?
"""

import pulp

ANSWER = 23.0
SOLVER = "pulp"
TAGS = ("milp", "cutting-stock", "patterns", "waste")

BAR_LENGTH = 600
ORDER = {250: 14, 180: 20, 130: 26, 95: 32}  # piece length (cm) -> pieces ordered


def maximal_patterns(lengths: list[int], capacity: int) -> list[tuple[int, ...]]:
    """All cut patterns (pieces of each length) that fit and leave no room for another piece.

    Non-maximal patterns are never needed: adding a piece to a pattern only adds stock.
    """
    patterns: list[tuple[int, ...]] = []

    def extend(k: int, room: int, counts: list[int]) -> None:
        if k == len(lengths):
            if counts and room < min(lengths):
                patterns.append(tuple(counts))
            return
        for n in range(room // lengths[k], -1, -1):
            extend(k + 1, room - n * lengths[k], [*counts, n])

    extend(0, capacity, [])
    return patterns


def solve() -> float:
    lengths = sorted(ORDER, reverse=True)
    patterns = maximal_patterns(lengths, BAR_LENGTH)
    print(f"{len(patterns)} maximal patterns")

    prob = pulp.LpProblem("cutting_stock", pulp.LpMinimize)
    # bars[p] = how many standard bars are cut with pattern p (a whole number).
    bars = {p: pulp.LpVariable(f"bars_{'_'.join(map(str, p))}", lowBound=0, cat=pulp.LpInteger) for p in patterns}
    prob += pulp.lpSum(bars.values())
    for k, length in enumerate(lengths):
        # ">=" rather than "==": surplus pieces are allowed and go to stock.
        prob += pulp.lpSum(p[k] * bars[p] for p in patterns) >= ORDER[length], f"order_{length}"

    prob.solve(pulp.PULP_CBC_CMD(msg=False))
    if pulp.LpStatus[prob.status] != "Optimal":
        raise RuntimeError(f"solver status: {pulp.LpStatus[prob.status]}")
    for p, var in bars.items():
        if var.value() > 0.5:
            cut = ", ".join(f"{n} x {length} cm" for n, length in zip(p, lengths, strict=True) if n)
            print(f"{var.value():.0f} bars cut as [{cut}]")
    return float(pulp.value(prob.objective))


if __name__ == "__main__":
    print(f"objective: {solve()}")
