"""The reply parser on its regression corpus (tests/fixtures/json_replies.jsonl), one test per reply."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from nemo_opt.jsonparse import parse_json_object

CORPUS = Path(__file__).parent / "fixtures" / "json_replies.jsonl"
CASES: list[dict[str, Any]] = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize("case", CASES, ids=[f"line{n}" for n in range(1, len(CASES) + 1)])
def test_corpus_reply(case: dict[str, Any]) -> None:
    if "error" in case:
        with pytest.raises(ValueError) as raised:
            parse_json_object(case["reply"])
        fragments = [case["error"]] if isinstance(case["error"], str) else case["error"]
        assert all(fragment in str(raised.value) for fragment in fragments), (case["source"], str(raised.value))
    else:
        assert parse_json_object(case["reply"]) == case["expect"], case["source"]


def test_corpus_covers_the_shapes_small_models_send() -> None:
    replies = [c["reply"] for c in CASES]
    assert len(CASES) >= 60 and all(set(c) <= {"reply", "expect", "error", "source"} for c in CASES)
    assert any("```json" in r for r in replies) and any("'" in r and "{'" in r for r in replies)
    assert any("None of the True" in r for r in replies) and any("error" in c for c in CASES)


def test_text_inside_strings_comes_out_as_written() -> None:
    reply = 'Sure:\n{"note": "None of the True costs, e.g. [1,]", "said": "\u201cok\u201d, }", "ok": True,}'
    assert parse_json_object(reply) == {
        "note": "None of the True costs, e.g. [1,]",
        "said": "\u201cok\u201d, }",
        "ok": True,
    }


def test_refusals_say_where_and_what_to_do() -> None:
    with pytest.raises(ValueError, match=r"opens at line 2, column 1 never closes .*send the whole object"):
        parse_json_object('Here it is:\n{"sets": [\n  {"name": "months", "elements": [1, 2]},\n')
    with pytest.raises(ValueError, match=r"line 3, column 14 \('1 200'\); write one JSON number"):
        parse_json_object('```json\n{\n  "demand": [1 200, 3 400],\n  "cap": 5\n}\n```')
    # A list or prose in braces is not an object; the message says what was found instead.
    with pytest.raises(ValueError, match="reads as a JSON list, expected an object"):
        parse_json_object("{1, 2, 3}")
