"""The benchmark report on stored runs whose every figure is worked out by hand below."""

from __future__ import annotations

import re
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from nemo_opt.bench.report import PAPER_ABLATIONS, PAPER_RESULTS, Report, build_report, write_report
from nemo_opt.bench.store import BenchStore, ItemResult
from nemo_opt.bench.svg import Series, _grouped_figure, grouped_bars, stacked_bars
from nemo_opt.exceptions import BadInput
from nemo_opt.store import RunStore

FULL = {
    "model": "openai:gpt-4.1",
    "extractions": 5,
    "optimizers": 3,
    "repair_rounds": 3,
    "memory": True,
    "mbr": True,
    "simulate": True,
}
SCRIPT = "<script>alert('x')</script> | broke"


def _run(
    bench: BenchStore, run_id: str, name: str, sha: str, settings: dict[str, Any], items: list[ItemResult]
) -> None:
    config = {"dataset": name, "dataset_sha256": sha, "oracle": False, "settings": settings}
    bench.ensure_run(
        run_id,
        name=name,
        benchmark=name.partition(":")[0],
        dataset_file=f"/data/{name}.jsonl",
        dataset_sha256=sha,
        preset="strict",
        config=config,
        oracle=False,
    )
    for item in items:
        bench.save(run_id, item)


def _done(item: str, gold: float | None, pred: str, answer: float | None, first: float | None, **kw: Any) -> ItemResult:
    kind = kw.pop("kind", "number" if gold is not None else "none")
    return ItemResult(item, kind, gold, "done", pred, answer, "optimal", first, **kw)


def _failed(item: str, category: str, error: str = "failed", **kw: Any) -> ItemResult:
    return ItemResult(item, "number", 1.0, "failed", error=error, error_category=category, **kw)


@pytest.fixture
def bench(tmp_path: Path) -> BenchStore:
    store = BenchStore(RunStore(tmp_path / "nemo.db"))
    # industryor, full NEMO. Graded: a1-a6 and a8 (a7 has no gold) = 7.
    # Final right: a1, a8 -> 2/7 = 28.6%. Pass@1 right: a1, a2, a3 -> 3/7 = 42.9% (a8's first answer is a number
    # for an infeasible gold). Finished: a1-a4, a7, a8 = 6, verified a1, a2, a8 -> 50.0%, objective-checked a3 ->
    # 16.7%. Failed: a5, a6.
    # Wrong: a2 modeling (verified), a3 validation disagreement, a4 no answer, a5 execution, a6 model service.
    _run(store, "ior-full", "industryor", "a" * 64, FULL, [
        _done("a1", 10.0, "optimal", 10.0, 10.0, verified=True, prompt_tokens=100, completion_tokens=50,
              cost_usd=0.25, seconds=20.0, llm_wait_seconds=10.0, stage_seconds={"extract": 2.0, "agents": 10.0}),
        _done("a2", 20.0, "optimal", 20.05, 20.0, verified=True, prompt_tokens=200, completion_tokens=100,
              cost_usd=0.5, seconds=40.0, llm_wait_seconds=30.0, stage_seconds={"extract": 4.0, "agents": 30.0}),
        _done("a3", 30.0, "optimal", 31.0, 30.0, verified=False, level="objective-checked",
              prompt_tokens=300, completion_tokens=150,
              cost_usd=0.75, seconds=60.0, llm_wait_seconds=20.0, stage_seconds={"extract": 6.0, "agents": 50.0}),
        _done("a4", 40.0, "infeasible", None, None, verified=None, cost_usd=0.0),
        _failed("a5", "execution", SCRIPT, cost_usd=0.0),
        _failed("a6", "model service", cost_usd=0.0),
        _done("a7", None, "optimal", 5.0, 5.0, cost_usd=0.0),
        _done("a8", None, "infeasible", None, 3.0, kind="infeasible", verified=True, cost_usd=0.0),
    ])  # fmt: skip
    # industryor without the simulator: b1 right, b2 timeout, b3 crash -> 1/3 = 33.3%.
    _run(store, "ior-nosim", "industryor", "a" * 64, {**FULL, "simulate": False}, [
        _done("b1", 5.0, "optimal", 5.0, 5.0, verified=None),
        _failed("b2", "timeout"),
        _failed("b3", "crash"),
    ])  # fmt: skip
    # nl4opt curated: c1 right, c2 wrong and unverified -> 50.0%; c1 used tokens without a price.
    _run(store, "nl4-cur", "nl4opt:curated", "c" * 64, FULL, [
        _done("c1", 1.0, "optimal", 1.0, 2.0, verified=True, prompt_tokens=10, completion_tokens=5),
        _done("c2", 2.0, "optimal", 3.0, 3.0, verified=False),
    ])  # fmt: skip
    return store


@pytest.fixture
def report(bench: BenchStore) -> Report:
    return build_report(bench, ["ior-full", "ior-nosim", "nl4-cur"], "strict")


def _tables(markdown: str, heading: str) -> list[list[dict[str, str]]]:
    """The tables of a section as rows of header -> cell (escaped pipes and underscores restored)."""
    section = markdown.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    tables: list[list[dict[str, str]]] = []
    for block in re.split(r"\n\s*\n", section):
        lines = [line for line in block.splitlines() if line.startswith("|")]
        if not lines:
            continue
        rows = [
            [c.strip().replace("\\|", "|").replace("\\_", "_") for c in re.split(r"(?<!\\)\|", line)[1:-1]]
            for line in lines
        ]
        tables.append([dict(zip(rows[0], row, strict=True)) for row in rows[2:]])
    return tables


def test_accuracy_and_paper_figures(report: Report) -> None:
    rows = {r["Run"]: r for r in _tables(report.markdown, "Accuracy per benchmark")[0]}
    assert rows["industryor #1"] == {
        "Run": "industryor #1",
        "Items": "8",
        "Graded": "7",
        "Correct": "2",
        "Accuracy %": "28.6",
        "Pass@1 %": "42.9",
        "Verified %": "50.0",
        "Objective-checked %": "16.7",
        "Failed": "2",
        "Paper %": "63.0 (Std)",
    }
    assert rows["industryor #2"]["Accuracy %"] == "33.3"
    assert rows["industryor #2"]["Verified %"] == "0.0"
    assert rows["nl4opt:curated"]["Accuracy %"] == "50.0"
    assert rows["nl4opt:curated"]["Pass@1 %"] == "0.0"
    assert rows["nl4opt:curated"]["Paper %"] == f"{PAPER_RESULTS['nl4opt']['cur']:.1f} (Cur)" == "99.1 (Cur)"


def test_another_preset_regrades_the_stored_answers(bench: BenchStore) -> None:
    # Under abs0.1, a2's 20.05 for a gold of 20 is right: 3/7 = 42.9%.
    rows = _tables(build_report(bench, ["ior-full"], "abs0.1").markdown, "Accuracy per benchmark")[0]
    assert (rows[0]["Correct"], rows[0]["Accuracy %"]) == ("3", "42.9")


def test_failure_categories(report: Report) -> None:
    counts, errors = _tables(report.markdown, "Failure categories")
    rows = {r.pop("Run"): r for r in counts}
    assert list(counts[0]) == [
        "execution",
        "timeout",
        "model service",
        "crash",
        "validation disagreement",
        "modeling",
        "no answer",
        "Total wrong",
    ]
    assert rows["industryor #1"] == {
        "execution": "1",
        "timeout": "0",
        "model service": "1",
        "crash": "0",
        "validation disagreement": "1",
        "modeling": "1",
        "no answer": "1",
        "Total wrong": "5",
    }
    assert rows["industryor #2"]["timeout"] == rows["industryor #2"]["crash"] == "1"
    assert rows["nl4opt:curated"]["validation disagreement"] == rows["nl4opt:curated"]["Total wrong"] == "1"
    assert [(e["Run"], e["Item"], e["Category"]) for e in errors] == [
        ("industryor #1", "a5", "execution"),
        ("industryor #1", "a6", "model service"),
        ("industryor #2", "b2", "timeout"),
        ("industryor #2", "b3", "crash"),
    ]


def test_tokens_cost_and_latency(report: Report) -> None:
    costs = {r["Run"]: r for r in _tables(report.markdown, "Tokens and cost")[0]}
    # Tokens per item of run 1: 150, 300, 450 and five zeros -> total 900, mean 112.5 (shown 112), median 0.
    assert costs["industryor #1"]["Total tokens"] == "900"
    assert costs["industryor #1"]["Tokens/item median"] == "0"
    assert costs["industryor #1"]["Cost USD"] == "1.5000"
    assert costs["industryor #1"]["Cost/item mean"] == "0.1875"
    assert costs["nl4opt:curated"]["Cost USD"] == "unknown (1 unpriced)"
    stages, waits = _tables(report.markdown, "Latency per stage")
    run1 = {r["Stage"]: r for r in stages if r["Run"] == "industryor #1"}
    # extract: 2, 4, 6 -> mean 4, p50 4, p90 4 + 0.8 * 2 = 5.6; agents: 10, 30, 50 -> p90 = 30 + 0.8 * 20 = 46.
    assert (run1["extract"]["Items"], run1["extract"]["Mean s"], run1["extract"]["p90 s"]) == ("3", "4.0", "5.6")
    assert (run1["agents"]["p50 s"], run1["agents"]["p90 s"]) == ("30.0", "46.0")
    assert run1["total"]["Items"] == "8"
    assert "memory" not in run1
    wait = {r["Run"]: r for r in waits}["industryor #1"]
    assert (wait["Item seconds"], wait["Model wait seconds"], wait["Model wait %"]) == ("120.0", "60.0", "50.0")


def test_ablation_rows_follow_the_paper(bench: BenchStore, report: Report) -> None:
    (rows,) = _tables(report.markdown, "Ablation")
    paper = PAPER_ABLATIONS["industryor"]
    assert [(r["Configuration"], r["Run"], r["Accuracy %"], r["Paper %"]) for r in rows] == [
        ("w/o Sim", "industryor #2", "33.3", f"{paper['w/o Sim']:.1f}"),
        ("Base", "–", "–", "60.0"),
        ("+ Mem", "–", "–", "62.0"),
        ("+ Mem + MBR", "–", "–", "63.0"),
        ("+ Mem + MBR + Multi-Optimizer", "industryor #1", "28.6", "63.0"),
    ]
    # Runs of different datasets are never compared, so one run per dataset makes no ablation section.
    assert "## Ablation" not in build_report(bench, ["ior-full", "nl4-cur"], "strict").markdown


class _Checker(HTMLParser):
    """Fails on a closing tag that does not match the open one; collects attributes that could load a resource."""

    VOID = {"meta", "br", "hr", "img", "input", "link", "source", "wbr"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.attributes: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.attributes += [name for name, _ in attrs]
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.attributes += [name for name, _ in attrs]

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes <{self.stack[-1] if self.stack else None}>"
        self.stack.pop()


def test_html_is_well_formed_self_contained_and_escaped(report: Report) -> None:
    checker = _Checker()
    checker.feed(report.html)
    checker.close()
    assert checker.stack == []
    assert not {"src", "href", "srcset", "xlink:href"} & set(checker.attributes)
    lowered = report.html.lower()
    for marker in ("http:", "https:", "<script", "<link", "@import", "<img", "<iframe"):
        assert marker not in lowered
    # The charts clip their bars to the plot with url(#id): only references to elements of the page itself.
    references = re.findall(r"url\(([^)]*)\)", lowered)
    assert references and all(ref.startswith("#") for ref in references)
    ids = re.findall(r'\bid="([^"]+)"', lowered)
    assert len(ids) == len(set(ids))  # three charts on one page share no id
    assert {ref[1:] for ref in references} <= set(ids)
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; | broke" in report.html
    assert "<script" not in report.markdown and "&lt;script&gt;" in report.markdown
    svgs = re.findall(r"<svg\b.*?</svg>", report.html, flags=re.DOTALL)
    assert len(svgs) == 3  # accuracy, failure causes, latency
    for svg in svgs:
        root = ET.fromstring(svg)
        assert root.find("title") is not None and root.find("desc") is not None
        assert root.get("role") == "img"
    accuracy = ET.fromstring(svgs[0])
    texts = {t.text for t in accuracy.iter("text")}
    assert {"pass@1", "final", "paper NEMO", "63.0", "99.1", "28.6", "42.9"} <= texts
    assert len({t.text for t in accuracy.iter("title")} & {"industryor #1, paper NEMO: 63.0%"}) == 1


def test_write_report(report: Report, tmp_path: Path) -> None:
    markdown, html = write_report(report, tmp_path / "out")
    assert (markdown.name, html.name) == ("report.md", "report.html")
    assert markdown.read_text(encoding="utf-8") == report.markdown
    assert html.read_text(encoding="utf-8") == report.html
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["report.html", "report.md"]


def test_bad_requests(bench: BenchStore) -> None:
    with pytest.raises(BadInput, match="No bench run 'nope'"):
        build_report(bench, ["nope"], "strict")
    with pytest.raises(BadInput, match="Use one of"):
        build_report(bench, ["ior-full"], "lenient")
    with pytest.raises(BadInput, match="at least one"):
        build_report(bench, [], "strict")


def test_charts_escape_labels_and_show_unknown_values() -> None:
    svg = grouped_bars("A<B", ["x & y", "z"], [Series("s<1>", [50.0, None])], maximum=100)
    root = ET.fromstring(svg)
    texts = [t.text for t in root.iter("text")]
    assert "x & y" in texts and "s<1>" in texts and "n/a" in texts and "50.0" in texts
    assert {t.text for t in root.iter("title")} >= {"A<B", "x & y, s<1>: 50.0%", "z, s<1>: n/a"}
    stacked = ET.fromstring(stacked_bars("Causes", ["run"], [Series("a", [2]), Series("b", [3])]))
    texts = [t.text for t in stacked.iter("text")]
    assert {"run", "a", "b", "2", "3", "5"} <= set(texts)  # segments 2 and 3, total 5
    assert {t.text for t in stacked.iter("title")} >= {"Causes", "run, a: 2", "run, b: 3"}


def test_a_dollar_sign_in_a_name_is_text_not_mathematics() -> None:
    root = ET.fromstring(grouped_bars("Cost $ per run", ["run $x$"], [Series("$5 plan", [1.0])], maximum=10))
    texts = {t.text for t in root.iter("text")}
    assert {"run $x$", "$5 plan", "Cost $ per run", "1.0"} <= texts


@pytest.mark.parametrize("runs", [3, 14, 40])
def test_value_labels_of_neighbouring_bars_never_overlap(runs: int) -> None:
    # Equal values on neighbouring bars drew their labels into one another ("95.095.0") in the hand-drawn charts.
    categories = [f"benchmark-{i}" for i in range(runs)]
    series = [Series("pass@1", [95.0] * runs), Series("final", [95.0] * runs), Series("paper", [100.0] * runs)]
    figure, _ = _grouped_figure("Accuracy", categories, series, "%", 100, 1)
    labels = [t for t in figure.axes[0].texts if t.get_text()]
    assert len(labels) == 3 * runs
    boxes = [t.get_window_extent() for t in labels]
    touching = [
        (labels[i].get_text(), i, j) for i in range(len(boxes)) for j in range(i) if boxes[i].overlaps(boxes[j])
    ]
    assert touching == []
    legend, title = figure.axes[0].get_legend().get_window_extent(), figure.axes[0].title.get_window_extent()
    assert not legend.overlaps(title) and legend.x1 <= figure.bbox.width
    svg = ET.fromstring(grouped_bars("Accuracy", categories, series, maximum=100))
    texts = [t.text for t in svg.iter("text")]
    assert texts.count("95.0") == 2 * runs and texts.count("100.0") >= runs  # one text element per label


def test_without_matplotlib_the_page_says_how_to_get_the_charts(
    bench: BenchStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now fails as when it is not installed
    report = build_report(bench, ["ior-full", "ior-nosim", "nl4-cur"], "strict")
    assert "<svg" not in report.html
    notes = re.findall(r'<p class="note" role="note">(.*?)</p>', report.html)
    assert [n.split("”")[0] for n in notes] == [
        "Chart “Accuracy per run",
        "Chart “Wrong graded items by cause",
        "Chart “Mean seconds per item by stage",
    ]
    assert all("pip install &#x27;nemo-opt[report]&#x27;" in n for n in notes)
    checker = _Checker()
    checker.feed(report.html)
    checker.close()
    assert checker.stack == []
    assert "Charts: see report.html." not in report.markdown
    assert (
        "Charts are not drawn: Drawing the benchmark report's charts needs the 'matplotlib' package" in report.markdown
    )
    assert "pip install 'nemo-opt\\[report\\]'" in report.markdown  # brackets escaped for Markdown
    (row,) = [r for r in _tables(report.markdown, "Accuracy per benchmark")[0] if r["Run"] == "industryor #1"]
    assert row["Accuracy %"] == "28.6"  # the figures are all still there


def test_a_run_without_results(tmp_path: Path) -> None:
    store = BenchStore(RunStore(tmp_path / "empty.db"))
    _run(store, "empty", "bwor", "e" * 64, {}, [])
    report = build_report(store, ["empty"], "strict")
    (row,) = _tables(report.markdown, "Accuracy per benchmark")[0]
    assert (row["Items"], row["Graded"], row["Accuracy %"], row["Paper %"]) == ("0", "0", "–", "82.9 (Std)")
    assert "No graded item is wrong or failed." in report.markdown
    # Settings missing from the stored config read as today's defaults (n=5, T=3, R=3, all switches on).
    (header,) = _tables(report.markdown, "Runs")[0]
    assert [header[k] for k in ("n", "T", "R", "Memory", "MBR", "Simulator")] == ["5", "3", "3", "on", "on", "on"]
