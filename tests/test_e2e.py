"""End to end through the loopback OpenAI-compatible server: real SDK, HTTP, sandbox, solvers and SQLite.

The model replies are scripted (see tests/scenarios); everything else is the real thing. Expected answers
come from hand computation or the benchmark's gold answer.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from nemo_opt.pipeline import Pipeline
from nemo_opt.result import RunResult
from nemo_opt.settings import Settings
from nemo_opt.store import RunStore
from nemo_opt.testing import OpenAICompatServer, Reply, RoleRouter
from tests.conftest import benchmark_item
from tests.scenarios import (
    EXTRACT,
    OPTIMIZER,
    SIMULATOR,
    btd,
    call,
    ducks,
    feed,
    product_mix,
    say,
    spec_reply,
    whole_files,
)

REPO = Path(__file__).resolve().parent.parent


def run_scenario(settings: Settings, scenario: ModuleType, problem: str) -> tuple[RunResult, OpenAICompatServer]:
    """Solve ``problem`` with the scenario's scripted replies served over loopback HTTP."""
    router = RoleRouter({EXTRACT: [scenario.EXTRACTION], SIMULATOR: scenario.SIMULATOR, OPTIMIZER: scenario.OPTIMIZER})
    with OpenAICompatServer(router) as server:
        settings.model = f"openai-compatible:scripted@{server.url}"
        result = Pipeline(settings).solve(problem)
    assert router.remaining(SIMULATOR) == 0 and router.remaining(OPTIMIZER) == 0, "script not fully used"
    return result, server


def _requests_of(server: OpenAICompatServer, marker: str) -> list[dict[str, Any]]:
    return [r for r in server.chat_requests if marker in json.dumps(r["messages"][0])]


def _tool_results(request: dict[str, Any]) -> list[str]:
    return [m["content"] for m in request["messages"] if m["role"] == "tool"]


def test_product_mix_simulator_catches_the_missing_constraint(settings: Settings) -> None:
    problem = (REPO / "examples" / "product_mix.md").read_text()
    result, server = run_scenario(settings, product_mix, problem)

    assert result.error is None, result.error
    assert result.verified and result.status == "optimal"
    assert result.objective == pytest.approx(product_mix.EXPECTED_OBJECTIVE)
    # pass@1 is the first optimizer's final answer; the first accepted model was the wrong one.
    first_report, final_report = result.optimizers[0]["reports"]
    assert not first_report["passed"] and final_report["passed"]
    assert first_report["objective_model"] == pytest.approx(product_mix.WRONG_OBJECTIVE)
    # The repaired model exported its rows; the feasible-region cross-check ran and found nothing to object to.
    assert final_report["crosscheck"]["ran"] and final_report["crosscheck"]["disagreements"] == 0
    assert final_report["crosscheck"]["mapped_columns"] == 2
    violated = [i for i in first_report["issues"] if i["kind"] == "constraint_violation"]
    assert [i["constraint"] for i in violated] == [product_mix.VIOLATED]
    assert violated[0]["amount"] == pytest.approx(14.0)

    optimizer_requests = _requests_of(server, OPTIMIZER)
    # The crash of the first draft reached the agent as an observation with the traceback ...
    assert any("KeyError: 'profits'" in text for r in optimizer_requests for text in _tool_results(r))
    # ... and the repair instruction names the violated constraint and both objective values.
    repair = [m["content"] for m in optimizer_requests[-3]["messages"] if m["role"] == "user"][-1]
    assert "FAILED validation" in repair and product_mix.VIOLATED in repair

    # The run folder keeps every artifact of the workspace-state layout.
    folder = result.folder
    for name in (
        "problem.md",
        "spec.json",
        "data.json",
        "simulator/simulator.py",
        "result.json",
        "optimizers/opt_1/model.py",
        "optimizers/opt_1/validation_0.json",
        "optimizers/opt_1/history/round_0/model.py",
        "trajectories/simulator.json",
        "trajectories/optimizer_1.json",
        "extract/candidate_0.json",
    ):
        assert (folder / name).exists(), name
    store = RunStore(settings.store_path)
    calls = store.llm_calls(result.run_id)
    assert {c["stage"] for c in calls} == {"extract", "simulator", "optimizer_1"}
    assert all(c["template"] and c["prompt_tokens"] > 0 for c in calls)
    assert store.get_run(result.run_id)["verified"] == 1


def test_package_reruns_with_plain_python_and_pytest(settings: Settings, tmp_path: Path) -> None:
    problem = (REPO / "examples" / "product_mix.md").read_text()
    result, _ = run_scenario(settings, product_mix, problem)
    package = result.package
    assert package is not None
    for name in (
        "model.py",
        "data.json",
        "simulator/simulator.py",
        "test_model.py",
        "formulation.md",
        "report.json",
        "report.md",
    ):
        assert (package / name).exists(), name
    (package / "solution.json").unlink()
    run = subprocess.run([sys.executable, "model.py"], cwd=package, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert json.loads((package / "solution.json").read_text())["objective"] == pytest.approx(4100.0)
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_model.py", "simulator"],
        cwd=package,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "5 passed" in tests.stdout
    assert "finishing_capacity" in (package / "formulation.md").read_text()


def test_ducks_milp_with_malformed_tool_call_and_repair(settings: Settings) -> None:
    item = benchmark_item(ducks.BENCHMARK_FILE, ducks.ITEM_ID)
    result, server = run_scenario(settings, ducks, item["question"])
    assert result.verified and result.error is None
    assert result.objective == pytest.approx(item["answer"])
    first = result.optimizers[0]["reports"][0]
    assert [i["constraint"] for i in first["issues"] if i["kind"] == "constraint_violation"] == [ducks.VIOLATED]
    assert first["objective_model"] == pytest.approx(1120.0)
    # The malformed tool call got an explanation, not a crash.
    sim_requests = _requests_of(server, SIMULATOR)
    assert any("not valid JSON" in text for text in _tool_results(sim_requests[1]))


def test_feed_lp_with_the_plain_text_protocol(settings: Settings) -> None:
    item = benchmark_item(feed.BENCHMARK_FILE, feed.ITEM_ID)
    settings.agent_protocol = "text"
    result, server = run_scenario(settings, feed, item["question"])
    assert result.verified and result.error is None
    assert result.objective == pytest.approx(item["answer"], rel=1e-9)
    # No tools are offered in text mode, and the two-block reply was refused with an explanation.
    sim_requests = _requests_of(server, SIMULATOR)
    assert all(not r.get("tools") for r in sim_requests)
    assert "2 bash blocks" in sim_requests[1]["messages"][-1]["content"]


def test_multi_period_plan_with_a_simulator_that_fixes_its_own_test(settings: Settings) -> None:
    item = benchmark_item(btd.BENCHMARK_FILE, btd.ITEM_ID)
    result, server = run_scenario(settings, btd, item["question"])
    assert result.verified and result.error is None
    assert result.objective == pytest.approx(item["answer"])
    failing_run = _tool_results(_requests_of(server, SIMULATOR)[3])[-1]
    assert "1 failed" in failing_run and "103950" in failing_run


JUDGE = "You are checking candidate formulations"


@pytest.fixture(scope="session")
def shared_embed_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One embedding cache for the session, so the starter memory is embedded once."""
    return tmp_path_factory.mktemp("embed") / "embeddings.db"


def test_stability_suite_end_to_end(settings: Settings, shared_embed_cache: Path) -> None:
    settings.extractions, settings.optimizers, settings.memory = 3, 2, True
    settings.solvers = ["highs", "cbc"]
    settings.embed_cache = shared_embed_cache
    no_finishing = copy.deepcopy(product_mix.SPEC)
    no_finishing["constraints"] = [c for c in no_finishing["constraints"] if c["name"] != "finishing_capacity"]
    router = RoleRouter(
        {
            JUDGE: [Reply(text='```json\n{"choice": "A", "reason": "A has all three limits from the text."}\n```')],
            EXTRACT: [product_mix.EXTRACTION, spec_reply(no_finishing), product_mix.EXTRACTION],
            SIMULATOR: product_mix.SIMULATOR,
            "optimizers/opt_1": product_mix.OPTIMIZER,
            "optimizers/opt_2": product_mix.OPTIMIZER_PULP,
        }
    )
    problem = (REPO / "examples" / "product_mix.md").read_text()
    with OpenAICompatServer(router) as server:
        settings.model = f"openai-compatible:scripted@{server.url}"
        result = Pipeline(settings).solve(problem)
    assert result.error is None, result.error
    assert result.verified and result.objective == pytest.approx(product_mix.EXPECTED_OBJECTIVE)
    assert [o["solver"] for o in result.optimizers] == ["highs", "cbc"]
    assert all(o["verified"] for o in result.optimizers)

    selection = json.loads((result.folder / "extract" / "mbr.json").read_text())
    assert selection["method"] == "component-wise MBR + judge" and selection["choice"] in (0, 2)
    assert min(selection["utility"]["0"], selection["utility"]["2"]) > selection["utility"]["1"]
    assert "finishing_capacity" in json.loads((result.folder / "spec.json").read_text())["constraints"][1]["name"]

    retrieval = json.loads((result.folder / "memory" / "retrieval.json").read_text())
    chosen = [c["id"] for c in retrieval["chosen"]]
    assert len(chosen) == 3 and all(i.startswith("starter-") for i in chosen)
    assert all((result.folder / c["path"]).exists() for c in retrieval["chosen"])

    def requests_with(marker: str) -> list[str]:
        return [json.dumps(r["messages"]) for r in server.chat_requests if marker in json.dumps(r["messages"][0])]

    # Memory reaches the extractor, the simulator and the optimizers; the judge sees the problem text alone.
    extraction_requests = requests_with(EXTRACT)
    assert extraction_requests and all("Solved examples of similar problems" in r for r in extraction_requests)
    (judge_request,) = requests_with(JUDGE)
    assert "tables and chairs" in judge_request and "Solved examples" not in judge_request
    assert not any(f"memory/ex_{i}" in judge_request for i in (1, 2, 3))
    assert "Its model:" not in judge_request
    assert all("## Solved examples" in r and "memory/ex_1.py" in r for r in requests_with(SIMULATOR))
    # The optimizers differ for a reason: optimizer 1 greedy with every example, optimizer 2 sampled with its
    # own subset (example 1 left out) and the next capable solver.
    first_request = requests_with("optimizers/opt_1")[0]
    second_request = requests_with("optimizers/opt_2")[0]
    assert all(f"../../memory/ex_{i}.py" in first_request for i in (1, 2, 3))
    assert "../../memory/ex_1.py" not in second_request and "../../memory/ex_2.py" in second_request
    temperatures = {
        marker: {r.get("temperature", 0.0) for r in server.chat_requests if marker in json.dumps(r["messages"][0])}
        for marker in ("optimizers/opt_1", "optimizers/opt_2")
    }
    assert temperatures == {"optimizers/opt_1": {0.0}, "optimizers/opt_2": {settings.agent_temperature}}


def test_cross_check_catches_a_dropped_non_binding_constraint_and_the_repair_fixes_it(settings: Settings) -> None:
    # Without the chair orders (10 chairs; the optimum makes 40) the model still answers 30 tables, 40 chairs,
    # 4100: objective-only validation passes, the cross-check does not.
    chair_row = 'h.addConstr(make["chair"] >= data["min_chairs"])\n'
    no_orders = product_mix.RIGHT_MODEL.replace(chair_row, "")
    assert no_orders != product_mix.RIGHT_MODEL
    optimizer = [
        say("", call("write_file", path="model.py", content=no_orders)),
        say("", call("bash", command="python model.py")),
        say("", call("submit", summary="model")),
        say(
            "The chair orders are missing from the model: adding them.",
            call("write_file", path="model.py", content=product_mix.RIGHT_MODEL),
        ),
        say("", call("submit", summary="added the chair orders")),
    ]
    router = RoleRouter({EXTRACT: [product_mix.EXTRACTION], SIMULATOR: product_mix.SIMULATOR, OPTIMIZER: optimizer})
    with OpenAICompatServer(router) as server:
        settings.model = f"openai-compatible:scripted@{server.url}"
        result = Pipeline(settings).solve((REPO / "examples" / "product_mix.md").read_text())
    assert result.verified and result.objective == pytest.approx(4100.0)
    first, final = result.optimizers[0]["reports"]
    assert first["objective_simulator"] == pytest.approx(4100.0)  # the objective check alone passed
    region = [i for i in first["issues"] if i["kind"] == "feasible_region"]
    assert region and all("model too loose" in i["message"] for i in region)
    assert {i["constraint"] for i in region} == {"chair_orders"}
    repair = [m["content"] for m in _requests_of(server, OPTIMIZER)[3]["messages"] if m["role"] == "user"][-1]
    assert "model too loose" in repair and "chair_orders" in repair
    assert final["passed"] and final["crosscheck"]["disagreements"] == 0


def test_product_mix_with_whole_file_agents(settings: Settings) -> None:
    """The local-model protocol: every reply is the whole file; the harness saves, runs, checks and submits it."""
    settings.agent_protocol = "files"
    # A number P* leaves out is flagged before the agents start.
    problem = (REPO / "examples" / "product_mix.md").read_text() + "\nSix people work in the shop.\n"
    result, server = run_scenario(settings, whole_files, problem)
    assert result.error is None, result.error
    assert json.loads((result.folder / "extract" / "trace.json").read_text())["missing"] == [6.0]
    # Simulator and model read the same data.json, so an untraced P* holds the answer below "verified".
    assert result.level == "objective-checked" and "do not all trace to the problem text" in result.level_reason
    for marker in (SIMULATOR, OPTIMIZER):  # the agents take their numbers from the text, not from data.json
        first_prompt = _requests_of(server, marker)[0]["messages"][1]["content"]
        assert "Take every number from the problem text" in first_prompt and "table, chair" in first_prompt
        assert '"carpentry_available": 240' not in first_prompt
    assert result.objective == pytest.approx(whole_files.EXPECTED_OBJECTIVE)
    first, final = result.optimizers[0]["reports"]
    assert not first["passed"] and first["objective_model"] == pytest.approx(whole_files.WRONG_OBJECTIVE)
    assert final["passed"] and final["crosscheck"]["mapped_columns"] == 2
    assert all(not r.get("tools") for r in server.chat_requests)

    sim = _requests_of(server, SIMULATOR)
    assert "Now reply with the complete file `simulator/test_simulator.py`" in sim[1]["messages"][-1]["content"]
    assert "1 failed" in sim[2]["messages"][-1]["content"] and "4000" in sim[2]["messages"][-1]["content"]
    prompt = sim[0]["messages"][1]["content"]
    assert "make = {i: value('make', i) for i in data['products']}" in prompt  # a solution's shape, from P*
    assert "def at_most" not in prompt  # the helpers are put in the saved file, not written by the agent
    saved = (result.folder / "simulator" / "simulator.py").read_text()
    assert saved.count("def at_most(") == 1 and "def _value(" in saved  # its own helpers are kept beside them
    opt = _requests_of(server, OPTIMIZER)
    assert "no ```python block" in opt[1]["messages"][-1]["content"]
    # A request carries the task and the latest attempt only: the prose-only first reply is gone by the repair.
    repair = opt[2]["messages"]
    assert [m["role"] for m in repair] == ["system", "user", "assistant", "user"]
    assert "FAILED validation" in repair[-1]["content"] and "finishing_capacity" in repair[-1]["content"]
    assert "Reply with the complete file(s) `model.py`" in repair[-1]["content"]
    assert not any("I will model the weekly plan" in m["content"] for m in repair)
    # What was saved is the model's body plus the harness's ending, and it runs on its own in the package.
    package = result.package
    assert package is not None
    model = (package / "model.py").read_text()
    assert model.startswith(whole_files.RIGHT.splitlines()[0]) and model.count("fixed ending, added by") == 1
    (package / "solution.json").unlink()
    run = subprocess.run([sys.executable, "model.py"], cwd=package, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    saved = json.loads((package / "solution.json").read_text())
    assert saved["variables"] == {"make": {"table": 30.0, "chair": 40.0}}
    assert saved["columns"] == {"make_table": "make[table]", "make_chair": "make[chair]"}


def test_a_simulator_that_cannot_work_is_fixed_before_its_tests_are_asked_for(settings: Settings) -> None:
    """A 1.5B model's first simulator kept the skeleton's placeholder check; the next one named a variable it
    never defined. Each is said back at once and the simulator asked for again, not the tests."""
    from nemo_opt.spec import ProblemSpec
    from nemo_opt.stages.context import CHECK_PLACEHOLDER, simulator_skeleton

    settings.agent_protocol = "files"
    settings.simulator_max_steps = 5  # three failed drafts and the wrong tests: the working simulator is no step
    skeleton = simulator_skeleton(ProblemSpec.model_validate(whole_files.SPEC))
    filled = skeleton.replace("objective = ...", "objective = 70 * make['table'] + 50 * make['chair']")
    crashing = filled.replace(CHECK_PLACEHOLDER, "at_most('carpentry', 4 * tables + 3 * chairs, 240, ['make'])")
    made_up = filled.replace(CHECK_PLACEHOLDER, "at_most('carpentry', 4, data['carpentry_hours_limit'], ['make'])")
    drafts = [Reply(text=f"```python\n{code}```\n") for code in (filled, crashing, made_up)]
    router = RoleRouter(
        {EXTRACT: [whole_files.EXTRACTION], SIMULATOR: drafts + whole_files.SIMULATOR, OPTIMIZER: whole_files.OPTIMIZER}
    )
    with OpenAICompatServer(router) as server:
        settings.model = f"openai-compatible:scripted@{server.url}"
        result = Pipeline(settings).solve((REPO / "examples" / "product_mix.md").read_text())
    assert result.verified and result.objective == pytest.approx(whole_files.EXPECTED_OBJECTIVE)
    said = [r["messages"][-1]["content"] for r in _requests_of(server, SIMULATOR)[1:]]
    assert "still has the placeholder line" in said[0] and "NameError" in said[1]
    assert "Neither data.json nor the solution has the key 'carpentry_hours_limit'" in said[2]
    assert "The solution's keys are the variables make; data.json's are products," in said[2]
    for text in said[:3]:
        assert "Reply with the complete file `simulator/simulator.py`, fixed" in text and "test_a_feasible" not in text
    assert "Now reply with the complete file `simulator/test_simulator.py`" in said[3]  # the tests come next
    assert "def at_most" not in said[1]  # the file as it stands is shown without the system's helpers
