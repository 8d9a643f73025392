"""Scripted model replies for tests, shared by the in-process :class:`ScriptedLLM` and the loopback server.

A *script* is either a list of :class:`Reply` objects handed out in order, or a function
``(messages, tools) -> Reply``. Both doubles call it with the request in the chat-completions wire format
(the dicts :func:`~nemo_opt.llm.openai_backend.to_chat_messages` produces), so the same script works with
either double. :class:`RoleRouter` gives concurrent agents their own queues, keyed by a marker in their
system prompt.
"""

from __future__ import annotations

import json
import math
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias

from nemo_opt.llm.base import Choice, Completion, Message, ToolCall, ToolSpec, Usage
from nemo_opt.llm.openai_backend import to_chat_messages, to_chat_tools

__all__ = [
    "Reply",
    "RoleRouter",
    "Script",
    "ScriptExhausted",
    "ScriptFunction",
    "ScriptQueue",
    "ScriptedLLM",
    "as_script_function",
    "load_script",
    "estimate_tokens",
    "prompt_tokens",
    "reply_usage",
]


class ScriptExhausted(AssertionError):
    """A script (or one role's queue) was asked for more replies than it holds."""


@dataclass
class Reply:
    """One scripted reply.

    ``tool_calls`` are ``(name, arguments)`` pairs; arguments given as a dict are JSON-encoded, given as text
    they are sent verbatim (so a test can send invalid JSON). ``status``, ``headers``, ``delay`` and
    ``raw_body`` are faults only the loopback server can produce; :class:`ScriptedLLM` ignores them.
    ``usage`` is ``(prompt_tokens, completion_tokens)``; when None it is estimated from text lengths.
    ``text`` of a reply with an error ``status`` is the error message.
    """

    text: str = ""
    tool_calls: list[tuple[str, str | dict[str, Any]]] = field(default_factory=list)
    finish_reason: str | None = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    raw_body: str | None = None
    usage: tuple[int, int] | None = None

    def arguments(self) -> list[tuple[str, str]]:
        """The tool calls with arguments as JSON text."""
        return [(name, args if isinstance(args, str) else json.dumps(args)) for name, args in self.tool_calls]

    @property
    def finish(self) -> str:
        """``finish_reason``, defaulting to ``tool_calls`` or ``stop``."""
        return self.finish_reason or ("tool_calls" if self.tool_calls else "stop")


ScriptFunction: TypeAlias = Callable[[list[dict[str, Any]], list[dict[str, Any]] | None], Reply]
Script: TypeAlias = Sequence[Reply] | ScriptFunction


def estimate_tokens(text: str) -> int:
    """A plausible token count for ``text`` (about four characters per token)."""
    return max(1, math.ceil(len(text) / 4))


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def prompt_tokens(messages: Sequence[Mapping[str, Any]]) -> int:
    """Estimated prompt tokens of wire-format ``messages``."""
    return estimate_tokens("".join(_content_text(m.get("content")) for m in messages))


class ScriptQueue:
    """Replies handed out in order, one per call; safe to share between threads."""

    def __init__(self, replies: Iterable[Reply], label: str = "script") -> None:
        self.label = label
        self._replies = deque(replies)
        self._used = 0
        self._lock = threading.Lock()

    def __call__(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> Reply:
        with self._lock:
            if not self._replies:
                raise ScriptExhausted(
                    f"{self.label} has no replies left: all {self._used} were used and another request came in"
                )
            self._used += 1
            return self._replies.popleft()

    @property
    def remaining(self) -> int:
        """Replies not yet handed out."""
        with self._lock:
            return len(self._replies)


def as_script_function(script: Script, label: str = "script") -> ScriptFunction:
    """A callable script: functions are returned as they are, lists become a :class:`ScriptQueue`."""
    if callable(script):
        return script
    return ScriptQueue(script, label)


def _reply_from(data: Any, where: str) -> Reply:
    if isinstance(data, str):
        return Reply(text=data)
    if not isinstance(data, dict):
        raise ValueError(f"{where}: a reply is a string or an object with 'text' and/or 'tool_calls'")
    unknown = set(data) - {"text", "tool_calls", "finish_reason", "usage"}
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {sorted(unknown)}; use text, tool_calls, finish_reason, usage")
    calls = data.get("tool_calls") or []
    if not all(isinstance(c, list | tuple) and len(c) == 2 and isinstance(c[0], str) for c in calls):
        raise ValueError(f"{where}: tool_calls is a list of [name, arguments] pairs")
    usage = data.get("usage")
    return Reply(
        text=str(data.get("text") or ""),
        tool_calls=[(str(name), args) for name, args in calls],
        finish_reason=data.get("finish_reason"),
        usage=tuple(usage) if usage else None,
    )


def load_script(path: Path) -> Script:
    """A script from a file: a JSON list of replies (or JSONL, one reply per line) handed out in order, or
    ``{"routes": {MARKER: [replies]}}`` for a :class:`RoleRouter`. A reply is a string (its text) or an object
    with ``text``, ``tool_calls`` (``[[name, arguments], ...]``), ``finish_reason`` and ``usage``."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"the script {path} cannot be read: {exc}") from exc
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError:
        try:
            data = [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path} is neither JSON nor JSONL: line {exc.lineno}: {exc.msg}") from exc
    if isinstance(data, dict) and isinstance(data.get("routes"), dict):
        return RoleRouter(
            {
                marker: [_reply_from(r, f"{path}: routes[{marker!r}][{i}]") for i, r in enumerate(replies)]
                for marker, replies in data["routes"].items()
            }
        )
    if isinstance(data, list):
        return [_reply_from(r, f"{path}: reply {i}") for i, r in enumerate(data)]
    raise ValueError(f'{path}: a script is a list of replies or {{"routes": {{marker: [replies]}}}}')


class RoleRouter:
    """Routes each request to the script of the role whose marker occurs in it.

    The marker is searched in the system message (else the first message); the first marker found, in the
    order given, wins. Lists become per-role queues, so concurrent agents each get their own conversation
    however their requests interleave.
    """

    def __init__(self, routes: Mapping[str, Script]) -> None:
        if not routes:
            raise ValueError("RoleRouter needs at least one marker")
        self._routes = {marker: as_script_function(s, f"role {marker!r}") for marker, s in routes.items()}

    def route(self, messages: Sequence[Mapping[str, Any]]) -> str:
        """The marker the request belongs to; AssertionError when none occurs."""
        system = next((m for m in messages if m.get("role") == "system"), messages[0] if messages else {})
        text = _content_text(system.get("content"))
        for marker in self._routes:
            if marker in text:
                return marker
        raise AssertionError(f"no role marker ({', '.join(map(repr, self._routes))}) in the request: {text[:200]!r}")

    def __call__(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> Reply:
        return self._routes[self.route(messages)](messages, tools)

    def remaining(self, marker: str) -> int:
        """Replies left in ``marker``'s queue (only for roles scripted with a list)."""
        script = self._routes[marker]
        if not isinstance(script, ScriptQueue):
            raise TypeError(f"role {marker!r} is scripted with a function, not a list")
        return script.remaining


class ScriptedLLM:
    """An in-process :class:`~nemo_opt.llm.base.LLM` answering from a script.

    Every request is recorded in :attr:`requests` (dicts with ``messages``, ``tools``, ``temperature``, ``n``,
    ``max_tokens``). ``n`` calls the script ``n`` times. Server-only faults (``status``, ``headers``,
    ``delay``, ``raw_body``) have no in-process meaning and are ignored; use the loopback server for them.
    """

    def __init__(self, script: Script, name: str = "scripted:test") -> None:
        self.name = name
        self._script = as_script_function(script)
        self._lock = threading.Lock()
        self._next_id = 0
        self.requests: list[dict[str, Any]] = []

    def _call_id(self) -> str:
        with self._lock:
            self._next_id += 1
            return f"call_{self._next_id}"

    def complete(
        self,
        messages: list[Message],
        *,
        tools: list[ToolSpec] | None = None,
        temperature: float = 0.0,
        n: int = 1,
        max_tokens: int | None = None,
    ) -> Completion:
        """Answer with ``n`` scripted replies."""
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        wire_messages = to_chat_messages(messages)
        wire_tools = to_chat_tools(tools) if tools else None
        with self._lock:
            self.requests.append(
                {
                    "messages": wire_messages,
                    "tools": wire_tools,
                    "temperature": temperature,
                    "n": n,
                    "max_tokens": max_tokens,
                }
            )
        choices: list[Choice] = []
        usage = Usage()
        for index in range(n):
            reply = self._script(wire_messages, wire_tools)
            calls = tuple(ToolCall(self._call_id(), name, args) for name, args in reply.arguments())
            choices.append(Choice(text=reply.text, tool_calls=calls, finish_reason=reply.finish))
            prompt, completion = reply_usage(reply, wire_messages)
            # Like a real server: the prompt is counted once, the completions of all choices add up.
            usage += Usage(prompt if index == 0 else 0, completion)
        model = self.name.split(":", 1)[-1]
        return Completion(choices=tuple(choices), usage=usage, model=model)


def reply_usage(reply: Reply, messages: Sequence[Mapping[str, Any]]) -> tuple[int, int]:
    """``reply.usage`` if scripted, else an estimate from the prompt and reply lengths."""
    if reply.usage is not None:
        return reply.usage
    produced = reply.text + "".join(name + args for name, args in reply.arguments())
    return prompt_tokens(messages), estimate_tokens(produced)
