"""Runs that cannot end well must end clearly: budgets, endless validation failures, infeasibility, bad input,
unreachable or unconfigured models. Every case keeps its run folder."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from nemo_opt.exceptions import ModelNotConfigured
from nemo_opt.pipeline import Pipeline
from nemo_opt.settings import Settings
from nemo_opt.testing import OpenAICompatServer, Reply, RoleRouter
from tests.scenarios import EXTRACT, OPTIMIZER, SIMULATOR, call, product_mix, say, spec_reply

REPO = Path(__file__).resolve().parent.parent
PROBLEM = (REPO / "examples" / "product_mix.md").read_text()
WRONG_MODEL = product_mix.MODEL_DRAFT.replace('data["profits"]', 'data["profit"]')
RIGHT_MODEL = product_mix.RIGHT_MODEL


def _solve(settings: Settings, routes: dict[str, object], problem: str = PROBLEM):  # type: ignore[no-untyped-def]
    with OpenAICompatServer(RoleRouter(routes)) as server:  # type: ignore[arg-type]
        settings.model = f"openai-compatible:scripted@{server.url}"
        return Pipeline(settings).solve(problem)


def test_agent_out_of_steps_fails_the_run_but_keeps_the_folder(settings: Settings) -> None:
    settings.agent_max_steps = 3
    looping = [say("Let me look around.", call("bash", command="ls -la")) for _ in range(3)]
    result = _solve(
        settings,
        {EXTRACT: [product_mix.EXTRACTION], SIMULATOR: product_mix.SIMULATOR, OPTIMIZER: looping},
    )
    assert result.error_kind == "run_failure" and result.exit_code == 4
    assert "step limit of 3 reached" in (result.error or "")
    assert (result.folder / "trajectories" / "optimizer_1.json").exists()
    assert (result.folder / "simulator" / "simulator.py").exists()  # the simulator's work is kept
    assert (result.folder / "result.json").exists()


def test_model_that_never_passes_validation_is_reported_unverified(settings: Settings) -> None:
    settings.repair_rounds = 1
    stubborn = [
        say("", call("write_file", path="model.py", content=WRONG_MODEL)),
        say("", call("bash", command="python model.py")),
        say("", call("submit", summary="done")),
        say("I believe the model is right; re-running it.", call("bash", command="python model.py")),
        say("", call("submit", summary="unchanged")),
    ]
    result = _solve(
        settings, {EXTRACT: [product_mix.EXTRACTION], SIMULATOR: product_mix.SIMULATOR, OPTIMIZER: stubborn}
    )
    assert result.error is None
    assert result.status == "optimal" and not result.verified and result.exit_code == 1
    assert result.objective == pytest.approx(product_mix.WRONG_OBJECTIVE)
    reports = result.optimizers[0]["reports"]
    assert len(reports) == 2 and not any(r["passed"] for r in reports)
    assert all(product_mix.VIOLATED in {i.get("constraint") for i in r["issues"]} for r in reports)
    assert "still failing validation after 1 repair round" in result.optimizers[0]["note"]
    package_report = (result.package / "report.md").read_text()  # type: ignore[operator]
    assert "verification: **unverified**" in package_report


def test_infeasible_problem_is_confirmed_and_reported(settings: Settings) -> None:
    spec = dict(product_mix.SPEC)
    spec["parameters"] = [
        {**p, "value": 200} if p["name"] == "min_chairs" else p for p in product_mix.SPEC["parameters"]
    ]
    optimizer = [
        say("", call("write_file", path="model.py", content=RIGHT_MODEL)),
        say("", call("bash", command="python model.py")),
        say("HiGHS says infeasible.", call("submit", summary="infeasible")),
        say(
            "200 chairs need 600 carpentry hours but only 240 exist, so the problem is infeasible as stated.",
            call("submit", summary="confirmed infeasible: 200 chairs need 600 carpentry hours"),
        ),
    ]
    # With 200 chairs ordered, every plan misses the orders; the simulator's hand cases say so.
    tests = product_mix.SIMULATOR_TESTS.replace(
        'assert verdict["feasible"]', 'assert [v["constraint"] for v in verdict["violations"]] == ["chair_orders"]'
    ).replace('assert names == ["finishing_capacity"]', 'assert "finishing_capacity" in names')
    text = PROBLEM.replace("at least 10 chairs", "at least 200 chairs")
    simulator = product_mix.simulator_replies(tests)
    result = _solve(settings, {EXTRACT: [spec_reply(spec)], SIMULATOR: simulator, OPTIMIZER: optimizer}, text)
    assert result.error is None
    assert result.status == "infeasible" and result.exit_code == 5 and not result.verified
    assert "confirmed status 'infeasible'" in result.optimizers[0]["note"]


def test_description_with_no_decision_is_bad_input(settings: Settings) -> None:
    reply = Reply(text='```json\n{"error": "no_decision", "reason": "the text is a recipe"}\n```')
    result = _solve(settings, {EXTRACT: [reply]}, "Mix two cups of flour with one egg and bake for twenty minutes.")
    assert result.error_kind == "bad_input" and result.exit_code == 2
    assert "does not state a decision" in (result.error or "")
    assert (result.folder / "extract" / "candidate_0.json").exists()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_endpoint_fails_fast_with_the_url(settings: Settings) -> None:
    settings.model = f"openai-compatible:qwen@http://127.0.0.1:{_closed_port()}/v1"
    settings.llm_max_retries = 2
    settings.llm_backoff_max = 0.2
    started = time.monotonic()
    result = Pipeline(settings).solve(PROBLEM)
    assert time.monotonic() - started < 20
    assert result.error_kind == "run_failure" and result.exit_code == 4
    assert "127.0.0.1" in (result.error or "")
    assert (result.folder / "problem.md").exists()


def test_missing_key_and_missing_model_name_the_fix(settings: Settings) -> None:
    settings.model = "openai:gpt-4.1"
    with pytest.raises(ModelNotConfigured, match="OPENAI_API_KEY"):
        Pipeline(settings).solve(PROBLEM)
    settings.model = None
    with pytest.raises(ModelNotConfigured, match="openai-compatible:"):
        Pipeline(settings).solve(PROBLEM)
    assert not settings.run_root.exists() or not any(settings.run_root.iterdir())


def test_simulator_that_crashes_on_a_solution_is_repaired_not_trusted(settings: Settings) -> None:
    # A simulator computing a "slack ratio" divides by zero when the finishing hours are used exactly,
    # which the probe (all zeros) does not reach but the optimum (30 tables, 40 chairs) does.
    bug = '    slack_ratio = finishing / (data["finishing_available"] - finishing) if finishing else 0.0\n'
    anchor = '    finishing = sum(data["finishing_hours"][p] * make[p] for p in products)\n'
    crashing = product_mix.SIMULATOR_CODE.replace(anchor, anchor + bug)
    assert crashing != product_mix.SIMULATOR_CODE
    tests = product_mix.SIMULATOR_TESTS.replace("def test_plan_using_all_hours", "def _skipped_plan")
    simulator = [
        say("", call("write_file", path="simulator/simulator.py", content=crashing)),
        say("", call("write_file", path="simulator/test_simulator.py", content=tests)),
        say("", call("submit", summary="simulator")),
        say(
            "The slack ratio divides by zero when finishing is fully used; it is not needed. Removing it.",
            call(
                "edit_file",
                path="simulator/simulator.py",
                old_text=bug,
                new_text="",
            ),
        ),
        say("", call("submit", summary="fixed the crash")),
    ]
    optimizer = [
        say("", call("write_file", path="model.py", content=RIGHT_MODEL)),
        say("", call("submit", summary="model")),
    ]
    result = _solve(settings, {EXTRACT: [product_mix.EXTRACTION], SIMULATOR: simulator, OPTIMIZER: optimizer})
    assert result.verified and result.objective == pytest.approx(product_mix.EXPECTED_OBJECTIVE)
    crashed, passed = result.optimizers[0]["reports"]  # both kept: the crash and the re-validation
    assert crashed["issues"][0]["kind"] == "simulator_error" and "ZeroDivisionError" in crashed["issues"][0]["message"]
    assert passed["passed"] and passed["round"] == 0 and passed["attempt"] == 1
    opt_dir = result.folder / "optimizers" / "opt_1"
    assert "ZeroDivisionError" in (opt_dir / "simulation_0.json").read_text()
    assert (opt_dir / "validation_0.json").exists() and (opt_dir / "validation_0_1.json").exists()
    trajectory = (result.folder / "trajectories" / "simulator.json").read_text()
    assert "ZeroDivisionError" in trajectory and "simulator_repair" in trajectory
