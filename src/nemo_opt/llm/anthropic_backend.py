"""Anthropic Messages API backend (optional extra: ``pip install 'nemo-opt[anthropic]'``).

The ``anthropic`` package is imported when a backend is created, never at module import, so the rest of
nemo-opt works without it. Retries and error translation are the same as for the OpenAI backend.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Sequence
from typing import Any

from nemo_opt.exceptions import LLMError, MissingExtra
from nemo_opt.llm.base import Choice, Completion, Message, ToolCall, ToolSpec, Usage
from nemo_opt.llm.retry import Failure, RetryPolicy, UnusableReply, classify_sdk_error, translate_failure
from nemo_opt.settings import Settings

__all__ = ["ANTHROPIC_URL", "DEFAULT_MAX_TOKENS", "AnthropicChat", "to_anthropic_messages", "to_anthropic_tools"]

ANTHROPIC_URL = "https://api.anthropic.com"
# The Messages API requires max_tokens; this fits every current model's output limit.
DEFAULT_MAX_TOKENS = 8192

# Anthropic stop reasons in the vocabulary the rest of nemo-opt uses (OpenAI's finish reasons).
_FINISH_REASONS = {"end_turn": "stop", "stop_sequence": "stop", "tool_use": "tool_calls", "max_tokens": "length"}


def _import_sdk() -> Any:
    try:
        return importlib.import_module("anthropic")
    except ImportError as exc:
        raise MissingExtra("anthropic", "anthropic", "The Anthropic backend") from exc


def _tool_input(arguments: str) -> dict[str, Any]:
    # tool_use input must be an object; arguments that are not a JSON object (a conversation started with
    # another provider) are kept verbatim rather than dropped.
    try:
        value = json.loads(arguments) if arguments else {}
    except json.JSONDecodeError:
        return {"raw_arguments": arguments}
    return value if isinstance(value, dict) else {"raw_arguments": arguments}


def to_anthropic_messages(messages: Sequence[Message]) -> tuple[str, list[dict[str, Any]]]:
    """Split ``messages`` into the system prompt and Messages-API turns.

    Tool results become ``tool_result`` blocks in a user turn; consecutive turns of the same role are merged
    (so several tool results share one user turn); messages with no content are dropped because the API
    rejects empty text blocks.
    """
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            if message.content:
                system.append(message.content)
            continue
        blocks: list[dict[str, Any]] = []
        if message.role == "tool":
            role = "user"
            blocks.append(
                {"type": "tool_result", "tool_use_id": message.tool_call_id or "", "content": message.content}
            )
        else:
            role = message.role
            if message.content:
                blocks.append({"type": "text", "text": message.content})
            blocks.extend(
                {"type": "tool_use", "id": tc.id, "name": tc.name, "input": _tool_input(tc.arguments)}
                for tc in message.tool_calls
            )
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    return "\n\n".join(system), turns


def to_anthropic_tools(tools: Sequence[ToolSpec]) -> list[dict[str, Any]]:
    """Tool specs in the Messages-API form."""
    return [{"name": t.name, "description": t.description, "input_schema": t.parameters} for t in tools]


def _parse(response: Any) -> Completion:
    blocks = getattr(response, "content", None)
    if not isinstance(blocks, list):
        raise UnusableReply(f"expected a message with content blocks, got {str(response)[:200]!r}")
    texts: list[str] = []
    calls: list[ToolCall] = []
    for block in blocks:
        kind = getattr(block, "type", None)
        if kind == "text":
            texts.append(block.text)
        elif kind == "tool_use":
            calls.append(ToolCall(id=block.id, name=block.name, arguments=json.dumps(block.input)))
    stop = getattr(response, "stop_reason", None)
    finish = _FINISH_REASONS.get(stop, stop) if isinstance(stop, str) else None
    raw_usage = getattr(response, "usage", None)
    # Cache reads and writes are input tokens too (billed at other rates, counted here at the base rate).
    prompt = sum(
        int(getattr(raw_usage, name, 0) or 0)
        for name in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    )
    usage = Usage(prompt_tokens=prompt, completion_tokens=int(getattr(raw_usage, "output_tokens", 0) or 0))
    choice = Choice(text="".join(texts), tool_calls=tuple(calls), finish_reason=finish)
    return Completion(choices=(choice,), usage=usage, model=getattr(response, "model", None) or "")


class AnthropicChat:
    """An :class:`~nemo_opt.llm.base.LLM` backed by Anthropic's Messages API."""

    def __init__(
        self,
        model: str,
        settings: Settings,
        *,
        api_key: str,
        base_url: str = ANTHROPIC_URL,
        name: str | None = None,
        policy: RetryPolicy | None = None,
    ) -> None:
        """Raises :class:`MissingExtra` when the ``anthropic`` package is not installed."""
        self._sdk = _import_sdk()
        self.name = name or f"anthropic:{model}"
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.timeout = settings.llm_timeout
        self.default_max_tokens = settings.llm_max_tokens
        self.policy = policy or RetryPolicy.from_settings(settings)
        self._client = self._sdk.Anthropic(api_key=api_key, base_url=self.base_url, timeout=self.timeout, max_retries=0)

    def _classify(self, exc: Exception) -> Failure | None:
        return classify_sdk_error(
            exc,
            status_error=self._sdk.APIStatusError,
            timeout_error=self._sdk.APITimeoutError,
            connection_error=self._sdk.APIConnectionError,
            validation_error=self._sdk.APIResponseValidationError,
        )

    def _give_up(self, failure: Failure, retries: int) -> LLMError:
        return translate_failure(
            failure, retries, url=self.base_url, model=self.model, key_env="ANTHROPIC_API_KEY", timeout=self.timeout
        )

    def _call(self, request: dict[str, Any]) -> Completion:
        return _parse(self._client.messages.create(**request))

    def complete(
        self,
        messages: list[Message],
        *,
        tools: list[ToolSpec] | None = None,
        temperature: float = 0.0,
        n: int = 1,
        max_tokens: int | None = None,
    ) -> Completion:
        """Send the conversation; ``n > 1`` makes ``n`` calls since the API samples one reply per call."""
        system, turns = to_anthropic_messages(messages)
        request: dict[str, Any] = {
            "model": self.model,
            "messages": turns,
            "max_tokens": max_tokens or self.default_max_tokens or DEFAULT_MAX_TOKENS,
            # The API accepts temperatures in [0, 1] only.
            "temperature": min(temperature, 1.0),
        }
        if system:
            request["system"] = system
        if tools:
            request["tools"] = to_anthropic_tools(tools)
        return self.policy.gather(n, lambda _missing: self._call(request), self._classify, self._give_up, self.model)
