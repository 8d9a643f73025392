"""Memory: import with duplicate detection, diverse retrieval, the leak guard, exemplar files, growth."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nemo_opt.embed import LexicalEmbedder, MiniLMEmbedder
from nemo_opt.embed.minilm import find_model_dir
from nemo_opt.evaluation.retrieval import counterpart_pairs, recall_at
from nemo_opt.exceptions import BadInput
from nemo_opt.memory import Exemplar, LeakGuard, MemoryStore, diverse_select, memory_note, write_exemplars
from nemo_opt.memory.retrieval import jaccard_3gram, word_3grams
from nemo_opt.workspace import Workspace
from tests.conftest import BENCHMARKS, MEMORY

TRANSPORT = (
    "A company ships goods from {a} warehouses to {b} stores. Warehouse supplies are {s} units and store demands "
    "are {d} units. Shipping costs depend on the route. Find the cheapest shipping plan that meets all demands."
)


def _record(i: int, question: str, **extra: object) -> str:
    return json.dumps(
        {
            "id": f"t-{i}",
            "question": question,
            "code": "print('objective: 1')",
            "answer": 1.0,
            "solver": "pulp",
            **extra,
        }
    )


def test_import_skips_exact_and_near_duplicates_and_reports_bad_lines(tmp_path: Path) -> None:
    base = TRANSPORT.format(a=2, b=3, s="300 and 400", d="200, 250 and 250")
    lines = [
        _record(1, base),
        _record(2, base.upper()),  # same text up to case: exact duplicate
        _record(3, base.replace("depend on the route.", "depend on the route taken.")),  # reworded copy: near duplicate
        _record(4, "A bakery decides how many loaves and cakes to bake with 40 kg of flour to maximize profit."),
        "{not json",
        json.dumps({"id": "t-6", "question": "no code here"}),
    ]
    path = tmp_path / "corpus.jsonl"
    path.write_text("\n".join(lines) + "\n")
    store = MemoryStore(tmp_path / "memory.db", LexicalEmbedder())
    report = store.import_jsonl(path)
    assert (report.added, report.exact_duplicates, report.near_duplicates) == (2, 1, 1)
    assert len(report.invalid) == 2 and report.invalid[0].startswith("line 5")
    again = store.import_jsonl(path)
    assert (again.added, again.exact_duplicates, again.near_duplicates) == (0, 3, 1)
    stats = store.stats()
    assert (
        stats["exemplars"] == 2 and stats["by_solver"] == {"pulp": 2} and stats["vectors"] == {LexicalEmbedder.name: 2}
    )
    with pytest.raises(BadInput, match="does not exist"):
        store.import_jsonl(tmp_path / "missing.jsonl")


def test_different_numbers_in_the_same_story_are_not_duplicates(tmp_path: Path) -> None:
    store = MemoryStore(tmp_path / "memory.db", LexicalEmbedder())
    texts = [TRANSPORT.format(a=a, b=b, s="many", d="some") for a, b in ((2, 3), (4, 5), (6, 7))]
    report = store.add_many([Exemplar(f"x{i}", "test", t, "pass") for i, t in enumerate(texts)])
    assert report.added == 3


def test_diverse_selection_spreads_over_the_pool() -> None:
    # Four near copies of one exemplar (cosine 0.85 to the query, about 1 to each other) and three
    # different exemplars (cosine 0.8 to the query, 0.68 to the copies, 0.64 to each other).
    rng = np.random.default_rng(0)
    query = np.eye(16, dtype=np.float32)[0]
    copy = 0.85 * np.eye(16)[0] + 0.527 * np.eye(16)[1]
    near_copies = [copy + rng.normal(0, 0.005, 16) for _ in range(4)]
    others = [0.8 * np.eye(16)[0] + 0.6 * np.eye(16)[axis] for axis in (2, 3, 4)]
    matrix = np.vstack(near_copies + others).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)

    def mean_pairwise(indices: list[int]) -> float:
        sub = matrix[indices]
        sims = sub @ sub.T
        return float((sims.sum() - len(indices)) / (len(indices) * (len(indices) - 1)))

    plain = [i for i, _, _ in diverse_select(query, matrix, pool=7, k=3, lam=0.0)]
    diverse = [i for i, _, _ in diverse_select(query, matrix, pool=7, k=3, lam=0.5)]
    assert set(plain) <= {0, 1, 2, 3}  # top-k by similarity alone takes near copies
    assert diverse[0] in {0, 1, 2, 3} and len(set(diverse) & {4, 5, 6}) == 2
    assert mean_pairwise(diverse) < mean_pairwise(plain)
    allowed = np.array([False] * 4 + [True] * 3)
    assert {i for i, _, _ in diverse_select(query, matrix, pool=7, k=3, lam=0.5, allowed=allowed)} == {4, 5, 6}


def test_exemplars_become_runnable_files_and_a_note(tmp_path: Path) -> None:
    store = MemoryStore(tmp_path / "memory.db", LexicalEmbedder())
    store.add_many(
        [
            Exemplar(
                "a",
                "test",
                'A "quoted" problem about """ triple quotes and bakeries.',
                "print('objective: 2')",
                2.0,
                "pulp",
            ),
            Exemplar(
                "b",
                "test",
                "Another bakery problem with ovens and flour.",
                "import nosuchsolver\n",
                None,
                "nosuchsolver",
            ),
            Exemplar(
                "c",
                "runs",
                "A third bakery problem, with data.",
                "import json\nprint(json.load(open('data.json')))",
                5.0,
                "highs",
                data={"flour": 40},
            ),
        ]
    )
    hits, _ = store.search("bakery problem", k=3, pool=3, lam=0.0)
    workspace = Workspace(tmp_path / "ws")
    workspace.create()
    paths = write_exemplars(workspace, hits)
    by_id = {h.exemplar.id: p for h, p in zip(hits, paths, strict=True)}
    import subprocess
    import sys

    done = subprocess.run([sys.executable, str(by_id["a"])], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "objective: 2"
    assert by_id["c"].name == "model.py" and json.loads((by_id["c"].parent / "data.json").read_text()) == {"flour": 40}
    note = memory_note(hits, paths, workspace.root / "optimizers" / "opt_1")
    assert "../../memory/ex_" in note and "uses nosuchsolver, not installed here" in note


def test_leak_guard_rules() -> None:
    guard = LeakGuard(item_id="nl4opt-0004", text="A farmer mixes feeds A and B for protein and fat at least cost.")
    assert guard.related_benchmarks() == {"nl4opt", "nlp4lp", "optibench"}
    assert guard.reason("x", "unrelated text entirely", {"near_dup_benchmark_ids": ["nl4opt-0004"]}, 0.1)
    assert guard.reason("x", "unrelated text entirely", {}, 0.97)
    assert guard.reason("x", "A farmer mixes feeds A and B for protein and fat at least cost today.", {}, 0.2)
    assert "leave-one-benchmark-out" in (guard.reason("x", "other", {"overlaps_benchmark": ["optibench"]}, 0.1) or "")
    assert guard.reason("x", "other", {"overlaps_benchmark": ["industryor"]}, 0.1) is None
    loose = LeakGuard(item_id="nl4opt-0004", text="t", exclude_benchmark=False)
    assert loose.reason("x", "other", {"overlaps_benchmark": ["optibench"]}, 0.1) is None
    assert LeakGuard(item_id="mamo_complex-0007", text="t").benchmark == "mamo_complex"
    assert jaccard_3gram(word_3grams("a b c d"), word_3grams("a b c d")) == 1.0


@pytest.mark.skipif(
    not (MEMORY / "bench_optibench_eopt.jsonl").exists(),
    reason=f"memory corpus not found at {MEMORY} (set NEMO_MEMORY_DIR)",
)
def test_solving_a_benchmark_item_never_retrieves_its_own_solution(tmp_path: Path) -> None:
    store = MemoryStore(tmp_path / "memory.db", LexicalEmbedder())
    store.import_jsonl(MEMORY / "bench_optibench_eopt.jsonl")
    store.import_jsonl(MEMORY / "logior.jsonl")
    item = next(json.loads(line) for line in (BENCHMARKS / "optibench.jsonl").open() if '"optibench-0126"' in line)
    unguarded, _ = store.search(item["question"], k=3, pool=20, lam=0.5)
    assert "optibench-0126" in unguarded[0].exemplar.tags.get("near_dup_benchmark_ids", [])  # the leak is real
    guard = LeakGuard(item_id="optibench-0126", text=item["question"])
    hits, excluded = store.search(item["question"], k=3, pool=20, lam=0.5, guard=guard)
    assert len(hits) == 3 and excluded
    for hit in hits:
        tags = hit.exemplar.tags
        assert "optibench-0126" not in tags.get("near_dup_benchmark_ids", [])
        assert not set(tags.get("overlaps_benchmark", [])) & {"optibench", "nl4opt", "nlp4lp"}
        assert hit.exemplar.id.startswith("orthought_logior")


def _recall_task() -> tuple[list[str], list[str], dict[int, set[int]]]:
    bench = BENCHMARKS
    if not (bench / "nl4opt.jsonl").exists():
        pytest.skip(f"benchmark data not found at {bench} (set NEMO_BENCHMARKS_DIR)")
    queries = [json.loads(line)["question"] for line in (bench / "nl4opt.jsonl").open()]
    corpus = [json.loads(line)["question"] for line in (bench / "nlp4lp.jsonl").open()]
    return queries, corpus, counterpart_pairs(queries, corpus)


def test_retrieval_recall_of_near_duplicate_pairs_lexical() -> None:
    queries, corpus, pairs = _recall_task()
    assert len(pairs) > 200  # 229 of 245 NL4OPT items restate an NLP4LP item (the corpus's own count)
    report = recall_at(queries, corpus, pairs, LexicalEmbedder())
    assert report.recall[1] >= 0.95 and report.recall[5] >= 0.98


@pytest.mark.slow
def test_retrieval_recall_of_near_duplicate_pairs_minilm() -> None:
    model_dir = find_model_dir(None, Path("/nonexistent"))
    if model_dir is None:
        pytest.skip("MiniLM weights not installed")
    queries, corpus, pairs = _recall_task()
    report = recall_at(queries, corpus, pairs, MiniLMEmbedder(model_dir))
    assert report.recall[1] >= 0.95 and report.recall[5] >= 0.98
