"""The built-in agent loop against a scripted model, with the real sandbox and files."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from nemo_opt.agent.base import Acceptance, AgentStatus, AgentTask
from nemo_opt.agent.loop import AgentLimits, ToolLoopAgent
from nemo_opt.llm.recorder import RecordedLLM
from nemo_opt.sandbox import make_sandbox
from nemo_opt.sandbox.base import Limits
from nemo_opt.testing import Reply, ScriptedLLM
from nemo_opt.workspace import Workspace
from tests.scenarios import bash_reply, call, say


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    ws = Workspace(tmp_path / "ws")
    ws.create()
    return ws


def _task(ws: Workspace, accept: Any = None) -> AgentTask:
    def default() -> Acceptance:
        done = ws.root / "done.txt"
        return Acceptance(done.exists(), "" if done.exists() else "done.txt does not exist yet")

    return AgentTask("worker", "system prompt", "make done.txt", ws.root, accept or default, "done.txt exists")


def _agent(ws: Workspace, script: Any, protocol: str = "tools", **limits: Any) -> tuple[ToolLoopAgent, ScriptedLLM]:
    llm = ScriptedLLM(script)
    sandbox = make_sandbox("auto", ws.root, Limits(timeout=30))
    agent = ToolLoopAgent(RecordedLLM(llm), sandbox, ws, protocol=protocol, limits=AgentLimits(**limits))  # type: ignore[arg-type]
    return agent, llm


def _observations(llm: ScriptedLLM, index: int) -> list[str]:
    return [m["content"] for m in llm.requests[index]["messages"] if m["role"] in {"tool", "user"}]


def test_refused_submit_then_accepted(workspace: Workspace) -> None:
    agent, llm = _agent(
        workspace,
        [
            say("", call("submit", summary="early")),
            say("", call("bash", command="echo ok > done.txt")),
            say("", call("submit", summary="made the file")),
        ],
    )
    result = agent.run(_task(workspace))
    assert result.status is AgentStatus.SUBMITTED and result.summary == "made the file" and result.steps == 3
    assert "Submit refused: done.txt does not exist yet" in _observations(llm, 1)[-1]
    trajectory = json.loads((workspace.trajectories / "worker.json").read_text())
    assert trajectory["status"] == "submitted" and len(trajectory["events"]) == 3


def test_tool_mistakes_come_back_as_observations(workspace: Workspace) -> None:
    outside = workspace.root.parent / "secret.txt"
    outside.write_text("top secret")
    os.symlink(outside, workspace.root / "link.txt")
    agent, llm = _agent(
        workspace,
        [
            Reply(tool_calls=[("write_file", '{"path": "a.py", "content": "x = ')]),
            Reply(tool_calls=[("launch_rocket", {})]),
            say("", call("read_file", path="../secret.txt")),
            say("", call("read_file", path="link.txt")),
            say("", call("write_file", path="a.py", content="x = 1\n")),
            say("", call("edit_file", path="a.py", old_text="y = 2", new_text="y = 3")),
            say("I am done."),
            say(
                "",
                call("bash", command="touch done.txt"),
                call("submit", summary="ok"),
                call("bash", command="rm done.txt"),
            ),
        ],
    )
    result = agent.run(_task(workspace))
    assert result.submitted
    texts = [_observations(llm, i)[-1] for i in range(1, 8)]
    assert "not valid JSON" in texts[0]
    assert "no tool named 'launch_rocket'" in texts[1]
    # Both refused by the safe door: one leaves the workspace by name, the other is a symlink out of it.
    assert "leads outside the folder" in texts[2] and "is a symlink" in texts[3]
    assert not any("top secret" in text for text in texts)
    assert "does not occur" in texts[5]
    assert "called no tool" in texts[6]
    # The call after an accepted submit is answered but not run, so the file stays.
    assert (workspace.root / "done.txt").exists()
    last = result.messages[-1]
    assert last.role == "tool" and "Not run" in last.content


def test_text_protocol_needs_exactly_one_block_and_the_marker(workspace: Workspace) -> None:
    agent, llm = _agent(
        workspace,
        [
            Reply(text="I will think about it."),
            bash_reply("Submitting too early.", "echo NEMO_SUBMIT"),
            bash_reply("Create it.", "echo hi > done.txt && cat done.txt"),
            bash_reply("Done.", "echo NEMO_SUBMIT"),
        ],
        protocol="text",
    )
    result = agent.run(_task(workspace))
    assert result.submitted and result.steps == 4
    assert "no bash block" in _observations(llm, 1)[-1]
    assert "Submit refused" in _observations(llm, 2)[-1]
    assert "exit code 0" in _observations(llm, 3)[-1] and "hi" in _observations(llm, 3)[-1]
    assert all(r["tools"] is None for r in llm.requests)


def test_text_protocol_saves_whole_files_a_small_model_shows_instead_of_a_command(workspace: Workspace) -> None:
    # What a 1.5B model sent for the simulator task: headings naming the files, python blocks, no bash block.
    files_reply = (
        "### Implementation\n\n1. **`maker.py`**:\n```python\nopen('done.txt', 'w').write('hi')\n```\n\n"
        "### ../../outside.py\n```python\nprint('escape')\n```\n\nAn unnamed block is not guessed at:\n"
        "```python\nprint('orphan')\n```\n"
    )
    agent, llm = _agent(
        workspace,
        [
            Reply(text=files_reply),
            bash_reply("Run it.", "python maker.py && cat done.txt"),
            bash_reply("Done.", "echo NEMO_SUBMIT"),
        ],
        protocol="text",
    )
    result = agent.run(_task(workspace))
    assert result.submitted and result.steps == 3
    shown = _observations(llm, 1)[-1]
    assert "Wrote maker.py (1 lines) from your python block." in shown
    assert "Not written: ../../outside.py" in shown and "nothing was run" in shown
    assert (workspace.root / "maker.py").read_text() == "open('done.txt', 'w').write('hi')\n"
    assert not (workspace.root.parent.parent / "outside.py").exists()
    assert "orphan" not in "".join(p.read_text() for p in workspace.root.glob("*.py"))


def test_unclosed_heredoc_is_explained(workspace: Workspace) -> None:
    # The 1.5B model closed its fence without the PYEOF line: bash wrote everything into the file, ran nothing.
    unclosed = "cat > done.txt <<'PYEOF'\nprint('hi')\npython model.py"
    agent, llm = _agent(
        workspace,
        [bash_reply("Write it.", unclosed), bash_reply("Done.", "echo NEMO_SUBMIT")],
        protocol="text",
    )
    assert agent.run(_task(workspace)).submitted
    shown = _observations(llm, 1)[-1]
    assert "heredoc was never closed" in shown and "exactly PYEOF" in shown
    assert "python model.py" in (workspace.root / "done.txt").read_text()


def test_step_and_token_limits_stop_a_looping_model(workspace: Workspace) -> None:
    def forever(messages: list[dict[str, Any]], tools: Any) -> Reply:
        return say("again", call("bash", command="echo still working"))

    agent, _ = _agent(workspace, forever, max_steps=4)
    result = agent.run(_task(workspace))
    assert result.status is AgentStatus.LIMITS_EXCEEDED and "step limit of 4" in result.reason
    assert json.loads((workspace.trajectories / "worker.json").read_text())["status"] == "limits_exceeded"

    agent, _ = _agent(workspace, forever, max_steps=100, max_tokens=500)
    result = agent.run(_task(workspace))
    assert "token limit of 500" in result.reason and result.steps < 100


def test_command_timeout_is_reported_to_the_agent(workspace: Workspace) -> None:
    agent, llm = _agent(
        workspace,
        [
            say("", call("bash", command="sleep 30")),
            say("", call("bash", command="touch done.txt")),
            say("", call("submit")),
        ],
        command_timeout=1.0,
    )
    assert agent.run(_task(workspace)).submitted
    assert "timeout limit reached" in _observations(llm, 1)[-1]


def test_resume_keeps_the_conversation(workspace: Workspace) -> None:
    agent, llm = _agent(
        workspace,
        [
            say("", call("bash", command="touch done.txt")),
            say("", call("submit")),
            say("", call("submit", summary="again")),
        ],
    )
    first = agent.run(_task(workspace))
    follow_up = AgentTask("worker", "system prompt", "please check again", workspace.root, _task(workspace).accept, "")
    second = agent.run(follow_up, history=first.messages)
    assert second.submitted and second.summary == "again"
    sent = llm.requests[-1]["messages"]
    assert sent[0]["content"] == "system prompt" and sent[-1]["content"] == "please check again"
    assert len(json.loads((workspace.trajectories / "worker.json").read_text())["events"]) == 3


def test_waiting_for_a_shared_model_slot_does_not_spend_an_agents_time(tmp_path: Path) -> None:
    """Two agents on a one-slot model: each waits while the other's reply is generated, and that wait is not its
    own time (otherwise agents sharing a local server run out of budget in the queue)."""
    import threading
    import time as clock

    from nemo_opt.llm.base import Completion, Message, ToolSpec
    from nemo_opt.llm.limit import GuardedLLM

    class Slow:
        """A model whose every reply takes 0.4 s to generate."""

        def __init__(self, name: str) -> None:
            self.name = name
            self.inner = ScriptedLLM(
                [say("", call("bash", command="true")) for _ in range(3)] + [say("", call("submit", summary="ok"))]
            )

        def complete(self, messages: list[Message], *, tools: list[ToolSpec] | None = None, **kw: Any) -> Completion:
            clock.sleep(0.4)
            return self.inner.complete(messages, tools=tools, **kw)

    results: dict[str, Any] = {}

    def work(name: str) -> None:
        ws = Workspace(tmp_path / name)
        ws.create()
        llm = GuardedLLM(Slow("one-slot-model"), 1)  # the same name: the same process-wide slot
        agent = ToolLoopAgent(
            llm, make_sandbox("auto", ws.root, Limits(timeout=30)), ws, limits=AgentLimits(max_seconds=2.0)
        )
        accept = lambda: Acceptance(True)  # noqa: E731
        results[name] = agent.run(AgentTask(name, "system", "work", ws.root, accept, "done"))

    threads = [threading.Thread(target=work, args=(n,)) for n in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Each agent's own model time is 4 x 0.4 s; with the other's replies in between its wall time is about 3.2 s.
    assert all(r.status is AgentStatus.SUBMITTED for r in results.values()), {k: r.reason for k, r in results.items()}
    assert max(r.seconds for r in results.values()) > 2.0, {k: (r.seconds, r.steps) for k, r in results.items()}


def test_whole_file_agent_cannot_be_led_out_of_its_folder(workspace: Workspace, tmp_path: Path) -> None:
    """Attacks on the whole-file protocol: a path outside the agent's folder named in the reply, a symlink and a
    FIFO planted where its files go, and a huge reply. Only the task's own paths are ever written, through the
    door; what the refusal shows of the other files is read through the door too."""
    own = workspace.make_dirs(workspace.root / "simulator")
    outside = tmp_path / "outside.py"
    outside.write_text("KEEP = 1\n")
    (own / "simulator.py").symlink_to(outside)  # planted by earlier code
    os.mkfifo(own / "test_simulator.py")  # a FIFO: reading it would block
    victim = workspace.root / "optimizers" / "opt_1"
    workspace.make_dirs(victim)
    (victim / "model.py").write_text("print('mine')\n")
    huge = "x = 1\n" * 200_000
    script = [
        Reply(text="### ../optimizers/opt_1/model.py\n```python\nprint('taken over')\n```\n"),
        Reply(text=f"simulator/test_simulator.py\n```python\n{huge}```\n"),
    ]
    llm = ScriptedLLM(script)
    sandbox = make_sandbox("auto", workspace.root, Limits(timeout=30))
    agent = ToolLoopAgent(RecordedLLM(llm), sandbox, workspace, protocol="files", limits=AgentLimits(max_steps=1))
    task = _simulator_files_task(workspace, lambda: Acceptance(False, "tests fail"))
    result = agent.run(task)
    assert result.status is AgentStatus.LIMITS_EXCEEDED
    assert outside.read_text() == "KEEP = 1\n"  # the symlink was replaced, never followed
    assert (victim / "model.py").read_text() == "print('mine')\n"  # another agent's file: untouched
    saved = own / "simulator.py"
    assert not saved.is_symlink() and saved.read_text() == "print('taken over')\n"
    tests = own / "test_simulator.py"
    assert tests.is_file() and not tests.is_symlink() and tests.stat().st_size == len(huge)
    # The refusal showed the other file as it stands, cut, not the whole of it.
    second = llm.requests[1]["messages"][-1]["content"]
    assert "Now reply with the complete file `simulator/test_simulator.py`" in second
    # Later a FIFO stands where the other file was: the refusal's read of it is refused, not blocked on.
    saved.unlink()
    os.mkfifo(saved)
    llm2 = ScriptedLLM([Reply(text="simulator/test_simulator.py\n```python\ndef test_x():\n    pass\n```\n")])
    again = ToolLoopAgent(RecordedLLM(llm2), sandbox, workspace, protocol="files", limits=AgentLimits(max_steps=1))
    assert again.run(task, history=result.messages).status is AgentStatus.LIMITS_EXCEEDED
    trajectory = json.loads((workspace.trajectories / "simulator.json").read_text())
    assert "Submit refused: tests fail" in trajectory["events"][-1]["observations"][0]
    assert "as it stands" not in trajectory["events"][-1]["observations"][0]


def test_a_file_ahead_of_the_one_asked_for_waits_for_its_turn(workspace: Workspace) -> None:
    """Asked for the simulator, a small model also sent tests it wrote without the tests skeleton (the hint that
    comes with asking for them): only the simulator is saved, then the tests are asked for with their hint."""
    own = workspace.make_dirs(workspace.root / "simulator")
    both = (
        "simulator/simulator.py\n```python\ndef simulate(solution, data):\n    return {}\n```\n\n"
        "simulator/test_simulator.py\n```python\ndef test_guess():\n    assert 1 == 2\n```\n"
    )
    tests_alone = "```python\ndef test_x():\n    assert True\n```\n"
    llm = ScriptedLLM([Reply(text=both), Reply(text=tests_alone)])
    sandbox = make_sandbox("auto", workspace.root, Limits(timeout=30))
    agent = ToolLoopAgent(RecordedLLM(llm), sandbox, workspace, protocol="files", limits=AgentLimits(max_steps=2))
    task = _simulator_files_task(
        workspace,
        lambda: Acceptance((own / "test_simulator.py").read_text().startswith("def test_x")),
        file_hints={"simulator/test_simulator.py": "THE TESTS SKELETON"},
    )
    result = agent.run(task)
    second = llm.requests[1]["messages"][-1]["content"]
    assert "Not saved: `simulator/test_simulator.py` comes next" in second and "THE TESTS SKELETON" in second
    assert result.status is AgentStatus.SUBMITTED and "test_guess" not in (own / "test_simulator.py").read_text()


def _simulator_files_task(workspace: Workspace, accept: Callable[[], Acceptance], **more: Any) -> AgentTask:
    """A whole-file simulator task writing ``simulator/``, judged by ``accept``."""
    return AgentTask(
        "simulator",
        "system",
        "write the simulator",
        workspace.root,
        accept,
        "tests pass",
        writable=workspace.root / "simulator",
        files=("simulator/simulator.py", "simulator/test_simulator.py"),
        **more,
    )
