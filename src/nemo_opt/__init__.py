"""nemo-opt: turn a decision problem written in plain language into a verified, runnable optimization model."""

from __future__ import annotations

__version__ = "0.1.0"
