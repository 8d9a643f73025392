"""The memory stage: retrieve solved examples for a problem and place them in the workspace as runnable files.

Memory reaches three roles, each behind its own setting (``memory_extract``, ``memory_simulator``,
``memory_optimizers``): the extractor reads the examples' problem texts and models as worked examples of P*; the
simulator agent and the optimizer agents get them as runnable files under ``memory/``. The extraction judge never
sees them (it judges the candidates against the problem text alone, see :mod:`nemo_opt.stages.extract`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nemo_opt.fsutil import to_jsonable
from nemo_opt.memory import Exemplar, Hit, LeakGuard, memory_note, open_memory, write_exemplars
from nemo_opt.settings import Settings
from nemo_opt.stages.base import BaseStage, RunContext
from nemo_opt.workspace import Workspace

__all__ = ["MemoryStage", "Retrieval", "retrieve"]

# Characters of each example shown to the extractor (its problem text, then its model), so k examples add a
# bounded amount to a prompt that is sent n times.
EXTRACT_EXAMPLE_CHARS = 1600


@dataclass
class Retrieval:
    """The exemplars chosen for a run and where they were written."""

    hits: list[Hit] = field(default_factory=list)
    paths: list[Path] = field(default_factory=list)
    excluded: dict[str, int] = field(default_factory=dict)

    def note(self, workdir: Path, *, subset: list[int] | None = None) -> str:
        """The prompt section for an agent working in ``workdir`` (only the exemplars at ``subset``, if given)."""
        chosen = range(len(self.hits)) if subset is None else subset
        return memory_note([self.hits[i] for i in chosen], [self.paths[i] for i in chosen], workdir)

    def subset(self, member: int, members: int) -> list[int]:
        """The exemplars optimizer ``member`` (1-based) of ``members`` sees: all of them for the first; for each
        other one all but one, a different one left out each time, so no two requests are alike."""
        count = len(self.hits)
        if member == 1 or count < 2 or members < 2:
            return list(range(count))
        left_out = (member - 2) % count
        return [i for i in range(count) if i != left_out]

    def extraction_note(self) -> str:
        """The examples as the extractor sees them: problem text and model, each cut to a fixed budget."""
        if not self.hits:
            return ""
        parts = [
            "Solved examples of similar problems follow, to show how such problems are usually structured. Their "
            "data and details differ from this problem: take names and numbers from the problem text only.",
        ]
        for number, hit in enumerate(self.hits, 1):
            parts.append(_extraction_example(number, hit.exemplar))
        return "\n\n".join(parts) + "\n\n"


def _extraction_example(number: int, exemplar: Exemplar) -> str:
    question = exemplar.question.strip()
    half = EXTRACT_EXAMPLE_CHARS // 2
    if len(question) > half:
        question = question[:half].rstrip() + " [...]"
    code = exemplar.code.strip()
    room = EXTRACT_EXAMPLE_CHARS - len(question)
    if len(code) > room:
        code = code[:room].rstrip() + "\n# [...]"
    return f"### Example {number}\n\n{question}\n\nIts model:\n\n```python\n{code}\n```"


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


class MemoryStage(BaseStage):
    """Diverse retrieval (pool m by cosine, then k by the greedy relevance-minus-redundancy score)."""

    name = "memory"
    needs_model = False

    def inputs(self, ctx: RunContext) -> list[Path]:
        return [ctx.workspace.problem]

    def run(self, ctx: RunContext, detail: dict[str, Any]) -> None:
        s = ctx.settings
        if not (s.memory and s.memory_k > 0):
            ctx.retrieval = Retrieval()
            detail["message"] = "off"
        else:
            ctx.retrieval = retrieve(ctx.problem, ctx.workspace, s, item_id=ctx.item_id)
            detail.update(chosen=[h.exemplar.id for h in ctx.retrieval.hits], excluded=ctx.retrieval.excluded)
            detail["message"] = ", ".join(h.exemplar.id for h in ctx.retrieval.hits) or "no exemplar"
        # The chosen exemplars in full, so a resume needs neither the memory store nor the embedder.
        retrieval = ctx.retrieval
        ctx.workspace.write_json(
            _checkpoint(ctx.workspace),
            {
                "hits": [to_jsonable(h) for h in retrieval.hits],
                "paths": [ctx.workspace.rel(p) for p in retrieval.paths],
                "excluded": retrieval.excluded,
            },
        )

    def load(self, ctx: RunContext) -> bool:
        workspace = ctx.workspace
        if not workspace.exists(_checkpoint(workspace)):
            return False
        data = workspace.read_json(_checkpoint(workspace))
        hits = [
            Hit(exemplar=Exemplar(**h["exemplar"]), similarity=float(h["similarity"]), score=float(h["score"]))
            for h in data["hits"]
        ]
        paths = [workspace.root / p for p in data["paths"]]
        ctx.retrieval = Retrieval(hits, paths, {str(k): int(v) for k, v in data.get("excluded", {}).items()})
        return True


def _checkpoint(workspace: Workspace) -> Path:
    return workspace.checkpoints / "memory.json"
