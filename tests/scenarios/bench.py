"""A small benchmark of workshop variants for end-to-end bench runs with a scripted model.

Instance k changes the finishing hours; its gold answer comes from enumerating every whole plan (independent of
the pipeline). One instance can be made to fail at extraction (the model answers with no JSON).
"""

from __future__ import annotations

import copy
import json
import re
import threading
from pathlib import Path
from typing import Any

from nemo_opt.testing import Reply
from nemo_opt.testing.scripted import estimate_tokens
from tests.scenarios import EXTRACT, SIMULATOR, call, product_mix, say, spec_reply

FINISHING = [100, 110, 120, 90, 80, 130, 95, 105]
EXAMPLE = (Path(__file__).resolve().parents[2] / "examples" / "product_mix.md").read_text()

SIMULATOR_TESTS = """import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from simulator.simulator import simulate  # noqa: E402

DATA = json.loads((ROOT / "data.json").read_text())


def test_small_plan():
    # 20 tables, 30 chairs: carpentry 80 + 90 = 170, finishing 40 + 30 = 70, profit 1400 + 1500 = 2900
    verdict = simulate({"make": {"table": 20, "chair": 30}}, DATA)
    assert verdict["feasible"] and abs(verdict["objective"] - 2900) < 1e-9


def test_too_few_chairs():
    assert "chair_orders" in [v["constraint"] for v in simulate({"make": {"table": 1, "chair": 5}}, DATA)["violations"]]
"""


def question(k: int) -> str:
    """Instance k's text: the workshop problem with its own finishing hours."""
    return f"(Instance {k})\n" + EXAMPLE.replace("100 finishing hours", f"{FINISHING[k]} finishing hours")


def gold(k: int) -> float:
    """Best profit over every whole plan, by enumeration."""
    best = 0.0
    for tables in range(0, 61):
        for chairs in range(10, 81):
            if 4 * tables + 3 * chairs <= 240 and 2 * tables + chairs <= FINISHING[k]:
                best = max(best, 70.0 * tables + 50.0 * chairs)
    return best


def write_dataset(folder: Path, count: int, name: str = "nl4opt") -> Path:
    """A JSONL benchmark file of ``count`` instances in the benchmarks format."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [
        json.dumps(
            {
                "id": f"{name}-{k:04d}",
                "benchmark": name,
                "question": question(k),
                "answer": gold(k),
                "answer_raw": str(gold(k)),
            }
        )
        for k in range(count)
    ]
    path = folder / f"{name}.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


class BenchScript:
    """Replies for many concurrent instances: the instance comes from the conversation, the role from the marker."""

    def __init__(
        self,
        failing: set[int] | None = None,
        delay: float = 0.0,
        prompt_rate: float = 0.0,
        completion_rate: float = 0.0,
    ) -> None:
        """``delay`` is the fixed latency of every call; with rates (tokens/s) each call also takes
        prompt_tokens / prompt_rate + completion_tokens / completion_rate seconds, like a real service."""
        self.failing = failing or set()
        self.delay = delay
        self.prompt_rate = prompt_rate
        self.completion_rate = completion_rate
        self.lock = threading.Lock()
        self.queues: dict[tuple[int, str], list[Reply]] = {}
        self.extractions: dict[int, int] = {}

    def _queue(self, k: int, role: str) -> list[Reply]:
        if (k, role) not in self.queues:
            if role == "simulator":
                replies = product_mix.simulator_replies(SIMULATOR_TESTS)
            else:
                replies = [
                    say("", call("write_file", path="model.py", content=product_mix.RIGHT_MODEL)),
                    say("", call("bash", command="python model.py")),
                    say("", call("submit", summary="model")),
                ]
            self.queues[(k, role)] = replies
        return self.queues[(k, role)]

    def __call__(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> Reply:
        text = json.dumps(messages)
        found = re.search(r"Instance (\d+)", text)
        assert found, "no instance marker in the request"
        k = int(found.group(1))
        first = str(messages[0].get("content") or "")
        with self.lock:
            if EXTRACT in first:
                self.extractions[k] = self.extractions.get(k, 0) + 1
                # A new solve of instance k starts here: its agents get their scripts from the start again
                # (an earlier solve of k may have been killed half-way through them).
                self.queues.pop((k, "simulator"), None)
                self.queues.pop((k, "optimizer"), None)
                if k in self.failing:
                    return Reply(text="I am not able to turn this into a model.", delay=self.delay)
                spec = copy.deepcopy(product_mix.SPEC)
                for parameter in spec["parameters"]:
                    if parameter["name"] == "finishing_available":
                        parameter["value"] = FINISHING[k]
                reply = spec_reply(spec)
            else:
                role = "simulator" if SIMULATOR in first else "optimizer"
                reply = self._queue(k, role).pop(0)
        reply.delay = self.delay
        if self.prompt_rate > 0:
            reply.delay += estimate_tokens(text) / self.prompt_rate
        if self.completion_rate > 0:
            reply.delay += estimate_tokens(reply.text + json.dumps(reply.arguments())) / self.completion_rate
        return reply
