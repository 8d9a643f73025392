"""Every ablation switch is live: one scripted run per switch shows the behaviour it names changed.

The base run has every part on (memory for all three roles, n = 3 extractions with MBR and the judge, the simulator
and validation, T = 2 diverse optimizers, the cross-check). Each switch is then turned off on its own, and the
requests the model received and the run's artifacts show what stopped happening. Model replies are scripted;
sandbox, solvers, memory store, embeddings and files are real.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from nemo_opt.pipeline import Pipeline
from nemo_opt.result import RunResult
from nemo_opt.settings import Settings
from nemo_opt.testing import Reply, RoleRouter, ScriptedLLM
from tests.scenarios import EXTRACT, SIMULATOR, product_mix

REPO = Path(__file__).resolve().parent.parent
PROBLEM = (REPO / "examples" / "product_mix.md").read_text()
JUDGE = "You are checking candidate formulations"
EXAMPLES_IN_EXTRACTION = "Solved examples of similar problems"
EXAMPLES_FOR_AGENTS = "## Solved examples"


class Run:
    """One scripted run and what the model was asked."""

    def __init__(self, settings: Settings) -> None:
        router = RoleRouter(
            {
                JUDGE: [Reply('```json\n{"choice": "A", "reason": "all three limits from the text"}\n```')],
                EXTRACT: [product_mix.EXTRACTION] * 3,
                SIMULATOR: product_mix.SIMULATOR,
                "optimizers/opt_1": product_mix.OPTIMIZER,
                "optimizers/opt_2": product_mix.OPTIMIZER_PULP,
            }
        )
        self.llm = ScriptedLLM(router)
        self.result: RunResult = Pipeline(settings, llm_factory=lambda name: self.llm).solve(PROBLEM)

    def requests(self, marker: str) -> list[dict[str, Any]]:
        return [r for r in self.llm.requests if marker in json.dumps(r["messages"][0])]

    def text(self, marker: str) -> str:
        return " ".join(json.dumps(r["messages"]) for r in self.requests(marker))


@pytest.fixture(scope="module")
def embed_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("embed") / "embeddings.db"


@pytest.fixture
def base(settings: Settings, embed_cache: Path) -> Settings:
    settings.model = "scripted:ablation"
    settings.memory, settings.extractions, settings.optimizers = True, 3, 2
    settings.solvers, settings.embed_cache, settings.embedder = ["highs", "cbc"], embed_cache, "lexical"
    return settings


def test_the_base_run_uses_every_part(base: Settings) -> None:
    run = Run(base)
    assert run.result.verified, run.result.error
    assert (run.result.folder / "memory" / "retrieval.json").exists()
    assert EXAMPLES_IN_EXTRACTION in run.text(EXTRACT) and len(run.requests(JUDGE)) == 1
    assert EXAMPLES_FOR_AGENTS in run.text(SIMULATOR) and EXAMPLES_FOR_AGENTS in run.text("optimizers/opt_1")
    assert {r["temperature"] for r in run.requests("optimizers/opt_1")} == {0.0}
    assert {r["temperature"] for r in run.requests("optimizers/opt_2")} == {base.agent_temperature}
    assert run.result.optimizers[0]["reports"][-1]["level"] == "verified"
    assert len(run.result.optimizers) == 2


def test_memory_off_retrieves_nothing_for_anyone(base: Settings) -> None:
    base.memory = False
    run = Run(base)
    assert run.result.verified, run.result.error
    assert not (run.result.folder / "memory" / "retrieval.json").exists()
    assert EXAMPLES_IN_EXTRACTION not in run.text(EXTRACT)
    assert all(EXAMPLES_FOR_AGENTS not in run.text(m) for m in (SIMULATOR, "optimizers/opt_1", "optimizers/opt_2"))


@pytest.mark.parametrize(
    ("switch", "off_for", "still_for"),
    [
        ("memory_extract", [EXTRACT], [SIMULATOR, "optimizers/opt_1"]),
        ("memory_simulator", [SIMULATOR], [EXTRACT, "optimizers/opt_1"]),
        ("memory_optimizers", ["optimizers/opt_1", "optimizers/opt_2"], [EXTRACT, SIMULATOR]),
    ],
)
def test_memory_per_role_switches(base: Settings, switch: str, off_for: list[str], still_for: list[str]) -> None:
    setattr(base, switch, False)
    run = Run(base)
    assert run.result.verified, run.result.error
    marker = {EXTRACT: EXAMPLES_IN_EXTRACTION}
    assert all(marker.get(m, EXAMPLES_FOR_AGENTS) not in run.text(m) for m in off_for)
    assert all(marker.get(m, EXAMPLES_FOR_AGENTS) in run.text(m) for m in still_for)


def test_mbr_off_takes_the_first_usable_extraction_without_a_judge(base: Settings) -> None:
    base.mbr = False
    run = Run(base)
    selection = json.loads((run.result.folder / "extract" / "mbr.json").read_text())
    assert selection["method"] == "first usable" and run.requests(JUDGE) == []


def test_simulate_off_runs_no_simulator_and_verifies_nothing(base: Settings) -> None:
    base.simulate = False
    run = Run(base)
    assert run.requests(SIMULATOR) == [] and not (run.result.folder / "simulator" / "simulator.py").exists()
    assert run.result.level == "unverified"
    assert all("simulator is switched off" in o["note"] for o in run.result.optimizers)


def test_diversity_off_sends_the_optimizers_alike(base: Settings) -> None:
    base.optimizer_diversity = False
    run = Run(base)
    temperatures = [{r["temperature"] for r in run.requests(f"optimizers/opt_{k}")} for k in (1, 2)]
    assert temperatures == [{base.agent_temperature}, {base.agent_temperature}]
    first, second = (run.requests(f"optimizers/opt_{k}")[0]["messages"] for k in (1, 2))
    assert json.dumps(first).replace("opt_1", "opt_k") == json.dumps(second).replace("opt_2", "opt_k")
    # Both were dealt the first capable solver (the scripted replies then write whatever model they hold).
    assert all(
        "Use HiGHS" in r["messages"][1]["content"] for r in (run.requests(f"optimizers/opt_{k}")[0] for k in (1, 2))
    )


def test_crosscheck_off_checks_the_objective_only(base: Settings) -> None:
    base.crosscheck_probes = 0
    run = Run(base)
    report = run.result.optimizers[0]["reports"][-1]
    assert report["passed"] and not any(i["kind"] == "feasible_region" for i in report["issues"])
    assert "cross-check" in report["level_reason"] or report["level"] != "verified"


def test_one_optimizer_is_self_consistency_off(base: Settings) -> None:
    base.optimizers = 1
    run = Run(base)
    assert len(run.result.optimizers) == 1 and run.requests("optimizers/opt_2") == []
    consensus = json.loads((run.result.folder / "consensus.json").read_text())
    assert consensus["cluster"] == ["optimizer_1"]
