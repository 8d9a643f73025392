"""Every limit ends a run with its own message, keeps the folder, and (for run-level limits) can be resumed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from nemo_opt.cli import cli
from nemo_opt.pipeline import Pipeline
from nemo_opt.settings import Settings
from nemo_opt.testing import OpenAICompatServer, Reply, RoleRouter
from tests.scenarios import EXTRACT, OPTIMIZER, SIMULATOR, call, product_mix, say

REPO = Path(__file__).resolve().parent.parent
PROBLEM = (REPO / "examples" / "product_mix.md").read_text()
RIGHT = [
    say("", call("write_file", path="model.py", content=product_mix.RIGHT_MODEL)),
    say("", call("submit", summary="model")),
]
PRICED = "gpt-4.1"  # a model with a list price, so calls cost something


def _requests(server: OpenAICompatServer, marker: str) -> int:
    return sum(1 for r in server.chat_requests if marker in json.dumps(r["messages"][0]))


def test_cost_ceiling_stops_before_the_call_that_would_pass_it_and_resume_continues(settings: Settings) -> None:
    settings.simulate = False
    # The extraction (about 0.005 USD at gpt-4.1 prices) fits under the ceiling; the first agent call's prompt
    # alone would pass it, so that call is never sent.
    settings.max_cost_usd = 0.007
    router = RoleRouter({EXTRACT: [product_mix.EXTRACTION], OPTIMIZER: RIGHT})
    with OpenAICompatServer(router) as server:
        settings.model = f"openai-compatible:{PRICED}@{server.url}"
        result = Pipeline(settings).solve(PROBLEM)
        assert _requests(server, EXTRACT) == 1 and _requests(server, OPTIMIZER) == 0
        assert result.error_kind == "run_failure" and result.exit_code == 4
        error = result.error or ""
        assert "next call would pass the ceiling of 0.0070 USD (max_cost_usd)" in error
        spent = float(error.split("The run has spent ")[1].split(" USD")[0])
        assert 0 < spent <= 0.007 and result.usage["cost_usd"] == pytest.approx(spent, abs=1e-4)
        assert f"nemo-opt solve --resume {result.run_id}" in error
        for name in ("problem.md", "spec.json", "data.json", "recommendation.json", "result.json"):
            assert (result.folder / name).exists(), name
        # Raise the ceiling and continue: the extraction is not paid for twice.
        settings.max_cost_usd = 1.0
        resumed = Pipeline(settings).resume(result.run_id)
        assert _requests(server, EXTRACT) == 1 and _requests(server, OPTIMIZER) == 2
    assert resumed.error is None and resumed.status == "optimal"
    assert resumed.usage["cost_usd"] > spent  # the run's cost includes what it spent before the resume


@pytest.mark.parametrize("how", ["flag", "env"])
def test_max_cost_from_the_command_line_and_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    monkeypatch.setenv("NEMO_LLM_CACHE", "off")
    problem = tmp_path / "problem.md"
    problem.write_text(PROBLEM)
    router = RoleRouter({EXTRACT: [product_mix.EXTRACTION]})
    with OpenAICompatServer(router) as server:
        args = ["solve", str(problem), "--model", f"openai-compatible:{PRICED}@{server.url}", "--no-memory"]
        if how == "flag":
            args += ["--max-cost", "0.0001"]
        else:
            monkeypatch.setenv("NEMO_MAX_COST_USD", "0.0001")
        done = CliRunner().invoke(cli, args, obj={})
        assert server.chat_requests == []
    output = " ".join(done.output.split())
    assert done.exit_code == 4, output
    assert "The run has spent 0.0000 USD and the next call would pass the ceiling of 0.0001 USD" in output


def test_run_wall_clock_limit_stops_the_run(settings: Settings) -> None:
    settings.run_max_seconds = 1.0
    slow_extraction = Reply(text=product_mix.EXTRACTION.text, delay=1.5)
    router = RoleRouter({EXTRACT: [slow_extraction], OPTIMIZER: RIGHT})
    with OpenAICompatServer(router) as server:
        settings.model = f"openai-compatible:scripted@{server.url}"
        result = Pipeline(settings).solve(PROBLEM)
        assert _requests(server, OPTIMIZER) == 0
    assert result.error_kind == "run_failure" and result.exit_code == 4
    assert "wall-clock limit of 1 s (run_max_seconds)" in (result.error or "")
    assert "NEMO_RUN_MAX_SECONDS" in (result.error or "")
    assert (result.folder / "spec.json").exists() and (result.folder / "result.json").exists()


def test_agent_token_budget_ends_the_run(settings: Settings) -> None:
    settings.simulate = False
    settings.agent_max_tokens = 50
    looping = [say("Let me look around.", call("bash", command="ls")) for _ in range(3)]
    with OpenAICompatServer(RoleRouter({EXTRACT: [product_mix.EXTRACTION], OPTIMIZER: looping})) as server:
        settings.model = f"openai-compatible:scripted@{server.url}"
        result = Pipeline(settings).solve(PROBLEM)
    assert result.exit_code == 4 and "token limit of 50 reached" in (result.error or "")
    assert (result.folder / "trajectories" / "optimizer_1.json").exists()


def test_agent_time_budget_ends_the_run(settings: Settings) -> None:
    settings.simulate = False
    settings.agent_max_seconds = 1.0
    slow = [Reply(text="Thinking.", tool_calls=[("bash", {"command": "ls"})], delay=1.2) for _ in range(3)]
    with OpenAICompatServer(RoleRouter({EXTRACT: [product_mix.EXTRACTION], OPTIMIZER: slow})) as server:
        settings.model = f"openai-compatible:scripted@{server.url}"
        result = Pipeline(settings).solve(PROBLEM)
    assert result.exit_code == 4 and "time limit of 1s reached" in (result.error or "")


def test_command_timeout_stops_a_hanging_model_and_the_agent_is_told(settings: Settings) -> None:
    settings.simulate = False
    settings.sandbox_timeout = 1.0
    settings.agent_max_steps = 2
    hanging = "import time\ntime.sleep(60)\n"
    optimizer = [
        say("", call("write_file", path="model.py", content=hanging)),
        say("", call("submit", summary="model")),
    ]
    with OpenAICompatServer(RoleRouter({EXTRACT: [product_mix.EXTRACTION], OPTIMIZER: optimizer})) as server:
        settings.model = f"openai-compatible:scripted@{server.url}"
        result = Pipeline(settings).solve(PROBLEM)
    assert result.exit_code == 4 and "step limit of 2 reached" in (result.error or "")
    trajectory = (result.folder / "trajectories" / "optimizer_1.json").read_text()
    assert "stopped: timeout limit reached" in trajectory and "Submit refused" in trajectory


@pytest.mark.parametrize("simulator_steps", [None, 6])
def test_the_simulator_has_its_own_step_budget(settings: Settings, simulator_steps: int | None) -> None:
    """Two looks around cost the simulator two of its steps: with the optimizers' budget of 4 it runs out before it
    submits; with simulator_max_steps 6 it finishes, the optimizer still limited to 4."""
    settings.agent_max_steps = 4
    settings.simulator_max_steps = simulator_steps
    settings.optimizers = 1
    looking = [say("Let me look first.", call("bash", command="ls -la")) for _ in range(2)]
    router = RoleRouter(
        {EXTRACT: [product_mix.EXTRACTION], SIMULATOR: looking + product_mix.SIMULATOR, OPTIMIZER: RIGHT}
    )
    with OpenAICompatServer(router) as server:
        settings.model = f"openai-compatible:scripted@{server.url}"
        result = Pipeline(settings).solve(PROBLEM)
    trajectory = (result.folder / "trajectories" / "simulator.json").read_text()
    if simulator_steps is None:
        assert not result.verified and "step limit of 4 reached" in trajectory
    else:
        assert result.verified and router.remaining(SIMULATOR) == 0 and "step limit" not in trajectory
