"""Guards around a model: a process-wide bound on concurrent calls to it (many benchmark instances share a service
quota), and a check that refuses to start a call once the run may not make one (its time is up, it was
interrupted)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from nemo_opt.exceptions import Interrupted, ModelNotConfigured, RunTimeLimitReached
from nemo_opt.llm.base import LLM, Completion, Message, ToolSpec

if TYPE_CHECKING:
    from nemo_opt.settings import Settings

__all__ = ["GuardedLLM", "RunModels", "queued_seconds"]

_SLOTS: dict[tuple[str, int], threading.BoundedSemaphore] = {}
_LOCK = threading.Lock()


def _slots(name: str, limit: int) -> threading.BoundedSemaphore:
    with _LOCK:
        key = (name, limit)
        if key not in _SLOTS:
            _SLOTS[key] = threading.BoundedSemaphore(limit)
        return _SLOTS[key]


_queued = threading.local()


def queued_seconds() -> float:
    """Seconds the calling thread has spent so far waiting for a model's concurrency slot (its turn), which an
    agent's own time budget does not count: with one local server slot, four agents would otherwise spend most
    of their budget in the queue (one measured run: 2-3 replies each in 30 minutes)."""
    return float(getattr(_queued, "seconds", 0.0))


class GuardedLLM:
    """``inner`` with ``check`` called before every call (it raises when no further call may start) and at most
    ``limit`` calls in flight to that model in this process (the rest wait their turn)."""

    def __init__(self, inner: LLM, limit: int, check: Callable[[], None] = lambda: None) -> None:
        self.inner = inner
        self.name = inner.name
        self._slots = _slots(inner.name, limit)
        self._check = check

    def complete(
        self,
        messages: list[Message],
        *,
        tools: list[ToolSpec] | None = None,
        temperature: float = 0.0,
        n: int = 1,
        max_tokens: int | None = None,
    ) -> Completion:
        waiting = time.monotonic()
        with self._slots:  # checked once it is this call's turn: a limit may pass while it waits
            _queued.seconds = queued_seconds() + time.monotonic() - waiting
            self._check()
            return self.inner.complete(messages, tools=tools, temperature=temperature, n=n, max_tokens=max_tokens)


class RunModels:
    """The models of one run, one guarded instance per model name: at most ``llm_concurrency`` calls in flight
    to each, and no call started after the run's wall-clock limit (``run_max_seconds``) or an interrupt."""

    def __init__(self, settings: Settings, factory: Callable[[str], LLM], no_model_help: str) -> None:
        self.settings, self.factory, self.no_model_help = settings, factory, no_model_help
        self._llms: dict[str, LLM] = {}
        self.started = time.monotonic()
        # Set on Ctrl-C or SIGTERM while agents work in other threads: none of them starts another model call.
        self.interrupted = threading.Event()

    def start(self, settings: Settings) -> None:
        """A new run (or resume) begins now, with ``settings``."""
        if settings is not self.settings:
            self.settings = settings
            self._llms.clear()
        self.started = time.monotonic()
        self.interrupted.clear()

    def __call__(self, role: Any) -> LLM:
        """The model for ``role`` ("extract", "judge", "simulator", "optimizer")."""
        name = self.settings.model_for(role)
        if not name:
            raise ModelNotConfigured(self.no_model_help)
        if name not in self._llms:
            self._llms[name] = GuardedLLM(self.factory(name), self.settings.llm_concurrency, self.check)
        return self._llms[name]

    def remaining_seconds(self) -> float | None:
        limit = self.settings.run_max_seconds
        return None if limit is None else limit - (time.monotonic() - self.started)

    def check(self) -> None:
        """Raise when no further model call may start."""
        if self.interrupted.is_set():
            raise Interrupted("the run was interrupted; no further model call is made")
        remaining = self.remaining_seconds()
        if remaining is not None and remaining <= 0:
            raise RunTimeLimitReached(
                f"The run reached its wall-clock limit of {self.settings.run_max_seconds:g} s (run_max_seconds) "
                f"after {time.monotonic() - self.started:.1f} s; no further model call is made. Raise "
                "NEMO_RUN_MAX_SECONDS or --max-seconds to allow more."
            )
