"""The coding-agent seam: a task in, files in the workspace plus a trajectory out."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Protocol, runtime_checkable

from nemo_opt.llm.base import Message, Usage

__all__ = ["Acceptance", "Agent", "AgentResult", "AgentStatus", "AgentTask"]


@dataclass(frozen=True)
class Acceptance:
    """Verdict of a task's submit check; ``reason`` tells the agent what to fix when refused."""

    ok: bool
    reason: str = ""


@dataclass
class AgentTask:
    """What an agent must do and how its submission is judged.

    ``accept`` runs when the agent submits; a refusal goes back to the agent as an observation.
    ``acceptance_text`` describes the same check in words for the prompt. ``writable`` is the one folder the
    agent's file tools may write (default: ``workdir``); its sandbox should be scoped to the same folder.
    ``files`` are the paths (from ``workdir``) a reply of the whole-file protocol carries, and ``finish_file``
    turns what the model wrote for a path into what is saved there (e.g. the harness's fixed ending of a
    model); the saved file is what the check judges, and ``show_file`` is what the agent is shown of a saved file
    (without the parts the harness put in, so it does not copy them back). ``check_file`` runs on a file saved
    while others are still to come; what it returns (empty: nothing) is said back and that file asked for again
    before the next. ``file_hints`` is what the agent is told when asked for
    a file after the first; ``file_signs`` tells an unnamed block's file by its content.
    """

    name: str
    system: str
    instruction: str
    workdir: Path
    accept: Callable[[], Acceptance]
    acceptance_text: str
    template: tuple[str, str] = ("", "")
    writable: Path | None = None
    files: tuple[str, ...] = ()
    finish_file: Callable[[str, str], str] | None = None
    show_file: Callable[[str, str], str] | None = None
    check_file: Callable[[str], str] | None = None
    file_hints: dict[str, str] = field(default_factory=dict)  # said when the agent is asked for that file
    file_signs: dict[str, str] = field(default_factory=dict)  # a regex an unnamed block of that file matches


class AgentStatus(StrEnum):
    """How an agent run ended."""

    SUBMITTED = "submitted"
    LIMITS_EXCEEDED = "limits_exceeded"
    FAILED = "failed"


@dataclass
class AgentResult:
    """Outcome of one agent run. ``messages`` is the whole conversation, so a later repair can resume it."""

    name: str
    status: AgentStatus
    steps: int
    usage: Usage
    seconds: float
    messages: list[Message] = field(default_factory=list)
    trajectory: Path | None = None
    reason: str = ""
    summary: str = ""

    @property
    def submitted(self) -> bool:
        return self.status is AgentStatus.SUBMITTED


@runtime_checkable
class Agent(Protocol):
    """A coding agent working in a shared workspace."""

    def run(self, task: AgentTask, *, history: list[Message] | None = None) -> AgentResult:
        """Work on ``task`` until it is accepted or a limit is hit. ``history`` resumes an earlier conversation."""
        ...
