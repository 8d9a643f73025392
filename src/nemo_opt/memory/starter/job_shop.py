"""A machine shop has four customer parts to make today. Each part must visit three
machines (lathe, mill and drill) in its own fixed routing, spending the given number of
hours on each:

| Part | 1st operation | 2nd operation | 3rd operation |
|------|---------------|---------------|---------------|
| P1   | Lathe, 3 h    | Mill, 4 h     | Drill, 2 h    |
| P2   | Mill, 2 h     | Lathe, 5 h    | Drill, 3 h    |
| P3   | Drill, 4 h    | Lathe, 3 h    | Mill, 2 h     |
| P4   | Lathe, 2 h    | Drill, 3 h    | Mill, 4 h     |

A machine can work on only one part at a time, an operation cannot be interrupted, and a
part's next operation can start only after its previous one has finished. All parts and
machines are available from hour 0, and moving parts between machines takes no time.

How should the operations be sequenced on each machine so that all four parts are
finished as early as possible? What is the minimum makespan, in hours, until the last
part is done?
"""

import pulp

ANSWER = 15.0
SOLVER = "pulp"
TAGS = ("milp", "job-shop", "scheduling", "big-m", "disjunctive", "makespan")

ROUTING = {  # part -> ordered list of (machine, hours)
    "P1": [("lathe", 3), ("mill", 4), ("drill", 2)],
    "P2": [("mill", 2), ("lathe", 5), ("drill", 3)],
    "P3": [("drill", 4), ("lathe", 3), ("mill", 2)],
    "P4": [("lathe", 2), ("drill", 3), ("mill", 4)],
}


def solve() -> float:
    # Big-M = total processing time: no operation needs to start later than that.
    big_m = sum(hours for ops in ROUTING.values() for _, hours in ops)
    duration = {(part, m): hours for part, ops in ROUTING.items() for m, hours in ops}
    machines = sorted({m for _, m in duration})

    prob = pulp.LpProblem("job_shop", pulp.LpMinimize)
    begin = {op: pulp.LpVariable(f"start_{op[0]}_{op[1]}", lowBound=0, upBound=big_m) for op in duration}
    makespan = pulp.LpVariable("makespan", lowBound=0)
    prob += makespan

    for part, ops in ROUTING.items():
        # Precedence inside a part's routing.
        for (m1, h1), (m2, _) in zip(ops, ops[1:], strict=False):
            prob += begin[part, m2] >= begin[part, m1] + h1, f"route_{part}_{m1}_{m2}"
        # The makespan is at least the finish time of each part's last operation.
        last_machine, last_hours = ops[-1]
        prob += makespan >= begin[part, last_machine] + last_hours, f"finish_{part}"

    parts = sorted(ROUTING)
    for m in machines:
        for n, a in enumerate(parts):
            for b in parts[n + 1 :]:
                # first = 1 if part a goes before part b on machine m. Exactly one of the two
                # no-overlap inequalities is enforced; big-M switches the other one off.
                first = pulp.LpVariable(f"first_{m}_{a}_{b}", cat=pulp.LpBinary)
                prob += begin[b, m] >= begin[a, m] + duration[a, m] - big_m * (1 - first), f"{m}_{a}_then_{b}"
                prob += begin[a, m] >= begin[b, m] + duration[b, m] - big_m * first, f"{m}_{b}_then_{a}"

    prob.solve(pulp.PULP_CBC_CMD(msg=False))
    if pulp.LpStatus[prob.status] != "Optimal":
        raise RuntimeError(f"solver status: {pulp.LpStatus[prob.status]}")
    for m in machines:
        order = sorted(parts, key=lambda p: begin[p, m].value())
        print(f"{m}: " + ", ".join(f"{p}@{begin[p, m].value():.0f}" for p in order))
    return float(pulp.value(prob.objective))


if __name__ == "__main__":
    print(f"objective: {solve()}")
