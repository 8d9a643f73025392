"""The tools a coding agent may use, and the parser of the plain-text (one bash block) protocol."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from nemo_opt.exceptions import BadInput, DoorRefused, FormatError
from nemo_opt.llm.base import ToolCall, ToolSpec
from nemo_opt.sandbox.base import ExecResult, Sandbox
from nemo_opt.workspace import Workspace

__all__ = [
    "SUBMIT_MARKER",
    "TOOL_NAMES",
    "TOOL_SPECS",
    "Observation",
    "ToolBox",
    "extract_bash_block",
    "is_refusal",
    "whole_files",
    "shorten",
    "unusable_reply",
]

SUBMIT_MARKER = "NEMO_SUBMIT"
# Source files and data an agent reads with read_file are kilobytes; the observation is cut far below this anyway.
READ_MAX_BYTES = 4 * 1024 * 1024

_PATH = {"type": "string", "description": "File path, relative to your working directory."}
TOOL_SPECS: list[ToolSpec] = [
    ToolSpec(
        "bash",
        "Run a shell command in your working directory and return its exit code and output.",
        {
            "type": "object",
            "properties": {"command": {"type": "string", "description": "The command line to run with bash."}},
            "required": ["command"],
        },
    ),
    ToolSpec(
        "read_file",
        "Read a text file, optionally only some lines (1-based, inclusive).",
        {
            "type": "object",
            "properties": {"path": _PATH, "start_line": {"type": "integer"}, "end_line": {"type": "integer"}},
            "required": ["path"],
        },
    ),
    ToolSpec(
        "write_file",
        "Create or overwrite a text file with the given content.",
        {
            "type": "object",
            "properties": {"path": _PATH, "content": {"type": "string"}},
            "required": ["path", "content"],
        },
    ),
    ToolSpec(
        "edit_file",
        "Replace one exact occurrence of old_text with new_text in a file.",
        {
            "type": "object",
            "properties": {"path": _PATH, "old_text": {"type": "string"}, "new_text": {"type": "string"}},
            "required": ["path", "old_text", "new_text"],
        },
    ),
    ToolSpec(
        "submit",
        "Finish: the system checks your work and either accepts it or tells you what is still wrong.",
        {
            "type": "object",
            "properties": {"summary": {"type": "string", "description": "One or two sentences on what you did."}},
            "required": [],
        },
    ),
]
TOOL_NAMES = [spec.name for spec in TOOL_SPECS]
_CALL_ONE_OF = f"call one of: {', '.join(TOOL_NAMES)}"

# Openings of replies that decline the task instead of working on it. Only short replies without a tool call
# or command are checked, so a model quoting such a phrase while working is never mistaken for a refusal.
_REFUSAL = re.compile(
    r"^\W*(i'?m sorry|sorry|unfortunately|as an ai)?[\s,.!:-]*(but\s+)?"
    r"(i|we)\s*(can ?not|can'?t|won'?t|will not|am unable to|am not able to|'m unable to|'m not able to|must decline)"
    r"|\bi (can ?not|can'?t|won'?t) (help|assist|comply|do that|continue)",
    re.IGNORECASE,
)
_REFUSAL_MAX_CHARS = 1000

_FENCE = re.compile(r"```(?P<lang>[\w+-]*)[ \t]*\n(?P<body>.*?)(?:\n)?```", re.DOTALL)


def shorten(text: str, limit: int) -> str:
    """Keep the head and the tail of ``text`` within ``limit`` characters, saying what was left out."""
    if len(text) <= limit:
        return text
    head = limit * 2 // 3
    tail = limit - head
    omitted = len(text) - head - tail
    return f"{text[:head]}\n[... {omitted} characters omitted ...]\n{text[-tail:]}"


def extract_bash_block(text: str) -> str:
    """The single bash block of a plain-text reply; anything else is a :class:`FormatError`."""
    blocks = [m["body"] for m in _FENCE.finditer(text) if m["lang"].lower() in {"bash", "sh", "shell", "console", ""}]
    if len(blocks) == 1:
        return blocks[0]
    if not blocks:
        raise FormatError(
            "Your reply had no bash block. Every reply must contain exactly one fenced block starting with "
            "```bash. To finish, run `echo NEMO_SUBMIT`."
        )
    raise FormatError(
        f"Your reply had {len(blocks)} bash blocks; only one is run per reply. Send exactly one ```bash block "
        "(combine commands with && or a heredoc)."
    )


_UNCLOSED_HEREDOC = re.compile(r"here-document at line \d+ delimited by end-of-file \(wanted `(?P<word>[^']+)'\)")
_PATH_COMMENT = re.compile(r"#\s*((?:[\w.-]+/)*[\w-]+\.py)\s*$")  # a block's first line naming only its path
_FILE_NAME = re.compile(r"(?<![\w/.-])((?:[\w.-]+/)*[\w-]+\.py)\b")


def files_in_reply(text: str) -> list[tuple[str, str]]:
    """Whole files shown as ```python blocks, each named by a ``.py`` path on the line just before its fence.

    Small models often answer a plain-text task with "### simulator/simulator.py" and the file in a python
    block instead of a bash heredoc that writes it; the agent can still save exactly what they wrote. A block
    with no path named right before it is not guessed at.
    """
    files: list[tuple[str, str]] = []
    for match in _FENCE.finditer(text):
        if match["lang"].lower() not in {"python", "py", "python3"}:
            continue
        before = [line for line in text[: match.start()].splitlines() if line.strip()]
        names = _FILE_NAME.findall(before[-1]) if before else []
        if names:
            files.append((names[-1], match["body"].rstrip("\n") + "\n"))
    return files


def whole_files(text: str, expected: tuple[str, ...], signs: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    """The files of a whole-file reply (the ``files`` protocol) for the paths in ``expected``.

    A python block named by one of those paths on the line before it, or on its own first line as a comment
    (``# simulator/test_simulator.py``), is that file. An unnamed block whose text matches the ``signs`` pattern
    (a multiline regex) of exactly one path is that path's file: a 1.5B model, asked to fix its tests, replied with
    an unnamed test file that the order rule below saved over its simulator. Other unnamed python blocks fill the
    paths not yet given, in order (a small model often drops the name when one file is asked for). When a
    reply shows more unnamed blocks than paths remain, the longest block is taken for a single remaining path
    (models put a usage example after the file) and nothing is guessed for several. In a reply that names a
    file (by path or by its sign), an unnamed block that does not match another path's sign is not that file.
    """
    named: dict[str, str] = {}
    unnamed: list[str] = []
    wanted = {PurePosixPath(path).name: path for path in expected} | {path: path for path in expected}
    patterns = {path: re.compile(sign, re.MULTILINE) for path, sign in (signs or {}).items() if path in expected}

    def lookup(line: str) -> str | None:
        names = _FILE_NAME.findall(line)
        path = next((wanted[n] for n in reversed(names) if n in wanted), None)
        if path is None:  # named by another folder ("model.py" for "optimizers/opt_1/model.py")
            bases = [PurePosixPath(n).name for n in reversed(names)]
            path = next((wanted[b] for b in bases if b in wanted), None)
        return path

    for match in _FENCE.finditer(text):
        if match["lang"].lower() not in {"python", "py", "python3", ""}:
            continue
        body = match["body"].rstrip("\n") + "\n"
        if not body.strip():
            continue
        before = [line for line in text[: match.start()].splitlines() if line.strip()]
        path = lookup(before[-1]) if before else None
        first = _PATH_COMMENT.match(body.lstrip().split("\n", 1)[0])
        if path is None and first:
            path = lookup(first[1])
        if path is None:
            matching = [p for p, pattern in patterns.items() if pattern.search(body)]
            path = matching[0] if len(matching) == 1 else None
        if path is not None and path not in named:
            named[path] = body
        elif path is None:
            unnamed.append(body)
    remaining = [path for path in expected if path not in named]
    if named:  # beside a file it names, a block unlike another file is an excerpt, not that file: a 1.5B model
        # quoted one line of its tests above the whole test file, and the line was saved over its simulator
        remaining = [path for path in remaining if path not in patterns]
    if unnamed and remaining:
        if len(remaining) == 1:
            named[remaining[0]] = max(unnamed, key=len)
        else:
            for path, body in zip(remaining, unnamed, strict=False):
                named[path] = body
    return [(path, named[path]) for path in expected if path in named]


def is_refusal(text: str) -> bool:
    """Whether a reply (that did nothing) only declines the task, e.g. "I can't help with that"."""
    stripped = text.strip().replace("\u2019", "'")
    return bool(stripped) and len(stripped) <= _REFUSAL_MAX_CHARS and _REFUSAL.search(stripped) is not None


def unusable_reply(text: str, protocol: str) -> tuple[str, str]:
    """Why a reply that carried no tool call (or no single bash block) could not be acted on.

    Returns a short label for the agent's limit reason and the observation sent back to the model, which
    says what a usable reply looks like.
    """
    how = {
        "tools": f"Work with the tools ({_CALL_ONE_OF}); call submit when the work is complete and checked.",
        "files": "",  # the agent adds which files to send
    }.get(protocol, "Every reply must contain exactly one fenced ```bash block; to finish, run `echo NEMO_SUBMIT`.")
    if not text.strip():
        what = {"tools": "tool call", "files": "file"}.get(protocol, "command")
        return "empty reply", f"Your reply was empty: no text and no {what}. {how}".rstrip()
    if is_refusal(text):
        quoted = shorten(" ".join(text.split()), 200)
        return (
            f"refusal ({quoted!r})",
            f"Your reply declined the task ({quoted!r}). This is a legitimate optimization-modelling task: you "
            "write and run Python code in your own sandboxed working directory, with no network and no access "
            f"outside it. Please continue with the task. {how}",
        )
    if protocol == "tools":
        return "no tool call", f"Your reply called no tool. {how}"
    if protocol == "files":
        return "no file", "Your reply had no ```python block holding the file, so nothing was saved or run."
    try:
        extract_bash_block(text)
    except FormatError as exc:
        return "no single bash block", str(exc)
    return "unusable reply", how


@dataclass
class Observation:
    """What a tool call produced; ``submit`` is set when the call asked to finish.

    ``fault`` names a malformed call (unknown tool, arguments that are not a JSON object, a missing argument),
    so the agent loop can tell a model that keeps sending unusable calls from one that is working.
    """

    text: str
    submit: bool = False
    summary: str = ""
    fault: str = ""


class ToolBox:
    """Executes tool calls for one agent: commands in the sandbox, file access through the safe door.

    Files are read anywhere in the workspace (no symlink followed, regular files only, size-capped) and written
    only inside ``scope``, the agent's own folder (default: its working directory)."""

    def __init__(
        self, workspace: Workspace, sandbox: Sandbox, workdir: Path, observation_chars: int, scope: Path | None = None
    ) -> None:
        self.workspace = workspace
        self.sandbox = sandbox
        self.workdir = workdir
        self.scope = scope or workdir
        self.observation_chars = observation_chars

    def _target(self, name: str) -> PurePosixPath:
        """The workspace path ``name`` (from the working directory) names, if this agent may write it."""
        relative = self.workspace.relative(name, base=self.workdir)
        if not self.workspace.within(relative, self.scope):
            raise DoorRefused(
                f"'{name}' is outside your own folder {self.workspace.rel(self.scope)}/; you may read other "
                "folders but write only your own."
            )
        return relative

    def write_files(self, files: list[tuple[str, str]]) -> str:
        """Write files a plain-text reply showed as named python blocks; the observation says what happened."""
        lines = []
        for name, content in files:
            try:
                path = self.workspace.write_text(self._target(name), content)
            except OSError as exc:  # DoorRefused included
                lines.append(f"Not written: {name}: {exc}")
                continue
            lines.append(f"Wrote {self.workspace.rel(path)} ({content.count(chr(10))} lines) from your python block.")
        return "\n".join(lines)

    def run_bash(self, command: str, timeout: float | None = None) -> tuple[ExecResult, str]:
        result = self.sandbox.run(command, cwd=self.workdir, timeout=timeout)
        text = f"[{result.describe()}]\n{shorten(result.output, self.observation_chars)}"
        unclosed = _UNCLOSED_HEREDOC.search(result.output)
        if unclosed:  # bash only warns; small models then never see their commands run
            text += (
                f"\nNote: your heredoc was never closed: no line consisting of exactly {unclosed['word']} ended it, "
                f"so everything after `<<'{unclosed['word']}'` up to the end of the block, commands included, went "
                f"into the file and nothing else ran. End the file's text with a line holding only "
                f"{unclosed['word']}, then put the commands after it."
            )
        return result, text

    def call(self, tool_call: ToolCall, timeout: float | None = None) -> Observation:
        """Run one native tool call; mistakes come back as observations the model can act on."""
        if tool_call.name not in TOOL_NAMES:
            name = shorten(tool_call.name, 80)
            return Observation(
                f"Error: there is no tool named {name!r}; nothing was run. Send the call again and {_CALL_ONE_OF}.",
                fault=f"unknown tool {name!r}",
            )
        try:
            args = json.loads(tool_call.arguments or "{}")
        except json.JSONDecodeError as exc:
            sent = shorten(tool_call.arguments, 200)
            return Observation(
                f"Error: your {tool_call.name} call's arguments were not valid JSON ({exc.msg} at position "
                f"{exc.pos}): {sent!r}; nothing was run. Send the call again with the arguments as one JSON "
                f"object; {_CALL_ONE_OF}.",
                fault=f"invalid JSON arguments for {tool_call.name}",
            )
        if not isinstance(args, dict):
            return Observation(
                f"Error: the arguments of {tool_call.name} must be a JSON object, not {type(args).__name__}; "
                "nothing was run.",
                fault=f"non-object arguments for {tool_call.name}",
            )
        try:
            return self._dispatch(tool_call.name, args, timeout)
        except (BadInput, DoorRefused) as exc:
            return Observation(f"Error: {exc}")
        except KeyError as exc:
            return Observation(
                f"Error: {tool_call.name} needs the argument {exc.args[0]!r}; nothing was run.",
                fault=f"missing argument {exc.args[0]!r} for {tool_call.name}",
            )
        except (OSError, UnicodeDecodeError) as exc:
            return Observation(f"Error: {tool_call.name} failed: {exc}")

    def _dispatch(self, name: str, args: dict[str, Any], timeout: float | None) -> Observation:
        if name == "bash":
            return Observation(self.run_bash(str(args["command"]), timeout)[1])
        if name == "submit":
            return Observation("", submit=True, summary=str(args.get("summary", "")))
        path = self.workspace.relative(str(args["path"]), base=self.workdir)
        shown = str(path)
        if name == "read_file":
            lines = self.workspace.read_text(path, max_bytes=READ_MAX_BYTES).splitlines()
            start = max(int(args.get("start_line") or 1), 1)
            end = int(args.get("end_line") or len(lines))
            body = "\n".join(f"{i:5d}  {line}" for i, line in enumerate(lines[start - 1 : end], start))
            return Observation(shorten(body, self.observation_chars) or f"({shown} is empty)")
        if name == "write_file":
            content = str(args["content"])
            self.workspace.write_text(self._target(str(args["path"])), content)
            return Observation(f"Wrote {len(content)} characters to {shown}.")
        old, new = str(args["old_text"]), str(args["new_text"])
        path = self._target(str(args["path"]))
        text = self.workspace.read_text(path, max_bytes=READ_MAX_BYTES)
        count = text.count(old) if old else 0
        if count != 1:
            where = "does not occur" if count == 0 else f"occurs {count} times"
            return Observation(f"Error: old_text {where} in {shown}; it must match exactly once. Read the file first.")
        self.workspace.write_text(path, text.replace(old, new, 1))
        return Observation(f"Edited {shown}.")
