"""The memory store: solved examples (problem text, runnable code, answer, source) in SQLite, searched with numpy.

Vectors are kept per embedder name, so switching embedders re-embeds (once, through the embedding cache)
instead of mixing incomparable vectors. The in-process matrix is rebuilt only when the store changes.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import threading
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from nemo_opt.embed.base import Embedder
from nemo_opt.exceptions import BadInput
from nemo_opt.memory.retrieval import LeakGuard, diverse_select, jaccard_3gram, word_3grams
from nemo_opt.sqlite import Database

__all__ = ["Exemplar", "Hit", "ImportReport", "MemoryStore", "NEAR_DUPLICATE_COSINE"]

# On import, an exemplar is a near duplicate of one already stored (or earlier in the same file) when it states
# the same numbers and its wording nearly coincides (embedding cosine >= 0.98 or word 3-gram Jaccard >= 0.8).
# Requiring the same numbers keeps different instances of one story (same words, other data) as separate examples.
NEAR_DUPLICATE_COSINE = 0.98
NEAR_DUPLICATE_JACCARD = 0.8
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


def numbers_of(text: str) -> tuple[str, ...]:
    """The numbers a text states, sorted (the data of a problem instance)."""
    return tuple(sorted(_NUMBER.findall(text)))


# Schema versions of the memory file (PRAGMA user_version). The first is what files made before the schema was
# versioned already hold, hence IF NOT EXISTS; add changes as new scripts at the end.
MIGRATIONS = [
    """
CREATE TABLE IF NOT EXISTS exemplars (
    id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    question TEXT NOT NULL,
    code TEXT NOT NULL,
    answer REAL,
    solver TEXT NOT NULL DEFAULT '',
    tags_json TEXT NOT NULL DEFAULT '{}',
    data_json TEXT,
    text_hash TEXT NOT NULL UNIQUE,
    added_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS vectors (
    exemplar_id TEXT NOT NULL REFERENCES exemplars(id) ON DELETE CASCADE,
    embedder TEXT NOT NULL,
    vec BLOB NOT NULL,
    PRIMARY KEY (exemplar_id, embedder)
);
"""
]


def normalized_hash(text: str) -> str:
    """Hash of the text with case and whitespace folded (exact-duplicate detection)."""
    return hashlib.sha256(re.sub(r"\s+", " ", text.strip().lower()).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Exemplar:
    """One solved example. ``data`` is set when ``code`` reads a data.json of its own."""

    id: str
    source: str
    question: str
    code: str
    answer: float | None = None
    solver: str = ""
    tags: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] | None = None

    @property
    def title(self) -> str:
        first = next((line.strip("# ").strip() for line in self.question.splitlines() if line.strip()), self.id)
        return first[:100]


@dataclass(frozen=True)
class Hit:
    """A retrieved exemplar with its similarity to the query and its greedy diversity score."""

    exemplar: Exemplar
    similarity: float
    score: float


@dataclass
class ImportReport:
    """What an import did."""

    added: int = 0
    exact_duplicates: int = 0
    near_duplicates: int = 0
    invalid: list[str] = field(default_factory=list)


class MemoryStore:
    """Solved examples at ``path``, embedded with ``embedder``."""

    def __init__(self, path: Path, embedder: Embedder) -> None:
        self.path = path
        self.embedder = embedder
        self.db = Database(
            path,
            migrations=MIGRATIONS,
            what="the memory store",
            remedy="Set NEMO_HOME to a writable folder, or move the file away and run `nemo-opt memory import` again.",
        )
        self._lock = threading.Lock()
        # (store version, ids, vectors, tags): rebuilt only when the store changes.
        self._matrix: tuple[int, list[str], npt.NDArray[np.float32], list[dict[str, Any]]] | None = None
        self.db.conn()

    def _conn(self) -> sqlite3.Connection:
        return self.db.conn()

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:
        return self.db.transaction()

    # --- reading ------------------------------------------------------------------------------------------
    def count(self, source: str | None = None) -> int:
        """Number of exemplars (of one source)."""
        if source is None:
            return int(self._conn().execute("SELECT COUNT(*) FROM exemplars").fetchone()[0])
        return int(self._conn().execute("SELECT COUNT(*) FROM exemplars WHERE source = ?", (source,)).fetchone()[0])

    def get(self, exemplar_id: str) -> Exemplar | None:
        row = self._conn().execute("SELECT * FROM exemplars WHERE id = ?", (exemplar_id,)).fetchone()
        return _row_to_exemplar(row) if row else None

    def _exemplars(self, ids: list[str]) -> dict[str, Exemplar]:
        out: dict[str, Exemplar] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = self._conn().execute(f"SELECT * FROM exemplars WHERE id IN ({','.join('?' * len(chunk))})", chunk)
            out.update({row[0]: _row_to_exemplar(row) for row in rows})
        return out

    def stats(self) -> dict[str, Any]:
        conn = self._conn()
        by_source = dict(conn.execute("SELECT source, COUNT(*) FROM exemplars GROUP BY source").fetchall())
        by_solver = dict(conn.execute("SELECT solver, COUNT(*) FROM exemplars GROUP BY solver").fetchall())
        with_answer = conn.execute("SELECT COUNT(*) FROM exemplars WHERE answer IS NOT NULL").fetchone()[0]
        derived = conn.execute(
            "SELECT COUNT(*) FROM exemplars WHERE tags_json LIKE '%near_dup_benchmarks\": [\"%' "
            "OR tags_json LIKE '%overlaps_benchmark\": [\"%'"
        ).fetchone()[0]
        vectors = dict(conn.execute("SELECT embedder, COUNT(*) FROM vectors GROUP BY embedder").fetchall())
        return {
            "exemplars": sum(by_source.values()),
            "by_source": by_source,
            "by_solver": by_solver,
            "with_answer": with_answer,
            "benchmark_tagged": derived,
            "vectors": vectors,
            "embedder": self.embedder.name,
            "path": str(self.path),
        }

    # --- writing ------------------------------------------------------------------------------------------
    def add_many(self, exemplars: list[Exemplar]) -> ImportReport:
        """Add exemplars, skipping exact and near duplicates (of the store and of each other)."""
        report = ImportReport()
        conn = self._conn()
        known_hashes = {row[0] for row in conn.execute("SELECT text_hash FROM exemplars")}
        fresh: list[Exemplar] = []
        for exemplar in exemplars:
            digest = normalized_hash(exemplar.question)
            if digest in known_hashes:
                report.exact_duplicates += 1
                continue
            known_hashes.add(digest)
            fresh.append(exemplar)
        if not fresh:
            return report
        vectors = self.embedder.embed([e.question for e in fresh])
        existing_ids, existing = self._vectors()
        grams = [word_3grams(e.question) for e in fresh]
        numbers = [numbers_of(e.question) for e in fresh]
        accepted: list[int] = []
        for index in range(len(fresh)):
            # Cheap filter first: only texts stating the same numbers can be copies of this one.
            close = [(vectors[j] @ vectors[index], grams[j]) for j in accepted if numbers[j] == numbers[index]]
            if existing.size:
                sims = existing @ vectors[index]
                for position in np.nonzero(sims >= min(NEAR_DUPLICATE_COSINE, 0.5))[0]:
                    stored = self.get(existing_ids[int(position)])
                    if stored is not None and numbers_of(stored.question) == numbers[index]:
                        close.append((sims[position], word_3grams(stored.question)))
            if any(
                float(cosine) >= NEAR_DUPLICATE_COSINE or jaccard_3gram(grams[index], other) >= NEAR_DUPLICATE_JACCARD
                for cosine, other in close
            ):
                report.near_duplicates += 1
                continue
            accepted.append(index)
        with self._tx() as tx:
            for index in accepted:
                exemplar = fresh[index]
                tx.execute(
                    "INSERT OR IGNORE INTO exemplars (id, source, question, code, answer, solver, tags_json, "
                    "data_json, text_hash, added_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        exemplar.id,
                        exemplar.source,
                        exemplar.question,
                        exemplar.code,
                        exemplar.answer,
                        exemplar.solver,
                        json.dumps(exemplar.tags),
                        None if exemplar.data is None else json.dumps(exemplar.data),
                        normalized_hash(exemplar.question),
                        time.time(),
                    ),
                )
                tx.execute(
                    "INSERT OR REPLACE INTO vectors (exemplar_id, embedder, vec) VALUES (?, ?, ?)",
                    (exemplar.id, self.embedder.name, vectors[index].astype(np.float32).tobytes()),
                )
                report.added += 1
        self._matrix = None
        return report

    def import_jsonl(self, path: Path, *, source: str | None = None) -> ImportReport:
        """Import records in the shared memory format (id, question, code, answer, solver, benchmark tags)."""
        if not path.is_file():
            raise BadInput(f"{path} does not exist. Give the path of a JSONL memory file.")
        exemplars: list[Exemplar] = []
        invalid: list[str] = []
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    exemplars.append(_record_to_exemplar(json.loads(line), source or path.stem))
                except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                    invalid.append(f"line {number}: {exc}")
        if not exemplars and invalid:
            raise BadInput(f"{path}: no usable record ({invalid[0]}). Each line needs at least 'question' and 'code'.")
        report = self.add_many(exemplars)
        report.invalid = invalid
        return report

    # --- search -------------------------------------------------------------------------------------------
    def _vectors(self) -> tuple[list[str], npt.NDArray[np.float32]]:
        """All exemplar ids and their vectors for this embedder (missing ones are computed and stored)."""
        with self._lock:
            version = self.count() + int(
                self._conn().execute("SELECT COALESCE(MAX(added_at), 0) FROM exemplars").fetchone()[0]
            )
            if self._matrix is not None and self._matrix[0] == version:
                return self._matrix[1], self._matrix[2]
            self._matrix = None
            conn = self._conn()
            rows = conn.execute(
                "SELECT e.id, e.question, v.vec, e.tags_json FROM exemplars e LEFT JOIN vectors v "
                "ON v.exemplar_id = e.id AND v.embedder = ? ORDER BY e.rowid",
                (self.embedder.name,),
            ).fetchall()
            missing = [(i, r[0], r[1]) for i, r in enumerate(rows) if r[2] is None]
            vectors: list[npt.NDArray[np.float32] | None] = [
                None if r[2] is None else np.frombuffer(r[2], dtype=np.float32) for r in rows
            ]
            if missing:
                computed = self.embedder.embed([q for _, _, q in missing])
                with self._tx() as tx:
                    for (position, exemplar_id, _), vector in zip(missing, computed, strict=True):
                        vectors[position] = vector
                        tx.execute(
                            "INSERT OR REPLACE INTO vectors (exemplar_id, embedder, vec) VALUES (?, ?, ?)",
                            (exemplar_id, self.embedder.name, vector.astype(np.float32).tobytes()),
                        )
            ids = [r[0] for r in rows]
            matrix = np.vstack([v for v in vectors if v is not None]) if ids else np.zeros((0, 0), dtype=np.float32)
            tags = [json.loads(r[3] or "{}") for r in rows]
            self._matrix = (version, ids, matrix.astype(np.float32), tags)
            return ids, self._matrix[2]

    def _tags(self) -> list[dict[str, Any]]:
        """Tags of every exemplar, in the order of :meth:`_vectors`."""
        self._vectors()
        assert self._matrix is not None
        return self._matrix[3]

    def search(
        self, text: str, *, k: int = 3, pool: int = 20, lam: float = 0.5, guard: LeakGuard | None = None
    ) -> tuple[list[Hit], dict[str, int]]:
        """Diverse retrieval for ``text``; also returns how many exemplars the leak guard excluded, by reason."""
        ids, matrix = self._vectors()
        if not ids:
            return [], {}
        query = self.embedder.embed([text])[0]
        excluded: dict[str, int] = {}
        allowed = np.ones(len(ids), dtype=bool)
        if guard is not None:
            sims = matrix @ query
            reasons: dict[int, str] = {}
            for position, (exemplar_id, tags) in enumerate(zip(ids, self._tags(), strict=True)):
                if tags and (why := guard.reason_from_tags(exemplar_id, tags)):
                    reasons[position] = why
            # Texts far from the item (cosine < 0.5) cannot be near-duplicates; only the rest are read.
            suspects = [int(i) for i in np.nonzero(sims >= 0.5)[0] if int(i) not in reasons]
            texts = self._exemplars([ids[i] for i in suspects])
            for position in suspects:
                if why := guard.reason_from_text(texts[ids[position]].question, float(sims[position])):
                    reasons[position] = why
            for position, why in reasons.items():
                allowed[position] = False
                key = "benchmark" if why.startswith("from benchmark") else why.split(" ")[0]
                excluded[key] = excluded.get(key, 0) + 1
        picked = diverse_select(query, matrix, pool=pool, k=k, lam=lam, allowed=allowed)
        chosen = self._exemplars([ids[i] for i, _, _ in picked])
        return [Hit(chosen[ids[i]], sim, score) for i, sim, score in picked], excluded


def _row_to_exemplar(row: sqlite3.Row | tuple[Any, ...]) -> Exemplar:
    return Exemplar(
        id=row[0],
        source=row[1],
        question=row[2],
        code=row[3],
        answer=row[4],
        solver=row[5],
        tags=json.loads(row[6] or "{}"),
        data=json.loads(row[7]) if row[7] else None,
    )


def _record_to_exemplar(record: dict[str, Any], source: str) -> Exemplar:
    question = str(record["question"]).strip()
    code = str(record["code"])
    if not question or not code.strip():
        raise ValueError("empty question or code")
    answer = record.get("answer")
    tag_keys = ("overlaps_benchmark", "near_dup_benchmarks", "near_dup_benchmark_ids")
    return Exemplar(
        id=str(record.get("id") or f"{source}-{normalized_hash(question)[:12]}"),
        source=str(record.get("source") or source),
        question=question,
        code=code,
        answer=float(answer) if isinstance(answer, int | float) and not isinstance(answer, bool) else None,
        solver=str(record.get("solver") or ""),
        tags={key: record[key] for key in tag_keys if record.get(key)},
    )
