"""Executable memory: solved examples retrieved for each problem and written into the workspace as runnable files."""

from __future__ import annotations

from nemo_opt.embed import make_embedder
from nemo_opt.memory.exemplars import memory_note, write_exemplars
from nemo_opt.memory.retrieval import LeakGuard, diverse_select
from nemo_opt.memory.store import Exemplar, Hit, ImportReport, MemoryStore
from nemo_opt.settings import Settings

__all__ = [
    "Exemplar",
    "Hit",
    "ImportReport",
    "LeakGuard",
    "MemoryStore",
    "diverse_select",
    "memory_note",
    "open_memory",
    "write_exemplars",
]


def open_memory(settings: Settings, *, seed: bool = True) -> MemoryStore:
    """The memory store of ``settings.home`` with the configured embedder; seeded with the starter examples
    that ship in the package the first time (``seed``)."""
    store = MemoryStore(settings.memory_path, make_embedder(settings))
    if seed and store.count(source="starter") == 0:
        from nemo_opt.memory.starter import load_starter

        store.add_many(
            [
                Exemplar(
                    id=example.id,
                    source="starter",
                    question=example.question,
                    code=example.code,
                    answer=example.answer,
                    solver=example.solver,
                    tags={"topics": list(example.tags)},
                )
                for example in load_starter()
            ]
        )
    return store
