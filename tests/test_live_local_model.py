"""A real local model end to end: ``pytest -m live`` with NEMO_LIVE_GGUF=/path/model.gguf.

llama-cpp-python[server] must be importable by this interpreter or by NEMO_LOCAL_SERVER_PYTHON. The run must
complete with a well-formed result: verified, or an unverified report that says why; never a hang or a crash.
Slow by nature (minutes on a CPU); excluded from the default run.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest

from nemo_opt.pipeline import Pipeline
from nemo_opt.settings import load_settings

pytestmark = [pytest.mark.live, pytest.mark.timeout(3600)]  # a CPU-bound model takes minutes per call

PROBLEM = (
    "A bakery makes bread and cake. A loaf of bread earns $3 profit and a cake earns $5. Each loaf needs 1 hour "
    "of oven time and each cake 2 hours; the oven is available 40 hours a week. At most 15 cakes can be sold per "
    "week. How many loaves and cakes should the bakery make each week to maximize profit?"
)


def _gguf() -> Path:
    path = os.environ.get("NEMO_LIVE_GGUF")
    if not path or not Path(path).is_file():
        pytest.skip("set NEMO_LIVE_GGUF to a GGUF file (scripts/assemble_gguf.py qwen2.5-coder-1.5b makes one)")
    server_python = os.environ.get("NEMO_LOCAL_SERVER_PYTHON")
    if not server_python and importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python[server] is not installed (scripts/quickstart.sh builds it portably)")
    return Path(path)


def test_local_model_solves_a_small_problem(tmp_path: Path) -> None:
    gguf = _gguf()
    settings = load_settings(
        {
            "home": str(tmp_path / "home"),
            "model": f"local:{gguf}",
            "local_server_python": os.environ.get("NEMO_LOCAL_SERVER_PYTHON"),
            "extractions": 1,
            "optimizers": 1,
            "memory": False,
            "agent_max_steps": 12,
            "agent_max_seconds": 900.0,
        }
    )
    result = Pipeline(settings).solve(PROBLEM)
    report = json.loads((result.folder / "result.json").read_text())
    assert report["status"] in {"optimal", "infeasible", "unbounded", "failed", "unknown", "error"}
    if result.verified:
        assert result.objective == pytest.approx(120.0, rel=1e-6)  # 40 loaves: bread earns more per oven hour
        assert result.package is not None and (result.package / "model.py").is_file()
    else:
        # An unverified run says why: a run error, or optimizer notes naming what failed.
        notes = [o.get("note") for o in report.get("optimizers", [])]
        assert result.error or any(notes), report
