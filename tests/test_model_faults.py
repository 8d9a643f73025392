"""The model-fault suite: every service or reply fault ends in bounded time, recovered or failed with a
specific message, at the backend, in the agent loop, and in whole runs whose folders keep the work done."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from nemo_opt.agent.base import Acceptance, AgentStatus, AgentTask
from nemo_opt.agent.loop import AgentLimits, ToolLoopAgent
from nemo_opt.agent.tools import is_refusal
from nemo_opt.exceptions import LLMUnavailable
from nemo_opt.llm.base import Message
from nemo_opt.llm.openai_backend import OpenAIChat
from nemo_opt.llm.recorder import RecordedLLM
from nemo_opt.llm.retry import RetryPolicy
from nemo_opt.pipeline import Pipeline
from nemo_opt.result import RunResult
from nemo_opt.sandbox import Limits, make_sandbox
from nemo_opt.settings import Settings
from nemo_opt.testing import OpenAICompatServer, Reply, RoleRouter, ScriptedLLM
from nemo_opt.testing.model_faults import CASES, FaultConfig, case, outcome_table, run_all, run_case
from nemo_opt.testing.openai_server import Hangup
from nemo_opt.workspace import Workspace
from tests.scenarios import EXTRACT, OPTIMIZER, SIMULATOR, bash_reply, call, product_mix, say

REPO = Path(__file__).resolve().parent.parent
PROBLEM = (REPO / "examples" / "product_mix.md").read_text()
HELLO = [Message("user", "Say ok.")]
CONFIG = FaultConfig()
TRANSIENT = [c for c in CASES if c.kind == "transient"]
REPLY = [c for c in CASES if c.kind == "reply"]


# --- the suite, case by case ----------------------------------------------------------------------------------


def test_the_case_list_covers_every_required_fault() -> None:
    names = {c.name for c in CASES}
    required = {
        "connection_refused",
        "read_timeout",
        "rate_limited",
        "server_error",
        "unavailable",
        "invalid_json_body",
        "empty_choices",
        "invalid_tool_arguments",
        "unknown_tool",
        "empty_content",
        "enormous_content",
        "refusal",
    }
    assert required <= names
    with pytest.raises(KeyError, match="known: connection_refused"):
        case("cosmic_ray")


@pytest.mark.parametrize("layer", ["llm", "agent"])
@pytest.mark.parametrize("fault", CASES, ids=lambda c: c.name)
def test_a_fault_that_happens_once_is_recovered(fault: Any, layer: Any) -> None:
    outcome = run_case(fault, layer=layer, persistent=False, config=CONFIG)
    assert outcome.ok, outcome.outcome
    assert outcome.outcome.startswith("recovered")
    assert outcome.seconds < (CONFIG.llm_bound() if layer == "llm" else CONFIG.agent_bound())


@pytest.mark.parametrize("fault", TRANSIENT, ids=lambda c: c.name)
def test_a_persistent_service_fault_fails_with_the_url_the_fault_and_the_fix(fault: Any) -> None:
    outcome = run_case(fault, layer="llm", persistent=True, config=CONFIG)
    assert outcome.ok, outcome.outcome
    assert outcome.outcome.startswith("failed with LLM")
    assert "http://127.0.0.1:" in outcome.outcome and fault.failure in outcome.outcome
    assert "after 1 retry" in outcome.outcome
    # Every message says what to do next.
    assert any(word in outcome.outcome for word in ("Check", "Wait", "raise"))
    assert outcome.seconds < CONFIG.llm_bound()


@pytest.mark.parametrize("fault", CASES, ids=lambda c: c.name)
def test_a_persistent_fault_stops_the_agent_cleanly(fault: Any) -> None:
    outcome = run_case(fault, layer="agent", persistent=True, config=CONFIG)
    assert outcome.ok, outcome.outcome
    if fault.kind == "reply":
        assert "limit of" in outcome.outcome and fault.label in outcome.outcome
    else:
        assert outcome.outcome.startswith("failed with LLM") and fault.failure in outcome.outcome
    assert outcome.seconds < CONFIG.agent_bound()


def test_the_report_table_has_one_row_per_run() -> None:
    chosen = [case("connection_refused"), case("refusal")]
    rows = run_all(["llm", "agent"], modes=[False, True], cases=chosen, config=CONFIG)
    table = outcome_table(rows)
    # The persistent run of a reply fault at the LLM layer is the same as the single one, so it is skipped.
    assert len(rows) == 7 and table.count("\n") == 7 + 1 and all(outcome.ok for _, _, outcome in rows)
    assert "| connection_refused | llm | once | yes | recovered after 1 retry" in table


def test_run_case_rejects_a_config_that_cannot_recover() -> None:
    with pytest.raises(ValueError, match="retries"):
        run_case("server_error", config=FaultConfig(retries=0))
    with pytest.raises(ValueError, match="layer"):
        run_case("server_error", layer="pipeline")  # type: ignore[arg-type]


# --- the backend, in detail ----------------------------------------------------------------------------------


class Waits(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def _backend(server: OpenAICompatServer, tmp_path: Path, waits: Waits, retries: int = 2) -> OpenAIChat:
    settings = Settings(home=tmp_path, llm_timeout=0.5, llm_max_retries=retries, llm_backoff_max=0.3)
    policy = RetryPolicy(retries, 0.3, base=0.05, sleep=waits)
    return OpenAIChat("m", settings, api_key="k", base_url=server.url, policy=policy)


def test_retry_after_is_honoured_below_the_cap_and_capped_above_it(tmp_path: Path) -> None:
    script = [
        Reply(status=429, headers={"Retry-After": "0.1"}),
        Reply(status=429, headers={"Retry-After": "3600"}),
        Reply("ok"),
    ]
    waits = Waits()
    with OpenAICompatServer(script) as server:
        completion = _backend(server, tmp_path, waits).complete(HELLO)
    assert completion.first.text == "ok" and completion.retries == 2
    assert waits == [0.1, 0.3]


def test_read_timeouts_are_bounded_by_attempts_times_the_timeout(tmp_path: Path) -> None:
    with OpenAICompatServer(lambda messages, tools: Reply("late", delay=30)) as server:
        llm = _backend(server, tmp_path, Waits())
        started = time.monotonic()
        with pytest.raises(LLMUnavailable, match="0.5 s timeout after 2 retries"):
            llm.complete(HELLO)
        elapsed = time.monotonic() - started
    assert 3 * 0.5 <= elapsed < 3 * 0.5 + 2.0
    assert len(server.chat_requests) == 3


def test_a_connection_dropped_mid_body_is_retried(tmp_path: Path) -> None:
    waits = Waits()
    with OpenAICompatServer([Hangup(partial=5), Hangup(), Reply("ok")]) as server:
        completion = _backend(server, tmp_path, waits).complete(HELLO)
    assert completion.first.text == "ok" and completion.retries == 2 and len(waits) == 2


def test_a_server_that_is_not_listening_refuses_until_it_listens(tmp_path: Path) -> None:
    with OpenAICompatServer([Reply("ok")], listening=False) as server:
        with pytest.raises(LLMUnavailable, match="refused"):
            _backend(server, tmp_path, Waits(), retries=0).complete(HELLO)
        server.listen()
        assert _backend(server, tmp_path, Waits(), retries=0).complete(HELLO).first.text == "ok"


# --- the agent loop, in detail ---------------------------------------------------------------------------------


def _task(ws: Workspace) -> AgentTask:
    def accept() -> Acceptance:
        done = (ws.root / "done.txt").exists()
        return Acceptance(done, "" if done else "done.txt does not exist yet")

    return AgentTask("worker", "system prompt", "make done.txt", ws.root, accept, "done.txt exists")


def _agent(
    tmp_path: Path, script: Any, protocol: str = "tools", **limits: Any
) -> tuple[ToolLoopAgent, ScriptedLLM, Workspace]:
    ws = Workspace(tmp_path / "ws")
    ws.create()
    llm = ScriptedLLM(script)
    sandbox = make_sandbox("auto", ws.root, Limits(timeout=30))
    agent = ToolLoopAgent(RecordedLLM(llm), sandbox, ws, protocol=protocol, limits=AgentLimits(**limits))  # type: ignore[arg-type]
    return agent, llm, ws


def _shown(llm: ScriptedLLM, index: int) -> str:
    """The observation the model saw in request ``index`` (the last message)."""
    return str(llm.requests[index]["messages"][-1]["content"])


def test_enormous_reply_is_cut_in_history_and_trajectory_and_the_model_is_told(tmp_path: Path) -> None:
    big = "Thinking about the constraints once more. " * 50_000  # 2.1 MB
    agent, llm, ws = _agent(
        tmp_path,
        [say(big, call("write_file", path="done.txt", content="x")), say("", call("submit"))],
        reply_chars=10_000,
    )
    result = agent.run(_task(ws))
    assert result.submitted and result.steps == 2
    # The tool call of the oversized reply still ran; what was kept of its text is bounded.
    stored = llm.requests[1]["messages"][-2]
    assert stored["role"] == "assistant" and len(stored["content"]) < 10_100
    assert "characters omitted" in stored["content"]
    assert f"{len(big):,} characters long" in _shown(llm, 1) and "Wrote 1 characters" in _shown(llm, 1)
    trajectory = ws.trajectories / "worker.json"
    assert trajectory.stat().st_size < 60_000
    assert len(json.dumps(llm.requests[1]["messages"])) < 12_000


def test_text_protocol_refusal_empty_and_enormous_replies(tmp_path: Path) -> None:
    agent, llm, ws = _agent(
        tmp_path,
        [
            Reply(text="I'm sorry, but I can't help with that."),
            Reply(text="   "),
            Reply(text="x" * 100_000),
            bash_reply("Create it.", "touch done.txt"),
            bash_reply("Done.", "echo NEMO_SUBMIT"),
        ],
        protocol="text",
        reply_chars=5_000,
    )
    result = agent.run(_task(ws))
    assert result.submitted and result.steps == 5
    assert "declined the task" in _shown(llm, 1) and "```bash" in _shown(llm, 1)
    assert "reply was empty" in _shown(llm, 2)
    assert "100,000 characters long" in _shown(llm, 3) and "no bash block" in _shown(llm, 3)
    # Roles keep alternating (strict chat templates reject two user turns in a row).
    roles = [m["role"] for m in llm.requests[-1]["messages"][1:]]
    assert all(a != b for a, b in zip(roles, roles[1:], strict=False))


def test_a_model_that_keeps_refusing_stops_at_the_step_limit_with_the_reason(tmp_path: Path) -> None:
    agent, _, ws = _agent(tmp_path, lambda m, t: Reply(text="I cannot assist with that request."), max_steps=3)
    result = agent.run(_task(ws))
    assert result.status is AgentStatus.LIMITS_EXCEEDED and result.steps == 3
    assert "step limit of 3 reached" in result.reason and "last 3 replies could not be acted on" in result.reason
    assert "refusal" in result.reason
    events = json.loads((ws.trajectories / "worker.json").read_text())["events"]
    assert [e.get("fault", "")[:7] for e in events] == ["refusal"] * 3


def test_one_good_call_next_to_a_bad_one_is_progress_not_a_fault(tmp_path: Path) -> None:
    mixed = Reply(tool_calls=[("launch_rocket", {}), ("bash", {"command": "echo hi"})])
    agent, _, ws = _agent(tmp_path, lambda m, t: mixed, max_steps=2)
    result = agent.run(_task(ws))
    assert result.reason == "step limit of 2 reached"


def test_fault_streak_resets_after_a_usable_reply(tmp_path: Path) -> None:
    script = [Reply(text=""), say("", call("bash", command="echo hi")), Reply(tool_calls=[("write_file", "{oops")])]
    agent, _, ws = _agent(tmp_path, script, max_steps=3)
    result = agent.run(_task(ws))
    assert result.reason.endswith("last reply could not be acted on (last: invalid JSON arguments for write_file)")


def test_the_trajectory_records_why_a_failing_service_stopped_the_agent(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    ws.create()
    script = [say("", call("write_file", path="notes.txt", content="kept")), Reply(status=503, text="down")]
    script += [Reply(status=503, text="down")]
    with OpenAICompatServer(script) as server:
        llm = RecordedLLM(_backend(server, tmp_path, Waits(), retries=1))
        agent = ToolLoopAgent(llm, make_sandbox("auto", ws.root, Limits(timeout=30)), ws)
        with pytest.raises(LLMUnavailable, match="HTTP 503: down"):
            agent.run(_task(ws))
    trajectory = json.loads((ws.trajectories / "worker.json").read_text())
    assert trajectory["status"] == "failed" and trajectory["steps"] == 2
    assert trajectory["reason"].startswith("the model call of step 2 failed:") and "HTTP 503" in trajectory["reason"]
    assert len(trajectory["events"]) == 1 and (ws.root / "notes.txt").read_text() == "kept"


@pytest.mark.parametrize(
    ("text", "refusal"),
    [
        ("I can't help with that.", True),
        ("I\u2019m sorry, but I can\u2019t assist with that request.", True),
        ("Unfortunately, I am unable to comply.", True),
        ("I will write the model now.", False),
        ("Let me check: I can't see data.json yet, so I will list the folder.", False),
        ("", False),
        ("I can't help with that. " * 100, False),  # long prose is not a bare refusal
    ],
)
def test_refusal_detection(text: str, refusal: bool) -> None:
    assert is_refusal(text) is refusal


# --- whole runs --------------------------------------------------------------------------------------------------


def _fast(settings: Settings) -> Settings:
    settings.llm_timeout = 0.5
    settings.llm_max_retries = 1
    settings.llm_backoff_max = 0.05
    return settings


def _then_forever(replies: list[Reply], fault: Reply) -> Callable[[Any, Any], Reply]:
    """A role's script: ``replies`` in order, then ``fault`` on every later request."""
    queue = list(replies)

    def script(messages: Any, tools: Any) -> Reply:
        return queue.pop(0) if queue else fault

    return script


def _solve(settings: Settings, routes: dict[str, Any]) -> tuple[RunResult, str, float]:
    with OpenAICompatServer(RoleRouter(routes)) as server:
        settings.model = f"openai-compatible:scripted@{server.url}"
        started = time.monotonic()
        result = Pipeline(settings).solve(PROBLEM)
        return result, server.url, time.monotonic() - started


def test_run_whose_service_fails_mid_optimizer_keeps_all_work(settings: Settings) -> None:
    optimizer = _then_forever(
        [say("I'll write the model.", call("write_file", path="model.py", content=product_mix.RIGHT_MODEL))],
        Reply(status=503, text="model is loading"),
    )
    result, url, seconds = _solve(
        _fast(settings), {EXTRACT: [product_mix.EXTRACTION], SIMULATOR: product_mix.SIMULATOR, OPTIMIZER: optimizer}
    )
    assert result.error_kind == "run_failure" and result.exit_code == 4 and seconds < 30
    assert url in (result.error or "") and "HTTP 503: model is loading" in (result.error or "")
    assert "kept failing with a server error after 1 retry" in (result.error or "")
    folder = result.folder
    for name in (
        "problem.md",
        "spec.json",
        "data.json",
        "simulator/simulator.py",
        "simulator/test_simulator.py",
        "optimizers/opt_1/model.py",
        "trajectories/simulator.json",
        "trajectories/optimizer_1.json",
        "result.json",
    ):
        assert (folder / name).exists(), name
    assert (folder / "optimizers/opt_1/model.py").read_text() == product_mix.RIGHT_MODEL
    trajectory = json.loads((folder / "trajectories/optimizer_1.json").read_text())
    assert trajectory["status"] == "failed" and "HTTP 503" in trajectory["reason"]
    assert json.loads((folder / "result.json").read_text())["error"] == result.error


def test_run_whose_optimizer_keeps_refusing_ends_at_the_step_limit(settings: Settings) -> None:
    settings.agent_max_steps = 3
    refusing = _then_forever([], Reply(text="I'm sorry, but I can't help with that."))
    result, _, seconds = _solve(
        _fast(settings), {EXTRACT: [product_mix.EXTRACTION], SIMULATOR: product_mix.SIMULATOR, OPTIMIZER: refusing}
    )
    assert result.error_kind == "run_failure" and seconds < 30
    error = result.error or ""
    assert "step limit of 3 reached" in error and "could not be acted on" in error and "refusal" in error
    assert (result.folder / "spec.json").exists() and (result.folder / "simulator" / "simulator.py").exists()
    events = json.loads((result.folder / "trajectories/optimizer_1.json").read_text())["events"]
    assert len(events) == 3 and all("declined the task" in e["observations"][0] for e in events)


def test_run_with_a_timed_out_extraction_fails_fast_and_keeps_the_problem(settings: Settings) -> None:
    result, url, seconds = _solve(_fast(settings), {EXTRACT: lambda m, t: Reply("late", delay=10)})
    assert result.error_kind == "run_failure" and seconds < 10
    assert url in (result.error or "") and "did not answer within the 0.5 s timeout after 1 retry" in (
        result.error or ""
    )
    assert (result.folder / "problem.md").exists() and (result.folder / "result.json").exists()
    assert not (result.folder / "spec.json").exists()


def test_run_recovers_from_a_dropped_connection_and_an_enormous_reply(settings: Settings) -> None:
    settings.agent_max_tokens = 2_000_000  # the huge reply alone is counted as ~550k completion tokens
    huge = Reply(text="Let me think this through in detail. " * 60_000)  # 2.2 MB, no tool call
    simulator = [Hangup(), *product_mix.SIMULATOR]
    optimizer = [
        huge,
        say("", call("write_file", path="model.py", content=product_mix.RIGHT_MODEL)),
        say("", call("submit", summary="model")),
    ]
    result, _, _ = _solve(
        _fast(settings), {EXTRACT: [product_mix.EXTRACTION], SIMULATOR: simulator, OPTIMIZER: optimizer}
    )
    assert result.error is None, result.error
    assert result.verified and result.objective == pytest.approx(product_mix.EXPECTED_OBJECTIVE)
    trajectory = result.folder / "trajectories" / "optimizer_1.json"
    assert trajectory.stat().st_size < 1_000_000
    first = json.loads(trajectory.read_text())["events"][0]
    assert len(first["reply"]["content"]) <= AgentLimits().reply_chars + 100
    assert "characters long" in first["observations"][0]
