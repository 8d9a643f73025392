"""mini-swe-agent as the coding agent, behind the same seam as :class:`~nemo_opt.agent.loop.ToolLoopAgent`.

mini-swe-agent contributes its agent loop (``DefaultAgent``: query, parse exactly one action, execute, observe,
with its step, wall-clock and repeated-format-error limits), its reply format (a THOUGHT and one
```` ```mswea_bash_command ```` block) and its submit signal (a command whose first output line is
``COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT``). Everything with consequences stays nemo-opt's:

- the model is :class:`NemoModel`, mini-swe-agent's model protocol on top of any nemo-opt
  :class:`~nemo_opt.llm.base.LLM`, so model
  settings, retries, the reply cache, cost accounting and the call log apply exactly as for the built-in agent
  (litellm is never called);
- commands run through :class:`SandboxEnvironment`, mini-swe-agent's environment protocol on top of the run's
  :class:`Sandbox` (mini-swe-agent's own ``LocalEnvironment`` would run model-written code unconfined);
- a submit is only accepted when the task's check passes; a refusal comes back as the command's observation
  and the loop goes on;
- the trajectory goes to ``trajectories/<task>.json`` after every step, in mini-swe-agent's format with
  nemo-opt's status, usage and limits merged in.

mini-swe-agent is an optional extra (``pip install 'nemo-opt[minisweagent]'``); it is imported only when this
backend is constructed, so a core install never needs it.
"""

from __future__ import annotations

import functools
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import platformdirs

from nemo_opt.agent.base import AgentResult, AgentStatus, AgentTask
from nemo_opt.agent.loop import AgentLimits
from nemo_opt.agent.tools import SUBMIT_MARKER
from nemo_opt.exceptions import MissingExtra
from nemo_opt.fsutil import atomic_write_json
from nemo_opt.llm.base import LLM, Message, Usage
from nemo_opt.llm.recorder import labelled
from nemo_opt.prompts import load_prompt
from nemo_opt.sandbox.base import Sandbox
from nemo_opt.workspace import Workspace

__all__ = ["MINI_SUBMIT_MARKER", "MiniSweAgent", "NemoModel", "SandboxEnvironment", "load_minisweagent"]

MINI_SUBMIT_MARKER = "COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"
# The built-in agent's marker is accepted too, so a model that read an earlier prompt still gets to submit.
_SUBMIT_MARKERS = frozenset({MINI_SUBMIT_MARKER, SUBMIT_MARKER})
# Part of the template version recorded with every call, so the store shows which wording produced it.
_PROTOCOL_VERSION = "mini.1"

# mini-swe-agent's text-based action format; a plain ```bash fence is taken as well (models slip into it).
ACTION_REGEX = r"```(?:mswea_bash_command|bash)[ \t]*\n(.*?)\n```"

# The section that replaces the task's "How you work" part (which describes the built-in agent's protocol).
PROTOCOL_SECTION = """## How you work

Every reply you write has two parts: a THOUGHT (one or two sentences of reasoning), then exactly ONE bash
code block fenced with ```mswea_bash_command. The command runs in the workspace (working directory
`{{ workdir }}`) in a fresh subshell, and you receive its return code and output. Python is `python`.
Combine steps with && or a heredoc; `cd` does not carry over to the next reply.

<format_example>
THOUGHT: I write the script and run it to see whether it works.

```mswea_bash_command
cat > model.py <<'PYEOF'
print("hello")
PYEOF
python model.py
```
</format_example>

When your work is complete and checked, submit with this command alone in its block:

```mswea_bash_command
echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT
```

Before accepting it the system checks: {{ acceptance }}
If the check fails you are told why; fix the problem and submit again.

Rules: exactly one bash block per reply, never zero, never two; a reply without one is rejected. Never guess
what a command printed: run it. There is no network; use only the Python packages already installed."""

SYSTEM_TEMPLATE = "{{ role_prompt }}\n\n" + PROTOCOL_SECTION + "\n"

INSTANCE_TEMPLATE = """{{ task }}

<reminder>
Reply with a THOUGHT and exactly one ```mswea_bash_command block. Submit with
`echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT` on its own once the work is complete and checked.
</reminder>"""

OBSERVATION_TEMPLATE = """{% if output.exception_info -%}
<exception>{{ output.exception_info }}</exception>
{% endif -%}
<returncode>{{ output.returncode }}</returncode>
{% if output.output | length <= observation_chars -%}
<output>
{{ output.output -}}
</output>
{%- else -%}
<warning>
The output of your last command was too long; only its head and tail are shown. Use head, tail, sed -n or
grep to see a part of a file, or redirect the output to a file and search in it.
</warning>
{%- set half = observation_chars // 2 -%}
<output_head>
{{ output.output[:half] }}
</output_head>
<elided_chars>
{{ output.output | length - 2 * half }} characters elided
</elided_chars>
<output_tail>
{{ output.output[-half:] }}
</output_tail>
{%- endif -%}"""

FORMAT_ERROR_TEMPLATE = """{% if finish_reason in ["length"] -%}
Your reply reached the output token limit before it contained a complete command, so it was cut off. Reply
more briefly, with exactly one ```mswea_bash_command block.
{%- else -%}
Format error: {{ error }} Every reply must contain exactly ONE ```mswea_bash_command block, none of its
commands were run. Combine commands with && or a heredoc. To finish, run
`echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT` on its own.
{%- endif %}"""


def load_minisweagent() -> SimpleNamespace:
    """The parts of mini-swe-agent this backend uses; :class:`MissingExtra` when it is not installed."""
    return _load()


@functools.cache
def _load() -> SimpleNamespace:
    # mini-swe-agent prints a banner on import unless told not to; nemo-opt's output stays its own.
    os.environ.setdefault("MSWEA_SILENT_STARTUP", "1")
    # On import it also loads the .env of its config folder into os.environ. nemo-opt reads API keys from the
    # environment, so a key kept for mini-swe-agent's own CLI must not silently become nemo-opt's: its config
    # folder is one of nemo-opt's own unless the user chose one.
    home = os.environ.get("NEMO_HOME") or platformdirs.user_data_dir("nemo-opt", appauthor=False)
    os.environ.setdefault("MSWEA_GLOBAL_CONFIG_DIR", str(Path(home).expanduser() / "minisweagent"))
    try:
        import minisweagent
        from minisweagent.agents.default import DefaultAgent
        from minisweagent.exceptions import FormatError, LimitsExceeded, Submitted
        from minisweagent.models.utils.actions_text import format_observation_messages, parse_regex_actions
    except ImportError as exc:
        raise MissingExtra("mini-swe-agent", "minisweagent", "The mini-swe-agent agent backend") from exc
    return SimpleNamespace(
        version=str(minisweagent.__version__),
        agent_class=_resumable_agent_class(DefaultAgent),
        FormatError=FormatError,
        LimitsExceeded=LimitsExceeded,
        Submitted=Submitted,
        format_observation_messages=format_observation_messages,
        parse_regex_actions=parse_regex_actions,
    )


def _resumable_agent_class(base: type) -> type:
    """``DefaultAgent`` that can resume an earlier conversation and writes its trajectory atomically.

    ``DefaultAgent.run`` always starts from a fresh system message and the instance message; a resumed run
    (a repair round) must keep the earlier conversation instead, so the first messages added are swapped.
    The loop itself is mini-swe-agent's, unchanged.
    """

    class ResumableAgent(base):  # type: ignore[misc]
        def __init__(
            self,
            model: Any,
            env: Any,
            *,
            history: list[dict[str, Any]] | None = None,
            summary: Callable[[], dict[str, Any]] | None = None,
            writer: Callable[[Path, Any], object] | None = None,
            **config: Any,
        ):
            super().__init__(model, env, **config)
            self._history = history
            self._summary = summary
            self._writer = writer or atomic_write_json

        def add_messages(self, *messages: dict[str, Any]) -> list[dict[str, Any]]:
            if self._history is not None:
                earlier, self._history = self._history, None
                messages = (*earlier, *messages[1:])
            result: list[dict[str, Any]] = super().add_messages(*messages)
            return result

        def save(self, path: Path | None, *extra_dicts: dict[str, Any]) -> dict[str, Any]:
            # The loop saves after every step; nemo-opt's summary goes into each of those saves.
            summary = [self._summary()] if self._summary is not None else []
            data: dict[str, Any] = self.serialize(*summary, *extra_dicts)
            if path:
                self._writer(path, data)
            return data

    return ResumableAgent


class NemoModel:
    """mini-swe-agent's model protocol on an :class:`~nemo_opt.llm.base.LLM` (text replies, one action each).

    The token budget is checked here because mini-swe-agent only limits steps, cost and time.
    """

    def __init__(
        self,
        llm: LLM,
        *,
        template: tuple[str, str],
        temperature: float,
        max_tokens: int,
        observation_chars: int,
    ) -> None:
        self.llm = llm
        self.template = template
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.usage = Usage()
        self.prompt_tokens_per_call: list[int] = []
        self.config = SimpleNamespace(
            model_name=llm.name,
            action_regex=ACTION_REGEX,
            observation_template=OBSERVATION_TEMPLATE,
            format_error_template=FORMAT_ERROR_TEMPLATE,
            observation_chars=observation_chars,
        )

    def query(self, messages: list[dict[str, Any]], **kwargs: Any) -> dict[str, Any]:
        """One model turn: the reply with its parsed action, or mini-swe-agent's FormatError (billed)."""
        mini = _load()
        if self.usage.total_tokens >= self.max_tokens:
            reason = f"token limit of {self.max_tokens} reached ({self.usage.total_tokens} used)"
            raise mini.LimitsExceeded(_exit("LimitsExceeded", reason))
        completion = labelled(self.llm, self.template).complete(
            [_to_nemo(m) for m in messages if m.get("role") in {"system", "user", "assistant"}],
            temperature=self.temperature,
        )
        self.usage = self.usage + completion.usage
        self.prompt_tokens_per_call.append(completion.usage.prompt_tokens)
        choice = completion.first
        accounting = {
            "cost": completion.cost_usd or 0.0,
            "usage": {
                "prompt_tokens": completion.usage.prompt_tokens,
                "completion_tokens": completion.usage.completion_tokens,
            },
            "cached": completion.cached,
            "timestamp": time.time(),
        }
        try:
            actions = mini.parse_regex_actions(
                choice.text,
                action_regex=self.config.action_regex,
                format_error_template=self.config.format_error_template,
                template_kwargs={"finish_reason": choice.finish_reason or ""},
            )
        except mini.FormatError as exc:
            exc.messages[0]["extra"].update(accounting)
            raise
        return {"role": "assistant", "content": choice.text, "extra": {"actions": actions, **accounting}}

    def format_message(self, **kwargs: Any) -> dict[str, Any]:
        return dict(kwargs)

    def format_observation_messages(
        self, message: dict[str, Any], outputs: list[dict[str, Any]], template_vars: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = _load().format_observation_messages(
            outputs, observation_template=self.config.observation_template, template_vars=template_vars
        )
        return result

    def get_template_vars(self, **kwargs: Any) -> dict[str, Any]:
        return {"model_name": self.llm.name, "observation_chars": self.config.observation_chars, **kwargs}

    def serialize(self) -> dict[str, Any]:
        return {
            "info": {
                "model_stats": {
                    "prompt_tokens": self.usage.prompt_tokens,
                    "completion_tokens": self.usage.completion_tokens,
                },
                "config": {"model": {"model_name": self.llm.name, "temperature": self.temperature}},
            }
        }


class SandboxEnvironment:
    """mini-swe-agent's environment protocol on nemo-opt's sandbox, with the task's submit check.

    A submit (first output line is the marker, exit code 0) runs ``task.accept``: accepted ends the loop
    through mini-swe-agent's ``Submitted``; refused becomes the command's output, so the model reads why.
    """

    def __init__(self, sandbox: Sandbox, task: AgentTask, limits: AgentLimits, workdir_label: str) -> None:
        self.sandbox = sandbox
        self.task = task
        self.limits = limits
        self.started = time.monotonic()
        self.submissions = 0
        self.config = SimpleNamespace(cwd=workdir_label, timeout=limits.command_timeout)

    def execute(self, action: dict[str, Any], cwd: str = "", *, timeout: float | None = None) -> dict[str, Any]:
        """Run one action in the sandbox (``cwd`` is ignored: every command runs in the task's workdir)."""
        remaining = self.limits.max_seconds - (time.monotonic() - self.started)
        limit = min(timeout or self.limits.command_timeout, self.limits.command_timeout, max(1.0, remaining))
        result = self.sandbox.run(str(action.get("command", "")), cwd=self.task.workdir, timeout=limit)
        output: dict[str, Any] = {
            "output": result.output,
            "returncode": result.exit_code,
            "exception_info": "" if result.limit_hit is None else f"The command was stopped: {result.describe()}.",
        }
        lines = result.output.lstrip().splitlines()
        if lines and lines[0].strip() in _SUBMIT_MARKERS and result.ok:
            return self._submit("\n".join(lines[1:]).strip(), output)
        return output

    def _submit(self, submission: str, output: dict[str, Any]) -> dict[str, Any]:
        self.submissions += 1
        verdict = self.task.accept()
        if verdict.ok:
            raise _load().Submitted(
                {
                    "role": "exit",
                    "content": submission,
                    "extra": {"exit_status": "Submitted", "submission": submission},
                }
            )
        return {**output, "output": f"Submit refused: {verdict.reason}\nFix this and submit again.", "returncode": 1}

    def get_template_vars(self, **kwargs: Any) -> dict[str, Any]:
        return {"cwd": self.config.cwd, "timeout": self.config.timeout, **kwargs}

    def serialize(self) -> dict[str, Any]:
        return {
            "info": {
                "config": {
                    "environment": {"sandbox": self.sandbox.name, "cwd": self.config.cwd},
                    "environment_type": f"{type(self).__module__}.{type(self).__name__}",
                }
            }
        }


class MiniSweAgent:
    """The coding agent backed by mini-swe-agent's loop; same interface as ``ToolLoopAgent``.

    One instance serves one role; ``run`` may be called again with the earlier messages to resume.
    """

    def __init__(
        self,
        llm: LLM,
        sandbox: Sandbox,
        workspace: Workspace,
        *,
        limits: AgentLimits | None = None,
        temperature: float = 0.0,
        max_format_errors: int = 3,
    ) -> None:
        self.mini = load_minisweagent()  # fail at construction, with the install line, when it is missing
        self.llm = llm
        self.sandbox = sandbox
        self.workspace = workspace
        self.limits = limits or AgentLimits()
        self.temperature = temperature
        self.max_format_errors = max_format_errors

    def run(self, task: AgentTask, *, history: list[Message] | None = None) -> AgentResult:
        """Work on ``task`` until the submit is accepted or a budget runs out."""
        started = time.monotonic()
        workdir = self.workspace.rel(task.workdir)
        model = NemoModel(
            self.llm,
            template=(task.template[0], f"{task.template[1]}+{_PROTOCOL_VERSION}"),
            temperature=self.temperature,
            max_tokens=self.limits.max_tokens,
            observation_chars=self.limits.observation_chars,
        )
        env = SandboxEnvironment(self.sandbox, task, self.limits, workdir)
        trajectory = self.workspace.trajectories / f"{task.name}.json"
        earlier_runs = (
            _previous_runs(self.workspace, trajectory) if history else []
        )  # read before the first save overwrites it
        outcome = {"status": "running", "reason": ""}

        def summary() -> dict[str, Any]:
            run = {"steps": agent.n_calls, **outcome, "usage": _usage_dict(model.usage)}
            run["prompt_tokens_per_call"] = list(model.prompt_tokens_per_call)
            return _nemo_fields(task, self.llm.name, [*earlier_runs, run], self.mini.version)

        agent = self.mini.agent_class(
            model,
            env,
            history=[_to_mini(m) for m in history] if history else None,
            summary=summary,
            writer=self.workspace.write_json,  # the trajectory lies in the workspace: through the safe door
            system_template=SYSTEM_TEMPLATE,
            instance_template=INSTANCE_TEMPLATE,
            step_limit=self.limits.max_steps,
            cost_limit=0.0,  # the run's cost ceiling (max_cost_usd) is enforced by RecordedLLM
            wall_time_limit_seconds=max(1, math.ceil(self.limits.max_seconds)),
            max_consecutive_format_errors=self.max_format_errors,
            output_path=trajectory,
        )
        exit_info: dict[str, Any] = {}
        try:
            exit_info = agent.run(
                task.instruction,
                role_prompt=role_prompt(task, workdir),
                workdir=workdir,
                acceptance=task.acceptance_text,
            )
        finally:
            status, reason = _outcome(_exit_info(agent, exit_info), agent.n_calls, self.limits)
            outcome.update(status=status.value, reason=reason)
            agent.save(trajectory)
        messages = [_to_nemo(m) for m in agent.messages if m.get("role") in {"system", "user", "assistant"}]
        return AgentResult(
            name=task.name,
            status=status,
            steps=agent.n_calls,
            usage=model.usage,
            seconds=time.monotonic() - started,
            messages=messages,
            trajectory=trajectory,
            reason=reason,
            summary=_summary(exit_info, messages) if status is AgentStatus.SUBMITTED else "",
        )


def role_prompt(task: AgentTask, workdir: str) -> str:
    """The task's system prompt without the built-in agent's protocol section (the mini protocol replaces it).

    Tasks render ``protocol_tools`` or ``protocol_text`` into their system prompt; describing tools that do not
    exist here, or another submit marker, would mislead the model. When neither section is found verbatim the
    prompt is kept whole and the mini protocol section that follows it takes precedence by being last.
    """
    for protocol in ("tools", "text"):
        section = load_prompt(f"protocol_{protocol}").render(workdir=workdir, acceptance=task.acceptance_text)
        if section.strip() and section.strip() in task.system:
            return task.system.replace(section.strip(), "").strip()
    return task.system.strip()


def _outcome(exit_info: dict[str, Any], calls: int, limits: AgentLimits) -> tuple[AgentStatus, str]:
    """nemo-opt's status and reason for mini-swe-agent's exit status."""
    kind = str(exit_info.get("exit_status", ""))
    if kind == "Submitted":
        return AgentStatus.SUBMITTED, ""
    if kind == "TimeExceeded":
        return AgentStatus.LIMITS_EXCEEDED, f"time limit of {limits.max_seconds:.0f}s reached"
    if kind == "LimitsExceeded":
        reason = exit_info.get("reason") or (
            f"step limit of {limits.max_steps} reached" if calls >= limits.max_steps else "limit reached"
        )
        return AgentStatus.LIMITS_EXCEEDED, str(reason)
    if kind == "RepeatedFormatError":
        return AgentStatus.FAILED, "the model sent replies without exactly one bash block too many times in a row"
    return AgentStatus.FAILED, str(exit_info.get("exception_str") or kind or "the agent loop stopped")


def _usage_dict(usage: Usage) -> dict[str, int]:
    return {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens}


def _exit_info(agent: Any, returned: dict[str, Any]) -> dict[str, Any]:
    """How the loop ended: what ``run`` returned, else the exit message it recorded before raising."""
    if returned:
        return returned
    last = agent.messages[-1] if agent.messages else {}
    return dict(last.get("extra") or {}) if last.get("role") == "exit" else {}


def _nemo_fields(task: AgentTask, model_name: str, runs: list[dict[str, Any]], version: str) -> dict[str, Any]:
    """nemo-opt's summary, merged into mini-swe-agent's trajectory: the last run's outcome, totals over all runs
    of this agent (a repair round resumes the conversation and adds a run)."""
    last = runs[-1]
    return {
        "agent": task.name,
        "backend": f"mini-swe-agent {version}",
        "model": model_name,
        "template": list(task.template),
        "status": last["status"],
        "reason": last["reason"],
        "steps": last["steps"],
        "usage": {key: sum(int(run["usage"][key]) for run in runs) for key in ("prompt_tokens", "completion_tokens")},
        "runs": runs,
    }


def _previous_runs(workspace: Workspace, path: Path) -> list[dict[str, Any]]:
    """The run records of the conversation being resumed, so its trajectory keeps their accounting."""
    try:
        runs = workspace.read_json(path).get("runs", [])
        return [r for r in runs if isinstance(r, dict) and isinstance(r.get("usage"), dict)]
    except (OSError, ValueError, AttributeError):
        return []


def _summary(exit_info: dict[str, Any], messages: list[Message]) -> str:
    """What the agent said it did: the text it printed after the marker, else its last THOUGHT."""
    submission = str(exit_info.get("submission") or "").strip()
    if submission:
        return submission
    last = next((m.content for m in reversed(messages) if m.role == "assistant"), "")
    return last.split("```", 1)[0].removeprefix("THOUGHT:").strip()


def _exit(status: str, reason: str) -> dict[str, Any]:
    return {"role": "exit", "content": status, "extra": {"exit_status": status, "submission": "", "reason": reason}}


def _to_nemo(message: dict[str, Any]) -> Message:
    content = message.get("content") or ""
    if isinstance(content, list):  # multimodal parts; only text is ever produced here
        content = "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return Message(role=message["role"], content=str(content))


def _to_mini(message: Message) -> dict[str, Any]:
    return {"role": message.role, "content": message.content}
