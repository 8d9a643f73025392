"""Benchmark datasets: the JSONL files of the benchmarks directory, addressed by name, validated on load.

Names: ``nl4opt`` is the standard release of a benchmark, ``nl4opt:curated`` its primary curated release, and
``nl4opt:<suffix>`` the file ``nl4opt_<suffix>.jsonl`` (``nl4opt:curated_sirl``, ``industryor:v2``, …).
``all`` stands for the nine standard releases and ``all:curated`` for their primary curated releases (the
standard one where a benchmark has none).

Gold answers are classified explicitly: a number; ``infeasible`` (the item is marked infeasible); ``no_optimum``
(the source says "No Best Solution": infeasible or unbounded); ``none`` (no usable gold, e.g. ``-99999``), which is
reported apart and never counted as right or wrong.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from nemo_opt.exceptions import BadInput, ConfigError

__all__ = ["BENCHMARKS", "BenchItem", "Dataset", "GoldKind", "expand_names", "list_datasets", "load_dataset"]

BENCHMARKS = (
    "nl4opt",
    "nlp4lp",
    "mamo_easy",
    "mamo_complex",
    "industryor",
    "optibench",
    "optmath_bench",
    "complexor",
    "bwor",
)
GoldKind = Literal["number", "infeasible", "no_optimum", "none"]
_NO_OPTIMUM = re.compile(r"no (best|optimal|feasible) solution", re.IGNORECASE)


@dataclass(frozen=True)
class BenchItem:
    """One benchmark problem with its gold answer and how to read it."""

    id: str
    benchmark: str
    question: str
    answer: float | None
    answer_raw: str
    gold: GoldKind
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Dataset:
    """A loaded benchmark file."""

    name: str
    benchmark: str
    path: Path
    sha256: str
    items: list[BenchItem]
    role: str = ""

    @property
    def graded(self) -> int:
        return sum(1 for item in self.items if item.gold != "none")


def _directory(directory: Path | None) -> Path:
    if directory is None:
        raise ConfigError(
            "No benchmarks directory is set. Export NEMO_BENCHMARKS_DIR=/path/to/benchmarks (or set benchmarks_dir "
            "in nemo.toml); `nemo-opt bench download --dest DIR` fetches the public releases."
        )
    if not directory.is_dir():
        raise ConfigError(f"The benchmarks directory {directory} does not exist. Fix NEMO_BENCHMARKS_DIR.")
    return directory


def _manifest(directory: Path) -> list[dict[str, Any]]:
    path = directory / "manifest.json"
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON ({exc}); restore it or delete it.") from exc
    return [entry for entry in data if isinstance(entry, dict)] if isinstance(data, list) else []


def _file_for(name: str, directory: Path) -> tuple[Path, str, str]:
    """(path, benchmark, role) of a dataset name."""
    benchmark, _, variant = name.strip().lower().partition(":")
    if benchmark not in BENCHMARKS:
        raise BadInput(f"Unknown benchmark '{benchmark}'. Known: {', '.join(BENCHMARKS)} (and all, all:curated).")
    entries = [e for e in _manifest(directory) if e.get("benchmark") == benchmark]
    wanted_role = {"": "standard", "standard": "standard", "curated": "curated_primary"}.get(variant)
    if wanted_role is not None:
        for entry in entries:
            if entry.get("role") == wanted_role:
                return directory / str(entry["file"]), benchmark, wanted_role
        if wanted_role == "standard":
            return directory / f"{benchmark}.jsonl", benchmark, "standard"
        curated = directory / f"{benchmark}_curated.jsonl"
        return curated, benchmark, "curated_primary"
    path = directory / f"{benchmark}_{variant}.jsonl"
    role = next((str(e.get("role", "")) for e in entries if e.get("file") == path.name), "variant")
    return path, benchmark, role


def expand_names(names: list[str], directory: Path | None) -> list[str]:
    """``all`` and ``all:curated`` become the nine benchmarks' names (curated ones where they exist)."""
    out: list[str] = []
    for name in names:
        if name == "all":
            out += list(BENCHMARKS)
        elif name == "all:curated":
            folder = _directory(directory)
            out += [b if not _file_for(f"{b}:curated", folder)[0].exists() else f"{b}:curated" for b in BENCHMARKS]
        else:
            out.append(name)
    return out


def _gold(record: dict[str, Any]) -> tuple[float | None, GoldKind]:
    answer = record.get("answer")
    if isinstance(answer, int | float) and not isinstance(answer, bool):
        return float(answer), "number"
    extra = record.get("extra") or {}
    raw = str(record.get("answer_raw") or "")
    if str(extra.get("status", "")).lower() == "infeasible" or re.search(r"\binfeasible\b", raw, re.IGNORECASE):
        return None, "infeasible"
    if _NO_OPTIMUM.search(raw):
        return None, "no_optimum"
    return None, "none"


def load_dataset(name: str, directory: Path | None) -> Dataset:
    """Load and validate the dataset ``name``; every problem names the file and line."""
    folder = _directory(directory)
    path, benchmark, role = _file_for(name, folder)
    if not path.exists():
        available = ", ".join(sorted(p.stem for p in folder.glob(f"{benchmark}*.jsonl"))) or "none"
        raise BadInput(f"No file {path.name} in {folder} for '{name}'. Files of {benchmark}: {available}.")
    raw = path.read_bytes()
    items: list[BenchItem] = []
    seen: set[str] = set()
    for number, line in enumerate(raw.decode("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path.name} line {number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BadInput(f"{where} is not valid JSON: {exc.msg}.") from exc
        if not isinstance(record, dict):
            raise BadInput(f"{where}: expected a JSON object.")
        item_id, question = record.get("id"), record.get("question")
        if not isinstance(item_id, str) or not item_id:
            raise BadInput(f"{where}: missing 'id'.")
        if item_id in seen:
            raise BadInput(f"{where}: duplicate id {item_id}.")
        if not isinstance(question, str) or not question.strip():
            raise BadInput(f"{where} ({item_id}): missing or empty 'question'.")
        answer, gold = _gold(record)
        seen.add(item_id)
        items.append(
            BenchItem(
                id=item_id,
                benchmark=str(record.get("benchmark") or benchmark),
                question=question,
                answer=answer,
                answer_raw=str(record.get("answer_raw") or ""),
                gold=gold,
                extra=record.get("extra") or {},
            )
        )
    canonical = name.strip().lower() if ":" in name else benchmark
    return Dataset(canonical, benchmark, path, hashlib.sha256(raw).hexdigest(), items, role)


def list_datasets(directory: Path | None) -> list[dict[str, Any]]:
    """Every dataset file of the directory with its name, role, size and graded count."""
    folder = _directory(directory)
    rows = []
    for path in sorted(folder.glob("*.jsonl")):
        benchmark = next((b for b in sorted(BENCHMARKS, key=len, reverse=True) if path.stem.startswith(b)), None)
        if benchmark is None:
            continue
        suffix = path.stem[len(benchmark) :].lstrip("_")
        name = benchmark if not suffix else f"{benchmark}:{suffix}"
        entry = next((e for e in _manifest(folder) if e.get("file") == path.name), {})
        if entry.get("role") == "curated_primary":
            name = f"{benchmark}:curated"
        lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        graded = sum(1 for r in lines if _gold(r)[1] != "none")
        rows.append(
            {"name": name, "file": path.name, "role": entry.get("role", ""), "items": len(lines), "graded": graded}
        )
    return rows
