"""The model-fault suite: every way a model service or a model reply can go wrong, each driven through the
loopback OpenAI-compatible server, with the outcome the rest of nemo-opt must produce.

Two kinds of fault:

* *transient* faults of the service (refused connection, read timeout, 429, 5xx, a body that is not JSON, a
  reply without choices, a dropped connection) must be retried by the backend's policy; when they persist the
  call must fail, within a bounded time, with an error naming the URL, the fault and what to do;
* *reply* faults (tool-call arguments that are not JSON, an unknown tool, empty content, enormous content,
  a refusal) reach the agent, which must turn them into an observation the model can act on, count them
  against its step budget, and stop with a reason that names them when the model never recovers.

:func:`run_case` runs one case at one layer (``"llm"``: :class:`~nemo_opt.llm.openai_backend.OpenAIChat`
alone; ``"agent"``: a :class:`~nemo_opt.agent.loop.ToolLoopAgent` on a real sandbox and workspace) against a
fresh server, once with the fault happening once (``persistent=False``: it must be recovered from) and once
with the fault on every request (``persistent=True``: it must fail cleanly). It needs no test framework, so a
report script can print :func:`outcome_table` of :func:`run_all`.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple

from nemo_opt.agent.base import Acceptance, AgentStatus, AgentTask
from nemo_opt.agent.loop import AgentLimits, ToolLoopAgent
from nemo_opt.exceptions import LLMError
from nemo_opt.llm.base import Message
from nemo_opt.llm.openai_backend import OpenAIChat
from nemo_opt.llm.recorder import RecordedLLM
from nemo_opt.llm.retry import RetryPolicy
from nemo_opt.sandbox import Limits, make_sandbox
from nemo_opt.settings import Settings
from nemo_opt.testing.openai_server import Hangup, OpenAICompatServer
from nemo_opt.testing.scripted import Reply
from nemo_opt.workspace import Workspace

__all__ = [
    "CASES",
    "CaseOutcome",
    "FaultCase",
    "FaultConfig",
    "Layer",
    "case",
    "outcome_table",
    "run_all",
    "run_case",
]

Layer = Literal["llm", "agent"]
Kind = Literal["transient", "reply"]

_DONE = "done.txt"


@dataclass(frozen=True)
class FaultConfig:
    """Timeouts and budgets of a fault run; the defaults keep one case well under a few seconds."""

    llm_timeout: float = 0.5
    retries: int = 1
    backoff_base: float = 0.05
    backoff_max: float = 0.2
    agent_max_steps: int = 4
    agent_max_tokens: int = 600_000
    enormous_chars: int = 2_000_000
    retry_after: str = "30"  # what the 429 asks for; backoff_max caps it

    def llm_bound(self) -> float:
        """The longest one model call may take when every attempt fails as slowly as allowed (plus slack)."""
        attempts = self.retries + 1
        return attempts * (self.llm_timeout + 0.5) + self.retries * self.backoff_max + 2.0

    def agent_bound(self) -> float:
        """The longest an agent run of ``agent_max_steps`` faulty steps may take (plus slack for the sandbox)."""
        return self.agent_max_steps * self.llm_bound() + 10.0


@dataclass(frozen=True)
class FaultCase:
    """One fault: how the server produces it and what the outcome must mention.

    ``reply`` builds the faulty reply (None for a refused connection, which is the server not listening).
    ``failure`` is a fragment the final error (transient) or the observation sent to the model (reply) must
    contain; ``label`` a fragment of the agent's limit reason when a reply fault never stops.
    """

    name: str
    title: str
    kind: Kind
    reply: Callable[[FaultConfig], Reply] | None
    failure: str
    label: str = ""


class CaseOutcome(NamedTuple):
    """What :func:`run_case` observed: ``ok`` is True when the case was recovered from or failed cleanly
    (a specific message, within the time bound); ``outcome`` starts with ``recovered`` or ``failed``."""

    case: FaultCase
    ok: bool
    outcome: str
    seconds: float


def _empty_choices(_: FaultConfig) -> Reply:
    body = {"id": "chatcmpl-empty", "object": "chat.completion", "created": 0, "model": "faulty", "choices": []}
    return Reply(raw_body=json.dumps(body))


def _enormous(config: FaultConfig) -> Reply:
    line = "The objective is the total profit of the plan, summed over every product and period.\n"
    return Reply(text=(line * (config.enormous_chars // len(line) + 1))[: config.enormous_chars])


CASES: tuple[FaultCase, ...] = (
    FaultCase("connection_refused", "connection refused", "transient", None, "connection was refused"),
    FaultCase(
        "read_timeout",
        "read timeout (server slower than llm_timeout)",
        "transient",
        lambda c: Reply("too late", delay=c.llm_timeout * 4),
        "did not answer within",
    ),
    FaultCase(
        "rate_limited",
        "429 with Retry-After",
        "transient",
        lambda c: Reply(status=429, text="Rate limit reached", headers={"Retry-After": c.retry_after}),
        "rate-limiting",
    ),
    FaultCase(
        "server_error",
        "500 internal server error",
        "transient",
        lambda c: Reply(status=500, text="internal error"),
        "HTTP 500",
    ),
    FaultCase(
        "unavailable",
        "503 service unavailable",
        "transient",
        lambda c: Reply(status=503, text="model is loading"),
        "HTTP 503",
    ),
    FaultCase(
        "connection_dropped",
        "connection closed mid-reply",
        "transient",
        lambda c: Hangup(partial=20),
        "closed the connection",
    ),
    FaultCase(
        "invalid_json_body",
        "invalid JSON body",
        "transient",
        lambda c: Reply(raw_body='{"id": "chatcmpl-1", "choices": ['),
        "not a valid reply",
    ),
    FaultCase("empty_choices", "200 with empty choices", "transient", _empty_choices, "no choices"),
    FaultCase(
        "invalid_tool_arguments",
        "tool call with invalid JSON arguments",
        "reply",
        lambda c: Reply(tool_calls=[("write_file", '{"path": "model.py", "content": "x = ')]),
        "not valid JSON",
        "invalid JSON arguments",
    ),
    FaultCase(
        "unknown_tool",
        "tool call naming an unknown tool",
        "reply",
        lambda c: Reply(tool_calls=[("launch_rocket", {"target": "moon"})]),
        "no tool named",
        "unknown tool",
    ),
    FaultCase("empty_content", "empty content", "reply", lambda c: Reply(text=""), "reply was empty", "empty reply"),
    FaultCase(
        "enormous_content",
        "enormous content (2 MB)",
        "reply",
        _enormous,
        "characters long",
        "no tool call",
    ),
    FaultCase(
        "refusal",
        "a reply that only refuses",
        "reply",
        lambda c: Reply(text="I'm sorry, but I can't help with that."),
        "declined the task",
        "refusal",
    ),
)


def case(name: str) -> FaultCase:
    """The case called ``name``."""
    for candidate in CASES:
        if candidate.name == name:
            return candidate
    raise KeyError(f"no fault case {name!r}; known: {', '.join(c.name for c in CASES)}")


# --- the server and the client ----------------------------------------------------------------------------------


class _Sleeps:
    """The retry policy's sleep: records each wait and brings a non-listening server up on the first one."""

    def __init__(self, server: OpenAICompatServer, recover: bool) -> None:
        self.server = server
        self.recover = recover
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        if self.recover and not self.server.listening:
            self.server.listen()
        time.sleep(seconds)


def _script(fault: FaultCase, config: FaultConfig, good: list[Reply], persistent: bool) -> Any:
    """Fault first, then the good replies; or the fault on every request."""
    if fault.reply is None:  # a refused connection happens below HTTP: the script itself is all good replies
        return list(good)
    build = fault.reply
    if persistent:
        return lambda messages, tools: build(config)
    return [build(config), *good]


def _backend(server: OpenAICompatServer, config: FaultConfig, home: Path, sleeps: _Sleeps) -> OpenAIChat:
    settings = Settings(
        home=home, llm_timeout=config.llm_timeout, llm_max_retries=config.retries, llm_backoff_max=config.backoff_max
    )
    policy = RetryPolicy(config.retries, config.backoff_max, base=config.backoff_base, sleep=sleeps)
    return OpenAIChat("faulty", settings, api_key="sk-fault", base_url=server.url, policy=policy)


def _server(fault: FaultCase, script: Any) -> OpenAICompatServer:
    return OpenAICompatServer(script, model="faulty", listening=fault.reply is not None)


def _failure_is_specific(exc: LLMError, fault: FaultCase, url: str, retries: int) -> str:
    """Why the final error is not specific enough, or "" when it names the URL, the fault and the retries."""
    text = str(exc)
    missing = [part for part in (url, fault.failure) if part not in text]
    if retries and "retr" not in text:
        missing.append("the retries")
    return f"the message lacks {', '.join(map(repr, missing))}" if missing else ""


# --- the LLM layer --------------------------------------------------------------------------------------------


def _llm_case(fault: FaultCase, config: FaultConfig, persistent: bool, home: Path) -> tuple[bool, str]:
    good = [Reply("ok")]
    server = _server(fault, _script(fault, config, good, persistent))
    with server:
        sleeps = _Sleeps(server, recover=not persistent)
        llm = _backend(server, config, home, sleeps)
        started = time.monotonic()
        try:
            completion = llm.complete([Message("system", "You are terse."), Message("user", "Say ok.")])
        except LLMError as exc:
            seconds = time.monotonic() - started
            if fault.kind == "reply" or not persistent:
                return False, f"failed unexpectedly: {type(exc).__name__}: {exc}"
            problem = _failure_is_specific(exc, fault, server.url, config.retries)
            if seconds > config.llm_bound():
                problem = problem or f"it took {seconds:.1f} s, over the bound of {config.llm_bound():.1f} s"
            return not problem, f"failed with {type(exc).__name__}: {exc}" + (f" [{problem}]" if problem else "")
    if fault.kind == "reply":
        return _delivered(fault, config, completion.first.text, completion.first.tool_calls)
    if persistent:
        return False, f"recovered although the fault never stopped (text {completion.first.text!r})"
    waited = ", ".join(f"{w:.2f}" for w in sleeps.waits)
    ok = completion.first.text == "ok" and completion.retries == 1
    note = ""
    if fault.name == "rate_limited":
        capped = min(config.backoff_max, float(config.retry_after))
        ok = ok and sleeps.waits[:1] == [capped]
        note = f" (Retry-After {config.retry_after} s honoured, capped at {config.backoff_max:g} s)"
    retries = f"{completion.retries} retr{'y' if completion.retries == 1 else 'ies'}"
    return ok, f"recovered after {retries}, waited {waited} s{note}"


def _delivered(fault: FaultCase, config: FaultConfig, text: str, calls: Iterable[Any]) -> tuple[bool, str]:
    """At the LLM layer a reply fault is the agent's business: the backend must hand it over unchanged."""
    expected = fault.reply(config) if fault.reply else Reply()
    got_calls = [(c.name, c.arguments) for c in calls]
    ok = text == expected.text and got_calls == expected.arguments()
    what = f"{len(text):,} characters" if text else "no text"
    if got_calls:
        what += f", tool call {got_calls[0][0]}({got_calls[0][1][:40]})"
    verdict = "recovered: delivered unchanged to the caller" if ok else "failed: the reply was altered"
    return ok, f"{verdict} ({what})"


# --- the agent layer ------------------------------------------------------------------------------------------


def _task(workspace: Workspace) -> AgentTask:
    def accept() -> Acceptance:
        done = (workspace.root / _DONE).exists()
        return Acceptance(done, "" if done else f"{_DONE} does not exist yet")

    return AgentTask(
        "worker",
        "Role: fault-suite worker.",
        f"Create {_DONE}, then submit.",
        workspace.root,
        accept,
        f"{_DONE} exists",
    )


def _good_steps() -> list[Reply]:
    return [
        Reply(tool_calls=[("write_file", {"path": _DONE, "content": "done\n"})]),
        Reply(tool_calls=[("submit", {"summary": "created the file"})]),
    ]


def _observations_after(server: OpenAICompatServer, index: int) -> list[str]:
    """Tool and user messages the model was shown in chat request ``index`` after its last reply."""
    requests = server.chat_requests
    if index >= len(requests):
        return []
    messages = requests[index]["messages"]
    replies = [i for i, m in enumerate(messages) if m["role"] == "assistant"]
    if not replies:
        return []
    last = replies[-1]
    return [str(m.get("content") or "") for m in messages[last + 1 :]]


def _agent_case(fault: FaultCase, config: FaultConfig, persistent: bool, home: Path) -> tuple[bool, str]:
    workspace = Workspace(home / "ws")
    workspace.create()
    server = _server(fault, _script(fault, config, _good_steps(), persistent))
    with server:
        sleeps = _Sleeps(server, recover=not persistent)
        recorded = RecordedLLM(_backend(server, config, home, sleeps), stage="worker")
        sandbox = make_sandbox("auto", workspace.root, Limits(timeout=30))
        limits = AgentLimits(max_steps=config.agent_max_steps, max_tokens=config.agent_max_tokens)
        agent = ToolLoopAgent(recorded, sandbox, workspace, limits=limits)
        try:
            result = agent.run(_task(workspace))
        except LLMError as exc:
            trajectory = json.loads((workspace.trajectories / "worker.json").read_text(encoding="utf-8"))
            if fault.kind == "reply" or not persistent:
                return False, f"failed unexpectedly: {type(exc).__name__}: {exc}"
            problem = _failure_is_specific(exc, fault, server.url, config.retries)
            if trajectory.get("status") != "failed" or str(exc) not in trajectory.get("reason", ""):
                problem = problem or "the trajectory does not record why the agent stopped"
            return not problem, f"failed with {type(exc).__name__}: {exc}" + (f" [{problem}]" if problem else "")
        requests = len(server.chat_requests)
        shown = _observations_after(server, 1)
        last_prompt = len(json.dumps(server.chat_requests[-1]["messages"])) if requests else 0
    trajectory_bytes = (workspace.trajectories / "worker.json").stat().st_size
    sizes = f"trajectory {trajectory_bytes:,} bytes, last prompt {last_prompt:,} characters"
    bounded = trajectory_bytes < 20 * AgentLimits().reply_chars and last_prompt < 20 * AgentLimits().reply_chars
    if fault.kind == "transient":
        if persistent:
            return False, f"recovered although the fault never stopped ({result.status.value})"
        # A refused connection never reaches the server, so only the faults above HTTP add a request.
        extra = 0 if fault.reply is None else 1
        ok = result.submitted and result.steps == 2 and requests == result.steps + extra
        return ok, f"recovered: agent {result.status.value} in {result.steps} steps after 1 retried call"
    if persistent:
        reason = result.reason
        ok = result.status is AgentStatus.LIMITS_EXCEEDED and fault.label in reason and bounded
        return ok, f"failed cleanly: agent stopped, {reason} ({sizes})"
    told = next((text for text in shown if fault.failure in text), "")
    ok = result.submitted and result.steps == 3 and bool(told) and bounded
    said = " ".join(told.split())[:160] if told else f"no observation mentioning {fault.failure!r}: {shown!r:.200}"
    return ok, f"recovered: agent {result.status.value} in {result.steps} steps; told the model: {said!r} ({sizes})"


# --- running cases ---------------------------------------------------------------------------------------------


def run_case(
    fault: FaultCase | str, *, layer: Layer = "llm", persistent: bool = False, config: FaultConfig | None = None
) -> CaseOutcome:
    """Run ``fault`` once at ``layer`` against a fresh loopback server; never raises for the fault itself.

    ``persistent=False``: the fault happens once and must be recovered from (retried by the backend, or
    answered by the agent with an observation). ``persistent=True``: every request faults, and the outcome
    must be a clean failure: a specific error within the time bound (transient), or the agent stopping at
    its budget with a reason naming the fault (reply).
    """
    chosen = case(fault) if isinstance(fault, str) else fault
    config = config or FaultConfig()
    if layer not in ("llm", "agent"):
        raise ValueError(f"layer must be 'llm' or 'agent', not {layer!r}")
    if config.retries < 1:
        raise ValueError("FaultConfig.retries must be at least 1: a fault that happens once must be retried")
    runner = _llm_case if layer == "llm" else _agent_case
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="nemo-fault-") as tmp:
        try:
            ok, message = runner(chosen, config, persistent, Path(tmp))
        except Exception as exc:  # a crash is exactly what the suite exists to catch: report it, do not raise
            ok, message = False, f"crashed: {type(exc).__name__}: {exc}"
    seconds = time.monotonic() - started
    bound = config.llm_bound() if layer == "llm" else config.agent_bound()
    if ok and seconds > bound:
        ok, message = False, f"{message} [took {seconds:.1f} s, over the bound of {bound:.1f} s]"
    return CaseOutcome(chosen, ok, message, seconds)


def run_all(
    layers: Iterable[Layer] = ("llm", "agent"),
    *,
    modes: Iterable[bool] = (False, True),
    cases: Iterable[FaultCase] = CASES,
    config: FaultConfig | None = None,
) -> list[tuple[Layer, bool, CaseOutcome]]:
    """Each case at each layer, once recovering and once persistent: ``(layer, persistent, outcome)``.

    The persistent run of a reply fault at the LLM layer is skipped: the backend passes replies through, so it
    is the same as the single run.
    """
    rows: list[tuple[Layer, bool, CaseOutcome]] = []
    chosen = list(cases)
    for layer in layers:
        for persistent in modes:
            for fault in chosen:
                if layer == "llm" and persistent and fault.kind == "reply":
                    continue
                rows.append((layer, persistent, run_case(fault, layer=layer, persistent=persistent, config=config)))
    return rows


def outcome_table(rows: Iterable[tuple[Layer, bool, CaseOutcome]], width: int = 110) -> str:
    """A Markdown table: case, layer, fault once or always, ok, outcome, seconds."""
    lines = ["| case | layer | fault | ok | outcome | s |", "|---|---|---|---|---|---|"]
    for layer, persistent, outcome in rows:
        text = " ".join(outcome.outcome.split()).replace("|", "\\|")
        if len(text) > width:
            text = text[: width - 3] + "..."
        lines.append(
            f"| {outcome.case.name} | {layer} | {'always' if persistent else 'once'} | "
            f"{'yes' if outcome.ok else 'NO'} | {text} | {outcome.seconds:.2f} |"
        )
    return "\n".join(lines)
