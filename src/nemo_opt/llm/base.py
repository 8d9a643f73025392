"""The model seam: messages in, a completion out.

A backend implements one method, :meth:`LLM.complete`. Everything else (caching, logging to the run store,
cost ceilings) wraps a backend from the outside (see :mod:`nemo_opt.llm.recorder`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

__all__ = [
    "LLM",
    "Choice",
    "Completion",
    "Message",
    "Role",
    "ToolCall",
    "ToolSpec",
    "Usage",
]

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True)
class ToolCall:
    """One tool call requested by the model. ``arguments`` is the raw JSON text the model produced."""

    id: str
    name: str
    arguments: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "arguments": self.arguments}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ToolCall:
        return cls(id=str(data["id"]), name=str(data["name"]), arguments=str(data["arguments"]))


@dataclass(frozen=True)
class Message:
    """A chat message in provider-neutral form."""

    role: Role
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_calls:
            data["tool_calls"] = [tc.to_dict() for tc in self.tool_calls]
        if self.tool_call_id is not None:
            data["tool_call_id"] = self.tool_call_id
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Message:
        return cls(
            role=data["role"],
            content=data.get("content") or "",
            tool_calls=tuple(ToolCall.from_dict(tc) for tc in data.get("tool_calls") or ()),
            tool_call_id=data.get("tool_call_id"),
        )


@dataclass(frozen=True)
class ToolSpec:
    """A tool offered to the model: name, description and a JSON-schema of its arguments."""

    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(frozen=True)
class Usage:
    """Token counts of one call."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.prompt_tokens + other.prompt_tokens, self.completion_tokens + other.completion_tokens)


@dataclass(frozen=True)
class Choice:
    """One sampled reply."""

    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: str | None = None

    def as_message(self) -> Message:
        return Message(role="assistant", content=self.text, tool_calls=self.tool_calls)


@dataclass(frozen=True)
class Completion:
    """What a backend returns: ``n`` choices plus accounting."""

    choices: tuple[Choice, ...]
    usage: Usage = field(default_factory=Usage)
    model: str = ""
    seconds: float = 0.0
    cost_usd: float | None = None
    cached: bool = False
    retries: int = 0

    @property
    def first(self) -> Choice:
        return self.choices[0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "choices": [
                {"text": c.text, "tool_calls": [tc.to_dict() for tc in c.tool_calls], "finish_reason": c.finish_reason}
                for c in self.choices
            ],
            "usage": {"prompt_tokens": self.usage.prompt_tokens, "completion_tokens": self.usage.completion_tokens},
            "model": self.model,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], **extra: Any) -> Completion:
        choices = tuple(
            Choice(
                text=c.get("text") or "",
                tool_calls=tuple(ToolCall.from_dict(tc) for tc in c.get("tool_calls") or ()),
                finish_reason=c.get("finish_reason"),
            )
            for c in data["choices"]
        )
        usage = Usage(**data.get("usage", {}))
        return cls(choices=choices, usage=usage, model=data.get("model", ""), **extra)


@runtime_checkable
class LLM(Protocol):
    """A chat model. ``name`` is the full ``provider:model`` string it was created from."""

    name: str

    def complete(
        self,
        messages: list[Message],
        *,
        tools: list[ToolSpec] | None = None,
        temperature: float = 0.0,
        n: int = 1,
        max_tokens: int | None = None,
    ) -> Completion:
        """Send the conversation and return ``n`` choices."""
        ...
