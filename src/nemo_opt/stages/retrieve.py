"""Retrieve solved examples for a problem and place them in the workspace as runnable files."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from nemo_opt.memory import Hit, LeakGuard, memory_note, open_memory, write_exemplars
from nemo_opt.settings import Settings
from nemo_opt.workspace import Workspace

__all__ = ["Retrieval", "retrieve"]


@dataclass
class Retrieval:
    """The exemplars chosen for a run and where they were written."""

    hits: list[Hit] = field(default_factory=list)
    paths: list[Path] = field(default_factory=list)
    excluded: dict[str, int] = field(default_factory=dict)

    def note(self, workdir: Path) -> str:
        """The prompt section for an agent working in ``workdir``."""
        return memory_note(self.hits, self.paths, workdir)


def retrieve(problem: str, workspace: Workspace, settings: Settings, *, item_id: str | None = None) -> Retrieval:
    """Diverse retrieval from the memory store; with ``item_id`` (a benchmark item) the leak guard applies."""
    store = open_memory(settings)
    guard = None
    if item_id is not None:
        guard = LeakGuard(item_id=item_id, text=problem, cosine_threshold=settings.memory_leak_similarity)
    hits, excluded = store.search(
        problem, k=settings.memory_k, pool=settings.memory_pool, lam=settings.memory_lambda, guard=guard
    )
    paths = write_exemplars(workspace, hits)
    workspace.write_json(
        workspace.root / "memory" / "retrieval.json",
        {
            "embedder": store.embedder.name,
            "pool": settings.memory_pool,
            "k": settings.memory_k,
            "lambda": settings.memory_lambda,
            "leak_guard": None
            if guard is None
            else {"item": item_id, "benchmarks": sorted(guard.related_benchmarks())},
            "excluded": excluded,
            "chosen": [
                {"id": h.exemplar.id, "similarity": h.similarity, "score": h.score, "path": workspace.rel(p)}
                for h, p in zip(hits, paths, strict=True)
            ],
        },
    )
    return Retrieval(hits, paths, excluded)
