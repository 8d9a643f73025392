"""A process-wide bound on concurrent calls to one model (many benchmark instances share a service quota)."""

from __future__ import annotations

import threading

from nemo_opt.llm.base import LLM, Completion, Message, ToolSpec

__all__ = ["LimitedLLM"]

_SLOTS: dict[tuple[str, int], threading.BoundedSemaphore] = {}
_LOCK = threading.Lock()


def _slots(name: str, limit: int) -> threading.BoundedSemaphore:
    with _LOCK:
        key = (name, limit)
        if key not in _SLOTS:
            _SLOTS[key] = threading.BoundedSemaphore(limit)
        return _SLOTS[key]


class LimitedLLM:
    """Lets at most ``limit`` calls to ``inner`` run at once in this process; the rest wait their turn."""

    def __init__(self, inner: LLM, limit: int) -> None:
        self.inner = inner
        self.name = inner.name
        self._slots = _slots(inner.name, limit)

    def complete(
        self,
        messages: list[Message],
        *,
        tools: list[ToolSpec] | None = None,
        temperature: float = 0.0,
        n: int = 1,
        max_tokens: int | None = None,
    ) -> Completion:
        with self._slots:
            return self.inner.complete(messages, tools=tools, temperature=temperature, n=n, max_tokens=max_tokens)
