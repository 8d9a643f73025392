"""Diverse retrieval and the leak guard.

Diverse retrieval (DESIGN §2): take the pool M of the m exemplars most similar to the problem (cosine), then
greedily choose k maximizing ``sim(D, c) - λ · mean_{s in chosen} sim(c, s)``.

The leak guard keeps a benchmark item's own solution out of its exemplars. An exemplar is excluded when

- it is tagged with the item's id (``near_dup_benchmark_ids`` of the shared corpus) or has the item's id;
- its text is a near-duplicate of the item: word 3-gram Jaccard >= 0.5 (the corpus's own near-duplicate
  definition) or embedding cosine >= ``memory_leak_similarity`` (default 0.95);
- with ``exclude_benchmark`` (the default when solving a benchmark item), it comes from, or near-duplicates,
  the item's benchmark or a benchmark known to share problems with it (NL4OPT, NLP4LP and OptiBench overlap
  each other heavily): leave-one-benchmark-out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from nemo_opt.bench.datasets import BENCHMARKS

__all__ = ["LEAK_FAMILIES", "LeakGuard", "diverse_select", "jaccard_3gram", "word_3grams"]

# Benchmarks whose problems appear in each other (see the shared benchmarks' SOURCES.md).
LEAK_FAMILIES: tuple[frozenset[str], ...] = (frozenset({"nl4opt", "nlp4lp", "optibench"}),)
JACCARD_NEAR_DUPLICATE = 0.5


def word_3grams(text: str) -> set[tuple[str, ...]]:
    words = re.findall(r"[a-z0-9]+", text.lower())
    return {tuple(words[i : i + 3]) for i in range(len(words) - 2)}


def jaccard_3gram(a: set[tuple[str, ...]], b: set[tuple[str, ...]]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


def _benchmark_of(item_id: str) -> str:
    """``nl4opt_curated-0003`` -> ``nl4opt``; ``mamo_complex-0007`` -> ``mamo_complex``."""
    base = item_id.rsplit("-", 1)[0]
    for name in sorted(BENCHMARKS, key=len, reverse=True):
        if base.startswith(name):
            return name
    return base


@dataclass
class LeakGuard:
    """Which exemplars must not be shown when solving one benchmark item."""

    item_id: str | None
    text: str
    benchmark: str | None = None
    cosine_threshold: float = 0.95
    exclude_benchmark: bool = True
    _grams: set[tuple[str, ...]] = field(default_factory=set, init=False, repr=False)

    def __post_init__(self) -> None:
        self._grams = word_3grams(self.text)
        if self.benchmark is None and self.item_id:
            self.benchmark = _benchmark_of(self.item_id)

    def related_benchmarks(self) -> set[str]:
        if not self.benchmark:
            return set()
        related = {self.benchmark}
        for family in LEAK_FAMILIES:
            if self.benchmark in family:
                related |= family
        return related

    def reason(self, exemplar_id: str, question: str, tags: dict[str, object], cosine: float) -> str | None:
        """Why the exemplar is excluded, or None when it may be shown."""
        return self.reason_from_tags(exemplar_id, tags) or self.reason_from_text(question, cosine)

    def reason_from_tags(self, exemplar_id: str, tags: dict[str, object]) -> str | None:
        """The exclusions decided by the exemplar's id and benchmark tags alone."""
        ids = set(_strings(tags.get("near_dup_benchmark_ids")))
        if self.item_id and (self.item_id == exemplar_id or self.item_id in ids):
            return "tagged with this item"
        if self.exclude_benchmark:
            origin = set(_strings(tags.get("overlaps_benchmark"))) | set(_strings(tags.get("near_dup_benchmarks")))
            origin |= {_benchmark_of(i) for i in ids}
            shared = origin & self.related_benchmarks()
            if shared:
                return f"from benchmark {sorted(shared)[0]} (leave-one-benchmark-out)"
        return None

    def reason_from_text(self, question: str, cosine: float) -> str | None:
        """The exclusions decided by how close the exemplar's text is to the item's."""
        if cosine >= self.cosine_threshold:
            return f"embedding cosine {cosine:.3f} >= {self.cosine_threshold}"
        if jaccard_3gram(self._grams, word_3grams(question)) >= JACCARD_NEAR_DUPLICATE:
            return f"word 3-gram Jaccard >= {JACCARD_NEAR_DUPLICATE}"
        return None


def _strings(value: object) -> Iterable[str]:
    if isinstance(value, list | tuple | set):
        return [str(v) for v in value]
    return []


def diverse_select(
    query: npt.NDArray[np.float32],
    matrix: npt.NDArray[np.float32],
    *,
    pool: int,
    k: int,
    lam: float,
    allowed: npt.NDArray[np.bool_] | None = None,
) -> list[tuple[int, float, float]]:
    """Indices of the k chosen rows with (similarity to the query, greedy score), in the order chosen."""
    if matrix.shape[0] == 0 or k <= 0:
        return []
    sims = matrix @ query
    if allowed is not None:
        sims = np.where(allowed, sims, -np.inf)
    candidates = int(min(pool, np.isfinite(sims).sum()))
    if candidates <= 0:
        return []
    top = np.argpartition(-sims, candidates - 1)[:candidates]
    top = top[np.argsort(-sims[top])]
    pool_vectors = matrix[top]
    chosen: list[int] = []
    picked: list[tuple[int, float, float]] = []
    redundancy = np.zeros(len(top), dtype=np.float32)
    available = np.ones(len(top), dtype=bool)
    while len(chosen) < min(k, len(top)):
        penalty = redundancy / len(chosen) if chosen else redundancy
        scores = np.where(available, sims[top] - lam * penalty, -np.inf)
        best = int(np.argmax(scores))
        chosen.append(best)
        available[best] = False
        picked.append((int(top[best]), float(sims[top[best]]), float(scores[best])))
        redundancy += pool_vectors @ pool_vectors[best]
    return picked
