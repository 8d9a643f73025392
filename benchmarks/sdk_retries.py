"""What the ``openai`` SDK's own retries do with the faults nemo-opt must ride out, against the loopback server.

    python benchmarks/sdk_retries.py

For each scripted fault the SDK client is built with ``max_retries=4`` (nemo-opt's default ``llm_max_retries``)
and asked once; the table shows how many requests reached the server, the waits between them (from the
server's arrival times), whether the call succeeded, and what the caller can learn about the retries. The
same script then runs through :class:`~nemo_opt.llm.openai_backend.OpenAIChat` (tenacity, ``llm_backoff_max``
= 2 s) for comparison. ``nemo_opt.llm.retry`` cites these figures for its choice.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

import openai  # noqa: E402

from nemo_opt.exceptions import LLMError  # noqa: E402
from nemo_opt.llm.base import Message  # noqa: E402
from nemo_opt.llm.openai_backend import OpenAIChat  # noqa: E402
from nemo_opt.settings import Settings  # noqa: E402
from nemo_opt.testing import OpenAICompatServer, Reply  # noqa: E402

RETRIES = 4
BACKOFF_MAX = 2.0
EMPTY = json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": "m", "choices": []})

CASES: list[tuple[str, list[Reply]]] = [
    ("429 Retry-After 1, then ok", [Reply(status=429, headers={"Retry-After": "1"}), Reply("ok")]),
    ("429 Retry-After 3600, then ok", [Reply(status=429, headers={"Retry-After": "3600"}), Reply("ok")]),
    ("500 x4, then ok", [Reply(status=500)] * 4 + [Reply("ok")]),
    ("200 with a truncated JSON body, then ok", [Reply(raw_body='{"choices": ['), Reply("ok")]),
    ("200 with no choices, then ok", [Reply(raw_body=EMPTY), Reply("ok")]),
]


class _Timed(OpenAICompatServer):
    """The loopback server, noting when each request arrived."""

    def __init__(self, script: Any) -> None:
        super().__init__(script)
        self.arrivals: list[float] = []

    def answer(self, method: str, path: str, body: Any, *, bad_json: bool = False) -> Any:
        self.arrivals.append(time.monotonic())
        return super().answer(method, path, body, bad_json=bad_json)


def _waits(server: _Timed) -> str:
    gaps = [b - a for a, b in zip(server.arrivals, server.arrivals[1:], strict=False)]
    return ", ".join(f"{g:.2f}" for g in gaps) or "-"


def _sdk(script: list[Reply]) -> tuple[int, str, str]:
    with _Timed(list(script)) as server:
        client = openai.OpenAI(api_key="k", base_url=server.url, timeout=10.0, max_retries=RETRIES)
        try:
            response = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
            choices = getattr(response, "choices", None)
            outcome = f"returned {'choices' if choices else repr(response)[:40]}"
        except (openai.OpenAIError, ValueError) as exc:  # a body that is not JSON escapes as JSONDecodeError
            outcome = f"raised {type(exc).__name__}"
        return len(server.arrivals), _waits(server), outcome


def _tenacity(script: list[Reply], home: Path) -> tuple[int, str, str]:
    settings = Settings(home=home, llm_timeout=10.0, llm_max_retries=RETRIES, llm_backoff_max=BACKOFF_MAX)
    with _Timed(list(script)) as server:
        llm = OpenAIChat("m", settings, api_key="k", base_url=server.url)
        try:
            completion = llm.complete([Message("user", "hi")])
            outcome = f"ok, Completion.retries={completion.retries}"
        except LLMError as exc:
            outcome = f"raised {type(exc).__name__}"
        return len(server.arrivals), _waits(server), outcome


def main() -> None:
    print(f"max_retries={RETRIES}; nemo-opt llm_backoff_max={BACKOFF_MAX:g} s\n")
    print("| fault | retries by | requests | waits (s) | outcome |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for title, script in CASES:
            for who, run in (("openai SDK", _sdk), ("tenacity", lambda s: _tenacity(s, Path(tmp)))):
                started = time.monotonic()
                requests, waits, outcome = run(script)
                print(f"| {title} | {who} | {requests} | {waits} | {outcome} ({time.monotonic() - started:.1f} s) |")


if __name__ == "__main__":
    main()
