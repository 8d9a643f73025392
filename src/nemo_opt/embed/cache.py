"""Embeddings cached on disk by (model, text hash): a text is embedded once per model, ever."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from nemo_opt.embed.base import Embedder, Vectors
from nemo_opt.sqlite import Database

__all__ = ["CachedEmbedder", "text_key"]

# Schema versions of the cache file (PRAGMA user_version); the first is the table unversioned files already have.
MIGRATIONS = [
    "CREATE TABLE IF NOT EXISTS vectors (model TEXT, key TEXT, dim INTEGER, vec BLOB, PRIMARY KEY (model, key));",
]


def text_key(text: str) -> str:
    """The cache key of a text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class CachedEmbedder:
    """Wraps an embedder; vectors already computed for a text are read back instead of recomputed."""

    def __init__(self, inner: Embedder, path: Path) -> None:
        self.inner = inner
        self.name = inner.name
        self.path = path
        self.db = Database(
            path,
            migrations=MIGRATIONS,
            what="the embedding cache",
            remedy="Delete the file (it only holds cached vectors) or set embed_cache to a writable path.",
        )
        self.db.conn()

    @property
    def dim(self) -> int:
        return self.inner.dim

    def embed(self, texts: list[str]) -> Vectors:
        """Unit vectors for ``texts``; only texts not seen before reach the model."""
        keys = [text_key(t) for t in texts]
        found: dict[str, Vectors] = {}
        conn = self.db.conn()
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), 500):
            chunk = unique[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = conn.execute(
                f"SELECT key, dim, vec FROM vectors WHERE model = ? AND key IN ({marks})", (self.name, *chunk)
            )
            for key, dim, blob in rows:
                vector = np.frombuffer(blob, dtype=np.float32)
                if vector.shape[0] == dim:
                    found[key] = vector
        missing = [key for key in unique if key not in found]
        if missing:
            first_text = {key: text for key, text in zip(keys, texts, strict=True)}
            fresh = self.inner.embed([first_text[key] for key in missing])
            with self.db.transaction() as tx:
                tx.executemany(
                    "INSERT OR REPLACE INTO vectors (model, key, dim, vec) VALUES (?, ?, ?, ?)",
                    [
                        (self.name, key, int(vec.shape[0]), vec.astype(np.float32).tobytes())
                        for key, vec in zip(missing, fresh, strict=True)
                    ],
                )
            found.update(zip(missing, fresh, strict=True))
        if not texts:
            return np.zeros((0, self.inner.dim), dtype=np.float32)
        return np.stack([found[key] for key in keys]).astype(np.float32)
