"""The starter memory: loader contract, every example runs, and every ANSWER is confirmed
by a method independent of the example's own code.

Independent confirmation means one of: a second model of the same data built with the
other solver library (PuLP/CBC for HiGHS examples, highspy for PuLP examples), a
classical algorithm (Dijkstra, Edmonds-Karp, Wagner-Whitin, KKT conditions), or
exhaustive enumeration of a tiny combinatorial instance. Data is read from each example
with ``runpy.run_path(..., run_name="not_main")``, which does not trigger the solve.
"""

from __future__ import annotations

import heapq
import itertools
import re
import runpy
import subprocess
import sys
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import highspy
import numpy as np
import pulp
import pytest

from nemo_opt.memory.starter import (
    STARTER_DIR,
    StarterExample,
    StarterFormatError,
    load_starter,
    parse_example,
)

# PuLP 3.x warns about its 4.0 API; the examples keep the 2.8+ API the project supports.
pytestmark = pytest.mark.filterwarnings("ignore:.*PuLP 4.0:DeprecationWarning")

EXAMPLES = load_starter()
BY_STEM = {e.path.stem: e for e in EXAMPLES}
OBJECTIVE_LINE = re.compile(r"^objective:\s*(\S+)\s*$")


def data(stem: str) -> dict[str, Any]:
    """The example's module globals, without running its model."""
    return runpy.run_path(str(STARTER_DIR / f"{stem}.py"), run_name="not_main")


def cbc(prob: pulp.LpProblem) -> float:
    prob.solve(pulp.PULP_CBC_CMD(msg=False))
    assert pulp.LpStatus[prob.status] == "Optimal"
    return float(pulp.value(prob.objective))


def new_highs() -> highspy.Highs:
    h = highspy.Highs()  # type: ignore[no-untyped-call]
    h.silent()
    h.setOptionValue("mip_rel_gap", 0.0)
    return h


def highs_value(h: highspy.Highs) -> float:
    assert h.getModelStatus() == highspy.HighsModelStatus.kOptimal
    return float(h.getObjectiveValue())


# --------------------------------------------------------------------------- loader


def test_load_starter_finds_the_examples() -> None:
    assert len(EXAMPLES) >= 28
    ids = [e.id for e in EXAMPLES]
    assert len(ids) == len(set(ids))
    assert all(i.startswith("starter-") for i in ids)
    solvers = {e.solver for e in EXAMPLES}
    assert solvers == {"highs", "pulp"}
    # Both libraries are well represented.
    assert min(sum(e.solver == s for e in EXAMPLES) for s in solvers) >= len(EXAMPLES) // 3


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e.id)
def test_example_metadata(example: StarterExample) -> None:
    words = [w for w in example.question.split() if re.search(r"[A-Za-z0-9]", w)]
    assert 60 <= len(words) <= 250, len(words)
    assert example.question.rstrip().endswith("?"), "the statement should end with the question asked"
    assert example.solver in {"highs", "pulp"}
    assert example.tags and all(example.tags)
    assert example.tags[0] in {"lp", "milp", "qp"}, "first tag is the problem class"
    assert example.code == example.path.read_text(encoding="utf-8")
    assert example.path.parent == STARTER_DIR
    assert example.title
    # The declared library is the one the code actually uses.
    assert f"import {'highspy' if example.solver == 'highs' else 'pulp'}" in example.code
    assert 'if __name__ == "__main__":' in example.code
    assert len(example.code.splitlines()) <= 130


def test_loader_does_not_execute_files(tmp_path: Path) -> None:
    (tmp_path / "boom.py").write_text(
        '"""A problem statement."""\n'
        "raise SystemExit('executed')\n"
        "ANSWER = 12\n"
        'SOLVER = "pulp"\n'
        'TAGS: tuple[str, ...] = ("lp", "toy")\n',
        encoding="utf-8",
    )
    (tmp_path / "_helper.py").write_text("x = 1\n", encoding="utf-8")
    [example] = load_starter(tmp_path)
    assert example.id == "starter-boom"
    assert example.answer == 12.0 and isinstance(example.answer, float)
    assert example.tags == ("lp", "toy")
    assert example.question == "A problem statement."


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('"""Q?"""\nSOLVER = "pulp"\nTAGS = ("lp",)\n', "missing module-level constant ANSWER"),
        ('"""Q?"""\nANSWER = 1.0\nTAGS = ("lp",)\n', "missing module-level constant SOLVER"),
        ('"""Q?"""\nANSWER = 1.0\nSOLVER = "pulp"\n', "missing module-level constant TAGS"),
        ('ANSWER = 1.0\nSOLVER = "pulp"\nTAGS = ("lp",)\n', "missing module docstring"),
        ('"""Q?"""\nANSWER = "x"\nSOLVER = "pulp"\nTAGS = ("lp",)\n', "ANSWER must be a number"),
        ('"""Q?"""\nANSWER = 1.0\nSOLVER = "gurobi"\nTAGS = ("lp",)\n', "SOLVER must be one of"),
        ('"""Q?"""\nANSWER = 1.0\nSOLVER = "pulp"\nTAGS = ()\n', "TAGS must be a non-empty tuple"),
        ('"""Q?"""\nANSWER = compute()\nSOLVER = "pulp"\nTAGS = ("lp",)\n', "ANSWER must be a literal"),
    ],
)
def test_loader_rejects_malformed_files(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "bad.py"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(StarterFormatError, match=message) as info:
        parse_example(path)
    assert "bad.py" in str(info.value)


# --------------------------------------------------------------------------- running


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e.id)
def test_example_runs_and_prints_its_answer(example: StarterExample) -> None:
    proc = subprocess.run([sys.executable, str(example.path)], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    lines = [m.group(1) for m in map(OBJECTIVE_LINE.match, proc.stdout.splitlines()) if m]
    assert lines, proc.stdout
    assert proc.stdout.strip().splitlines()[-1].startswith("objective:"), "objective line must come last"
    assert float(lines[-1]) == pytest.approx(example.answer, rel=1e-6)


# --------------------------------------------------------------------------- independent checks
# Each function recomputes the optimum from the example's data without its model code.

CHECKS: dict[str, Callable[[], float]] = {}


def check(fn: Callable[[], float]) -> Callable[[], float]:
    CHECKS[fn.__name__] = fn
    return fn


@check
def product_mix() -> float:  # HiGHS example -> PuLP/CBC
    d = data("product_mix")
    prob = pulp.LpProblem("pm", pulp.LpMaximize)
    x = pulp.LpVariable.dicts("x", list(d["PROFIT"]), lowBound=0)
    prob += pulp.lpSum(d["PROFIT"][p] * x[p] for p in x)
    for r, use in d["USAGE"].items():
        prob += pulp.lpSum(use[p] * x[p] for p in x) <= d["AVAILABLE"][r]
    prob += x["chair"] <= d["MAX_CHAIRS"]
    prob += x["chair"] >= d["CHAIRS_PER_TABLE"] * x["table"]
    return cbc(prob)


@check
def diet() -> float:  # PuLP example -> highspy
    d = data("diet")
    h = new_highs()
    col = d["NUTRIENT_COLUMN"]
    x = {f: h.addVariable(lb=0, ub=row[5]) for f, row in d["FOODS"].items()}
    for nutrient, (low, high) in d["LIMITS"].items():
        expr = h.qsum(d["FOODS"][f][col[nutrient]] * x[f] for f in x)
        if low is not None:
            h.addConstr(expr >= low)
        if high is not None:
            h.addConstr(expr <= high)
    h.minimize(h.qsum(d["FOODS"][f][0] * x[f] for f in x))
    return highs_value(h)


@check
def oil_blending() -> float:  # HiGHS example -> PuLP/CBC, quality written as ratio * volume
    d = data("oil_blending")
    crudes, products = d["CRUDES"], d["PRODUCTS"]
    prob = pulp.LpProblem("blend", pulp.LpMaximize)
    x = pulp.LpVariable.dicts("x", [(c, p) for c in crudes for p in products], lowBound=0)
    volume = {p: pulp.lpSum(x[c, p] for c in crudes) for p in products}
    revenue = pulp.lpSum(products[p][0] * volume[p] for p in products)
    crude_cost = pulp.lpSum(crudes[c][1] * x[c, p] for c in crudes for p in products)
    prob += revenue - crude_cost - d["PROCESSING_COST"] * pulp.lpSum(volume.values())
    for c in crudes:
        prob += pulp.lpSum(x[c, p] for p in products) <= crudes[c][0]
    for p, (_, octane, sulfur, lo, hi) in products.items():
        prob += volume[p] >= lo
        prob += volume[p] <= hi
        if octane is not None:
            prob += pulp.lpSum(crudes[c][2] * x[c, p] for c in crudes) >= octane * volume[p]
        prob += pulp.lpSum(crudes[c][3] * x[c, p] for c in crudes) <= sulfur * volume[p]
    return cbc(prob)


@check
def transportation() -> float:  # PuLP example -> highspy
    d = data("transportation")
    h = new_highs()
    x = {(i, j): h.addVariable(lb=0) for i in d["SUPPLY"] for j in d["DEMAND"]}
    for i, cap in d["SUPPLY"].items():
        h.addConstr(h.qsum(x[i, j] for j in d["DEMAND"]) <= cap)
    for j, need in d["DEMAND"].items():
        h.addConstr(h.qsum(x[i, j] for i in d["SUPPLY"]) == need)
    h.minimize(h.qsum(d["COST"][i][j] * v for (i, j), v in x.items()))
    return highs_value(h)


@check
def assignment() -> float:  # enumeration of all 5! = 120 assignments
    d = data("assignment")
    techs = list(d["HOURS"])
    return float(
        min(
            sum(d["HOURS"][w][t] for w, t in zip(techs, perm, strict=True))
            for perm in itertools.permutations(d["TICKETS"])
        )
    )


@check
def knapsack() -> float:  # enumeration of all 2^10 subsets
    d = data("knapsack")
    kits = list(d["KITS"].values())
    best = 0
    for pick in itertools.product((0, 1), repeat=len(kits)):
        if sum(w for (w, _), on in zip(kits, pick, strict=True) if on) <= d["CAPACITY_KG"]:
            best = max(best, sum(v for (_, v), on in zip(kits, pick, strict=True) if on))
    return float(best)


@check
def bin_packing() -> float:
    # Lower bound by arithmetic: total weight 378 kg / 100 kg per van -> at least 4 vans.
    # Upper bound: a depth-first search that finds a packing into that many vans.
    d = data("bin_packing")
    cap, weights = d["CAPACITY_KG"], sorted(d["WEIGHTS"].values(), reverse=True)

    def fits(k: int) -> bool:
        room = [cap] * k

        def place(i: int) -> bool:
            if i == len(weights):
                return True
            tried: set[int] = set()
            for b in range(k):
                if room[b] >= weights[i] and room[b] not in tried:
                    tried.add(room[b])
                    room[b] -= weights[i]
                    if place(i + 1):
                        return True
                    room[b] += weights[i]
            return False

        return place(0)

    k = -(-sum(weights) // cap)
    while not fits(k):
        k += 1
    return float(k)


@check
def facility_location() -> float:  # enumerate open sets; a highspy transportation LP for each
    d = data("facility_location")
    sites, demand = d["WAREHOUSES"], d["DEMAND"]
    best = float("inf")
    for r in range(1, len(sites) + 1):
        for opened in itertools.combinations(sites, r):
            if sum(sites[w][1] for w in opened) < sum(demand.values()):
                continue
            h = new_highs()
            x = {(w, c): h.addVariable(lb=0) for w in opened for c in demand}
            for w in opened:
                h.addConstr(h.qsum(x[w, c] for c in demand) <= sites[w][1])
            for c, need in demand.items():
                h.addConstr(h.qsum(x[w, c] for w in opened) == need)
            h.minimize(h.qsum(d["COST"][w][c] * v for (w, c), v in x.items()))
            best = min(best, sum(sites[w][0] for w in opened) + highs_value(h))
    return best


@check
def production_planning() -> float:  # HiGHS example -> PuLP/CBC
    d = data("production_planning")
    months = d["MONTHS"]
    prob = pulp.LpProblem("plan", pulp.LpMinimize)
    reg = pulp.LpVariable.dicts("reg", months, 0, d["REGULAR_CAP"])
    ot = pulp.LpVariable.dicts("ot", months, 0, d["OVERTIME_CAP"])
    inv = pulp.LpVariable.dicts("inv", months, 0, d["STORAGE_CAP"])
    late = pulp.LpVariable.dicts("late", months, 0)
    prob += pulp.lpSum(
        d["REGULAR_COST"] * reg[m]
        + d["OVERTIME_COST"] * ot[m]
        + d["HOLDING_COST"] * inv[m]
        + d["BACKLOG_COST"] * late[m]
        for m in months
    )
    net_before: Any = d["INITIAL_STOCK"]
    for m in months:
        prob += net_before + reg[m] + ot[m] - d["DEMAND"][m] == inv[m] - late[m]
        net_before = inv[m] - late[m]
    prob += late[months[-1]] == 0
    prob += inv[months[-1]] >= d["FINAL_STOCK_MIN"]
    return cbc(prob)


@check
def shift_scheduling() -> float:  # PuLP example -> highspy
    d = data("shift_scheduling")
    blocks = d["BLOCKS"]
    h = new_highs()
    n = {b: h.addIntegral(lb=0, ub=100) for b in blocks}
    for k, b in enumerate(blocks):  # an 8-hour shift covers its start block and the next one
        h.addConstr(n[b] + n[blocks[k - 1]] >= d["REQUIRED"][b])
    h.minimize(h.qsum(d["SHIFT_COST"][b] * n[b] for b in blocks))
    return highs_value(h)


@check
def min_cost_flow() -> float:  # HiGHS example -> PuLP/CBC
    d = data("min_cost_flow")
    arcs = d["ARCS"]
    prob = pulp.LpProblem("mcf", pulp.LpMinimize)
    f = {a: pulp.LpVariable(f"f_{a[0]}_{a[1]}", 0, cap) for a, (cap, _) in arcs.items()}
    prob += pulp.lpSum(cost * f[a] for a, (_, cost) in arcs.items())
    for node, b in d["SUPPLY"].items():
        prob += pulp.lpSum(f[a] for a in arcs if a[0] == node) - pulp.lpSum(f[a] for a in arcs if a[1] == node) == b
    return cbc(prob)


@check
def max_flow() -> float:  # Edmonds-Karp augmenting paths
    d = data("max_flow")
    residual: dict[str, dict[str, float]] = {}
    for (i, j), cap in d["CAPACITY"].items():
        residual.setdefault(i, {}).setdefault(j, 0.0)
        residual.setdefault(j, {}).setdefault(i, 0.0)
        residual[i][j] += cap
    source, sink, total = d["SOURCE"], d["SINK"], 0.0
    while True:
        parent = {source: source}
        queue = deque([source])
        while queue and sink not in parent:
            u = queue.popleft()
            for v, c in residual[u].items():
                if c > 0 and v not in parent:
                    parent[v] = u
                    queue.append(v)
        if sink not in parent:
            return total
        path, v = [], sink
        while v != source:
            path.append((parent[v], v))
            v = parent[v]
        push = min(residual[u][v] for u, v in path)
        for u, v in path:
            residual[u][v] -= push
            residual[v][u] += push
        total += push


@check
def shortest_path() -> float:  # Dijkstra
    d = data("shortest_path")
    adj: dict[str, list[tuple[str, int]]] = {}
    for (a, b), t in d["TWO_WAY"].items():
        adj.setdefault(a, []).append((b, t))
        adj.setdefault(b, []).append((a, t))
    for (a, b), t in d["ONE_WAY"].items():
        adj.setdefault(a, []).append((b, t))
    dist = {d["ORIGIN"]: 0}
    heap = [(0, d["ORIGIN"])]
    while heap:
        du, u = heapq.heappop(heap)
        if du > dist[u]:
            continue
        for v, t in adj.get(u, []):
            if du + t < dist.get(v, 10**9):
                dist[v] = du + t
                heapq.heappush(heap, (du + t, v))
    return float(dist[d["DESTINATION"]])


@check
def tsp() -> float:  # enumeration of all 5! tours from the depot
    d = data("tsp")
    others = [t for t in d["TOWNS"] if t != d["DEPOT"]]
    return float(
        min(
            sum(d["dist"](a, b) for a, b in itertools.pairwise([d["DEPOT"], *perm, d["DEPOT"]]))
            for perm in itertools.permutations(others)
        )
    )


@check
def vehicle_routing() -> float:  # enumerate splits into two vans, best order within each by permutations
    d = data("vehicle_routing")
    depot, demand, cap, km = d["DEPOT"], d["DEMAND"], d["VAN_CAPACITY"], d["km"]
    assert d["NUM_VANS"] == 2

    def route_km(cafes: tuple[str, ...]) -> float:
        if not cafes:
            return 0.0
        return float(
            min(sum(km(a, b) for a, b in itertools.pairwise([depot, *p, depot])) for p in itertools.permutations(cafes))
        )

    best = float("inf")
    for van in itertools.product((0, 1), repeat=len(demand)):
        groups = [tuple(c for c, v in zip(demand, van, strict=True) if v == k) for k in (0, 1)]
        if all(sum(demand[c] for c in g) <= cap for g in groups):
            best = min(best, sum(route_km(g) for g in groups))
    return best


@check
def cutting_stock() -> float:  # PuLP example -> highspy, with every feasible pattern (not only maximal)
    d = data("cutting_stock")
    lengths, bar = list(d["ORDER"]), d["BAR_LENGTH"]
    patterns = [
        counts
        for counts in itertools.product(*(range(bar // length + 1) for length in lengths))
        if any(counts) and sum(n * length for n, length in zip(counts, lengths, strict=True)) <= bar
    ]
    h = new_highs()
    y = {p: h.addIntegral(lb=0, ub=100) for p in patterns}
    for k, length in enumerate(lengths):
        h.addConstr(h.qsum(p[k] * y[p] for p in patterns) >= d["ORDER"][length])
    h.minimize(h.qsum(y.values()))
    return highs_value(h)


@check
def portfolio() -> float:
    # KKT: with the return constraint active and all weights positive, the optimum solves
    #   2 S w - lam * mu - nu * 1 = 0,  mu'w = target,  1'w = 1.
    # The problem is convex, so a solution with w > 0 and lam >= 0 is globally optimal.
    d = data("portfolio")
    funds = d["FUNDS"]
    s = np.array(d["COVARIANCE"])
    mu = np.array([d["EXPECTED_RETURN"][f] for f in funds])
    n = len(funds)
    kkt = np.zeros((n + 2, n + 2))
    kkt[:n, :n] = 2 * s
    kkt[:n, n] = -mu
    kkt[:n, n + 1] = -1.0
    kkt[n, :n] = mu
    kkt[n + 1, :n] = 1.0
    sol = np.linalg.solve(kkt, np.r_[np.zeros(n), d["TARGET_RETURN"], 1.0])
    w, lam = sol[:n], sol[n]
    assert (w > 0).all() and lam >= 0
    return float(w @ s @ w)


@check
def unit_commitment() -> float:  # PuLP example -> highspy, with the "turn-on/turn-off" formulation
    d = data("unit_commitment")
    hours, units = d["HOURS"], d["UNITS"]
    h = new_highs()
    on = {(g, t): h.addBinary() for g in units for t in hours}
    up = {(g, t): h.addVariable(lb=0, ub=1) for g in units for t in hours}
    mw = {(g, t): h.addVariable(lb=0) for g in units for t in hours}
    for t in hours:
        h.addConstr(h.qsum(mw[g, t] for g in units) == d["DEMAND"][t])
    for g, (lo, hi, _, _, _, min_up, min_down, initial) in units.items():
        for t in hours:
            h.addConstr(mw[g, t] - lo * on[g, t] >= 0)
            h.addConstr(mw[g, t] - hi * on[g, t] <= 0)
            turned_on = on[g, t] - (on[g, t - 1] if t > 1 else initial)
            h.addConstr(up[g, t] >= turned_on)
            for later in hours:
                if t <= later < t + min_up:  # switched on at t -> still on at `later`
                    h.addConstr(on[g, later] >= turned_on)
                if t <= later < t + min_down:  # switched off at t -> still off at `later`
                    h.addConstr(1 - on[g, later] >= -turned_on)
    h.minimize(
        h.qsum(units[g][2] * mw[g, t] + units[g][3] * on[g, t] + units[g][4] * up[g, t] for g in units for t in hours)
    )
    return highs_value(h)


@check
def single_machine_scheduling() -> float:  # enumeration of all 6! sequences
    d = data("single_machine_scheduling")
    best = float("inf")
    for seq in itertools.permutations(d["JOBS"]):
        clock, penalty = 0, 0
        for j in seq:
            p, due, w = d["JOBS"][j]
            clock += p
            penalty += w * max(0, clock - due)
        best = min(best, penalty)
    return best


@check
def job_shop() -> float:
    # Enumerate every job order on every machine ((4!)^3 combinations); for each acyclic
    # combination the earliest-start schedule is a longest-path computation.
    d = data("job_shop")
    routing = d["ROUTING"]
    dur = {(p, m): t for p, ops in routing.items() for m, t in ops}
    machines = sorted({m for _, m in dur})
    route_edges = [((p, a), (p, b)) for p, ops in routing.items() for (a, _), (b, _) in itertools.pairwise(ops)]
    best = float("inf")
    for orders in itertools.product(*(itertools.permutations(sorted(routing)) for _ in machines)):
        edges = list(route_edges)
        for m, order in zip(machines, orders, strict=True):
            edges += [((a, m), (b, m)) for a, b in itertools.pairwise(order)]
        succ: dict[tuple[str, str], list[tuple[str, str]]] = {op: [] for op in dur}
        indeg = dict.fromkeys(dur, 0)
        for a, b in edges:
            succ[a].append(b)
            indeg[b] += 1
        start = dict.fromkeys(dur, 0)
        ready = [op for op in dur if indeg[op] == 0]
        done = 0
        while ready:
            op = ready.pop()
            done += 1
            for nxt in succ[op]:
                start[nxt] = max(start[nxt], start[op] + dur[op])
                indeg[nxt] -= 1
                if indeg[nxt] == 0:
                    ready.append(nxt)
        if done == len(dur):  # otherwise the machine orders contradict the routings
            best = min(best, max(start[op] + dur[op] for op in dur))
    return best


@check
def lot_sizing() -> float:  # Wagner-Whitin dynamic program
    d = data("lot_sizing")
    weeks, orders = d["WEEKS"], d["ORDERS"]
    best = {0: 0.0}  # best[t] = cheapest plan covering weeks 1..t
    for t in weeks:
        best[t] = min(
            best[s - 1] + d["SETUP_COST"] + sum(d["HOLDING_COST"] * (u - s) * orders[u] for u in weeks if s <= u <= t)
            for s in weeks
            if s <= t
        )
    return best[weeks[-1]]


@check
def capital_budgeting() -> float:  # enumeration of all 2^8 portfolios
    d = data("capital_budgeting")
    projects = d["PROJECTS"]
    best = 0
    for r in range(len(projects) + 1):
        for chosen in map(set, itertools.combinations(projects, r)):
            if any(sum(projects[p][y] for p in chosen) > b for y, b in d["BUDGET"].items()):
                continue
            if {"warehouse_east", "warehouse_west"} <= chosen:
                continue
            if "erp" in chosen and "data_center" not in chosen:
                continue
            if "robot_line" in chosen and not chosen & {"warehouse_east", "warehouse_west"}:
                continue
            best = max(best, sum(projects[p][0] for p in chosen))
    return float(best)


@check
def piecewise_production() -> float:
    # The resin cost is linear on each price tier, so solve one highspy LP per tier with the
    # purchase restricted to that tier's range and the cost written from its breakpoint.
    d = data("piecewise_production")
    products, segments = d["PRODUCTS"], d["SEGMENTS"]
    best = -float("inf")
    start_kg, start_cost = 0.0, 0.0
    for size, price in segments:
        h = new_highs()
        x = {p: h.addVariable(lb=0, ub=products[p][1]) for p in products}
        resin = h.addVariable(lb=start_kg, ub=start_kg + size)
        h.addConstr(h.qsum(products[p][2] * x[p] for p in products) <= resin)
        h.addConstr(h.qsum(products[p][3] * x[p] for p in products) <= d["MIXING_HOURS"])
        h.maximize(h.qsum(products[p][0] * x[p] for p in products) - price * resin)
        best = max(best, highs_value(h) - (start_cost - price * start_kg))
        start_kg, start_cost = start_kg + size, start_cost + price * size
    return best


@check
def network_design() -> float:  # HiGHS example -> PuLP/CBC
    d = data("network_design")
    links, demand = d["LINKS"], d["DEMAND"]
    nodes = {n for link in links for n in link}
    prob = pulp.LpProblem("design", pulp.LpMinimize)
    y = {a: pulp.LpVariable(f"y_{a[0]}_{a[1]}", cat=pulp.LpBinary) for a in links}
    f = {a: pulp.LpVariable(f"f_{a[0]}_{a[1]}", lowBound=0) for a in links}
    prob += pulp.lpSum(fee * y[a] + usage * f[a] for a, (fee, _, usage) in links.items())
    for n in nodes:
        need = -sum(demand.values()) if n == d["SOURCE"] else demand.get(n, 0)
        prob += pulp.lpSum(f[a] for a in links if a[1] == n) - pulp.lpSum(f[a] for a in links if a[0] == n) == need
    for a, (_, cap, _) in links.items():
        prob += f[a] <= cap * y[a]
    return cbc(prob)


@check
def staff_rostering() -> float:  # PuLP example -> highspy
    d = data("staff_rostering")
    days = d["DAYS"]
    week = len(days)
    h = new_highs()
    n = {s: h.addIntegral(lb=0, ub=100) for s in range(week)}
    for day in range(week):  # a nurse starting on s works s .. s+4 (mod 7)
        h.addConstr(h.qsum(n[s] for s in range(week) if (day - s) % week < d["WORK_DAYS"]) >= d["REQUIRED"][days[day]])
    weekend = {days.index(x) for x in d["WEEKEND"]}
    cost = {
        s: d["BASE_WAGE"] + d["WEEKEND_PREMIUM"] * sum((s + k) % week in weekend for k in range(d["WORK_DAYS"]))
        for s in range(week)
    }
    h.minimize(h.qsum(cost[s] * n[s] for s in range(week)))
    return highs_value(h)


@check
def newsvendor() -> float:
    # Expected profit is concave and piecewise linear in the order quantity with kinks only
    # at the scenario demands, so its maximum over [0, MAX_ORDER] is at one of those points.
    d = data("newsvendor")
    c, price, salvage = d["UNIT_COST"], d["PRICE"], d["SALVAGE"]

    def expected_profit(q: float) -> float:
        return float(
            sum(p * (price * min(q, dem) + salvage * (q - min(q, dem)) - c * q) for dem, p in d["SCENARIOS"].items())
        )

    return max(expected_profit(q) for q in [0.0, d["MAX_ORDER"], *map(float, d["SCENARIOS"])])


@check
def media_selection() -> float:
    # Enumerate every integer plan except radio; given the rest, more radio ads only add
    # exposures, so the best radio count is the most the budget and the outlet allow.
    d = data("media_selection")
    media, budget = d["MEDIA"], d["BUDGET"]
    lo = {m: d["MIN_ADS"].get(m, 0) for m in media}
    others = [m for m in media if m != "radio"]
    best = -1
    for counts in itertools.product(*(range(lo[m], media[m][2] + 1) for m in others)):
        plan = dict(zip(others, counts, strict=True))
        if plan["social"] < plan["day_tv"]:
            continue
        if sum(media[m][0] * plan[m] for m in d["TV"]) > d["TV_BUDGET_SHARE"] * budget:
            continue
        left = budget - sum(media[m][0] * plan[m] for m in others)
        radio = min(media["radio"][2], left // media["radio"][0]) if left >= 0 else -1
        if radio < lo["radio"]:
            continue
        plan["radio"] = radio
        best = max(best, sum(media[m][1] * plan[m] for m in media))
    return float(best)


@check
def crop_planning() -> float:  # HiGHS example -> PuLP/CBC
    d = data("crop_planning")
    crops = d["CROPS"]
    prob = pulp.LpProblem("crops", pulp.LpMaximize)
    a = pulp.LpVariable.dicts("a", list(crops), lowBound=0)
    prob += pulp.lpSum((y * price - cost) * a[c] for c, (y, price, cost, _, _) in crops.items())
    total = pulp.lpSum(a.values())
    prob += total <= d["LAND"]
    prob += pulp.lpSum(crops[c][3] * a[c] for c in crops) <= d["LABOR"]
    prob += pulp.lpSum(crops[c][4] * a[c] for c in crops) <= d["WATER"]
    prob += a["corn"] >= d["MIN_CORN_ACRES"]
    prob += a["soybeans"] <= d["MAX_SOY_SHARE"] * total
    return cbc(prob)


@check
def set_covering() -> float:  # enumeration of all 2^8 site sets
    d = data("set_covering")
    sites, everything = d["SITES"], set(d["NEIGHBORHOODS"])
    best = float("inf")
    for r in range(1, len(sites) + 1):
        for chosen in itertools.combinations(sites, r):
            if set().union(*(sites[s][1] for s in chosen)) == everything:
                best = min(best, sum(sites[s][0] for s in chosen))
    return best


@check
def multiple_knapsack() -> float:  # enumeration of all 3^9 placements (large, small, left behind)
    d = data("multiple_knapsack")
    trucks, items = list(d["TRUCKS"].items()), list(d["CONSIGNMENTS"].values())
    best = 0
    for where in itertools.product(range(len(trucks) + 1), repeat=len(items)):
        loads = [0] * len(trucks)
        for (w, _), k in zip(items, where, strict=True):
            if k < len(trucks):
                loads[k] += w
        if all(load <= cap for load, (_, cap) in zip(loads, trucks, strict=True)):
            best = max(best, sum(v for (_, v), k in zip(items, where, strict=True) if k < len(trucks)))
    return float(best)


def test_every_example_has_an_independent_check() -> None:
    assert set(CHECKS) == set(BY_STEM)


@pytest.mark.parametrize("stem", sorted(CHECKS))
def test_answer_confirmed_independently(stem: str) -> None:
    assert stem in BY_STEM, f"check for unknown example {stem}"
    assert CHECKS[stem]() == pytest.approx(BY_STEM[stem].answer, rel=1e-6)
