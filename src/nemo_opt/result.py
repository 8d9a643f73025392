"""The outcome of one run, as returned to callers and written to ``result.json``."""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = ["ErrorKind", "Event", "RunResult", "StageTiming", "new_run_id", "sha256_text"]

ErrorKind = Literal["bad_input", "config", "run_failure", "interrupted", "internal"]


@dataclass(frozen=True)
class Event:
    """A progress event for whoever watches a run (the CLI renders them)."""

    stage: str
    status: Literal["started", "finished", "failed", "info"]
    message: str = ""


@dataclass
class StageTiming:
    """Wall-clock span of one stage."""

    stage: str
    status: str
    started: float
    ended: float | None = None

    @property
    def seconds(self) -> float:
        return (self.ended or time.monotonic()) - self.started


@dataclass
class RunResult:
    """Final answer and provenance of a run; ``error`` is set when the run could not finish."""

    run_id: str
    folder: Path
    status: str
    objective: float | None = None
    verified: bool = False  # level == "verified"
    level: str = "unverified"  # a VerificationLevel value: verified, objective-checked or unverified
    level_reason: str = ""  # why the level is not "verified"
    package: Path | None = None
    pass_at_1: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    llm_wait_seconds: float = 0.0
    usage: dict[str, Any] = field(default_factory=dict)
    stages: list[dict[str, Any]] = field(default_factory=list)
    optimizers: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    error_kind: ErrorKind | None = None
    # The failure category of what stopped the run, from its exception type (see nemo_opt.exceptions).
    error_category: str | None = None
    resumes: int = 0  # how many times the run was resumed after a kill or a stop

    def record_failure(self, exc: BaseException, message: str) -> None:
        """What stopped the run: its message, its kind (which decides the exit code) and its failure category."""
        from nemo_opt.exceptions import (  # the exception tree imports nothing of the result: no cycle either way
            BadInput,
            CostCeilingReached,
            NemoError,
            RunTimeLimitReached,
            UserError,
            failure_category,
        )

        self.status, self.error, self.error_category = "failed", message, failure_category(exc)
        if isinstance(exc, KeyboardInterrupt):
            self.error_kind = "interrupted"
        elif isinstance(exc, UserError):
            self.error_kind = "bad_input" if isinstance(exc, BadInput) else "config"
        elif isinstance(exc, NemoError):
            self.error_kind = "run_failure"
            if isinstance(exc, CostCeilingReached | RunTimeLimitReached):
                resume = f"nemo-opt solve --resume {self.run_id}"
                self.error = f"{exc} Everything so far is kept in {self.folder}; continue it with: {resume}"
        else:  # a defect, or agent output no check foresaw
            self.error_kind = "internal"
            self.error = (
                f"internal error: {type(exc).__name__}: {exc}. Everything so far is kept in {self.folder}; "
                "please report this with the run folder."
            )

    @property
    def exit_code(self) -> int:
        """0 verified; 6 objective-checked; 1 unverified; 2 bad input; 3 configuration; 4 run failure (and
        internal errors); 5 infeasible/unbounded; 130 interrupted."""
        if self.error_kind == "bad_input":
            return 2
        if self.error_kind == "config":
            return 3
        if self.error_kind == "interrupted":
            return 130
        if self.error_kind is not None:
            return 4
        if self.status in {"infeasible", "unbounded", "infeasible_or_unbounded"}:
            return 5
        if self.verified:
            return 0
        return 6 if self.level == "objective-checked" else 1


def new_run_id(problem: str) -> str:
    """A sortable, readable, unique run id: time, a slug of the first words, random suffix."""
    words = re.findall(r"[a-z0-9]+", problem.lower())[:4]
    slug = "-".join(words)[:32] or "problem"
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{slug}-{secrets.token_hex(2)}"


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
