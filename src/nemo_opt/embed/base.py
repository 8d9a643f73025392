"""The embedder seam: texts in, unit-length float32 vectors out (one row per text)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

__all__ = ["Embedder", "Vectors", "unit_rows"]

Vectors = npt.NDArray[np.float32]


@runtime_checkable
class Embedder(Protocol):
    """Maps texts to unit vectors. ``name`` identifies the model, so stored vectors are never mixed."""

    name: str

    @property
    def dim(self) -> int:
        """Vector length."""
        ...

    def embed(self, texts: list[str]) -> Vectors:
        """One unit-length row per text, in order."""
        ...


def unit_rows(matrix: npt.ArrayLike) -> Vectors:
    """Rows scaled to length 1 (zero rows stay zero)."""
    data = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(data, axis=1, keepdims=True)
    scaled: Vectors = (data / np.maximum(norms, np.float32(1e-12))).astype(np.float32)
    return scaled
