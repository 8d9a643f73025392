"""One module per solver library: the backend class (capabilities, hint, template) and its canonical solve."""

from __future__ import annotations

__all__: list[str] = []
