"""A city's emergency call center runs around the clock. Management has split the day into
six four-hour blocks and knows how many call takers must be on duty in each block:

| Block         | Call takers needed |
|---------------|--------------------|
| 00:00 - 04:00 | 8                  |
| 04:00 - 08:00 | 10                 |
| 08:00 - 12:00 | 22                 |
| 12:00 - 16:00 | 18                 |
| 16:00 - 20:00 | 20                 |
| 20:00 - 24:00 | 12                 |

Every call taker works one shift of eight consecutive hours, and shifts may start only at
00:00, 04:00, 08:00, 12:00, 16:00 or 20:00 (a shift starting at 20:00 ends at 04:00 the
next morning; the same pattern repeats every day). Pay depends on the start time because
of night premiums: a shift costs $300 if it starts at 00:00, $280 at 04:00, $240 at 08:00,
$240 at 12:00, $260 at 16:00 and $300 at 20:00.

How many call takers should start at each of the six times so that every block is
covered, at the lowest total daily wage bill? What is that minimum daily cost?
"""

import pulp

ANSWER = 12800.0
SOLVER = "pulp"
TAGS = ("milp", "shift-scheduling", "workforce", "covering")

BLOCKS = ["00", "04", "08", "12", "16", "20"]  # block start hours
REQUIRED = {"00": 8, "04": 10, "08": 22, "12": 18, "16": 20, "20": 12}
SHIFT_COST = {"00": 300, "04": 280, "08": 240, "12": 240, "16": 260, "20": 300}
BLOCKS_PER_SHIFT = 2  # eight hours = two four-hour blocks


def solve() -> float:
    prob = pulp.LpProblem("shift_scheduling", pulp.LpMinimize)
    # Decision: how many people start at each block; people are whole, so integer.
    start = {b: pulp.LpVariable(f"start_{b}", lowBound=0, cat=pulp.LpInteger) for b in BLOCKS}
    prob += pulp.lpSum(SHIFT_COST[b] * start[b] for b in BLOCKS)

    n = len(BLOCKS)
    for k, b in enumerate(BLOCKS):
        # People on duty in block k are those who started in block k or in the
        # BLOCKS_PER_SHIFT - 1 blocks before it; the index wraps around midnight.
        on_duty = [BLOCKS[(k - lag) % n] for lag in range(BLOCKS_PER_SHIFT)]
        prob += pulp.lpSum(start[s] for s in on_duty) >= REQUIRED[b], f"cover_{b}"

    prob.solve(pulp.PULP_CBC_CMD(msg=False))
    if pulp.LpStatus[prob.status] != "Optimal":
        raise RuntimeError(f"solver status: {pulp.LpStatus[prob.status]}")
    for b in BLOCKS:
        print(f"start at {b}:00 -> {start[b].value():.0f}")
    return float(pulp.value(prob.objective))


if __name__ == "__main__":
    print(f"objective: {solve()}")
