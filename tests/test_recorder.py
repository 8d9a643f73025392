"""The call recorder: cache policy, run-store logging, accounting and the cost ceiling."""

from __future__ import annotations

from pathlib import Path

import pytest

from nemo_opt.exceptions import CostCeilingReached
from nemo_opt.llm.base import Message
from nemo_opt.llm.cache import ReplyCache
from nemo_opt.llm.recorder import Accounting, RecordedLLM
from nemo_opt.store import RunStore
from nemo_opt.testing import Reply, ScriptedLLM

HELLO = [Message("user", "hello")]


def _setup(tmp_path: Path, replies: list[Reply], name: str = "scripted:test", **kwargs: object):  # type: ignore[no-untyped-def]
    llm = ScriptedLLM(replies, name=name)
    store = RunStore(tmp_path / "nemo.db")
    store.create_run("run", tmp_path, "t", "sha")
    cache = ReplyCache(tmp_path / "cache.db")
    recorded = RecordedLLM(llm, store=store, run_id="run", cache=cache, stage="extract", **kwargs)  # type: ignore[arg-type]
    return recorded, llm, store


def test_temperature_zero_replies_come_from_the_cache(tmp_path: Path) -> None:
    recorded, llm, store = _setup(tmp_path, [Reply(text="hi")])
    labelled = recorded.with_template(("extract", "1"))
    first = labelled.complete(HELLO)
    second = labelled.complete(HELLO)
    assert first.first.text == second.first.text == "hi"
    assert len(llm.requests) == 1 and second.cached
    calls = store.llm_calls("run")
    assert [c["cached"] for c in calls] == [0, 1]
    assert calls[0]["template"] == "extract" and calls[0]["template_version"] == "1"
    assert recorded.accounting.summary()["cached_calls"] == 1


def test_sampling_is_not_cached_in_auto_mode_but_is_when_forced(tmp_path: Path) -> None:
    recorded, llm, _ = _setup(tmp_path, [Reply(text="a"), Reply(text="b"), Reply(text="c")])
    assert recorded.complete(HELLO, temperature=0.7).first.text == "a"
    assert recorded.complete(HELLO, temperature=0.7).first.text == "b"
    forced = recorded.for_stage("judge")
    forced.cache_mode = "on"
    assert forced.complete(HELLO, temperature=0.7).first.text == "c"
    assert forced.complete(HELLO, temperature=0.7).cached
    assert len(llm.requests) == 3


def test_cost_ceiling_stops_the_next_call(tmp_path: Path) -> None:
    replies = [Reply(text="x", usage=(400_000, 100_000)), Reply(text="y")]
    recorded, _, store = _setup(tmp_path, replies, name="openai:gpt-4.1", max_cost_usd=1.0, cache_mode="off")
    first = recorded.complete(HELLO)
    assert first.cost_usd == pytest.approx(0.4 * 2.0 + 0.1 * 8.0)  # list price of gpt-4.1 per million tokens
    with pytest.raises(CostCeilingReached, match="NEMO_MAX_COST_USD"):
        recorded.complete(HELLO)
    totals = store.llm_totals("run")["total"]
    assert totals["calls"] == 1 and totals["cost_usd"] == pytest.approx(1.6)


def test_wait_seconds_counts_overlapping_calls_once() -> None:
    accounting = Accounting()
    accounting.intervals = [(0.0, 2.0), (1.0, 3.0), (5.0, 6.0)]
    assert accounting.wait_seconds() == pytest.approx(4.0)


def test_stage_views_share_accounting_and_log_their_stage(tmp_path: Path) -> None:
    recorded, _, store = _setup(tmp_path, [Reply(text="a"), Reply(text="b")], cache_mode="off")
    recorded.complete(HELLO)
    recorded.for_stage("optimizer_1").complete(HELLO)
    assert recorded.accounting.calls == 2
    per_stage = store.llm_totals("run")["per_stage"]
    assert set(per_stage) == {"extract", "optimizer_1"}
