"""Retries of model calls (tenacity) and the translation of a final failure into an :class:`LLMError`.

A backend wraps one HTTP call in :meth:`RetryPolicy.run` with a classifier that turns the SDK's exception into
a :class:`Failure`. ``tenacity`` retries the retryable ones (429, 5xx, timeouts, refused or dropped connections,
unusable bodies) up to ``llm_max_retries`` times, waiting what ``Retry-After`` asks or a jittered exponential
backoff, each wait capped at ``llm_backoff_max``; the final failure is raised as what ``give_up`` builds from
it, chained to the last SDK error. Cost ceiling and run time limit are checked per ``LLM.complete`` call,
outside the backend (``llm/recorder.py``, ``llm/limit.py``).

Why tenacity and not the SDKs' own retries (``max_retries`` stays 0): ``benchmarks/sdk_retries.py``, against the
loopback server with ``max_retries=4`` and openai 3.57, measured that the SDK gave up after 1 request on a 429
with ``Retry-After: 3600`` (it refuses hints over 120 s; anthropic 2.15's source sleeps any hint in full, not
``llm_backoff_max``); spaced four 500s 0.49, 0.94, 1.77, 3.63 s with ``llm_backoff_max`` = 2 s (its cap is a
fixed 8 s; tenacity here: 0.89, 1.03, 1.62, 1.89 s); and did not retry a 200 with truncated JSON (escaping as
a bare ``JSONDecodeError``) or with no choices (1 request each; here 2, recovered). The SDKs also do not report
how many retries a call took, which the run store records per call, and their sleep cannot be injected, which
the fault suite (``testing/model_faults.py``) uses to bring a refusing server up during the first wait.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from enum import StrEnum
from functools import partial
from typing import TYPE_CHECKING, TypeVar

import tenacity

from nemo_opt.exceptions import LLMBadResponse, LLMError, LLMRejected, LLMUnavailable, UnusableReply
from nemo_opt.llm.base import Choice, Completion, Usage
from nemo_opt.llm.pricing import cost_usd

if TYPE_CHECKING:
    from nemo_opt.settings import Settings

__all__ = ["Failure", "FailureKind", "RetryPolicy", "UnusableReply", "classify_sdk_error", "translate_failure"]

log = logging.getLogger(__name__)

T = TypeVar("T")

# 408 (request timeout), 409 (OpenAI's lock contention) and 429 (rate limit) are transient by definition;
# every other 4xx means the same request will fail again. The SDKs retry the same set.
_RETRYABLE_4XX = frozenset({408, 409, 429})


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

    @property
    def retryable(self) -> bool:
        """Whether another attempt may succeed: anything but a 4xx other than 408, 409 and 429."""
        if self.kind is FailureKind.STATUS:
            return self.status is not None and (self.status in _RETRYABLE_4XX or self.status >= 500)
        return True


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
        return Failure(FailureKind.STATUS, f"HTTP {status}: {_server_message(exc)}", status)
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


def _retry_after(exc: BaseException | None) -> float | None:
    """Seconds the server asked us to wait (``retry-after-ms``, ``Retry-After`` seconds or date), if any.

    Kept by hand: tenacity 9.2 has no Retry-After wait, and the SDKs' parsers are private methods of their
    clients (``_parse_retry_after_header``)."""
    headers = getattr(getattr(exc, "response", None), "headers", None)
    if headers is None:
        return None
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        try:
            seconds = float(headers.get(name, "nan")) / scale
        except ValueError:
            continue
        if math.isfinite(seconds):
            return max(0.0, seconds)
    try:
        when = parsedate_to_datetime(headers.get("retry-after", ""))
    except (TypeError, ValueError):
        return None
    # A "-0000" zone parses as naive; HTTP dates are UTC.
    return max(0.0, (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp() - time.time())


class RetryPolicy:
    """At most ``max_retries`` retries, waiting ``Retry-After`` or a jittered exponential backoff, both capped.

    The backoff after failed attempt ``k`` (0-based) is uniform in [0.5, 1] × min(``backoff_max``,
    ``base`` × 2^k): half fixed so a loading server is not hammered, half random so many clients spread out.
    ``sleep`` is injectable so tests can observe the waits without waiting.
    """

    def __init__(
        self, max_retries: int, backoff_max: float, base: float = 1.0, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        if max_retries < 0 or backoff_max < 0 or base < 0:
            raise ValueError("max_retries, backoff_max and base must be >= 0")
        self.max_retries = max_retries
        self.backoff_max = backoff_max
        self.sleep = sleep
        half = {"multiplier": base / 2, "max": backoff_max / 2}
        self._backoff = tenacity.wait_exponential(**half) + tenacity.wait_random_exponential(**half)

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        """The policy configured by ``llm_max_retries`` and ``llm_backoff_max``."""
        return cls(settings.llm_max_retries, settings.llm_backoff_max)

    def _wait(self, state: tenacity.RetryCallState) -> float:
        hinted = _retry_after(state.outcome.exception() if state.outcome else None)
        return min(self.backoff_max, hinted) if hinted is not None else self._backoff(state)

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

        def failure_of(exc: BaseException | None) -> Failure | None:
            return classify(exc) if isinstance(exc, Exception) else None

        def before_sleep(state: tenacity.RetryCallState) -> None:
            failure = failure_of(state.outcome.exception() if state.outcome else None)
            delay = state.next_action.sleep if state.next_action else 0.0
            detail = failure.detail if failure else "?"
            log.warning(
                "model call failed (%s); retry %d/%d in %.1f s", detail, state.attempt_number, self.max_retries, delay
            )

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.max_retries + 1),
            wait=self._wait,
            retry=tenacity.retry_if_exception(lambda exc: getattr(failure_of(exc), "retryable", False)),
            sleep=self.sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        try:
            result = retrying(call)
        except Exception as exc:
            failure = failure_of(exc)
            if failure is None:
                raise
            raise give_up(failure, retrying.statistics["attempt_number"] - 1) from exc
        return result, retrying.statistics["attempt_number"] - 1

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
        start = time.monotonic()
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
            seconds=time.monotonic() - start,
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
