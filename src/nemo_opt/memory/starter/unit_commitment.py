"""An island utility must decide which of its three generators to run over the next eight
hours and how much each should produce. Hourly demand (MW) that must be met exactly is:

| Hour       | 1   | 2   | 3   | 4   | 5   | 6   | 7   | 8   |
|------------|-----|-----|-----|-----|-----|-----|-----|-----|
| Demand MW  | 180 | 160 | 170 | 260 | 340 | 400 | 300 | 200 |

| Unit    | Min MW | Max MW | Fuel ($/MWh) | No-load ($/h) | Start-up ($) | Min up (h) | Min down (h) |
|---------|--------|--------|--------------|---------------|--------------|------------|--------------|
| Coal    | 100    | 250    | 20           | 500           | 3,000        | 4          | 3            |
| Gas     | 60     | 180    | 32           | 300           | 1,200        | 3          | 2            |
| Peaker  | 20     | 80     | 55           | 80            | 200          | 1          | 1            |

A running unit must produce between its minimum and maximum output and pays its no-load
cost for every hour it is on, plus fuel for every MWh. Starting a unit that was off in
the previous hour costs its start-up fee. Once started, a unit must stay on for at least
its minimum up time; once shut down, it must stay off for at least its minimum down time.
The coal unit has been running for days, and the gas unit and the peaker have been off
for days, so no earlier start or stop restricts the first hours.

Which units should run in each hour and at what output to minimize the total cost of the
eight hours, and what is that minimum cost?
"""

import pulp

ANSWER = 50880.0
SOLVER = "pulp"
TAGS = ("milp", "unit-commitment", "energy", "min-up-down", "startup-cost")

HOURS = list(range(1, 9))
DEMAND = {1: 180, 2: 160, 3: 170, 4: 260, 5: 340, 6: 400, 7: 300, 8: 200}
UNITS = {  # unit -> (min MW, max MW, fuel $/MWh, no-load $/h, start-up $, min up h, min down h, on before hour 1)
    "coal": (100, 250, 20, 500, 3000, 4, 3, 1),
    "gas": (60, 180, 32, 300, 1200, 3, 2, 0),
    "peaker": (20, 80, 55, 80, 200, 1, 1, 0),
}


def solve() -> float:
    prob = pulp.LpProblem("unit_commitment", pulp.LpMinimize)
    keys = [(g, t) for g in UNITS for t in HOURS]
    on = {k: pulp.LpVariable(f"on_{k[0]}_{k[1]}", cat=pulp.LpBinary) for k in keys}
    start = {k: pulp.LpVariable(f"start_{k[0]}_{k[1]}", cat=pulp.LpBinary) for k in keys}
    stop = {k: pulp.LpVariable(f"stop_{k[0]}_{k[1]}", cat=pulp.LpBinary) for k in keys}
    power = {k: pulp.LpVariable(f"mw_{k[0]}_{k[1]}", lowBound=0) for k in keys}

    prob += pulp.lpSum(UNITS[g][2] * power[g, t] + UNITS[g][3] * on[g, t] + UNITS[g][4] * start[g, t] for g, t in keys)
    for t in HOURS:
        prob += pulp.lpSum(power[g, t] for g in UNITS) == DEMAND[t], f"demand_{t}"

    for g, (p_min, p_max, _, _, _, min_up, min_down, initial) in UNITS.items():
        for t in HOURS:
            # Output limits are switched on and off by the commitment binary.
            prob += power[g, t] >= p_min * on[g, t], f"pmin_{g}_{t}"
            prob += power[g, t] <= p_max * on[g, t], f"pmax_{g}_{t}"
            # State transition: on[t] - on[t-1] = start[t] - stop[t] (on[0] is the given state).
            previous = on[g, t - 1] if t > 1 else initial
            prob += on[g, t] - previous == start[g, t] - stop[g, t], f"transition_{g}_{t}"
            prob += start[g, t] + stop[g, t] <= 1, f"start_or_stop_{g}_{t}"
            # Minimum up time: a start within the last min_up hours forces the unit on now.
            prob += pulp.lpSum(start[g, s] for s in HOURS if t - min_up < s <= t) <= on[g, t], f"min_up_{g}_{t}"
            # Minimum down time: a stop within the last min_down hours forces it off now.
            prob += pulp.lpSum(stop[g, s] for s in HOURS if t - min_down < s <= t) <= 1 - on[g, t], f"min_down_{g}_{t}"

    prob.solve(pulp.PULP_CBC_CMD(msg=False))
    if pulp.LpStatus[prob.status] != "Optimal":
        raise RuntimeError(f"solver status: {pulp.LpStatus[prob.status]}")
    for t in HOURS:
        print(f"hour {t}: " + ", ".join(f"{g} {power[g, t].value():.0f} MW" for g in UNITS if on[g, t].value() > 0.5))
    return float(pulp.value(prob.objective))


if __name__ == "__main__":
    print(f"objective: {solve()}")
