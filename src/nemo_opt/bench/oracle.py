"""Oracle mode: run the reference programs that ship with benchmark data, to measure the harness itself.

An item's references are its own ``extra.gold_code`` (OptiBench ships one per item), then the solved examples of
the memory corpus that restate it (records whose ``near_dup_benchmark_ids`` name the item): those taken from the
item's own benchmark first, then the most similar question first.
Each runs in the real sandbox, and its printed output is read by :func:`parse_objective` - the same way a reader
of the source repositories would read it. The fraction of items whose reference reproduces the gold answer bounds
what the scoring path can credit: a gold answer no reference reproduces points at the data, not at a model.

Nothing here looks at the gold answer: the first reference that runs and prints an objective (or says the model
has no solution) gives the item's answer, whatever that answer is.
"""

from __future__ import annotations

import json
import logging
import math
import re
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nemo_opt.bench.datasets import BenchItem
from nemo_opt.bench.store import ItemResult
from nemo_opt.sandbox import ExecResult, Limit, sandbox_from_settings
from nemo_opt.settings import Settings
from nemo_opt.solvers.backends.gurobi import is_size_limit_error

__all__ = ["Reference", "parse_objective", "reference_programs", "solve_reference"]

logger = logging.getLogger("nemo_opt.bench.oracle")


@dataclass(frozen=True)
class Reference:
    """One program that is supposed to solve a benchmark item and print its optimum.

    ``source`` says where it came from (``gold_code`` or a memory record id); ``objective_key`` is the label the
    program prints its objective under, when the data says so.
    """

    source: str
    code: str
    solver: str
    objective_key: str | None


# --- references ------------------------------------------------------------------------------------------------

_SOLVER_IMPORTS = re.compile(
    r"^\s*(?:from|import)\s+(gurobipy|coptpy|pyscipopt|pulp|highspy|ortools|pyomo|cvxpy|docplex|mip|scipy)\b",
    re.MULTILINE,
)


@dataclass(frozen=True)
class _MemoryEntry:
    reference: Reference
    question: str
    benchmarks: frozenset[str]  # the benchmarks the record was taken from (``overlaps_benchmark``)
    rank: int  # where the item stands in the record's own best-first list of near-duplicates
    order: int  # position in the corpus, for a stable order among equals


_memory_lock = threading.Lock()
_memory_cache: dict[tuple[str, tuple[tuple[str, int, int], ...]], dict[str, list[_MemoryEntry]]] = {}


def _detect_solver(code: str) -> str:
    match = _SOLVER_IMPORTS.search(code)
    return match.group(1) if match else "unknown"


def _objective_key(extra: dict[str, Any]) -> str | None:
    """The printed label of the objective: given outright, or the last entry of the printed results (the
    E-OPT/OptiBench convention: results list the variables first and the objective last)."""
    key = extra.get("objective_key")
    if isinstance(key, str) and key.strip():
        return key.strip()
    results = extra.get("results")
    if isinstance(results, dict) and results:
        last = list(results)[-1]
        return str(last).strip() or None
    return None


def _memory_signature(directory: Path) -> tuple[tuple[str, int, int], ...]:
    files = sorted(directory.glob("*.jsonl"))
    return tuple((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files)


def _load_memory_index(directory: Path) -> dict[str, list[_MemoryEntry]]:
    """Memory records that restate some benchmark item, indexed by the ids of those items."""
    index: dict[str, list[_MemoryEntry]] = {}
    order = 0
    for path in sorted(directory.glob("*.jsonl")):
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    logger.warning("Skipping %s line %d: not valid JSON.", path.name, number)
                    continue
                if not isinstance(record, dict):
                    continue
                ids = record.get("near_dup_benchmark_ids")
                code = record.get("code")
                if not isinstance(ids, list) or not ids or not isinstance(code, str) or not code.strip():
                    continue
                extra = record.get("extra")
                if not isinstance(extra, dict):
                    extra = {}
                solver = record.get("solver")
                reference = Reference(
                    source=str(record.get("id") or f"{path.stem}:{number}"),
                    code=code,
                    solver=solver if isinstance(solver, str) and solver else _detect_solver(code),
                    objective_key=_objective_key(extra),
                )
                question = str(record.get("question") or "")
                taken_from = record.get("overlaps_benchmark")
                benchmarks = frozenset(str(b) for b in taken_from) if isinstance(taken_from, list) else frozenset()
                order += 1
                for rank, item_id in enumerate(ids):
                    entry = _MemoryEntry(reference, question, benchmarks, rank, order)
                    index.setdefault(str(item_id), []).append(entry)
    return index


def _memory_index(directory: Path) -> dict[str, list[_MemoryEntry]]:
    """The index of ``directory``, read once per process (again only when its files change)."""
    key = (str(directory.resolve()), _memory_signature(directory))
    with _memory_lock:
        cached = _memory_cache.get(key)
        if cached is None:
            cached = _load_memory_index(directory)
            _memory_cache.clear()
            _memory_cache[key] = cached
        return cached


def _trigrams(text: str) -> set[tuple[str, ...]]:
    words = re.findall(r"\w+", text.lower())
    return {tuple(words[i : i + 3]) for i in range(max(0, len(words) - 2))}


def _similarity(a: str, b: str) -> float:
    """Word-3-gram Jaccard similarity, the measure the memory corpus used to tag its near-duplicates."""
    left, right = _trigrams(a), _trigrams(b)
    return len(left & right) / len(left | right) if left and right else 0.0


def reference_programs(item: BenchItem, memory_dir: Path | None) -> list[Reference]:
    """The reference programs of ``item``, best first: its own ``extra.gold_code``, then the memory records that
    name it among their near-duplicates - those taken from the item's own benchmark first, then the most similar
    question first. Identical programs appear once."""
    references: list[Reference] = []
    gold_code = item.extra.get("gold_code")
    if isinstance(gold_code, str) and gold_code.strip():
        solver = item.extra.get("gold_code_solver")
        references.append(
            Reference(
                source="gold_code",
                code=gold_code,
                solver=solver if isinstance(solver, str) and solver else _detect_solver(gold_code),
                objective_key=_objective_key(item.extra),
            )
        )
    if memory_dir is not None and memory_dir.is_dir():
        entries = _memory_index(memory_dir).get(item.id, [])
        # A record taken from the item's own benchmark is that benchmark's solution of it; a near-duplicate from
        # another benchmark (a rewrite) can differ in its numbers or integrality, and the closest question is then
        # the likeliest restatement of exactly this item.
        ranked = sorted(
            entries,
            key=lambda e: (
                item.benchmark not in e.benchmarks,
                -_similarity(item.question, e.question),
                e.rank,
                e.order,
            ),
        )
        references += [entry.reference for entry in ranked]
    unique: list[Reference] = []
    seen: set[str] = set()
    for reference in references:
        if reference.code.strip() not in seen:
            seen.add(reference.code.strip())
            unique.append(reference)
    return unique


# --- reading a program's output --------------------------------------------------------------------------------

# A number that stands on its own: not part of an identifier (x1, GoodsX2, 3x) or of a date or version string.
# Thousands separators (1,234,567.5) and scientific notation (2.25e+03) are allowed.
_NUMBER = re.compile(
    r"(?<![A-Za-z0-9_.])[-+]?(?:(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?(?![A-Za-z0-9_]|\.\d)"
)
_CURRENCY = re.compile(r"[$€£¥￥]")
_ASIDE = re.compile(r"\([^()]*\)")
# Separators after which a label's value follows.
_SEPARATOR = re.compile(r"[:=：]|\b(?:is|are|was|were|equals|of)\b|为|是")

# Solver log lines that carry the final objective (Gurobi, CBC, HiGHS, SCIP, COPT), matched on the raw line.
_LOG_OBJECTIVE = [
    re.compile(r"^best objective\s+(\S+?),", re.IGNORECASE),
    re.compile(r"^optimal objective\s{2,}(\S+)\s*$", re.IGNORECASE),
    re.compile(r"^objective value:\s{4,}(\S+)\s*$", re.IGNORECASE),
    re.compile(r"^objective value\s{2,}:\s*(\S+)\s*$", re.IGNORECASE),
    re.compile(r"^primal bound\s*:?\s+(\S+)", re.IGNORECASE),
    re.compile(r"^best solution\s+:\s*(\S+)\s*$", re.IGNORECASE),
    re.compile(r"^status:\s*optimal\s+objective:\s*(\S+)", re.IGNORECASE),
    re.compile(r"^(\S+)\s+\(objective\)\s*$", re.IGNORECASE),
]
# Solver chatter that mentions the objective without being the answer (bounds, heuristics, statistics).
_NOISE = re.compile(
    r"^(?:cbc|clp|cgl|coin|osi)\d{4}[iwe]\b|objective\s+(?:range|bounds?|coefficients?|terms?)\b|heuristic"
    r"|root relaxation|changed objective|continuous objective|transformed objective|tolerance|\||presolv"
    r"|^set parameter|licen[cs]e|^warning|^\s*(?:iteration|method)\b|^\s*file \"|^traceback|^command line\b"
    r"|objective error|symmetry|\biterations?\b|seconds\)|work units|solving time|^enumerated nodes"
    r"|^optimize a model|^\(round \d|^\(\d+(?:\.\d+)?s\)",
    re.IGNORECASE,
)
# Words of a line that reports the objective, with how strongly each suggests it.
_KEYWORDS: list[tuple[re.Pattern[str], int]] = [
    (re.compile(r"\bobjective\b|\bobj\b|\bobj_?val(?:ue)?\b|\boptim(?:al|um)\s+value\b|目标|最优值"), 4),
    (
        re.compile(
            r"\b(?:minimum|maximum|minimal|maximal|minimi[sz]ed|maximi[sz]ed|minimi[sz]e|maximi[sz]e|min|max"
            r"|lowest|highest|least|optimal|optimum|best)\b|最小|最大|最低|最高|最优|最少|最多"
        ),
        2,
    ),
    (re.compile(r"\btotal\b|总"), 1),
    (
        re.compile(
            r"\b(?:costs?|profits?|revenues?|income|earnings|returns?|expenses?|spending|value|utility)\b"
            r"|成本|利润|费用|收益|收入|花费"
        ),
        1,
    ),
]
# A program line must score at least this to outrank the solver's own log line.
_STRONG_SCORE = 2

_INF_OR_UNB = re.compile(
    r"infeasible\s*(?:or|/|_or_)\s*unbounded|\binf_or_unbd?\b|\binforunbd\b|不可行或无界", re.IGNORECASE
)
_NOT_OR_UNB = r"(?!\s*(?:or|/|_or_)\s*unb)"
_INFEASIBLE = re.compile(
    r"\b(?:model|problem|lp|mip|milp|instance)\s+(?:is|was|has\s+been|proven|proved)\s+"
    r"(?:proven\s+|proved\s+|found\s+|determined\s+)?(?:to\s+be\s+)?(?:primal\s+)?infeasible\b" + _NOT_OR_UNB + "|"
    r"\binfeasible\s+(?:model|problem)\b|"
    r"\bstatus\b[^a-z\n]{0,20}(?:grb\.|copt\.|lpstatus\.)?(?:status\.)?infeasible\b" + _NOT_OR_UNB + "|"
    r"\[infeasible\]|detected\s+infeasibility|infeasibility\s+detected|proven\s+infeasible|"
    r"\brelaxation\s+infeasible\b|"
    r"\b(?:grb|copt)\.(?:status\.)?infeasible\b|^\W*infeasible\W*$|无可行解|不可行",
    re.IGNORECASE,
)
_UNBOUNDED = re.compile(
    r"\b(?:model|problem|lp|mip|milp|instance|objective)\s+(?:is|was|has\s+been|proven|proved)\s+"
    r"(?:proven\s+|proved\s+|found\s+)?(?:to\s+be\s+)?unbounded\b|"
    r"\bunbounded\s+(?:model|problem)\b|"
    r"\bstatus\b[^a-z\n]{0,20}(?:grb\.|copt\.|lpstatus\.)?(?:status\.)?unbounded\b|"
    r"\[unbounded\]|detected\s+unboundedness|\brelaxation\s+unbounded\b|"
    r"\b(?:grb|copt)\.(?:status\.)?unbounded\b|^\W*unbounded\W*$|无界",
    re.IGNORECASE,
)
# Wording that says no solution came out, without saying why; read as infeasible.
_NO_SOLUTION = re.compile(
    r"\bno\s+(?:optimal\s+|feasible\s+|valid\s+|integer\s+)?solutions?\s+"
    r"(?:was\s+|were\s+|is\s+|could\s+be\s+|has\s+been\s+|have\s+been\s+)?(?:found|exists?|available|obtained)\b|"
    r"\bno\s+(?:optimal|feasible)\s+solution\b|"
    r"\b(?:did\s+not|could\s+not|couldn't|failed\s+to|unable\s+to)\s+find\s+(?:an?\s+|any\s+)?"
    r"(?:optimal\s+|feasible\s+)?solution|"
    r"(?:未|没有)(?:找到|得到|求得)(?:最优|可行)?解|无(?:最优)?解",
    re.IGNORECASE,
)
# Status codes printed as numbers ("Optimization stopped with status: 3", "{'status': '3'}").
_STATUS_CODE = re.compile(r"\bstatus(?:\s+code)?\b['\"]?\s*(?:is|was|of|=|:)?\s*['\"]?\s*(-?\d+)\b", re.IGNORECASE)
_CODE_MEANINGS = {
    "gurobi": {3: "infeasible", 4: "infeasible_or_unbounded", 5: "unbounded"},
    "copt": {2: "infeasible", 3: "unbounded", 4: "infeasible_or_unbounded"},
    "pulp": {-1: "infeasible", -2: "unbounded"},
}


def _to_float(text: str) -> float | None:
    try:
        value = float(text.replace(",", ""))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _first_number(text: str) -> float | None:
    for match in _NUMBER.finditer(text):
        value = _to_float(match.group())
        if value is not None:
            return value
    return None


def _clean(line: str) -> str:
    """A line with currency signs dropped (so "-$1,200" reads as -1200) and Unicode minus signs made ASCII."""
    return _CURRENCY.sub("", line.replace("\u2212", "-")).strip()


def _labelled_value(line: str, label_end: int) -> float | None:
    """The value a line reports: after its rightmost separator that a number follows, else after its label (a
    number before the label is a count or an index, as in "Optimize a model with 1 rows ... (Max)")."""
    for separator in reversed(list(_SEPARATOR.finditer(line))):
        value = _first_number(line[separator.end() :])
        if value is not None:
            return value
    return _first_number(line[label_end:])


def _normalized(text: str) -> str:
    return " ".join(text.casefold().split())


def _by_key(lines: list[str], key: str) -> float | None:
    """The value printed under the label ``key``; a line holding exactly "key: value" beats one that merely
    contains the key, and among equals the last line wins (programs print their results at the end)."""
    wanted = _normalized(key).rstrip(":：= ")
    if not wanted:
        return None
    exact: float | None = None
    loose: float | None = None
    for raw in lines:
        line = _normalized(_clean(raw))
        position = line.find(wanted)
        if position < 0:
            continue
        rest = line[position + len(wanted) :]
        head = re.match(r"^\s*(?:is|are|was|of|为|是)?\s*[:=：]?\s*", rest)
        start = head.end() if head else 0
        match = _NUMBER.match(rest, start)
        if match is not None and _to_float(match.group()) is not None:
            exact = _to_float(match.group())
        else:
            value = _labelled_value(rest, 0)
            if value is not None:
                loose = value
    return exact if exact is not None else loose


def _keyword_score(line: str) -> tuple[int, int]:
    """(score, end of the last keyword) of a line."""
    score, end = 0, 0
    for pattern, weight in _KEYWORDS:
        matches = list(pattern.finditer(line))
        if matches:
            score += weight
            end = max(end, matches[-1].end())
    return score, end


def _heuristic_value(lines: list[str]) -> float | None:
    """The objective read without a known label: the best-scoring program line (first among equals), then the
    solver's final log line, then a weaker program line, then the last number printed."""
    best: tuple[int, float] | None = None
    log_value: float | None = None
    last_number: float | None = None
    for raw in lines:
        stripped = raw.strip()
        for pattern in _LOG_OBJECTIVE:
            log_match = pattern.match(stripped)
            if log_match is not None:
                value = _first_number(_clean(log_match.group(1)))
                if value is not None:
                    log_value = value
                break
        else:
            if _NOISE.search(stripped):
                continue
            line = _clean(stripped).casefold()
            for match in _NUMBER.finditer(line):
                number = _to_float(match.group())
                if number is not None:
                    last_number = number
            # Asides in parentheses ("(Max: 20 hours)", "(in $1000s)") are bounds and units, not the value.
            bare = _ASIDE.sub(" ", line)
            score, label_end = _keyword_score(bare)
            if score and (best is None or score > best[0]):
                value = _labelled_value(bare, label_end)
                if value is not None:
                    best = (score, value)
    if best is not None and best[0] >= _STRONG_SCORE:
        return best[1]
    if log_value is not None:
        return log_value
    if best is not None:
        return best[1]
    return last_number


def _solver_family(text: str) -> str | None:
    lowered = text.casefold()
    if "gurobi" in lowered:
        return "gurobi"
    if "cardinal optimizer" in lowered or "copt" in lowered:
        return "copt"
    if "cbc milp solver" in lowered or "pulp" in lowered:
        return "pulp"
    return None


def _no_solution_status(lines: list[str], family: str | None) -> str | None:
    """What the output says about a missing solution: the last explicit verdict (infeasible, unbounded, either),
    else "infeasible" when it only says that no solution was found; None when it says neither."""
    verdict: str | None = None
    vague = False
    codes = _CODE_MEANINGS.get(family or "", {})
    for raw in lines:
        line = raw.strip()
        if re.match(r"^(?:cbc|clp|cgl|coin|osi)\d{4}[iwe]\b", line, re.IGNORECASE):
            continue  # CBC's progress messages ("No solution found this major pass") are not verdicts
        if _INF_OR_UNB.search(line):
            verdict = "infeasible_or_unbounded"
        elif _INFEASIBLE.search(line):
            verdict = "infeasible"
        elif _UNBOUNDED.search(line):
            verdict = "unbounded"
        elif codes and (code := _STATUS_CODE.search(line)) is not None and int(code.group(1)) in codes:
            verdict = codes[int(code.group(1))]
        if _NO_SOLUTION.search(line):
            vague = True
    if verdict is not None:
        return verdict
    return "infeasible" if vague else None


def parse_objective(output: str, objective_key: str | None) -> tuple[str, float | None]:
    """(status, objective) read from a program's printed output.

    The status is ``infeasible``, ``unbounded`` or ``infeasible_or_unbounded`` when the output says so (solver
    logs, "Model is infeasible", "No solution found", numeric Gurobi/COPT/PuLP status codes), which wins over
    any number printed next to it; else ``optimal`` when an objective was found, else ``unknown``.
    The objective is the number on the line labelled ``objective_key`` when that label was printed; otherwise the
    line that reads most like an objective ("Objective value", "Minimum total cost", "最小总成本为 …"), then the
    solver's own final log line, and only when nothing better exists the last number printed.
    """
    lines = output.splitlines()
    status = _no_solution_status(lines, _solver_family(output))
    if status is not None:
        return status, None
    value = _by_key(lines, objective_key) if objective_key else None
    if value is None:
        value = _heuristic_value(lines)
    return ("optimal", value) if value is not None else ("unknown", None)


# --- running the references ------------------------------------------------------------------------------------

_MISSING_MODULE = re.compile(r"(?:ModuleNotFoundError|ImportError): No module named '?([\w.]+)'?")
# A program can catch its own exception, print it and exit 0; its "no solution" message then means nothing.
_REPORTED_ERROR = re.compile(
    r"Traceback \(most recent call last\)|\bGurobiError\b|\berror code\s*:?\s*-?\d+|unexpected error", re.IGNORECASE
)


@dataclass
class _Attempt:
    reference: Reference
    folder: Path
    outcome: str  # "answer", "missing", "failed", "parse"
    note: str
    status: str = "unknown"
    value: float | None = None


def _excerpt(output: str, limit: int = 300) -> str:
    lines = [line for line in output.strip().splitlines() if line.strip()]
    return " | ".join(lines[-3:])[-limit:]


def _judge(reference: Reference, folder: Path, result: ExecResult) -> _Attempt:
    output = result.output
    missing = _MISSING_MODULE.search(output) if result.exit_code != 0 else None
    if missing is not None:
        module = missing.group(1).split(".")[0]
        return _Attempt(reference, folder, "missing", f"needs {module}, which is not installed")
    if result.limit_hit is not None:
        what = "timed out" if result.limit_hit is Limit.TIMEOUT else f"hit the {result.limit_hit.value} limit"
        return _Attempt(reference, folder, "failed", f"{what} ({result.describe()})")
    if is_size_limit_error(output):
        return _Attempt(reference, folder, "failed", "Gurobi's size-limited licence refused the model")
    if result.exit_code != 0 or _REPORTED_ERROR.search(output):
        return _Attempt(reference, folder, "failed", f"{result.describe()}: {_excerpt(output)}")
    status, value = parse_objective(output, reference.objective_key)
    if status == "unknown":
        return _Attempt(reference, folder, "parse", f"printed no recognizable objective: {_excerpt(output)}")
    return _Attempt(reference, folder, "answer", status, status, value)


def _run(reference: Reference, folder: Path, settings: Settings) -> _Attempt:
    # A resumed bench run repeats an item: files an earlier attempt left behind must not mix with this one's.
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "program.py").write_text(reference.code, encoding="utf-8")
    try:
        sandbox = sandbox_from_settings(settings, folder)
        result = sandbox.run("python program.py", cwd=folder, timeout=settings.sandbox_timeout)
    except Exception as exc:  # a sandbox that cannot start fails this reference, not the whole bench run
        return _Attempt(reference, folder, "failed", f"the sandbox could not run it: {type(exc).__name__}: {exc}")
    (folder / "output.txt").write_text(result.output, encoding="utf-8")
    return _judge(reference, folder, result)


def solve_reference(item: BenchItem, settings: Settings, base: ItemResult) -> ItemResult:
    """Answer ``item`` with its reference programs, trying each in turn until one runs and reports an objective or
    a no-solution status; ``base`` is filled in and returned. Program failures never raise: they are recorded.

    Every reference runs in a fresh folder ``<run_root>/oracle/<item id>/<n>`` holding ``program.py`` and
    ``output.txt``. ``run_id`` names the reference that gave the answer.
    """
    started = time.monotonic()
    references = reference_programs(item, settings.memory_dir)
    item_folder = settings.run_root / "oracle" / item.id
    if not references:
        base.status = "failed"
        base.error = f"{item.id} has no reference program (no extra.gold_code and no memory record restating it)."
        base.error_category = "no reference"
        base.seconds = time.monotonic() - started
        return base
    attempts: list[_Attempt] = []
    for number, reference in enumerate(references, 1):
        attempt = _run(reference, item_folder / str(number), settings)
        attempts.append(attempt)
        if attempt.outcome == "answer":
            base.status = "done"
            base.pred_status, base.pred_answer = attempt.status, attempt.value
            base.run_id, base.folder = reference.source, str(attempt.folder)
            base.error = base.error_category = None
            base.seconds = time.monotonic() - started
            return base
    outcomes = {attempt.outcome for attempt in attempts}
    if outcomes == {"missing"}:
        category = "missing solver"
    elif "parse" in outcomes:
        category = "parse"
    else:
        category = "execution"
    base.status = "failed"
    base.error_category = category
    base.error = "; ".join(f"{a.reference.source} ({a.reference.solver}): {a.note}" for a in attempts)
    base.folder = str(item_folder)
    base.seconds = time.monotonic() - started
    return base
