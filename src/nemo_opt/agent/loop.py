"""The built-in coding agent: a small loop of model turn, tool execution, observation.

Two protocols: native tool calls (bash, read_file, write_file, edit_file, submit), or plain text for models
without reliable tool calling (exactly one fenced bash block per reply; the agent finishes when that block's
command prints ``NEMO_SUBMIT`` as its first output line). Either way a submit is only accepted when the
task's check passes; otherwise the agent is told why and keeps working. The trajectory is written after every
step, so a crash or kill loses nothing.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from nemo_opt.agent.base import AgentResult, AgentStatus, AgentTask
from nemo_opt.agent.tools import SUBMIT_MARKER, TOOL_SPECS, Observation, ToolBox, extract_bash_block
from nemo_opt.exceptions import FormatError, LimitsExceeded, Submitted
from nemo_opt.fsutil import atomic_write_json
from nemo_opt.llm.base import Message, Usage
from nemo_opt.llm.recorder import RecordedLLM
from nemo_opt.sandbox.base import Sandbox
from nemo_opt.workspace import Workspace

__all__ = ["AgentLimits", "ToolLoopAgent"]


@dataclass(frozen=True)
class AgentLimits:
    """Budgets of one agent run (a resumed run gets a fresh budget)."""

    max_steps: int = 40
    max_tokens: int = 600_000
    max_seconds: float = 1800.0
    command_timeout: float = 120.0
    observation_chars: int = 12_000


class ToolLoopAgent:
    """The default agent. One instance serves one role; ``run`` may be called again to resume."""

    def __init__(
        self,
        llm: RecordedLLM,
        sandbox: Sandbox,
        workspace: Workspace,
        *,
        protocol: Literal["tools", "text"] = "tools",
        limits: AgentLimits | None = None,
        temperature: float = 0.0,
    ) -> None:
        self.llm = llm
        self.sandbox = sandbox
        self.workspace = workspace
        self.protocol = protocol
        self.limits = limits or AgentLimits()
        self.temperature = temperature

    def run(self, task: AgentTask, *, history: list[Message] | None = None) -> AgentResult:
        """Work on ``task`` until the submit is accepted or a budget runs out."""
        messages = list(history) if history else [Message("system", task.system)]
        messages.append(Message("user", task.instruction))
        toolbox = ToolBox(self.workspace, self.sandbox, task.workdir, self.limits.observation_chars)
        started = time.monotonic()
        steps, usage = 0, Usage()
        trajectory = self.workspace.trajectories / f"{task.name}.json"
        events: list[dict[str, Any]] = _previous_events(trajectory) if history else []
        status, reason, summary = AgentStatus.FAILED, "", ""
        try:
            while True:
                self._check_limits(steps, usage, time.monotonic() - started)
                steps += 1
                step_started = time.monotonic()
                completion = self.llm.complete(
                    messages,
                    tools=TOOL_SPECS if self.protocol == "tools" else None,
                    temperature=self.temperature,
                    template=task.template,
                )
                usage = usage + completion.usage
                reply = completion.first.as_message()
                messages.append(reply)
                timeout = min(self.limits.command_timeout, max(1.0, self.limits.max_seconds - (step_started - started)))
                try:
                    observations = self._act(task, toolbox, reply, timeout)
                except FormatError as exc:
                    observations = [Message("user", str(exc))]
                except Submitted as done:
                    observations = [m for m in done.observations if isinstance(m, Message)]
                    status, summary = AgentStatus.SUBMITTED, done.summary
                messages.extend(observations)
                events.append(_event(steps, reply, observations, step_started))
                self._save(trajectory, task, messages, events, usage, steps, status, reason)
                if status is AgentStatus.SUBMITTED:
                    break
        except LimitsExceeded as exc:
            status, reason = AgentStatus.LIMITS_EXCEEDED, str(exc)
        finally:
            self._save(trajectory, task, messages, events, usage, steps, status, reason)
        return AgentResult(
            name=task.name,
            status=status,
            steps=steps,
            usage=usage,
            seconds=time.monotonic() - started,
            messages=messages,
            trajectory=trajectory,
            reason=reason,
            summary=summary,
        )

    def _check_limits(self, steps: int, usage: Usage, elapsed: float) -> None:
        if steps >= self.limits.max_steps:
            raise LimitsExceeded(f"step limit of {self.limits.max_steps} reached")
        if usage.total_tokens >= self.limits.max_tokens:
            raise LimitsExceeded(f"token limit of {self.limits.max_tokens} reached ({usage.total_tokens} used)")
        if elapsed >= self.limits.max_seconds:
            raise LimitsExceeded(f"time limit of {self.limits.max_seconds:.0f}s reached")

    def _act(self, task: AgentTask, toolbox: ToolBox, reply: Message, timeout: float) -> list[Message]:
        """Carry out one reply and return the observations. Raises Submitted (accepted) or FormatError."""
        if self.protocol == "tools" and reply.tool_calls:
            out: list[Message] = []
            accepted: str | None = None
            for call in reply.tool_calls:
                if accepted is not None:
                    out.append(Message("tool", "Not run: the work was already submitted.", tool_call_id=call.id))
                    continue
                observation = toolbox.call(call, timeout)
                if observation.submit:
                    verdict = task.accept()
                    if verdict.ok:
                        accepted = observation.summary
                        observation = Observation("Submission accepted.")
                    else:
                        observation = Observation(_refusal(verdict.reason))
                out.append(Message("tool", observation.text, tool_call_id=call.id))
            if accepted is not None:
                raise Submitted(accepted, list(out))
            return out
        # Text protocol, and tool-protocol replies that fell back to writing a bash block in prose.
        try:
            command = extract_bash_block(reply.content)
        except FormatError:
            if self.protocol == "tools":
                raise FormatError(
                    "Your reply called no tool. Use the tools to work (bash, read_file, write_file, edit_file), "
                    "and call submit when the work is complete and checked."
                ) from None
            raise
        result, text = toolbox.run_bash(command, timeout)
        first_line = result.output.lstrip().split("\n", 1)[0].strip()
        if first_line == SUBMIT_MARKER:
            verdict = task.accept()
            if verdict.ok:
                raise Submitted(reply.content)
            return [Message("user", _refusal(verdict.reason))]
        return [Message("user", text)]

    def _save(
        self,
        path: Path,
        task: AgentTask,
        messages: list[Message],
        events: list[dict[str, Any]],
        usage: Usage,
        steps: int,
        status: AgentStatus,
        reason: str,
    ) -> None:
        atomic_write_json(
            path,
            {
                "agent": task.name,
                "model": self.llm.name,
                "protocol": self.protocol,
                "template": list(task.template),
                "workdir": self.workspace.rel(task.workdir),
                "status": status.value,
                "reason": reason,
                "steps": steps,
                "usage": {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens},
                "events": events,
                "messages": [m.to_dict() for m in messages],
            },
        )


def _event(step: int, reply: Message, observations: list[Message], started: float) -> dict[str, Any]:
    return {
        "step": step,
        "seconds": round(time.monotonic() - started, 3),
        "reply": reply.to_dict(),
        "observations": [m.content for m in observations],
    }


def _refusal(reason: str) -> str:
    return f"Submit refused: {reason}\nFix this and submit again."


def _previous_events(path: Path) -> list[dict[str, Any]]:
    """Events of an earlier run of the same agent, so a resumed trajectory keeps its history."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        events = data.get("events", [])
        return list(events) if isinstance(events, list) else []
    except (OSError, ValueError):
        return []
