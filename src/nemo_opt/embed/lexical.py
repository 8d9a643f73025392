"""A light lexical embedder: hashed word unigrams and bigrams (scikit-learn), no model weights needed.

Used when the local semantic model is not installed. It matches shared wording and numbers well (near-duplicate
problems) and meaning poorly. Stateless (hashing, no fitted vocabulary), so vectors stored today stay
comparable with vectors made tomorrow.
"""

from __future__ import annotations

import numpy as np
from sklearn.feature_extraction.text import HashingVectorizer

from nemo_opt.embed.base import Vectors, unit_rows

__all__ = ["LexicalEmbedder"]


class LexicalEmbedder:
    """Hashed bag of words and bigrams with sublinear term frequency, L2-normalized."""

    dim = 4096
    name = f"lexical:hash-{dim}"

    def __init__(self) -> None:
        self._vectorizer = HashingVectorizer(
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
