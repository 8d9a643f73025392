"""Shared fixtures. Tests are offline: the only fake is the remote model service."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from nemo_opt.settings import Settings, load_settings

REPO = Path(__file__).resolve().parent.parent
# The benchmark data and the memory corpus are found where the product finds them: NEMO_BENCHMARKS_DIR and
# NEMO_MEMORY_DIR (README, "Benchmarks"); the memory corpus defaults to the benchmarks folder's sibling ``memory``.
BENCHMARKS = Path(os.environ.get("NEMO_BENCHMARKS_DIR", REPO.parent / "shared" / "benchmarks"))
MEMORY = Path(os.environ.get("NEMO_MEMORY_DIR", BENCHMARKS.parent / "memory"))

# Variables that could point a test at a real service or leak a real key into it.
_REAL_SERVICE_VARS = (
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_BASE_URL",
    "NEMO_API_KEY",
    "NEMO_MODEL",
    "NEMO_CONFIG",
    "OLLAMA_HOST",
)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No real keys or endpoints, and a private NEMO_HOME, for every test."""
    for name in _REAL_SERVICE_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NEMO_HOME", str(tmp_path / "nemo-home"))
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings for a fast offline run in a temporary home."""
    return load_settings(
        {
            "home": tmp_path / "nemo-home",
            "llm_cache": "off",
            "agent_max_steps": 30,
            "extractions": 1,
            "optimizers": 1,
            "memory": False,
        }
    )


def benchmark_item(file: str, item_id: str) -> dict[str, Any]:
    """One item of a benchmark in ../shared/benchmarks; skips the test when the data is not there."""
    path = BENCHMARKS / file
    if not path.exists():
        pytest.skip(f"benchmark data not found at {path} (set NEMO_BENCHMARKS_DIR to the shared benchmarks folder)")
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            item = json.loads(line)
            if item["id"] == item_id:
                return item
    pytest.fail(f"{item_id} is not in {path}")
