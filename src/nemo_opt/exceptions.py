"""Every exception nemo-opt raises, in one place.

The tree (``tests/test_exceptions.py`` checks that this drawing and the classes agree)::

    NemoError
    ├── UserError                  the caller can fix it; the message says how
    │   ├── ConfigError            a setting, nemo.toml or NEMO_* variable is wrong
    │   ├── ModelNotConfigured     no model named, or its key / URL is missing
    │   ├── MissingExtra           an optional dependency is not installed (names the pip command)
    │   └── BadInput               the problem text (or another input file) cannot be used
    ├── RunFailure                 the run could not finish; everything computed so far is kept
    │   ├── LLMError               the model service failed after retries
    │   │   ├── LLMUnavailable     connection refused, timeouts, 5xx / 429 past the retry budget
    │   │   ├── LLMRejected        4xx the service will not retry (bad key, unknown model, bad request)
    │   │   └── LLMBadResponse     a reply that cannot be used (no choices, unparseable body)
    │   │       └── UnusableReply  raised inside a backend for one reply; retried like a dropped connection
    │   ├── CostCeilingReached     the next call would exceed the run's cost ceiling
    │   ├── RunTimeLimitReached    the run's wall-clock limit passed; no further model call starts
    │   ├── Interrupted            Ctrl-C or SIGTERM: no further model call starts
    │   ├── ExtractionFailed       no usable problem specification came out of the extractor
    │   ├── AgentFailed            no optimizer agent ended with an accepted model
    │   └── SandboxError           the sandbox itself could not run a command (not: the command failed)
    ├── DoorRefused                a file an agent wrote cannot be used safely (a symlink, a FIFO, too large,
    │                              nested too deeply, outside the caller's folder); also an OSError, so file
    │                              code that handles OSError handles it; it becomes an observation or a
    │                              validation failure of that agent, never a crash of the host
    └── AgentControl               control flow inside the agent loop; never escapes the loop
        ├── Submitted              the agent asked to finish and the task accepted it
        ├── LimitsExceeded         step, token or wall-clock budget used up
        └── FormatError            a reply the loop could not act on (no/many bash blocks, bad tool call)

Each class carries ``category``: the failure category a benchmark report files a run under, so reports sort
failures by type, never by searching message text.

Third-party errors (openai, anthropic, subprocess, sqlite) are translated at the boundary that calls them,
with ``raise ... from``, so callers only ever catch these classes.
"""

from __future__ import annotations

__all__ = [
    "AgentControl",
    "AgentFailed",
    "BadInput",
    "ConfigError",
    "CostCeilingReached",
    "DoorRefused",
    "ExtractionFailed",
    "FormatError",
    "Interrupted",
    "LLMBadResponse",
    "LLMError",
    "LLMRejected",
    "LLMUnavailable",
    "LimitsExceeded",
    "MissingExtra",
    "ModelNotConfigured",
    "NemoError",
    "RunFailure",
    "SandboxError",
    "RunTimeLimitReached",
    "Submitted",
    "UnusableReply",
    "UserError",
    "failure_category",
]


class NemoError(Exception):
    """Base of every error nemo-opt raises."""

    category = "execution"


class UserError(NemoError):
    """A mistake the caller can fix; the message says what to do."""

    category = "config"


class ConfigError(UserError):
    """A setting has an invalid value or nemo.toml cannot be read."""


class ModelNotConfigured(UserError):
    """No model is configured, or its API key / server URL is missing."""


class MissingExtra(UserError):
    """An optional dependency is needed but not installed."""

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        """``extra``: the optional-dependency group that installs ``package`` ("" for a core dependency that is
        missing from a broken install)."""
        install = f"pip install 'nemo-opt[{extra}]'" if extra else f"pip install '{package}' (a core dependency)"
        super().__init__(f"{purpose} needs the '{package}' package, which is not installed. Install it with: {install}")
        self.package = package
        self.extra = extra


class BadInput(UserError):
    """The problem description or another input cannot be used as given."""

    category = "bad input"


class RunFailure(NemoError):
    """The run could not finish. Artifacts produced so far stay in the run folder."""


class LLMError(RunFailure):
    """The model service failed."""

    category = "model service"


class LLMUnavailable(LLMError):
    """The model service could not be reached or kept failing after retries."""


class LLMRejected(LLMError):
    """The model service refused the request (authentication, unknown model, invalid request)."""


class LLMBadResponse(LLMError):
    """The model service answered with something that cannot be used."""


class UnusableReply(LLMBadResponse):
    """One reply a backend cannot use (no choices, wrong shape); the retry policy retries it."""


class CostCeilingReached(RunFailure):
    """The run's cost ceiling would be exceeded by the next model call."""

    category = "cost"


class ExtractionFailed(RunFailure):
    """No usable problem specification could be extracted from the description."""

    category = "extraction"


class RunTimeLimitReached(RunFailure):
    """The run used up its wall-clock limit (``run_max_seconds``); no further model call is made."""

    category = "timeout"


class Interrupted(RunFailure):
    """The run was interrupted (Ctrl-C or SIGTERM); no further model call is made."""

    category = "interrupted"


class AgentFailed(RunFailure):
    """No optimizer agent ended with an accepted model (the message says what each one did)."""


class SandboxError(RunFailure):
    """The sandbox could not run a command at all (as opposed to the command failing)."""


class DoorRefused(NemoError, OSError):
    """A workspace file was refused by the safe door (:mod:`nemo_opt.door`); the message names it and why."""


class AgentControl(NemoError):
    """Control flow inside the agent loop. Caught by the loop; never escapes it."""


class Submitted(AgentControl):
    """The agent finished and its submission was accepted.

    ``observations`` carries the results of the reply's other tool calls, so the conversation stays
    well-formed (every tool call answered) when it is resumed later.
    """

    def __init__(self, summary: str, observations: list[object] | None = None) -> None:
        super().__init__(summary)
        self.summary = summary
        self.observations = observations or []


class LimitsExceeded(AgentControl):
    """The agent used up its step, token or wall-clock budget."""


class FormatError(AgentControl):
    """The model's reply could not be acted on; the message is sent back to the model."""


def failure_category(exc: BaseException) -> str:
    """The benchmark failure category of ``exc`` (``crash`` for anything that is not a :class:`NemoError`)."""
    if isinstance(exc, KeyboardInterrupt):
        return Interrupted.category
    return exc.category if isinstance(exc, NemoError) else "crash"
