"""Prompt templates: versioned Markdown files rendered with ``$name`` placeholders.

Each file starts with a header line ``<!-- prompt: NAME version: N -->``. Every model call records the
template name and version that produced it, so a change of wording is visible in the run store.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from string import Template

__all__ = ["Prompt", "load_prompt"]

_HEADER = re.compile(r"^<!--\s*prompt:\s*(?P<name>[\w-]+)\s+version:\s*(?P<version>[\w.]+)\s*-->\s*\n")


@dataclass(frozen=True)
class Prompt:
    """A loaded template."""

    name: str
    version: str
    text: str

    def render(self, **values: object) -> str:
        """Substitute every ``$placeholder``; a missing value is an error, never silently left in."""
        try:
            return Template(self.text).substitute({k: str(v) for k, v in values.items()})
        except KeyError as exc:
            raise KeyError(f"prompt '{self.name}' needs a value for ${exc.args[0]}") from exc

    @property
    def ref(self) -> tuple[str, str]:
        return self.name, self.version


@cache
def load_prompt(name: str) -> Prompt:
    """Load ``prompts/<name>.md`` from the package."""
    text = resources.files(__package__).joinpath(f"{name}.md").read_text(encoding="utf-8")
    match = _HEADER.match(text)
    if match is None or match["name"] != name:
        raise ValueError(f"prompt file {name}.md lacks a valid '<!-- prompt: {name} version: N -->' header")
    return Prompt(name=name, version=match["version"], text=text[match.end() :])
