"""Embedding throughput, retrieval latency (real corpus and 1,000,000 synthetic exemplars), MBR time, recall.

    python benchmarks/memory_bench.py [--shared ../shared] [--synthetic 1000000] [--cache /tmp/nemo-bench-emb.db]

The real corpus is every JSONL file of ``<shared>/memory``; the recall task pairs each NL4OPT item with the
NLP4LP items that restate it (word 3-gram Jaccard >= 0.5). The embedding cache file makes re-runs fast; pass a
fresh path (or delete it) to time cold embedding.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from nemo_opt.embed import CachedEmbedder, Embedder, LexicalEmbedder, MiniLMEmbedder  # noqa: E402
from nemo_opt.embed.minilm import find_model_dir  # noqa: E402
from nemo_opt.evaluation.retrieval import counterpart_pairs, recall_at  # noqa: E402
from nemo_opt.memory import LeakGuard, MemoryStore, diverse_select  # noqa: E402
from nemo_opt.spec import ProblemSpec  # noqa: E402
from nemo_opt.stages.mbr import mbr_scores  # noqa: E402
from tests.scenarios import product_mix  # noqa: E402


def questions(path: Path) -> list[str]:
    return [json.loads(line)["question"] for line in path.open(encoding="utf-8")]


def throughput(embedder: Embedder, texts: list[str]) -> float:
    started = time.perf_counter()
    embedder.embed(texts)
    return len(texts) / (time.perf_counter() - started)


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return f"p50 {statistics.median(ordered) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    parser.add_argument("--synthetic", type=int, default=1_000_000)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "nemo-bench-embeddings.db")
    args = parser.parse_args()
    model_dir = find_model_dir(None, Path.home())
    backends: list[Embedder] = [LexicalEmbedder()]
    if model_dir is not None:
        backends.append(MiniLMEmbedder(model_dir))
    nl4opt = questions(args.shared / "benchmarks" / "nl4opt.jsonl")
    nlp4lp = questions(args.shared / "benchmarks" / "nlp4lp.jsonl")

    print("## Embedding throughput (200 NL4OPT questions, no cache)\n")
    for backend in backends:
        print(f"- {backend.name}: {throughput(backend, nl4opt[:200]):.1f} texts/s")

    print("\n## Retrieval recall (NL4OPT query -> its NLP4LP restatement)\n")
    pairs = counterpart_pairs(nl4opt, nlp4lp)
    first_words = [" ".join(text.split()[:20]) for text in nl4opt]
    print("| embedder | queries | full text R@1 | R@5 | first 20 words R@1 | R@5 |\n|---|---|---|---|---|---|")
    for backend in backends:
        cached = CachedEmbedder(backend, args.cache)
        full = recall_at(nl4opt, nlp4lp, pairs, cached)
        part = recall_at(first_words, nlp4lp, pairs, cached)
        print(
            f"| {backend.name} | {full.queries} | {full.recall[1]:.3f} | {full.recall[5]:.3f} | "
            f"{part.recall[1]:.3f} | {part.recall[5]:.3f} |"
        )

    embedder = CachedEmbedder(backends[-1], args.cache)
    print(f"\n## Retrieval latency, real corpus ({embedder.name})\n")
    with tempfile.TemporaryDirectory() as folder:
        store = MemoryStore(Path(folder) / "memory.db", embedder)
        started = time.perf_counter()
        for corpus in sorted((args.shared / "memory").glob("*.jsonl")):
            store.import_jsonl(corpus)
        seconds = time.perf_counter() - started
        print(f"- import of {store.count()} exemplars: {seconds:.1f} s (embedding cache {args.cache})")
        queries = nl4opt[:50]
        embedder.embed(queries)  # query embedding is cached: the latency below is the search itself
        plain, guarded = [], []
        for index, query in enumerate(queries):
            started = time.perf_counter()
            store.search(query, k=3, pool=20, lam=0.5)
            plain.append(time.perf_counter() - started)
            started = time.perf_counter()
            store.search(query, k=3, pool=20, lam=0.5, guard=LeakGuard(item_id=f"nl4opt-{index:04d}", text=query))
            guarded.append(time.perf_counter() - started)
        print(f"- search (m=20, k=3, λ=0.5): {percentiles(plain)}; with the leak guard: {percentiles(guarded)}")

    print(f"\n## Retrieval latency, {args.synthetic:,} synthetic exemplars (384-d float32)\n")
    rng = np.random.default_rng(0)
    matrix = rng.standard_normal((args.synthetic, 384), dtype=np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    timings = []
    for _ in range(20):
        query = rng.standard_normal(384, dtype=np.float32)
        query /= np.linalg.norm(query)
        started = time.perf_counter()
        diverse_select(query, matrix, pool=20, k=3, lam=0.5)
        timings.append(time.perf_counter() - started)
    print(f"- diverse_select: {percentiles(timings)} ({matrix.nbytes / 2**30:.2f} GiB matrix)")
    del matrix

    print("\n## MBR over n=5 extractions\n")
    specs = []
    for number in range(5):
        raw = copy.deepcopy(product_mix.SPEC)
        raw["parameters"][-1]["value"] = 10 + number % 2  # two distinct readings of the chair orders
        specs.append(ProblemSpec.model_validate(raw))
    for backend in backends:
        fresh = CachedEmbedder(backend, Path(tempfile.mkdtemp()) / "cold.db")
        started = time.perf_counter()
        mbr_scores(specs, fresh)
        cold = time.perf_counter() - started
        started = time.perf_counter()
        mbr_scores(specs, fresh)
        print(f"- {backend.name}: {cold * 1000:.0f} ms cold, {(time.perf_counter() - started) * 1000:.1f} ms cached")


if __name__ == "__main__":
    main()
