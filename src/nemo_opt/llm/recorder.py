"""The one wrapper every model call goes through: reply cache, run-store logging, accounting, cost ceiling.

Backends stay ignorant of all of this. A :class:`RecordedLLM` is bound to a run and a stage;
:meth:`RecordedLLM.for_stage` makes views for other stages that share one :class:`Accounting`.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace
from typing import Literal

from nemo_opt.exceptions import CostCeilingReached, LLMError
from nemo_opt.llm.base import LLM, Completion, Message, ToolSpec, Usage
from nemo_opt.llm.cache import ReplyCache, request_key
from nemo_opt.llm.journal import ReplyJournal
from nemo_opt.llm.pricing import cost_usd
from nemo_opt.store import LLMCallRecord, RunStore

__all__ = ["Accounting", "RecordedLLM", "labelled"]

CacheMode = Literal["auto", "on", "off"]


@dataclass
class Accounting:
    """Totals over every call of a run, safe to update from several threads."""

    usage: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0
    calls: int = 0
    cached_calls: int = 0
    unpriced_calls: int = 0
    intervals: list[tuple[float, float]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, completion: Completion, started: float, ended: float) -> None:
        with self._lock:
            self.calls += 1
            self.usage = self.usage + completion.usage
            if completion.cached:
                self.cached_calls += 1
            elif completion.cost_usd is None:
                self.unpriced_calls += 1
            else:
                self.cost_usd += completion.cost_usd
            self.intervals.append((started, ended))

    def wait_seconds(self) -> float:
        """Wall-clock seconds during which at least one model call was in flight (overlaps counted once)."""
        with self._lock:
            spans = sorted(self.intervals)
        total, current_start, current_end = 0.0, None, None
        for start, end in spans:
            if current_end is None or start > current_end:
                if current_start is not None and current_end is not None:
                    total += current_end - current_start
                current_start, current_end = start, end
            else:
                current_end = max(current_end, end)
        if current_start is not None and current_end is not None:
            total += current_end - current_start
        return total

    def summary(self) -> dict[str, float | int | None]:
        with self._lock:
            return {
                "calls": self.calls,
                "cached_calls": self.cached_calls,
                "prompt_tokens": self.usage.prompt_tokens,
                "completion_tokens": self.usage.completion_tokens,
                # Unknown prices make the cost unknown, not zero, unless some calls were priced.
                "cost_usd": None if self.unpriced_calls and not self.cost_usd else self.cost_usd,
                "unpriced_calls": self.unpriced_calls,
            }


def _model_id(name: str) -> str:
    """The model part of ``provider:model[@url]``."""
    return name.split(":", 1)[-1].split("@", 1)[0]


class RecordedLLM:
    """A model bound to a run and stage; every call is cached (per policy), logged and accounted."""

    def __init__(
        self,
        inner: LLM,
        *,
        store: RunStore | None = None,
        run_id: str | None = None,
        cache: ReplyCache | None = None,
        cache_mode: CacheMode = "auto",
        max_cost_usd: float | None = None,
        stage: str = "",
        accounting: Accounting | None = None,
        journal: ReplyJournal | None = None,
        template: tuple[str, str] = ("", ""),
    ) -> None:
        self.inner = inner
        # The prompt template (name, version) recorded with each call of this view.
        self.template = template
        self.name = inner.name
        self.store = store
        self.run_id = run_id
        self.cache = cache
        self.cache_mode: CacheMode = cache_mode
        self.max_cost_usd = max_cost_usd
        self.stage = stage
        self.accounting = accounting or Accounting()
        # Every reply of the run, per stage in call order; a resumed run replays it (see llm/journal.py).
        self.journal = journal

    def for_stage(self, stage: str, inner: LLM | None = None) -> RecordedLLM:
        """A view for another stage (optionally another model) sharing this run's accounting."""
        return self._view(stage, inner or self.inner, self.template)

    def with_template(self, template: tuple[str, str]) -> RecordedLLM:
        """This view, recording ``template`` (prompt name, version) with its calls."""
        return self._view(self.stage, self.inner, template)

    def _view(self, stage: str, inner: LLM, template: tuple[str, str]) -> RecordedLLM:
        return RecordedLLM(
            inner or self.inner,
            store=self.store,
            run_id=self.run_id,
            cache=self.cache,
            cache_mode=self.cache_mode,
            max_cost_usd=self.max_cost_usd,
            stage=stage,
            accounting=self.accounting,
            journal=self.journal,
            template=template,
        )

    def _cacheable(self, temperature: float) -> bool:
        if self.cache is None or self.cache_mode == "off":
            return False
        return self.cache_mode == "on" or temperature == 0.0

    def _check_ceiling(self, messages: list[Message]) -> None:
        if self.max_cost_usd is None:
            return
        # The prompt alone must fit under the ceiling: chars/4 is the usual token estimate.
        prompt_tokens = sum(len(m.content) + sum(len(t.arguments) for t in m.tool_calls) for m in messages) // 4
        estimate = cost_usd(_model_id(self.inner.name), Usage(prompt_tokens, 0)) or 0.0
        spent = self.accounting.cost_usd
        if spent + estimate > self.max_cost_usd:
            raise CostCeilingReached(
                f"The run has spent {spent:.4f} USD and the next call would pass the ceiling of "
                f"{self.max_cost_usd:.4f} USD (max_cost_usd). Raise NEMO_MAX_COST_USD or --max-cost to continue."
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
        """Call the model (or the journal of a resumed run, or the cache), log the call, and account for it.

        The cost ceiling is checked just before a request would be sent: replayed and cached replies are free."""
        key = None
        started = time.monotonic()
        ordinal = None
        if self.journal is not None:
            ordinal, replayed = self.journal.begin(self.stage, messages)
            if replayed is not None:
                self.accounting.add(replayed, started, started)
                self._log(replayed, self.template, None)
                return replayed
        if self._cacheable(temperature):
            assert self.cache is not None
            key = request_key(self.inner.name, messages, tools, temperature, n, max_tokens)
            hit = self.cache.get(key)
            if hit is not None:
                if self.journal is not None and ordinal is not None:
                    self.journal.record(self.stage, ordinal, messages, hit)
                self.accounting.add(hit, started, started)
                self._log(hit, self.template, None)
                return hit
        self._check_ceiling(messages)
        try:
            completion = self.inner.complete(messages, tools=tools, temperature=temperature, n=n, max_tokens=max_tokens)
        except LLMError as exc:
            self._log(None, self.template, f"{type(exc).__name__}: {exc}", seconds=time.monotonic() - started)
            raise
        ended = time.monotonic()
        if completion.cost_usd is None:
            # Backends price what they know; any other backend is priced here from the model part of its name.
            completion = replace(completion, cost_usd=cost_usd(_model_id(self.inner.name), completion.usage))
        if key is not None and self.cache is not None:
            self.cache.put(key, completion)
        if self.journal is not None and ordinal is not None:
            self.journal.record(self.stage, ordinal, messages, completion)
        self.accounting.add(completion, started, ended)
        self._log(completion, self.template, None)
        return completion

    def _log(
        self, completion: Completion | None, template: tuple[str, str], error: str | None, seconds: float = 0.0
    ) -> None:
        if self.store is None:
            return
        self.store.log_llm_call(
            LLMCallRecord(
                run_id=self.run_id,
                stage=self.stage,
                template=template[0],
                template_version=template[1],
                model=self.inner.name,
                prompt_tokens=completion.usage.prompt_tokens if completion else 0,
                completion_tokens=completion.usage.completion_tokens if completion else 0,
                seconds=completion.seconds if completion else seconds,
                cost_usd=completion.cost_usd if completion and not completion.cached else None,
                cached=bool(completion and completion.cached),
                retries=completion.retries if completion else 0,
                error=error,
            )
        )


def labelled(llm: LLM, template: tuple[str, str]) -> LLM:
    """``llm`` recording ``template`` with its calls when it is a :class:`RecordedLLM`; any other LLM as it is.

    Stages and agents take any :class:`~nemo_opt.llm.base.LLM`; only the recorder knows about templates."""
    return llm.with_template(template) if isinstance(llm, RecordedLLM) else llm
