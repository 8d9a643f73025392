"""The retry policy every model backend shares, and the translation of a final failure into an :class:`LLMError`.

A backend wraps one HTTP call in :meth:`RetryPolicy.run`, together with a classifier that turns the SDK's
exception into a :class:`Failure`. The policy decides whether to retry, how long to wait (``Retry-After`` first,
exponential backoff with jitter otherwise), and when the budget is spent it raises what the backend's
``give_up`` callback builds, chained to the last SDK error.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC
from email.utils import parsedate_to_datetime
from enum import StrEnum
from functools import partial
from typing import TYPE_CHECKING, TypeVar

from nemo_opt.exceptions import LLMBadResponse, LLMError, LLMRejected, LLMUnavailable
from nemo_opt.llm.base import Choice, Completion, Usage
from nemo_opt.llm.pricing import cost_usd

if TYPE_CHECKING:
    from nemo_opt.settings import Settings

__all__ = [
    "Failure",
    "FailureKind",
    "RetryPolicy",
    "UnusableReply",
    "classify_sdk_error",
    "is_retryable_status",
    "translate_failure",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

# 408 (request timeout), 409 (OpenAI's lock contention) and 429 (rate limit) are transient by definition;
# every other 4xx means the same request will fail again.
_RETRYABLE_4XX = frozenset({408, 409, 429})


def is_retryable_status(status: int) -> bool:
    """True for HTTP statuses worth retrying: 408, 409, 429 and every 5xx."""
    return status in _RETRYABLE_4XX or status >= 500


class FailureKind(StrEnum):
    """What went wrong in one attempt."""

    CONNECTION = "connection"
    TIMEOUT = "timeout"
    STATUS = "status"
    BAD_RESPONSE = "bad_response"


@dataclass(frozen=True)
class Failure:
    """One failed attempt, in SDK-neutral terms."""

    kind: FailureKind
    detail: str
    status: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def retryable(self) -> bool:
        """Whether another attempt may succeed."""
        if self.kind is FailureKind.STATUS:
            return self.status is not None and is_retryable_status(self.status)
        return True


class UnusableReply(Exception):
    """Raised by a backend's parsing code inside a retried call when the reply cannot be used (no choices...)."""


def _server_message(exc: Exception) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
    return str(getattr(exc, "message", None) or exc)


def classify_sdk_error(
    exc: Exception,
    *,
    status_error: type[Exception],
    timeout_error: type[Exception],
    connection_error: type[Exception],
    validation_error: type[Exception],
) -> Failure | None:
    """Classify an exception raised by an OpenAI-style SDK call; None when it is not a service failure.

    The exception classes are passed in so this works for both the ``openai`` and ``anthropic`` SDKs,
    which share the same hierarchy, without importing the optional one.
    """
    if isinstance(exc, UnusableReply):
        return Failure(FailureKind.BAD_RESPONSE, str(exc))
    if isinstance(exc, status_error):
        status = int(getattr(exc, "status_code", 0))
        response = getattr(exc, "response", None)
        headers = {str(k).lower(): str(v) for k, v in response.headers.items()} if response is not None else {}
        return Failure(FailureKind.STATUS, f"HTTP {status}: {_server_message(exc)}", status, headers)
    # Timeouts subclass connection errors in both SDKs, so they are checked first.
    if isinstance(exc, timeout_error):
        return Failure(FailureKind.TIMEOUT, "request timed out")
    if isinstance(exc, connection_error):
        cause = exc.__cause__
        detail = f"{exc} ({type(cause).__name__}: {cause})" if cause is not None else str(exc)
        return Failure(FailureKind.CONNECTION, detail)
    if isinstance(exc, validation_error | json.JSONDecodeError):
        return Failure(FailureKind.BAD_RESPONSE, f"the body is not a valid reply ({type(exc).__name__}: {exc})")
    return None


class RetryPolicy:
    """Bounded retries with ``Retry-After`` support and jittered exponential backoff.

    ``sleep`` and ``clock`` are injectable so tests can observe the waits without waiting; ``now`` (wall
    time, for HTTP-date ``Retry-After`` values) and ``rng`` likewise.
    """

    def __init__(
        self,
        max_retries: int,
        backoff_max: float,
        base: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        *,
        now: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        if max_retries < 0 or backoff_max < 0 or base < 0:
            raise ValueError("max_retries, backoff_max and base must be >= 0")
        self.max_retries = max_retries
        self.backoff_max = backoff_max
        self.base = base
        self.sleep = sleep
        self.clock = clock
        self.now = now
        self._rng = rng or random.Random()

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        """The policy configured by ``llm_max_retries`` and ``llm_backoff_max``."""
        return cls(settings.llm_max_retries, settings.llm_backoff_max)

    def backoff(self, attempt: int) -> float:
        """Jittered exponential wait after failed attempt number ``attempt`` (0-based)."""
        # The exponent is capped so a huge retry budget cannot overflow the float.
        return min(self.backoff_max, self.base * 2.0 ** min(attempt, 64)) * self._rng.uniform(0.5, 1.0)

    def retry_after(self, headers: Mapping[str, str]) -> float | None:
        """Seconds the server asked us to wait (``retry-after-ms``, ``Retry-After`` seconds or date), if any."""
        lowered = {k.lower(): v for k, v in headers.items()}
        for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
            raw = lowered.get(name)
            if raw is None:
                continue
            try:
                return max(0.0, float(raw) / scale)
            except ValueError:
                pass
        raw = lowered.get("retry-after")
        if raw is None:
            return None
        try:
            when = parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max(0.0, when.timestamp() - self.now())

    def wait(self, attempt: int, headers: Mapping[str, str] | None = None) -> float:
        """Seconds to wait before the next attempt: the server's hint if given, else backoff; capped."""
        hinted = self.retry_after(headers or {})
        if hinted is not None:
            return min(self.backoff_max, hinted)
        return self.backoff(attempt)

    def run(
        self,
        call: Callable[[], T],
        classify: Callable[[Exception], Failure | None],
        give_up: Callable[[Failure, int], LLMError],
    ) -> tuple[T, int]:
        """Call ``call`` until it succeeds; return its result and the number of retries used.

        Exceptions ``classify`` maps to None propagate unchanged (they are bugs, not service failures).
        A final or budget-exhausting failure raises ``give_up(failure, retries)`` from the last exception.
        """
        attempt = 0
        while True:
            try:
                return call(), attempt
            except Exception as exc:
                failure = classify(exc)
                if failure is None:
                    raise
                if not failure.retryable or attempt >= self.max_retries:
                    raise give_up(failure, attempt) from exc
                delay = self.wait(attempt, failure.headers)
                log.warning(
                    "model call failed (%s); retry %d/%d in %.1f s",
                    failure.detail,
                    attempt + 1,
                    self.max_retries,
                    delay,
                )
                self.sleep(delay)
                attempt += 1

    def gather(
        self,
        n: int,
        call: Callable[[int], Completion],
        classify: Callable[[Exception], Failure | None],
        give_up: Callable[[Failure, int], LLMError],
        model: str,
    ) -> Completion:
        """Collect ``n`` choices: ``call(missing)`` (retried per policy) until there are enough.

        Servers that sample one reply per request, or ignore ``n``, are asked again for the rest; usage and
        retries are summed and the total is priced once.
        """
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        start = self.clock()
        choices: list[Choice] = []
        usage = Usage()
        retries = 0
        while len(choices) < n:
            missing = n - len(choices)
            reply, used = self.run(partial(call, missing), classify, give_up)
            retries += used
            choices.extend(reply.choices[:missing])
            usage += reply.usage
            model = reply.model or model
        return Completion(
            choices=tuple(choices),
            usage=usage,
            model=model,
            seconds=self.clock() - start,
            cost_usd=cost_usd(model, usage),
            retries=retries,
        )


def translate_failure(
    failure: Failure, retries: int, *, url: str, model: str, key_env: str, timeout: float
) -> LLMError:
    """The user-facing error for a failure the policy gave up on; says what to check."""
    where = f"{url} (model '{model}')"
    after = f" after {retries} retr{'y' if retries == 1 else 'ies'}" if retries else ""
    if failure.kind is FailureKind.STATUS and not failure.retryable:
        if failure.status in (401, 403):
            return LLMRejected(
                f"{where} rejected the API key ({failure.detail}). Check the key in the {key_env} environment "
                f"variable: export {key_env}=<a valid key>."
            )
        if failure.status == 404:
            return LLMRejected(
                f"{where} answered {failure.detail}. Either the server does not know the model '{model}' or the "
                "base URL is wrong (OpenAI-compatible URLs usually end in /v1)."
            )
        return LLMRejected(f"{where} rejected the request ({failure.detail}).")
    if failure.kind is FailureKind.BAD_RESPONSE:
        return LLMBadResponse(
            f"{where} sent a reply that cannot be used{after}: {failure.detail}. Check that the URL is an "
            "OpenAI-compatible chat-completions endpoint (it usually ends in /v1) and that the server is healthy; "
            "if the fault comes and goes, raise llm_max_retries (NEMO_LLM_MAX_RETRIES)."
        )
    if failure.kind is FailureKind.TIMEOUT:
        return LLMUnavailable(
            f"{where} did not answer within the {timeout:g} s timeout{after}. Check that the server is running "
            "and not overloaded, or raise llm_timeout (NEMO_LLM_TIMEOUT) for slow models."
        )
    if failure.kind is FailureKind.STATUS and failure.status == 429:
        return LLMUnavailable(
            f"{where} kept rate-limiting the requests{after} ({failure.detail}). Wait and run again, lower "
            "llm_concurrency (NEMO_LLM_CONCURRENCY), or allow longer waits with llm_max_retries and "
            "llm_backoff_max."
        )
    if failure.kind is FailureKind.STATUS:
        return LLMUnavailable(
            f"{where} kept failing with a server error{after} ({failure.detail}). Check the server's log and "
            "that it has the model loaded, then run again; raise llm_max_retries to ride out longer outages."
        )
    return LLMUnavailable(
        f"Could not get a reply from {where}{after}: {_connection_fault(failure.detail)}; last error: "
        f"{failure.detail}. Check that the server is running and that the URL is right."
    )


def _connection_fault(detail: str) -> str:
    """A short name for a connection failure, read from the transport's message."""
    lowered = detail.lower()
    if "refused" in lowered:
        return "the connection was refused (nothing listens at that address)"
    if "disconnected" in lowered or "closed" in lowered or "reset" in lowered or "incomplete" in lowered:
        return "the server closed the connection before the reply was complete"
    if "name or service" in lowered or "nodename" in lowered or "resolve" in lowered:
        return "the host name could not be resolved"
    return "the connection failed"
