"""Measuring retrieval: recall@k on a task with known answers (near-duplicate problem pairs)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nemo_opt.embed.base import Embedder
from nemo_opt.memory.retrieval import JACCARD_NEAR_DUPLICATE, jaccard_3gram, word_3grams

__all__ = ["RecallReport", "counterpart_pairs", "recall_at"]


def counterpart_pairs(
    queries: list[str], corpus: list[str], threshold: float = JACCARD_NEAR_DUPLICATE
) -> dict[int, set[int]]:
    """For each query, the corpus items that restate it (word 3-gram Jaccard >= ``threshold``); queries with
    no counterpart are left out."""
    corpus_grams = [word_3grams(text) for text in corpus]
    pairs: dict[int, set[int]] = {}
    for q, text in enumerate(queries):
        grams = word_3grams(text)
        found = {c for c, other in enumerate(corpus_grams) if jaccard_3gram(grams, other) >= threshold}
        if found:
            pairs[q] = found
    return pairs


@dataclass(frozen=True)
class RecallReport:
    """Recall of finding a query's counterpart among the top k, for several k."""

    embedder: str
    queries: int
    recall: dict[int, float]


def recall_at(
    queries: list[str], corpus: list[str], pairs: dict[int, set[int]], embedder: Embedder, ks: tuple[int, ...] = (1, 5)
) -> RecallReport:
    """Embed both sides with ``embedder`` and measure recall@k over the queries that have counterparts."""
    asked = sorted(pairs)
    query_vectors = embedder.embed([queries[q] for q in asked])
    corpus_vectors = embedder.embed(corpus)
    ranking = np.argsort(-(query_vectors @ corpus_vectors.T), axis=1)
    recall = {}
    for k in ks:
        hits = sum(1 for row, q in enumerate(asked) if pairs[q] & set(ranking[row, :k].tolist()))
        recall[k] = hits / len(asked) if asked else 0.0
    return RecallReport(embedder.name, len(asked), recall)
