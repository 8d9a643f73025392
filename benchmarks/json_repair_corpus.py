"""The reply parser on its regression corpus: old hand-written repair vs json_repair, cases kept and time per reply.

Three parsers read every line of ``tests/fixtures/json_replies.jsonl``:

- ``old``: ``nemo_opt/jsonparse.py`` as of commit ``OLD_COMMIT`` (the hand-written repair), read with ``git show``;
- ``new``: the current ``nemo_opt.jsonparse.parse_json_object`` (json_repair plus the object locator);
- ``json_repair alone``: the current module with its two refusals switched off (the object's text runs to the
  end of the reply and no guessed value is refused), to show what those refusals keep.

A case passes when the parser returns the expected object, or raises ValueError holding the first expected error
fragment (the message callers and the repair prompt see; the further fragments, this module's reasons, are checked
by tests/test_jsonparse.py).
Time per reply is the mean over ``--rounds`` passes (CPU time, best of ``--repeat`` runs, so a busy machine skews
it less) of all replies, of those whose object is valid JSON as written, and of those that need mending.

    PYTHONPATH=src python benchmarks/json_repair_corpus.py
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from nemo_opt import jsonparse  # noqa: E402

CORPUS = REPO / "tests" / "fixtures" / "json_replies.jsonl"
OLD_COMMIT = "78b0963"  # the last commit that changed the hand-written repair

Parser = Callable[[str], dict[str, Any]]


def old_parser() -> Parser:
    source = subprocess.run(
        ["git", "-C", str(REPO), "show", f"{OLD_COMMIT}:src/nemo_opt/jsonparse.py"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    module = types.ModuleType("old_jsonparse")
    exec(compile(source, f"{OLD_COMMIT}:jsonparse.py", "exec"), module.__dict__)
    parse: Parser = module.parse_json_object
    return parse


def refusals_off() -> contextlib.AbstractContextManager[Any]:
    """The current module with the object's text running to the end of the reply and no guessed value refused."""
    stack = contextlib.ExitStack()
    stack.enter_context(mock.patch.object(jsonparse, "_object_end", lambda text, start: len(text)))
    stack.enter_context(mock.patch.object(jsonparse, "_refusal", lambda text, start, end: None))
    return stack


def passes(parse: Parser, case: dict[str, Any]) -> tuple[bool, str]:
    try:
        got: Any = parse(case["reply"])
    except ValueError as exc:
        expected = case.get("error")
        prefix = expected if isinstance(expected, str) else expected[0] if expected else None
        return prefix is not None and prefix in str(exc), f"error: {exc}"
    return "error" not in case and got == case["expect"], f"returned {json.dumps(got)[:100]}"


def is_valid_json(reply: str) -> bool:
    """Whether the reply's object (its first fenced block's, else the reply's first) is valid JSON as written."""
    blocks = jsonparse._FENCED.findall(reply)
    text = next((block for block in blocks if "{" in block), reply)
    try:
        json.JSONDecoder().raw_decode(text, text.index("{"))
    except ValueError:
        return False
    return True


def time_per_reply(parse: Parser, replies: list[str], rounds: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        began = time.process_time()
        for _ in range(rounds):
            for reply in replies:
                with contextlib.suppress(ValueError):
                    parse(reply)
        best = min(best, time.process_time() - began)
    return best / (rounds * len(replies))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    cases = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]
    valid = [c["reply"] for c in cases if "error" not in c and is_valid_json(c["reply"])]
    mended = [c["reply"] for c in cases if "error" not in c and not is_valid_json(c["reply"])]
    parsers: dict[str, tuple[Parser, Callable[[], contextlib.AbstractContextManager[Any]]]] = {
        "old": (old_parser(), contextlib.nullcontext),
        "new": (jsonparse.parse_json_object, contextlib.nullcontext),
        "json_repair alone": (jsonparse.parse_json_object, refusals_off),
    }
    refused = sum("error" in c for c in cases)
    print(
        f"{len(cases)} replies: {len(valid)} hold an object valid as written, {len(mended)} need mending, {refused} "
        "must be refused"
    )
    print(f"{'parser':<18} {'pass':>7}   CPU us/reply: {'all':>7} {'valid':>7} {'mended':>7}")
    failures: dict[str, list[str]] = {}
    for name, (parse, setting) in parsers.items():
        with setting():
            results = [passes(parse, case) for case in cases]
            per_reply = time_per_reply(parse, [c["reply"] for c in cases], args.rounds, args.repeat)
            per_valid = time_per_reply(parse, valid, args.rounds, args.repeat)
            per_mended = time_per_reply(parse, mended, args.rounds, args.repeat)
        failures[name] = [
            f"  line {n}: {case['source']}\n      {detail}"
            for n, (case, (ok, detail)) in enumerate(zip(cases, results, strict=True), 1)
            if not ok
        ]
        passed = sum(ok for ok, _ in results)
        times = f"{per_reply * 1e6:>7.1f} {per_valid * 1e6:>7.1f} {per_mended * 1e6:>7.1f}"
        print(f"{name:<18} {passed:>3}/{len(cases):<3}                {times}")
    for name, lines in failures.items():
        if lines:
            print(f"\n{name} fails {len(lines)}:")
            print("\n".join(lines))


if __name__ == "__main__":
    main()
