"""The built-in coding agent: a small loop of model turn, tool execution, observation.

Three protocols: native tool calls (bash, read_file, write_file, edit_file, submit); plain text for models
without reliable tool calling (exactly one fenced bash block per reply; the agent finishes when that block's
command prints ``NEMO_SUBMIT`` as its first output line); and whole files, for small models that write one
complete program well but drive a shell badly: every reply is the task's file(s) in full, which the harness
saves, then runs the task's check on at once, as a submit (its verdict is the next observation). A request of
that protocol carries the task and only the latest attempt with its verdict, so prompts stay short and their
opening stays the same (a local server reuses it). Whatever the protocol, a submit is only accepted when the
task's check passes; otherwise the agent is told why and keeps working. The trajectory is written after every
step, so a crash or kill loses nothing.

A reply the loop cannot act on (empty, a refusal, an unknown tool, arguments that are not JSON) goes back to
the model as an observation saying what a usable reply looks like, and costs a step like any other; when a
budget runs out, the reason names the unusable replies that led there. An oversized reply is cut before it
enters the conversation and the trajectory, and the model is told so.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from nemo_opt.agent.base import AgentResult, AgentStatus, AgentTask
from nemo_opt.agent.tools import (
    SUBMIT_MARKER,
    TOOL_SPECS,
    Observation,
    ToolBox,
    extract_bash_block,
    files_in_reply,
    shorten,
    unusable_reply,
    whole_files,
)
from nemo_opt.exceptions import FormatError, LimitsExceeded, RunFailure, Submitted
from nemo_opt.llm.base import LLM, Choice, Message, Usage
from nemo_opt.llm.limit import queued_seconds
from nemo_opt.llm.recorder import labelled
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
    # Longest reply text kept in the conversation and trajectory; longer replies keep their head and tail.
    reply_chars: int = 40_000


_FILES_ONLY = (
    "Your reply had no bash block, so nothing was run. Next, run your checks in exactly one ```bash block "
    "(e.g. python model.py, or python -m pytest -q ...); to finish, run `echo NEMO_SUBMIT`."
)


class _Unusable(FormatError):
    """A reply with nothing to act on; ``label`` names the fault for the agent's limit reason."""

    def __init__(self, message: str, label: str) -> None:
        super().__init__(message)
        self.label = label


class _Faults:
    """The run of consecutive replies that could not be acted on, for the reason a budget stopped the agent."""

    def __init__(self) -> None:
        self.streak = 0
        self.last = ""

    def record(self, fault: str) -> None:
        if fault:
            self.streak, self.last = self.streak + 1, fault
        else:
            self.streak, self.last = 0, ""

    def explain(self, reason: str) -> str:
        if not self.streak:
            return reason
        replies = "reply" if self.streak == 1 else f"{self.streak} replies"
        return f"{reason}; the model's last {replies} could not be acted on (last: {self.last})"


class ToolLoopAgent:
    """The default agent. One instance serves one role; ``run`` may be called again to resume."""

    def __init__(
        self,
        llm: LLM,
        sandbox: Sandbox,
        workspace: Workspace,
        *,
        protocol: Literal["tools", "text", "files"] = "tools",
        limits: AgentLimits | None = None,
        temperature: float = 0.0,
    ) -> None:
        self.llm = llm
        self.sandbox = sandbox
        self.workspace = workspace
        self.protocol = protocol
        self.limits = limits or AgentLimits()
        self.temperature = temperature
        self._deliveries = 0  # replies of this run that gave a file the task still lacked (whole-file protocol)

    def run(self, task: AgentTask, *, history: list[Message] | None = None) -> AgentResult:
        """Work on ``task`` until the submit is accepted or a budget runs out."""
        messages = list(history) if history else [Message("system", task.system)]
        instruction = task.instruction
        if self.protocol == "files" and history:  # a follow-up prompt may speak of commands: say what to send
            instruction += "\n\n" + _files_reminder(task)
        messages.append(Message("user", instruction))
        toolbox = ToolBox(self.workspace, self.sandbox, task.workdir, self.limits.observation_chars, task.writable)
        started = time.monotonic()
        queued = queued_seconds()

        def elapsed(now: float | None = None) -> float:
            """This agent's own seconds: wall time less the time its calls waited for a model slot."""
            return (now or time.monotonic()) - started - (queued_seconds() - queued)

        steps, usage = 0, Usage()
        trajectory = self.workspace.trajectories / f"{task.name}.json"
        events: list[dict[str, Any]] = _previous_events(self.workspace, trajectory) if history else []
        status, reason, summary = AgentStatus.FAILED, "", ""
        faults = _Faults()
        # Files of the whole-file protocol given in this run (a resumed run has them from its history).
        given: set[str] = set(task.files) if history else set()
        self._deliveries = 0
        largest = 0  # completion tokens of the longest reply, so a token-limit stop says where the budget went
        try:
            while True:
                try:
                    self._check_limits(steps - self._deliveries, usage, elapsed(), largest)
                except LimitsExceeded as exc:
                    raise LimitsExceeded(faults.explain(str(exc))) from None
                steps += 1
                step_started = time.monotonic()
                completion = labelled(self.llm, task.template).complete(
                    _request(messages) if self.protocol == "files" else messages,
                    tools=TOOL_SPECS if self.protocol == "tools" else None,
                    temperature=self._temperature(steps - self._deliveries),
                )
                usage = usage + completion.usage
                largest = max(largest, completion.usage.completion_tokens)
                choice = completion.first
                reply, note = self._kept(choice)
                if self.protocol == "files" and choice.finish_reason == "length" and not note:
                    note = (
                        "Your last reply was cut at the server's token limit before the file ended (small models "
                        "then often repeat one block over and over): write each check once and keep the file short."
                    )
                messages.append(reply)
                timeout = min(self.limits.command_timeout, max(1.0, self.limits.max_seconds - elapsed(step_started)))
                fault = ""
                try:
                    observations, fault = self._act(task, toolbox, choice.as_message(), timeout, given)
                except FormatError as exc:
                    observations = [Message("user", str(exc))]
                    fault = exc.label if isinstance(exc, _Unusable) else "unusable reply"
                except Submitted as done:
                    observations = [m for m in done.observations if isinstance(m, Message)]
                    status, summary = AgentStatus.SUBMITTED, done.summary
                faults.record(fault)
                observations = _with_note(observations, note)
                messages.extend(observations)
                events.append(_event(steps, reply, observations, step_started, fault))
                self._save(trajectory, task, messages, events, usage, steps, status, reason)
                if status is AgentStatus.SUBMITTED:
                    break
        except LimitsExceeded as exc:
            status, reason = AgentStatus.LIMITS_EXCEEDED, str(exc)
        except RunFailure as exc:
            # The model service failed past its retries (or the cost ceiling was reached): the trajectory
            # records why this agent stopped, and the caller decides what the run does about it.
            reason = f"the model call of step {steps} failed: {exc}"
            raise
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

    def _temperature(self, attempt: int) -> float:
        """The sampling temperature of attempt ``attempt`` (1-based). A whole-file request holds only the task and
        the latest attempt, so a retry at the same temperature mostly repeats that attempt word for word (seen
        three times in a row with a 1.5B model): each retry samples 0.2 warmer, up to 1.0."""
        if self.protocol != "files" or attempt <= 1:
            return self.temperature
        return min(1.0, self.temperature + 0.2 * (attempt - 1))

    def _check_limits(self, steps: int, usage: Usage, elapsed: float, largest: int = 0) -> None:
        if steps >= self.limits.max_steps:
            raise LimitsExceeded(f"step limit of {self.limits.max_steps} reached")
        if usage.total_tokens >= self.limits.max_tokens:
            raise LimitsExceeded(
                f"token limit of {self.limits.max_tokens} reached ({usage.total_tokens} used; the longest reply "
                f"alone took {largest} completion tokens)"
            )
        if elapsed >= self.limits.max_seconds:
            raise LimitsExceeded(f"time limit of {self.limits.max_seconds:.0f}s reached")

    def _kept(self, choice: Choice) -> tuple[Message, str]:
        """The reply as it enters the conversation, cut to ``reply_chars``, and a note for the model if cut.

        The full reply is still acted on; only what is stored (and sent back with every later request) is cut,
        so one runaway reply cannot fill the context window or the token budget of every following step.
        """
        reply = choice.as_message()
        limit = self.limits.reply_chars
        if len(reply.content) <= limit:
            return reply, ""
        cut = "" if choice.finish_reason != "length" else " (the server stopped it at its token limit)"
        note = (
            f"Note: your last reply was {len(reply.content):,} characters long{cut}, over the limit of {limit:,}; "
            "only its beginning and end were kept in this conversation. Keep replies short: put long content "
            "in files with write_file, and print only what you need to see."
        )
        return Message("assistant", shorten(reply.content, limit), reply.tool_calls, reply.tool_call_id), note

    def _act(
        self, task: AgentTask, toolbox: ToolBox, reply: Message, timeout: float, given: set[str]
    ) -> tuple[list[Message], str]:
        """Carry out one reply; return the observations and, if nothing usable was in it, a label of the fault.

        Raises Submitted (accepted) or :class:`_Unusable`."""
        if self.protocol == "files":
            return self._act_files(task, toolbox, reply, given)
        if self.protocol == "tools" and reply.tool_calls:
            out: list[Message] = []
            accepted: str | None = None
            call_faults: list[str] = []
            for call in reply.tool_calls:
                if accepted is not None:
                    out.append(Message("tool", "Not run: the work was already submitted.", tool_call_id=call.id))
                    continue
                observation = toolbox.call(call, timeout)
                call_faults.append(observation.fault)
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
            # Only a reply whose every call was malformed did nothing; one good call is progress.
            return out, call_faults[-1] if call_faults and all(call_faults) else ""
        # Text protocol, and tool-protocol replies that fell back to writing a bash block in prose.
        try:
            command = extract_bash_block(reply.content)
        except FormatError:
            files = files_in_reply(reply.content) if "```bash" not in reply.content else []
            if files:  # no command, but whole files named and shown: save them, then ask for a command
                written = toolbox.write_files(files)
                return [Message("user", f"{written}\n{_FILES_ONLY}")], ""
            label, message = unusable_reply(reply.content, self.protocol)
            raise _Unusable(message, label) from None
        result, text = toolbox.run_bash(command, timeout)
        first_line = result.output.lstrip().split("\n", 1)[0].strip()
        if first_line == SUBMIT_MARKER:
            verdict = task.accept()
            if verdict.ok:
                raise Submitted(shorten(reply.content, self.limits.reply_chars))
            return [Message("user", _refusal(verdict.reason))], ""
        return [Message("user", text)], ""

    def _act_files(
        self, task: AgentTask, toolbox: ToolBox, reply: Message, given: set[str]
    ) -> tuple[list[Message], str]:
        """Whole-file protocol: save the reply's files (through the agent's own write door); once every file of
        the task was given in this run (``given``), check at once."""
        # Unnamed blocks go to the files still to come first (the one just asked for), then to the others.
        order = tuple(sorted(task.files, key=lambda path: path in given))
        files = whole_files(reply.content, order, task.file_signs)
        if not files:
            label, message = unusable_reply(reply.content, "files")
            if label == "unusable reply":
                label = "no file"
            raise _Unusable(f"{message} {_files_reminder(task)}", label)
        # A file ahead of the one asked for waits for its turn and its hint: a 1.5B simulator agent wrote its
        # tests in the reply asked for the simulator, without the tests skeleton it had not yet been shown, and
        # they were wrong. (Alone in a reply, such a file is kept: it is what the model chose to write.)
        asked = next((path for path in task.files if path not in given), None)
        early = [path for path, _ in files if path not in given and path != asked]
        held = early if any(path == asked for path, _ in files) else []
        files = [(path, text) for path, text in files if path not in held]
        finish = task.finish_file or (lambda path, text: text)
        written = toolbox.write_files([(path, finish(path, text)) for path, text in files])
        written += "".join(f"\nNot saved: `{path}` comes next, on its own, once this file works." for path in held)
        before = len(given)
        new = {path for path, _ in files} - given
        given.update(new)
        pending = [path for path in task.files if path not in given]
        if pending:  # one file per reply is what a small model writes best: ask for the next before checking
            # A file that cannot work whatever comes next (a crash, a placeholder left in) is fixed first: a 1.5B
            # simulator agent otherwise spent a reply on tests for a simulator the check then refused unseen.
            # A new file counts as given once it passes, so each failed draft is an attempt of the budget and
            # the reply that first delivers it working is not.
            check = task.check_file or (lambda path: "")
            for path, _ in files:
                problem = check(path)
                if problem:
                    if path in new:
                        given.discard(path)
                    return [
                        Message(
                            "user",
                            f"{written}\nThe system ran `{path}`: {problem}\nReply with the complete file `{path}`, "
                            "fixed, in one ```python block.",
                        )
                    ], ""
            if len(given) > before:  # delivering a new file of the task is not an attempt: no step of the budget
                self._deliveries += 1
            hint = task.file_hints.get(pending[0], "")
            ask = f"Now reply with the complete file `{pending[0]}` in one ```python block.{' ' + hint if hint else ''}"
            return [Message("user", f"{written}\n{ask}")], ""
        verdict = task.accept()
        if verdict.ok:
            raise Submitted(shorten(reply.content, self.limits.reply_chars))
        # A request carries only the latest reply: show the task's other files as they stand, so a failure in
        # one of them (a test's wrong hand computation) can be fixed in that file.
        others = []
        for path in task.files:
            if path in {p for p, _ in files}:
                continue
            try:
                text = self.workspace.read_text(self.workspace.relative(path, base=task.workdir))
            except (OSError, ValueError):
                continue
            if task.show_file is not None:
                text = task.show_file(path, text)
            others.append(f"`{path}` as it stands:\n```python\n{shorten(text, 4000).rstrip()}\n```")
        shown = "\n\n" + "\n\n".join(others) if others else ""
        fix = " Fix whichever file is wrong (a test's expected value may be the mistake)." if others else ""
        return [Message("user", f"{written}\nThe system ran the check. {_refusal(verdict.reason)}{fix}{shown}")], ""

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
        self.workspace.write_json(
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


def _event(step: int, reply: Message, observations: list[Message], started: float, fault: str) -> dict[str, Any]:
    event: dict[str, Any] = {
        "step": step,
        "seconds": round(time.monotonic() - started, 3),
        "reply": reply.to_dict(),
        "observations": [m.content for m in observations],
    }
    if fault:
        event["fault"] = fault
    return event


def _with_note(observations: list[Message], note: str) -> list[Message]:
    """Prepend ``note`` to the first observation, so roles keep alternating for strict chat templates."""
    if not note:
        return observations
    if not observations:
        return [Message("user", note)]
    first = observations[0]
    return [Message(first.role, f"{note}\n\n{first.content}", first.tool_calls, first.tool_call_id), *observations[1:]]


def _files_reminder(task: AgentTask) -> str:
    names = " and ".join(f"`{path}`" for path in task.files)
    blocks = "one ```python block" if len(task.files) == 1 else "```python blocks, each after a line naming its path"
    return f"Reply with the complete file(s) {names} in {blocks}; the system saves, runs and checks them."


def _request(messages: list[Message]) -> list[Message]:
    """What the whole-file protocol sends: the system prompt and the task, then the latest attempt onwards.

    A latest reply that held no file (prose only, or a runaway cut at the token limit) is left out: it would
    cost its length again in prompt processing and prime the same reply; what was said about it is added to
    the task instead (one user turn, so roles keep alternating)."""
    last = max((i for i, m in enumerate(messages) if m.role == "assistant"), default=-1)
    if last < 0:
        return messages
    if not whole_files(messages[last].content, ("file.py",)):
        after = "\n\n".join(m.content for m in messages[last + 1 :])
        task = messages[1]
        return [messages[0], Message(task.role, f"{task.content}\n\n{after}" if after else task.content)]
    if last <= 2:
        return messages
    return [*messages[:2], *messages[last:]]


def _refusal(reason: str) -> str:
    return f"Submit refused: {reason}\nFix this and submit again."


def _previous_events(workspace: Workspace, path: Path) -> list[dict[str, Any]]:
    """Events of an earlier run of the same agent, so a resumed trajectory keeps its history."""
    try:
        data = workspace.read_json(path)
        events = data.get("events", [])
        return list(events) if isinstance(events, list) else []
    except (OSError, ValueError):
        return []
