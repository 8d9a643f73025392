"""A family office wants to invest a client's savings in four funds. Its analysts estimate
the expected annual returns and the covariance matrix of annual returns as follows:

| Fund              | Expected return |
|-------------------|-----------------|
| Global equity     | 8%              |
| Tech equity       | 12%             |
| Emerging markets  | 15%             |
| Government bonds  | 6%              |

| Covariance       | Global  | Tech   | Emerging | Bonds   |
|------------------|---------|--------|----------|---------|
| Global equity    | 0.0225  | 0.009  | 0.009    | 0.00075 |
| Tech equity      | 0.009   | 0.04   | 0.03     | 0       |
| Emerging markets | 0.009   | 0.03   | 0.09     | -0.0015 |
| Government bonds | 0.00075 | 0      | -0.0015  | 0.0025  |

The whole budget must be invested, short selling is not allowed (no negative weights),
and the client needs an expected portfolio return of at least 10% per year.

What fraction of the budget should go into each fund to make the variance of the
portfolio's annual return as small as possible, and what is that minimum variance?
"""

import highspy

ANSWER = 0.013367256574546443
SOLVER = "highs"
TAGS = ("qp", "portfolio", "markowitz", "finance")

FUNDS = ["global", "tech", "emerging", "bonds"]
EXPECTED_RETURN = {"global": 0.08, "tech": 0.12, "emerging": 0.15, "bonds": 0.06}
COVARIANCE = [  # rows and columns in FUNDS order
    [0.0225, 0.009, 0.009, 0.00075],
    [0.009, 0.04, 0.03, 0.0],
    [0.009, 0.03, 0.09, -0.0015],
    [0.00075, 0.0, -0.0015, 0.0025],
]
TARGET_RETURN = 0.10


def solve() -> float:
    h = highspy.Highs()  # highspy leaves __init__ unannotated
    h.silent()
    # Weights are fractions of the budget; the bounds [0, 1] encode "no short selling".
    weight = {f: h.addVariable(lb=0.0, ub=1.0, name=f"w_{f}") for f in FUNDS}
    h.addConstr(h.qsum(weight.values()) == 1.0, name="budget")
    h.addConstr(h.qsum(EXPECTED_RETURN[f] * weight[f] for f in FUNDS) >= TARGET_RETURN, name="target_return")

    # The modelling API only takes a linear objective, so the quadratic part is passed as a
    # Hessian. HiGHS minimizes c'x + 1/2 x'Qx, hence Q = 2 * covariance gives exactly the
    # variance w' Sigma w. The triangular format stores the lower triangle column by column.
    n = len(FUNDS)
    hessian = highspy.HighsHessian()
    hessian.dim_ = n
    hessian.format_ = highspy.HessianFormat.kTriangular
    start, index, value = [0], [], []
    for col in range(n):
        for row in range(col, n):
            if COVARIANCE[row][col] != 0.0:
                index.append(row)
                value.append(2.0 * COVARIANCE[row][col])
        start.append(len(index))
    hessian.start_, hessian.index_, hessian.value_ = start, index, value

    h.changeObjectiveSense(highspy.ObjSense.kMinimize)
    if h.passHessian(hessian) != highspy.HighsStatus.kOk:
        raise RuntimeError("HiGHS rejected the Hessian")
    h.run()
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        raise RuntimeError(f"solver status: {h.modelStatusToString(h.getModelStatus())}")
    for f in FUNDS:
        print(f"{f}: {h.val(weight[f]):.4f}")
    return float(h.getObjectiveValue())


if __name__ == "__main__":
    print(f"objective: {solve()}")
