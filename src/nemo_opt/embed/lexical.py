"""A light lexical embedder: hashed word unigrams and bigrams (scikit-learn), no model weights needed.

Used when the local semantic model is not installed. It matches shared wording and numbers well (near-duplicate
problems) and meaning poorly. Stateless (hashing, no fitted vocabulary), so vectors stored today stay
comparable with vectors made tomorrow: ``name`` is what stored vectors are keyed by (memory store, embedding
cache), so a change to the features must come with a new name, which makes every store re-embed once.
tests/test_embed.py pins the features of one sentence to catch such a change.

Why scikit-learn stays, imported only here (figures from benchmarks/dependency_cost.py, this machine): it and
the packages only it pulls in (joblib, narwhals, threadpoolctl, cloudpickle) are 56 MB of a 406 MB core install,
and importing ``sklearn.feature_extraction.text`` takes about 1.1 s, paid once per process and only when this
embedder is built (``import nemo_opt`` and ``nemo-opt --version`` do not load it). This is the fallback of every
install without the MiniLM weights, so it cannot move to an extra; a replacement would need scikit-learn's
tokenizer, English stop-word list and MurmurHash3 indexing reproduced exactly, or every vector stored by existing
memory stores and caches would be recomputed and near-duplicate and retrieval thresholds re-checked.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nemo_opt.embed.base import Vectors, unit_rows

__all__ = ["LexicalEmbedder"]


class LexicalEmbedder:
    """Hashed bag of words and bigrams with sublinear term frequency, L2-normalized."""

    dim = 4096
    name = f"lexical:hash-{dim}"

    def __init__(self) -> None:
        from sklearn.feature_extraction.text import HashingVectorizer

        self._vectorizer: Any = HashingVectorizer(
            n_features=self.dim,
            ngram_range=(1, 2),
            stop_words="english",
            alternate_sign=False,
            norm=None,
            lowercase=True,
        )

    def embed(self, texts: list[str]) -> Vectors:
        """Unit vectors for ``texts``."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        counts = self._vectorizer.transform(texts).toarray()
        return unit_rows(np.log1p(counts))
