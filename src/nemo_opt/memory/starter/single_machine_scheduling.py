"""A print shop has one large-format press and six jobs waiting this morning. The press
can work on only one job at a time, a job cannot be interrupted once started, and all
jobs are ready now (time 0). Each job has a processing time, a promised completion time
and a contractual penalty for every hour it finishes late:

| Job | Processing time (h) | Due at hour | Penalty per hour late ($) |
|-----|---------------------|-------------|---------------------------|
| A   | 4                   | 6           | 30                        |
| B   | 2                   | 4           | 20                        |
| C   | 6                   | 10          | 40                        |
| D   | 3                   | 12          | 10                        |
| E   | 5                   | 9           | 50                        |
| F   | 3                   | 14          | 20                        |

Finishing early earns nothing extra, and there are no changeover times between jobs.

In what order should the shop run the six jobs to minimize the total lateness penalty,
and what is the minimum total penalty in dollars?
"""

import highspy

ANSWER = 610.0
SOLVER = "highs"
TAGS = ("milp", "scheduling", "single-machine", "big-m", "disjunctive", "tardiness")

JOBS = {  # job -> (processing hours, due hour, penalty $ per hour late)
    "A": (4, 6, 30),
    "B": (2, 4, 20),
    "C": (6, 10, 40),
    "D": (3, 12, 10),
    "E": (5, 9, 50),
    "F": (3, 14, 20),
}


def solve() -> float:
    # Big-M: no job ever needs to start later than the sum of all processing times, so
    # M = 23 hours is large enough to switch off a disjunction yet small enough to keep
    # the LP relaxation reasonably tight.
    big_m = sum(p for p, _, _ in JOBS.values())
    h = highspy.Highs()  # highspy leaves __init__ unannotated
    h.silent()
    h.setOptionValue("mip_rel_gap", 0.0)  # prove optimality instead of stopping at a 0.01% gap
    begin = {j: h.addVariable(lb=0, ub=big_m, name=f"start_{j}") for j in JOBS}
    late = {j: h.addVariable(lb=0, name=f"late_{j}") for j in JOBS}
    names = sorted(JOBS)
    # before[i, k] = 1 if job i runs before job k (one binary per unordered pair).
    before = {(i, k): h.addBinary(name=f"before_{i}_{k}") for n, i in enumerate(names) for k in names[n + 1 :]}

    for (i, k), b in before.items():
        p_i, p_k = JOBS[i][0], JOBS[k][0]
        # Either i finishes before k starts (b = 1) or k finishes before i starts (b = 0);
        # the big-M term relaxes whichever inequality is not selected.
        h.addConstr(begin[k] >= begin[i] + p_i - big_m * (1 - b), name=f"{i}_before_{k}")
        h.addConstr(begin[i] >= begin[k] + p_k - big_m * b, name=f"{k}_before_{i}")
    for j, (p, due, _) in JOBS.items():
        # Tardiness = max(0, completion - due), linearized because we minimize it.
        h.addConstr(late[j] >= begin[j] + p - due, name=f"late_{j}")

    h.minimize(h.qsum(JOBS[j][2] * late[j] for j in JOBS))
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        raise RuntimeError(f"solver status: {h.modelStatusToString(h.getModelStatus())}")
    order = sorted(JOBS, key=lambda j: h.val(begin[j]))
    print("sequence:", " -> ".join(order))
    for j in order:
        print(f"{j}: start {h.val(begin[j]):.0f}, late {h.val(late[j]):.0f} h")
    return float(h.getObjectiveValue())


if __name__ == "__main__":
    print(f"objective: {solve()}")
