"""Chat-completions backend for the official OpenAI endpoint and any OpenAI-compatible server.

vLLM, llama.cpp's server, Ollama, DeepSeek and most hosted open-weight services speak this protocol, so this
one class covers them all. The SDK's own retries are switched off: :class:`RetryPolicy` (tenacity) retries
instead, so every retry is bounded by the settings, logged and counted in the run store (why: llm/retry.py).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import partial
from typing import Any

import openai
from openai.types.chat import ChatCompletion

from nemo_opt.exceptions import LLMError
from nemo_opt.llm.base import Choice, Completion, Message, ToolCall, ToolSpec, Usage
from nemo_opt.llm.retry import Failure, RetryPolicy, UnusableReply, classify_sdk_error, translate_failure
from nemo_opt.settings import Settings

__all__ = ["OPENAI_URL", "OpenAIChat", "classify_openai_error", "to_chat_messages", "to_chat_tools"]

OPENAI_URL = "https://api.openai.com/v1"

# Reasoning models on the official endpoint reject any temperature but the default and reject ``max_tokens``
# in favour of ``max_completion_tokens``.
_REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5")


def to_chat_messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """Provider-neutral messages in the chat-completions wire format."""
    out: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "tool":
            out.append({"role": "tool", "tool_call_id": message.tool_call_id or "", "content": message.content})
        elif message.role == "assistant" and message.tool_calls:
            calls = [
                {"id": tc.id, "type": "function", "function": {"name": tc.name, "arguments": tc.arguments}}
                for tc in message.tool_calls
            ]
            # The protocol wants null content, not "", next to tool calls.
            out.append({"role": "assistant", "content": message.content or None, "tool_calls": calls})
        else:
            out.append({"role": message.role, "content": message.content})
    return out


def to_chat_tools(tools: Sequence[ToolSpec]) -> list[dict[str, Any]]:
    """Tool specs as chat-completions function tools."""
    return [
        {"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}
        for t in tools
    ]


def _arguments_text(arguments: Any) -> str:
    # Some servers send the arguments as an object instead of JSON text; normalise to text.
    if arguments is None:
        return ""
    return arguments if isinstance(arguments, str) else json.dumps(arguments)


def _parse(response: Any, want: int) -> Completion:
    if not isinstance(response, ChatCompletion):
        # The SDK hands back the raw text when the server's Content-Type is not JSON.
        raise UnusableReply(f"expected a chat.completion JSON object, got {str(response)[:200]!r}")
    raw_choices = getattr(response, "choices", None) or []
    if not raw_choices:
        raise UnusableReply("the reply has no choices")
    choices: list[Choice] = []
    for index, raw in enumerate(raw_choices[:want]):
        message = getattr(raw, "message", None)
        calls = []
        for number, call in enumerate(getattr(message, "tool_calls", None) or []):
            function = getattr(call, "function", None)
            if function is None:
                continue
            call_id = getattr(call, "id", None) or f"call_{index}_{number}"
            calls.append(ToolCall(id=call_id, name=function.name or "", arguments=_arguments_text(function.arguments)))
        text = getattr(message, "content", None) or ""
        choices.append(Choice(text=text, tool_calls=tuple(calls), finish_reason=getattr(raw, "finish_reason", None)))
    raw_usage = getattr(response, "usage", None)
    usage = Usage(
        prompt_tokens=int(getattr(raw_usage, "prompt_tokens", 0) or 0),
        completion_tokens=int(getattr(raw_usage, "completion_tokens", 0) or 0),
    )
    return Completion(choices=tuple(choices), usage=usage, model=getattr(response, "model", None) or "")


def classify_openai_error(exc: Exception) -> Failure | None:
    """A failure of an ``openai`` SDK call in SDK-neutral terms (None: not a service failure)."""
    return classify_sdk_error(
        exc,
        status_error=openai.APIStatusError,
        timeout_error=openai.APITimeoutError,
        connection_error=openai.APIConnectionError,
        validation_error=openai.APIResponseValidationError,
    )


class OpenAIChat:
    """An :class:`~nemo_opt.llm.base.LLM` speaking the chat-completions protocol through the ``openai`` SDK."""

    def __init__(
        self,
        model: str,
        settings: Settings,
        *,
        api_key: str,
        base_url: str = OPENAI_URL,
        key_env: str = "OPENAI_API_KEY",
        official: bool = False,
        name: str | None = None,
        policy: RetryPolicy | None = None,
    ) -> None:
        """``official`` enables the OpenAI endpoint's parameter rules for reasoning models (o-series, gpt-5)."""
        self.name = name or f"openai:{model}"
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.key_env = key_env
        self.official = official
        self.timeout = settings.llm_timeout
        self.default_max_tokens = settings.llm_max_tokens
        self.policy = policy or RetryPolicy.from_settings(settings)
        self._client = openai.OpenAI(api_key=api_key, base_url=self.base_url, timeout=self.timeout, max_retries=0)

    def _reasoning(self) -> bool:
        return self.official and self.model.lower().startswith(_REASONING_PREFIXES)

    def _request(
        self, messages: list[Message], tools: list[ToolSpec] | None, temperature: float, max_tokens: int | None
    ) -> dict[str, Any]:
        request: dict[str, Any] = {"model": self.model, "messages": to_chat_messages(messages)}
        if tools:
            request["tools"] = to_chat_tools(tools)
        if not self._reasoning():
            request["temperature"] = temperature
        limit = max_tokens if max_tokens is not None else self.default_max_tokens
        if limit is not None:
            request["max_completion_tokens" if self.official else "max_tokens"] = limit
        return request

    def _call(self, request: dict[str, Any], want: int) -> Completion:
        # n is only sent when needed: a few servers reject the parameter outright.
        kwargs = {**request, "n": want} if want > 1 else request
        response = self._client.chat.completions.create(**kwargs)
        return _parse(response, want)

    def _classify(self, exc: Exception) -> Failure | None:
        return classify_openai_error(exc)

    def _give_up(self, failure: Failure, retries: int) -> LLMError:
        return translate_failure(
            failure, retries, url=self.base_url, model=self.model, key_env=self.key_env, timeout=self.timeout
        )

    def complete(
        self,
        messages: list[Message],
        *,
        tools: list[ToolSpec] | None = None,
        temperature: float = 0.0,
        n: int = 1,
        max_tokens: int | None = None,
    ) -> Completion:
        """Send the conversation; returns ``n`` choices even from servers that ignore ``n``."""
        request = self._request(messages, tools, temperature, max_tokens)
        return self.policy.gather(n, partial(self._call, request), self._classify, self._give_up, self.model)
