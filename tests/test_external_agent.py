"""mini-swe-agent as the coding agent: its loop with nemo-opt's model wrapper, sandbox and submit check.

The adapter runs against the in-process ScriptedLLM (replies in mini-swe-agent's THOUGHT + one block format)
with the real sandbox and files; one full run goes through the loopback OpenAI-compatible server.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from nemo_opt.agent import external
from nemo_opt.agent.base import Acceptance, AgentStatus, AgentTask
from nemo_opt.agent.external import MiniSweAgent, load_minisweagent, role_prompt
from nemo_opt.agent.loop import AgentLimits
from nemo_opt.exceptions import ConfigError, MissingExtra
from nemo_opt.llm.recorder import RecordedLLM
from nemo_opt.pipeline import Pipeline
from nemo_opt.prompts import load_prompt
from nemo_opt.sandbox import make_sandbox
from nemo_opt.sandbox.base import ExecResult, Limits, Sandbox
from nemo_opt.settings import Settings, load_settings
from nemo_opt.store import RunStore
from nemo_opt.testing import OpenAICompatServer, Reply, RoleRouter, ScriptedLLM
from nemo_opt.workspace import Workspace
from tests.scenarios import EXTRACT, OPTIMIZER, SIMULATOR, product_mix_mini
from tests.scenarios.product_mix_mini import SUBMIT, mini_reply

REPO = Path(__file__).resolve().parent.parent


def _installed() -> bool:
    try:
        load_minisweagent()
    except MissingExtra:
        return False
    return True


needs_mini = pytest.mark.skipif(
    not _installed(), reason="mini-swe-agent is not installed: pip install 'nemo-opt[minisweagent]'"
)


class RecordingSandbox:
    """The real sandbox, remembering every command and its working directory."""

    def __init__(self, inner: Sandbox) -> None:
        self.inner = inner
        self.name = inner.name
        self.calls: list[tuple[str, Path, float | None]] = []

    def run(
        self, command: str, *, cwd: Path, timeout: float | None = None, env: Mapping[str, str] | None = None
    ) -> ExecResult:
        self.calls.append((command, cwd, timeout))
        return self.inner.run(command, cwd=cwd, timeout=timeout, env=env)


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    ws = Workspace(tmp_path / "ws")
    ws.create()
    return ws


def _task(ws: Workspace) -> AgentTask:
    def accept() -> Acceptance:
        done = ws.root / "done.txt"
        return Acceptance(done.exists(), "" if done.exists() else "done.txt does not exist yet")

    return AgentTask("worker", "You are a careful worker.", "Make done.txt.", ws.root, accept, "done.txt exists")


def _agent(ws: Workspace, script: Any, **limits: Any) -> tuple[MiniSweAgent, ScriptedLLM, RecordingSandbox]:
    llm = ScriptedLLM(script)
    sandbox = RecordingSandbox(make_sandbox("auto", ws.root, Limits(timeout=30)))
    agent = MiniSweAgent(RecordedLLM(llm), sandbox, ws, limits=AgentLimits(**limits))
    return agent, llm, sandbox


def _last_user(llm: ScriptedLLM, index: int) -> str:
    return str([m["content"] for m in llm.requests[index]["messages"] if m["role"] == "user"][-1])


def test_missing_package_names_the_install_line(monkeypatch: pytest.MonkeyPatch, workspace: Workspace) -> None:
    external._load.cache_clear()
    monkeypatch.setitem(sys.modules, "minisweagent", None)  # makes `import minisweagent` fail
    try:
        with pytest.raises(MissingExtra, match=r"pip install 'nemo-opt\[minisweagent\]'"):
            MiniSweAgent(
                RecordedLLM(ScriptedLLM([])), make_sandbox("auto", workspace.root, Limits(timeout=30)), workspace
            )
    finally:
        external._load.cache_clear()


@needs_mini
def test_refused_submit_goes_back_then_accepted(workspace: Workspace) -> None:
    agent, llm, sandbox = _agent(
        workspace,
        [
            mini_reply("I think the work is done already.", SUBMIT),
            mini_reply("The file is missing; creating it.", "echo ok > done.txt && cat done.txt"),
            mini_reply("done.txt exists now.", f"{SUBMIT}\necho made done.txt"),
        ],
    )
    result = agent.run(_task(workspace))

    assert result.status is AgentStatus.SUBMITTED and result.steps == 3 and result.reason == ""
    assert result.summary == "made done.txt"
    refusal = _last_user(llm, 1)
    assert "<returncode>1</returncode>" in refusal and "Submit refused: done.txt does not exist yet" in refusal
    assert "<output>\nok\n</output>" in _last_user(llm, 2)
    # Every command went through nemo-opt's sandbox, in the task's working directory.
    assert [c for c, _, _ in sandbox.calls] == [
        SUBMIT,
        "echo ok > done.txt && cat done.txt",
        f"{SUBMIT}\necho made done.txt",
    ]
    assert all(cwd == workspace.root for _, cwd, _ in sandbox.calls)
    # The prompt is mini-swe-agent's protocol around the task's own text.
    first = llm.requests[0]["messages"]
    assert first[0]["role"] == "system" and first[0]["content"].startswith("You are a careful worker.")
    assert "```mswea_bash_command" in first[0]["content"] and "done.txt exists" in first[0]["content"]
    assert first[1]["content"].startswith("Make done.txt.")
    # The trajectory is mini-swe-agent's format with nemo-opt's status and usage merged in.
    trajectory = json.loads((workspace.trajectories / "worker.json").read_text())
    assert trajectory["trajectory_format"].startswith("mini-swe-agent")
    assert trajectory["status"] == "submitted" and trajectory["info"]["exit_status"] == "Submitted"
    assert trajectory["usage"]["prompt_tokens"] == result.usage.prompt_tokens > 0
    assert [m["role"] for m in trajectory["messages"]][-1] == "exit"
    assert trajectory["steps"] == 3 and len(trajectory["runs"][0]["prompt_tokens_per_call"]) == 3


@needs_mini
def test_malformed_replies_are_explained_and_not_run(workspace: Workspace) -> None:
    agent, llm, sandbox = _agent(
        workspace,
        [
            Reply(
                text="THOUGHT: two things at once.\n\n```mswea_bash_command\ntouch a.txt\n```\n\n"
                "```mswea_bash_command\ntouch b.txt\n```"
            ),
            Reply(text="I have created the file and everything is fine."),
            mini_reply("One block, as asked.", "touch done.txt"),
            mini_reply("Submitting.", SUBMIT),
        ],
    )
    result = agent.run(_task(workspace))

    assert result.status is AgentStatus.SUBMITTED and result.steps == 4
    assert "Format error: Expected exactly 1 action, found 2." in _last_user(llm, 1)
    assert "Format error: Expected exactly 1 action, found 0." in _last_user(llm, 2)
    assert not (workspace.root / "a.txt").exists() and not (workspace.root / "b.txt").exists()
    assert [c for c, _, _ in sandbox.calls] == ["touch done.txt", SUBMIT]


@needs_mini
def test_repeated_format_errors_end_the_run(workspace: Workspace) -> None:
    agent, _, sandbox = _agent(workspace, [Reply(text="Thinking about it.")] * 3)
    result = agent.run(_task(workspace))
    assert result.status is AgentStatus.FAILED and "too many times in a row" in result.reason
    assert result.steps == 3 and sandbox.calls == []


@needs_mini
def test_step_limit(workspace: Workspace) -> None:
    agent, llm, _ = _agent(workspace, [mini_reply("Looking around.", "ls")] * 5, max_steps=2)
    result = agent.run(_task(workspace))
    assert result.status is AgentStatus.LIMITS_EXCEEDED and result.reason == "step limit of 2 reached"
    assert result.steps == 2 and len(llm.requests) == 2
    trajectory = json.loads((workspace.trajectories / "worker.json").read_text())
    assert trajectory["status"] == "limits_exceeded" and trajectory["info"]["exit_status"] == "LimitsExceeded"


@needs_mini
def test_token_limit(workspace: Workspace) -> None:
    replies = [Reply(text="THOUGHT: look.\n\n```mswea_bash_command\nls\n```", usage=(900, 200))] * 3
    agent, llm, _ = _agent(workspace, replies, max_tokens=2000)
    result = agent.run(_task(workspace))
    assert result.status is AgentStatus.LIMITS_EXCEEDED
    assert result.reason == "token limit of 2000 reached (2200 used)" and len(llm.requests) == 2


@needs_mini
def test_command_timeout_is_reported(workspace: Workspace) -> None:
    agent, llm, sandbox = _agent(
        workspace,
        [mini_reply("Wait a moment.", "sleep 5"), mini_reply("Done.", "touch done.txt && " + SUBMIT)],
        command_timeout=1.0,
    )
    result = agent.run(_task(workspace))
    assert result.submitted and sandbox.calls[0][2] == 1.0
    assert "<exception>The command was stopped: stopped: timeout limit reached" in _last_user(llm, 1)


@needs_mini
def test_resume_keeps_the_conversation(workspace: Workspace) -> None:
    agent, llm, _ = _agent(
        workspace,
        [
            mini_reply("Creating the file.", "echo one > done.txt"),
            mini_reply("Submitting.", SUBMIT),
            mini_reply("Writing the second line as asked.", "echo two >> done.txt"),
            mini_reply("Submitting again.", SUBMIT),
        ],
    )
    task = _task(workspace)
    first = agent.run(task)
    again = agent.run(AgentTask(**{**task.__dict__, "instruction": "Add a second line."}), history=first.messages)

    assert first.submitted and again.submitted and again.steps == 2
    resumed = llm.requests[2]["messages"]
    assert [m["content"] for m in resumed[: len(first.messages)]] == [m.content for m in first.messages]
    assert resumed[len(first.messages)]["content"].startswith("Add a second line.")
    assert sum(m["role"] == "system" for m in resumed) == 1
    assert (workspace.root / "done.txt").read_text() == "one\ntwo\n"
    # The trajectory holds the whole conversation and the accounting of both runs.
    trajectory = json.loads((workspace.trajectories / "worker.json").read_text())
    assert [r["steps"] for r in trajectory["runs"]] == [2, 2]
    assert trajectory["usage"]["prompt_tokens"] == (first.usage + again.usage).prompt_tokens
    assert len([m for m in trajectory["messages"] if m["role"] == "assistant"]) == 4


def test_role_prompt_replaces_the_builtin_protocol(workspace: Workspace) -> None:
    for protocol in ("tools", "text"):
        section = load_prompt(f"protocol_{protocol}").render(workdir=".", acceptance="the tests pass")
        system = load_prompt("simulator").render(protocol=section)
        task = AgentTask("simulator", system, "go", workspace.root, lambda: Acceptance(True), "the tests pass")
        prompt = role_prompt(task, workspace.rel(workspace.root))
        assert prompt.startswith("# Role: simulator agent")
        assert "How you work" not in prompt and "NEMO_SUBMIT" not in prompt and "read_file" not in prompt


def _mini_run(settings: Settings) -> tuple[Any, OpenAICompatServer, RoleRouter]:
    router = RoleRouter(
        {
            EXTRACT: [product_mix_mini.EXTRACTION],
            SIMULATOR: product_mix_mini.SIMULATOR,
            OPTIMIZER: product_mix_mini.OPTIMIZER,
        }
    )
    with OpenAICompatServer(router) as server:
        settings.model = f"openai-compatible:scripted@{server.url}"
        result = Pipeline(settings).solve((REPO / "examples" / "product_mix.md").read_text())
    return result, server, router


def test_backend_is_chosen_by_setting_or_environment() -> None:
    assert load_settings(environ={}).agent_backend == "builtin"
    assert load_settings(environ={"NEMO_AGENT_BACKEND": "mini-swe-agent"}).agent_backend == "mini-swe-agent"
    with pytest.raises(ConfigError, match="agent_backend"):
        load_settings(environ={"NEMO_AGENT_BACKEND": "swe-agent"})


@pytest.mark.slow
@needs_mini
def test_pipeline_solves_and_packages_with_mini_swe_agent(settings: Settings) -> None:
    settings.agent_backend = "mini-swe-agent"
    result, server, router = _mini_run(settings)

    assert result.error is None, result.error
    assert router.remaining(SIMULATOR) == 0 and router.remaining(OPTIMIZER) == 0, "script not fully used"
    assert result.verified and result.status == "optimal"
    assert result.objective == pytest.approx(product_mix_mini.EXPECTED_OBJECTIVE)
    first, final = result.optimizers[0]["reports"]
    assert not first["passed"] and first["objective_model"] == pytest.approx(product_mix_mini.WRONG_OBJECTIVE)
    assert [i["constraint"] for i in first["issues"] if i["kind"] == "constraint_violation"] == [
        product_mix_mini.VIOLATED
    ]
    assert final["passed"]
    assert result.package is not None and (result.package / "model.py").exists()
    assert (result.package / "report.json").exists()

    requests = [r for r in server.chat_requests if OPTIMIZER in json.dumps(r["messages"][0])]
    assert all(not r.get("tools") for r in requests)  # the text protocol: no tools offered
    system = requests[0]["messages"][0]["content"]
    assert "mswea_bash_command" in system and "submit` tool" not in system and "write_file" not in system
    assert any("KeyError: 'profits'" in m["content"] for r in requests for m in r["messages"])
    # The repair round resumed the optimizer's conversation with the validation report.
    repair = [m["content"] for m in requests[4]["messages"] if m["role"] == "user"][-1]
    assert "FAILED validation" in repair and product_mix_mini.VIOLATED in repair
    sim = [r for r in server.chat_requests if SIMULATOR in json.dumps(r["messages"][0])]
    assert "Format error" in sim[1]["messages"][-1]["content"]

    for name in ("simulator", "optimizer_1"):
        trajectory = json.loads((result.folder / "trajectories" / f"{name}.json").read_text())
        assert trajectory["status"] == "submitted" and trajectory["backend"].startswith("mini-swe-agent")
    calls = RunStore(settings.store_path).llm_calls(result.run_id)
    assert {c["stage"] for c in calls} == {"extract", "simulator", "optimizer_1"}
    agent_calls = [c for c in calls if c["stage"] != "extract"]
    assert all(c["template_version"].endswith("+mini.1") and c["prompt_tokens"] > 0 for c in agent_calls)
