"""A hospital ward is building its standard weekly roster for nurses. Every nurse works
five consecutive days and then has two consecutive days off, and the same pattern repeats
every week (so a nurse who starts on Friday works Friday to Tuesday and is off Wednesday
and Thursday). The minimum number of nurses needed on duty each day is:

| Day    | Mon | Tue | Wed | Thu | Fri | Sat | Sun |
|--------|-----|-----|-----|-----|-----|-----|-----|
| Nurses | 17  | 13  | 15  | 19  | 14  | 16  | 11  |

Each nurse costs a base wage of $1,200 per week. On top of that, the hospital pays a
weekend premium of $60 for every Saturday or Sunday a nurse works, so patterns that
include weekend days are more expensive. Overstaffing is allowed on any day.

How many nurses should start their five-day stretch on each day of the week so that
every day is covered at the lowest weekly wage bill? What is that minimum weekly cost?
"""

import pulp

ANSWER = 29220.0
SOLVER = "pulp"
TAGS = ("milp", "rostering", "workforce", "days-off", "covering")

DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
REQUIRED = {"mon": 17, "tue": 13, "wed": 15, "thu": 19, "fri": 14, "sat": 16, "sun": 11}
WORK_DAYS = 5
BASE_WAGE = 1200
WEEKEND_PREMIUM = 60
WEEKEND = {"sat", "sun"}


def days_worked(start: int) -> list[str]:
    """The five days covered by a pattern starting on DAYS[start], wrapping past Sunday."""
    return [DAYS[(start + k) % len(DAYS)] for k in range(WORK_DAYS)]


def solve() -> float:
    prob = pulp.LpProblem("staff_rostering", pulp.LpMinimize)
    # One integer variable per pattern (start day): the days-off rule is built into the
    # patterns themselves, which keeps the model small and exact.
    start = {d: pulp.LpVariable(f"start_{d}", lowBound=0, cat=pulp.LpInteger) for d in DAYS}
    pattern_cost = {
        d: BASE_WAGE + WEEKEND_PREMIUM * sum(1 for day in days_worked(k) if day in WEEKEND) for k, d in enumerate(DAYS)
    }
    prob += pulp.lpSum(pattern_cost[d] * start[d] for d in DAYS)

    for day in DAYS:
        # Nurses on duty on `day`: all patterns whose five working days include it.
        covering = [d for k, d in enumerate(DAYS) if day in days_worked(k)]
        prob += pulp.lpSum(start[d] for d in covering) >= REQUIRED[day], f"cover_{day}"

    prob.solve(pulp.PULP_CBC_CMD(msg=False))
    if pulp.LpStatus[prob.status] != "Optimal":
        raise RuntimeError(f"solver status: {pulp.LpStatus[prob.status]}")
    for d in DAYS:
        print(f"start {d}: {start[d].value():.0f} nurses (pattern cost ${pattern_cost[d]})")
    return float(pulp.value(prob.objective))


if __name__ == "__main__":
    print(f"objective: {solve()}")
