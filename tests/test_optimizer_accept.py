"""The optimizer's submit check, including the move away from Gurobi's size-limited licence."""

from __future__ import annotations

from pathlib import Path

import pytest

from nemo_opt.sandbox import make_sandbox
from nemo_opt.sandbox.base import Limits
from nemo_opt.solvers.registry import Gurobi
from nemo_opt.spec import ProblemSpec, data_from_spec
from nemo_opt.stages.optimize import accept_optimizer
from nemo_opt.workspace import Workspace
from tests.scenarios import product_mix

SPEC = ProblemSpec.model_validate(product_mix.SPEC)

TOO_LARGE = """import gurobipy as gp
m = gp.Model()
m.Params.OutputFlag = 0
x = m.addVars(2500, ub=1.0)
m.setObjective(x.sum(), gp.GRB.MAXIMIZE)
m.optimize()
"""


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    ws = Workspace(tmp_path / "ws")
    ws.create()
    ws.write_json("data.json", data_from_spec(SPEC))
    (ws.root / "optimizers" / "opt_1").mkdir(parents=True)
    return ws


def _accept(ws: Workspace, code: str, fallback: str | None = "highs"):  # type: ignore[no-untyped-def]
    workdir = ws.root / "optimizers" / "opt_1"
    (workdir / "data.json").write_text((ws.root / "data.json").read_text())
    (workdir / "model.py").write_text(code)
    sandbox = make_sandbox("auto", ws.root, Limits(timeout=120))
    return accept_optimizer(ws, sandbox, SPEC, workdir, 120, fallback=fallback)


def test_a_right_model_is_accepted_and_a_crash_is_explained(workspace: Workspace) -> None:
    assert _accept(workspace, product_mix.RIGHT_MODEL).ok
    refused = _accept(workspace, product_mix.MODEL_DRAFT)
    assert not refused.ok and "KeyError: 'profits'" in refused.reason


@pytest.mark.skipif(not Gurobi.is_available(), reason="gurobipy is not installed (pip install 'nemo-opt[gurobi]')")
def test_gurobi_size_limit_points_the_agent_to_the_next_solver(workspace: Workspace) -> None:
    refused = _accept(workspace, TOO_LARGE)
    assert not refused.ok
    assert "size-limited licence" in refused.reason and "HiGHS" in refused.reason and "highspy" in refused.reason
    alone = _accept(workspace, TOO_LARGE, fallback=None)
    assert "No other installed solver" in alone.reason
