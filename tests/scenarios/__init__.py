"""Scripted conversations that look like a capable model's, for end-to-end runs through the loopback server.

Each scenario module defines ``EXTRACTION`` (the extractor's reply), ``SIMULATOR`` and ``OPTIMIZER`` (the
agents' replies in order) and the answer expected from independent reasoning (a hand computation or the
benchmark's gold answer), never from this project's own output.
"""

from __future__ import annotations

import json
from typing import Any

from nemo_opt.testing import Reply

EXTRACT = "You are an operations-research analyst"
SIMULATOR = "Role: simulator agent"
OPTIMIZER = "Role: optimizer agent"


def call(name: str, **arguments: Any) -> tuple[str, dict[str, Any]]:
    """A tool call with JSON arguments."""
    return name, arguments


def say(text: str, *calls: tuple[str, Any]) -> Reply:
    """An assistant turn: some prose and optional tool calls."""
    return Reply(text=text, tool_calls=list(calls))


def spec_reply(spec: dict[str, Any], preface: str = "Here is the structured decision process.") -> Reply:
    """The extractor's reply: prose, then the spec in a fenced JSON block, as models usually answer."""
    return Reply(text=f"{preface}\n\n```json\n{json.dumps(spec, indent=2)}\n```\n")


def bash_reply(prose: str, command: str) -> Reply:
    """A plain-text protocol turn: reasoning, then one bash block."""
    return Reply(text=f"{prose}\n\n```bash\n{command}\n```")
