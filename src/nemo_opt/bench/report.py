"""Benchmark report: stored bench runs as Markdown and as one self-contained HTML page with SVG charts.

The charts need the ``report`` extra (matplotlib); without it the page keeps every table and says how to get them.

Items are graded with :func:`nemo_opt.bench.scoring.is_correct` under the preset asked for (the preset a run was
started with does not matter: stored answers are re-graded). The paper's figures sit beside ours so a reader sees
at once how far a run is from the published numbers. All text from the store is escaped for the output format.
"""

from __future__ import annotations

import json
import math
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from nemo_opt.bench.scoring import is_correct
from nemo_opt.bench.store import BenchStore
from nemo_opt.bench.svg import Section, Series, Table, grouped_bars, render_html, render_markdown, stacked_bars
from nemo_opt.exceptions import BadInput
from nemo_opt.fsutil import atomic_write_text
from nemo_opt.settings import Settings

__all__ = ["ABLATION_ROWS", "PAPER_ABLATIONS", "PAPER_RESULTS", "Report", "build_report", "write_report"]

# NEMO's accuracy (%) per benchmark: arXiv 2601.21372, main results table ("Std" = standard release, "Cur" =
# curated release; four benchmarks are reported on one release only, listed as "std").
PAPER_RESULTS: dict[str, dict[str, float]] = {
    "optibench": {"std": 90.4},
    "optmath_bench": {"std": 65.7},
    "nl4opt": {"std": 98.4, "cur": 99.1},
    "nlp4lp": {"std": 81.4, "cur": 95.7},
    "bwor": {"std": 82.9},
    "industryor": {"std": 63.0, "cur": 76.0},
    "mamo_easy": {"std": 83.4, "cur": 93.5},
    "mamo_complex": {"std": 72.0, "cur": 94.0},
    "complexor": {"std": 77.8},
}
# Rows of the paper's ablation table, in its order (modules stacked one by one).
ABLATION_ROWS = ("w/o Sim", "Base", "+ Mem", "+ Mem + MBR", "+ Mem + MBR + Multi-Optimizer")
# arXiv 2601.21372, ablation table. Its last row equals the main table's "Std" column, so these are standard releases.
PAPER_ABLATIONS: dict[str, dict[str, float]] = {
    "optmath_bench": dict(zip(ABLATION_ROWS, (59.6, 63.2, 63.9, 64.5, 65.7), strict=True)),
    "bwor": dict(zip(ABLATION_ROWS, (71.9, 75.6, 80.4, 82.9, 82.9), strict=True)),
    "industryor": dict(zip(ABLATION_ROWS, (60.0, 60.0, 62.0, 63.0, 63.0), strict=True)),
    "mamo_complex": dict(zip(ABLATION_ROWS, (50.9, 54.2, 61.9, 71.0, 72.0), strict=True)),
    "nlp4lp": dict(zip(ABLATION_ROWS, (76.0, 77.5, 79.0, 81.4, 81.4), strict=True)),
}
STAGES = ("memory", "extract", "recommend", "agents", "consensus", "package")
# Categories of failed items in a fixed order, then the three kinds of a finished but wrong answer.
# fmt: off
_FAILED_ORDER = ("extraction", "execution", "timeout", "model service", "cost", "config", "crash", "interrupted",
                 "no reference", "missing solver", "parse")
_WRONG_ORDER = ("validation disagreement", "modeling", "no answer", "reference disagrees")
# Settings an ablation switches (with their parameters); runs differing in anything else are not compared.
_ABLATION_KEYS = {"simulate", "crosscheck_probes", "memory", "memory_k", "memory_pool", "memory_lambda", "embedder",
                  "mbr", "mbr_top_q", "mbr_weights", "extractions", "optimizers"}
# fmt: on
_MAX_ERRORS = 40


@dataclass(frozen=True)
class Report:
    """A rendered report."""

    markdown: str
    html: str


@dataclass
class _Run:
    row: dict[str, Any]
    settings: dict[str, Any]
    results: list[dict[str, Any]]
    label: str = ""

    def setting(self, name: str) -> Any:
        """A stored setting, or the default of the time when the run predates it."""
        value = self.settings.get(name)
        return Settings.model_fields[name].default if value is None and name in Settings.model_fields else value

    @property
    def curated(self) -> bool:
        return str(self.row["name"]).partition(":")[2].startswith("curated")

    @property
    def graded(self) -> list[dict[str, Any]]:
        return [r for r in self.results if r["correct"] is not None]


def _pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}" if whole else "–"


def _fmt(value: float | None, decimals: int = 1) -> str:
    return "–" if value is None else f"{value:,.{decimals}f}"


def _quantile(values: Sequence[float], q: float) -> float:
    """Linear-interpolation quantile (numpy's default), so p50 equals the median."""
    xs = sorted(values)
    position = (len(xs) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(xs) - 1)
    return xs[low] + (xs[high] - xs[low]) * (position - low)


def _load(store: BenchStore, run_id: str, preset: str) -> _Run:
    row = store.get_run(run_id)
    if row is None:
        raise BadInput(f"No bench run '{run_id}'. List them with: nemo-opt bench list")
    config = json.loads(row["config_json"] or "{}")
    results = store.results(run_id)
    for r in results:
        r["correct"] = is_correct(preset, r["gold_kind"], r["gold_answer"], r["pred_status"], r["pred_answer"])
        r["pass1_correct"] = is_correct(preset, r["gold_kind"], r["gold_answer"], r["pass1_status"], r["pass1_answer"])
    return _Run(row, dict(config.get("settings") or {}), results)


def _failure_kind(r: dict[str, Any]) -> str:
    """Why a graded item is wrong: its error category when it failed, else what its finished answer lacked."""
    if r["status"] == "failed":
        return str(r["error_category"] or "uncategorised")
    answer = r["pred_answer"]
    numeric = answer is not None and math.isfinite(answer) and (r["pred_status"] or "") in {"optimal", "time_limit"}
    if r["gold_kind"] == "number" and not numeric:
        return "no answer"
    if r["verified"] is None:  # oracle runs: a reference program, nothing validated it
        return "reference disagrees"
    return "modeling" if r["verified"] else "validation disagreement"


def _paper(run: _Run) -> tuple[float | None, str]:
    figures = PAPER_RESULTS.get(str(run.row["benchmark"]), {})
    if run.curated and "cur" in figures:
        return figures["cur"], "Cur"
    return figures.get("std"), "Std"


def _models(run: _Run) -> str:
    names = [
        run.settings.get(k) for k in ("model", "extract_model", "judge_model", "simulator_model", "optimizer_model")
    ]
    return ", ".join(dict.fromkeys(str(n) for n in names if n)) or "default"


def _switches(run: _Run) -> tuple[bool, bool, bool, bool]:
    """(simulator, memory, MBR, several optimizers); MBR needs more than one extraction to choose from."""
    mbr = bool(run.setting("mbr")) and int(run.setting("extractions")) > 1
    return bool(run.setting("simulate")), bool(run.setting("memory")), mbr, int(run.setting("optimizers")) > 1


def _ablation_label(run: _Run) -> str:
    sim, memory, mbr, multi = _switches(run)
    if not sim:
        return ABLATION_ROWS[0]
    rows = {(False, False, False): 1, (True, False, False): 2, (True, True, False): 3, (True, True, True): 4}
    if (memory, mbr, multi) in rows:
        return ABLATION_ROWS[rows[memory, mbr, multi]]
    return "Sim" + "".join(f" + {n}" for n, on in (("Mem", memory), ("MBR", mbr), ("Multi-Optimizer", multi)) if on)


def _on(flag: bool) -> str:
    return "on" if flag else "off"


def _header(runs: list[_Run], preset: str) -> Section:
    rows = []
    for run in runs:
        sim, memory, mbr, _ = _switches(run)
        created = datetime.fromtimestamp(float(run.row["created_at"]), UTC).strftime("%Y-%m-%d %H:%M")
        dataset = [str(run.row[key]) for key in ("id", "name", "dataset_sha256")]
        counts = [str(run.setting(key)) for key in ("extractions", "optimizers", "repair_rounds")]
        switches = [_on(memory), _on(mbr), _on(sim), "yes" if run.row["oracle"] else "no"]
        rows.append([run.label, *dataset[:2], dataset[2][:12], _models(run), *counts, *switches, created])
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    headers = ["Run", "Id", "Dataset", "SHA-256", "Model(s)", "n", "T", "R", "Memory", "MBR", "Simulator", "Oracle"]
    note = f"Scoring preset: {preset}. Generated {generated}. n = extractions, T = optimizers, R = repair rounds."
    return Section("Runs", [note], [Table([*headers, "Created (UTC)"], rows)])


def _accuracy(runs: list[_Run]) -> Section:
    rows, final, first, paper = [], [], [], []
    for run in runs:
        graded, done = len(run.graded), [r for r in run.results if r["status"] == "done"]
        correct, pass1 = (sum(bool(r[key]) for r in run.graded) for key in ("correct", "pass1_correct"))
        oracle = bool(run.row["oracle"])
        verified = _pct(sum(bool(r["verified"]) for r in done), len(done)) if not oracle else "n/a"
        checked = _pct(sum(r.get("level") == "objective-checked" for r in done), len(done)) if not oracle else "n/a"
        failed = sum(r["status"] == "failed" for r in run.results)
        figure, release = _paper(run)
        shown = "–" if figure is None else f"{figure:.1f} ({release})"
        counts = [str(n) for n in (len(run.results), graded, correct)]
        rows.append(
            [run.label, *counts, _pct(correct, graded), _pct(pass1, graded), verified, checked, str(failed), shown]
        )
        final.append(100 * correct / graded if graded else None)
        first.append(100 * pass1 / graded if graded else None)
        paper.append(figure)
    series = [Series("pass@1", first), Series("final", final), Series("paper NEMO", paper)]
    about = "Percent of graded items right at pass@1 and finally, beside the paper's NEMO figure for the release."
    text = (
        "Accuracy is over graded items (those with a usable gold answer). Pass@1 grades the first optimizer's "
        "answer before consensus. Verified is the share of finished items that reached the top verification "
        "level (the frozen simulator agrees, the exported model is tied to the answer and the feasible-region "
        "cross-check agrees); objective-checked, the share where only the simulator's agreement at the answer "
        "could be established. "
        "Paper is NEMO's published figure for the benchmark's standard (Std) or curated (Cur) release."
    )
    headers = ["Run", "Items", "Graded", "Correct", "Accuracy %", "Pass@1 %", "Verified %", "Objective-checked %"]
    headers += ["Failed", "Paper %"]
    section = Section("Accuracy per benchmark", [text], [Table(headers, rows)])
    labels = [r.label for r in runs]
    draw = partial(grouped_bars, categories=labels, series=series, maximum=100, description=about)
    section.add_chart("Accuracy per run", draw)
    return section


def _failures(runs: list[_Run]) -> Section:
    counts = [Counter(_failure_kind(r) for r in run.graded if not r["correct"]) for run in runs]
    seen: set[str] = set().union(*counts)
    kinds = [c for c in _FAILED_ORDER if c in seen] + sorted(seen - {*_FAILED_ORDER, *_WRONG_ORDER})
    kinds += [c for c in _WRONG_ORDER if c in seen]
    text = (
        "Graded items that are wrong: failed runs by error category; finished runs as validation disagreement "
        "(the simulator did not confirm the answer), modeling (confirmed yet wrong) or no answer (no number for "
        "a numeric gold, e.g. reported infeasible)."
    )
    section = Section("Failure categories", [text])
    if not kinds:
        section.paragraphs.append("No graded item is wrong or failed.")
    else:
        rows = [[run.label, *(str(c[k]) for k in kinds), str(c.total())] for run, c in zip(runs, counts, strict=True)]
        section.tables.append(Table(["Run", *kinds, "Total wrong"], rows))
        series = [Series(k, [c[k] for c in counts]) for k in kinds]
        labels = [r.label for r in runs]
        section.add_chart(
            "Wrong graded items by cause", partial(stacked_bars, categories=labels, series=series, unit="items")
        )
    errors = [
        [
            run.label,
            str(r["item_id"]),
            str(r["error_category"] or "uncategorised"),
            " ".join(str(r["error"] or "").split())[:200],
        ]
        for run in runs
        for r in run.results
        if r["status"] == "failed"
    ]
    if errors:
        more = f" (first {_MAX_ERRORS} of {len(errors)})" if len(errors) > _MAX_ERRORS else ""
        section.tables.append(Table(["Run", "Item", "Category", "Error"], errors[:_MAX_ERRORS], "Failed items" + more))
    return section


def _costs(runs: list[_Run]) -> Section:
    rows = []
    for run in runs:
        prompt, completion = (sum(r[key] for r in run.results) for key in ("prompt_tokens", "completion_tokens"))
        tokens = [r["prompt_tokens"] + r["completion_tokens"] for r in run.results] or [0]
        # An item that called no model costs nothing; one that did without a price makes the cost unknown.
        unpriced = sum(1 for r in run.results if r["cost_usd"] is None and r["prompt_tokens"] + r["completion_tokens"])
        costs = [r["cost_usd"] or 0.0 for r in run.results] or [0.0]
        money = [f"{f(costs):.4f}" for f in (sum, statistics.fmean, statistics.median)]
        if unpriced:
            money = [f"unknown ({unpriced} unpriced)", "unknown", "unknown"]
        usage = [f"{n:,.0f}" for n in (prompt, completion, sum(tokens), statistics.fmean(tokens))]
        rows.append([run.label, *usage, f"{statistics.median(tokens):,.0f}", *money])
    text = "Per-item figures are over every stored item. Cost is unknown when an item used a model without a price."
    headers = "Run|Prompt tokens|Completion tokens|Total tokens|Tokens/item mean|Tokens/item median|Cost USD"
    return Section(
        "Tokens and cost", [text], [Table([*headers.split("|"), "Cost/item mean", "Cost/item median"], rows)]
    )


def _latency(runs: list[_Run]) -> Section:
    rows, waits, series = [], [], []
    found = {stage for run in runs for r in run.results for stage in r["stage_seconds"]}
    stages = [*STAGES, *sorted(found - set(STAGES))]  # a stage added later still shows, after the known ones
    for run in runs:
        for stage in [*stages, "total"]:
            values = [float(r["stage_seconds"][stage]) for r in run.results if stage in r["stage_seconds"]]
            if stage == "total":
                values = [float(r["seconds"]) for r in run.results]
            if values:
                figures = (statistics.fmean(values), _quantile(values, 0.5), _quantile(values, 0.9))
                rows.append([run.label, stage, str(len(values)), *(_fmt(v) for v in figures)])
        total, wait = (sum(r[key] for r in run.results) for key in ("seconds", "llm_wait_seconds"))
        waits.append([run.label, _fmt(total), _fmt(wait), _pct(wait, total)])
    for stage in stages:  # summed over all items and divided by their number, so a run's segments add up
        values = [
            sum(r["stage_seconds"].get(stage, 0.0) for r in run.results) / max(1, len(run.results)) for run in runs
        ]
        series += [Series(stage, values)] if any(values) else []
    about = "Each stage's seconds summed over a run's items and divided by the number of items."
    labels = [r.label for r in runs]
    text = (
        "Seconds per item, over the items that ran each stage. Model wait is the time spent waiting on the model "
        "service as a share of all item seconds."
    )
    tables = [
        Table(["Run", "Stage", "Items", "Mean s", "p50 s", "p90 s"], rows),
        Table(["Run", "Item seconds", "Model wait seconds", "Model wait %"], waits),
    ]
    section = Section("Latency per stage", [text], tables)
    draw = partial(stacked_bars, categories=labels, series=series, unit="s", decimals=1, description=about)
    section.add_chart("Mean seconds per item by stage", draw)
    return section


def _ablation_row(label: str, run: _Run | None, paper: dict[str, float]) -> list[str]:
    if run is None:
        return [label, *["–"] * 7, _fmt(paper.get(label))]
    correct, pass1 = (sum(bool(r[key]) for r in run.graded) for key in ("correct", "pass1_correct"))
    scores = [_pct(correct, len(run.graded)), _pct(pass1, len(run.graded))]
    return [label, run.label, *(_on(flag) for flag in _switches(run)), *scores, _fmt(paper.get(label))]


def _ablations(runs: list[_Run]) -> Section | None:
    groups: dict[str, list[_Run]] = {}
    for run in (r for r in runs if not r.row["oracle"]):
        fixed = {k: v for k, v in run.settings.items() if k not in _ABLATION_KEYS}
        key = json.dumps([run.row["name"], run.row["dataset_sha256"], fixed], sort_keys=True, default=str)
        groups.setdefault(key, []).append(run)
    text = (
        "Runs of one dataset that differ only in ablation switches, in the order of the paper's ablation table "
        "(run on the standard releases); the paper's rows without a run of ours are listed too."
    )
    section, order = Section("Ablation", [text]), {label: i for i, label in enumerate(ABLATION_ROWS)}
    headers = ["Configuration", "Run", "Simulator", "Memory", "MBR", "Multi-optimizer", "Accuracy %", "Pass@1 %"]
    for members in groups.values():
        if len({_switches(m) for m in members}) < 2:
            continue
        paper = PAPER_ABLATIONS.get(str(members[0].row["benchmark"]), {})
        ours = [(_ablation_label(m), m) for m in members]
        rows = []
        for label in sorted({*paper, *(lb for lb, _ in ours)}, key=lambda lb: (order.get(lb, len(order)), lb)):
            matched: list[_Run | None] = [m for lb, m in ours if lb == label]
            rows += [_ablation_row(label, m, paper) for m in matched or [None]]
        section.tables.append(Table([*headers, "Paper %"], rows, str(members[0].row["name"])))
    return section if section.tables else None


def build_report(store: BenchStore, run_ids: list[str], preset: str) -> Report:
    """Grade the stored results of ``run_ids`` under ``preset`` and render the report in both formats."""
    if not run_ids:
        raise BadInput("Name at least one bench run for the report (nemo-opt bench list shows them).")
    is_correct(preset, "number", 0.0, "optimal", 0.0)  # an unknown preset fails here with the list of known ones
    runs = [_load(store, run_id, preset) for run_id in dict.fromkeys(run_ids)]
    names = Counter(str(run.row["name"]) for run in runs)
    seen: Counter[str] = Counter()
    for run in runs:  # the dataset name labels a run; a number tells apart several runs of one dataset
        name = str(run.row["name"])
        seen[name] += 1
        run.label = f"{name} #{seen[name]}" if names[name] > 1 else name
    sections = [_header(runs, preset), _accuracy(runs), _failures(runs), _costs(runs), _latency(runs)]
    ablation = _ablations(runs)
    sections += [ablation] if ablation else []
    title = "NEMO benchmark report"
    return Report(render_markdown(title, sections), render_html(title, sections))


def write_report(report: Report, out_dir: Path) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.html`` into ``out_dir`` (each atomically); return their paths."""
    markdown, html = out_dir / "report.md", out_dir / "report.html"
    atomic_write_text(markdown, report.markdown)
    atomic_write_text(html, report.html)
    return markdown, html
