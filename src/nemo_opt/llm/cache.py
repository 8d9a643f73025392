"""A persistent reply cache keyed by everything that determines a model's reply.

It only stores and fetches; whether a call may be served from the cache (e.g. only at temperature 0) is the
caller's decision. The cache is an optimisation, so a damaged row or a failing read is logged and treated as a
miss instead of failing the run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from nemo_opt.exceptions import ConfigError
from nemo_opt.llm.base import Completion, Message, ToolSpec
from nemo_opt.sqlite import Database

__all__ = ["CacheStats", "ReplyCache", "request_key"]

log = logging.getLogger(__name__)

# Bumped when the key payload or the stored reply format changes, so old entries stop matching.
_KEY_VERSION = 1
# Schema versions of the cache file (PRAGMA user_version). The first is the table files made before the schema was
# versioned already have, hence IF NOT EXISTS.
MIGRATIONS = [
    "CREATE TABLE IF NOT EXISTS replies ("
    "key TEXT PRIMARY KEY, created_at TEXT NOT NULL, model TEXT NOT NULL, reply_json TEXT NOT NULL);",
]


def request_key(
    model: str,
    messages: Sequence[Message],
    tools: Sequence[ToolSpec] | None,
    temperature: float,
    n: int,
    max_tokens: int | None,
    salt: str = "",
) -> str:
    """SHA-256 of the canonical JSON of a request; equal requests give equal keys.

    ``salt`` lets a caller separate entries that the request alone does not (e.g. a sample index).
    """
    payload = {
        "v": _KEY_VERSION,
        "model": model,
        "messages": [m.to_dict() for m in messages],
        "tools": [asdict(t) for t in tools] if tools else None,
        # float() so that 0 and 0.0 give the same key.
        "temperature": float(temperature),
        "n": n,
        "max_tokens": max_tokens,
        "salt": salt,
    }
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CacheStats:
    """Entries on disk, database size, and this instance's hits and misses."""

    entries: int
    size_bytes: int
    hits: int
    misses: int


class ReplyCache:
    """SQLite-backed cache of completions, safe to share between threads and processes (a connection per thread)."""

    def __init__(self, path: Path) -> None:
        """Open (creating if needed) the cache at ``path``; raises :class:`ConfigError` if it cannot be used."""
        self.path = path
        self._lock = threading.Lock()  # guards the hit and miss counts
        self._hits = 0
        self._misses = 0
        self.db = Database(
            path,
            migrations=MIGRATIONS,
            what="the reply cache",
            remedy="Delete the file (it only holds cached replies) or set llm_cache = 'off'.",
        )
        self.db.conn()

    def get(self, key: str) -> Completion | None:
        """The cached completion for ``key`` (``cached=True``, ``seconds=0``, no cost), or None."""
        try:
            row = self.db.conn().execute("SELECT reply_json FROM replies WHERE key = ?", (key,)).fetchone()
        except (sqlite3.Error, ConfigError) as exc:
            log.warning("reply cache %s: read failed (%s); treating as a miss", self.path, exc)
            row = None
        completion = None
        if row is not None:
            try:
                completion = Completion.from_dict(json.loads(row[0]), cached=True, seconds=0.0, cost_usd=0.0)
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                log.warning("reply cache %s: ignoring unreadable entry %s (%s)", self.path, key[:12], exc)
        with self._lock:
            if completion is None:
                self._misses += 1
            else:
                self._hits += 1
        return completion

    def put(self, key: str, completion: Completion) -> None:
        """Store ``completion`` under ``key``, replacing any previous entry."""
        reply_json = json.dumps(completion.to_dict(), ensure_ascii=False)
        created = datetime.now(UTC).isoformat(timespec="seconds")
        try:
            self.db.conn().execute(
                "INSERT OR REPLACE INTO replies (key, created_at, model, reply_json) VALUES (?, ?, ?, ?)",
                (key, created, completion.model, reply_json),
            )
        except (sqlite3.Error, ConfigError) as exc:
            log.warning("reply cache %s: write failed (%s); reply not cached", self.path, exc)

    def stats(self) -> CacheStats:
        """Current size and this instance's hit/miss counts."""
        (entries,) = self.db.conn().execute("SELECT COUNT(*) FROM replies").fetchone()
        with self._lock:
            hits, misses = self._hits, self._misses
        files = (self.path, self.path.with_name(self.path.name + "-wal"), self.path.with_name(self.path.name + "-shm"))
        size = sum(p.stat().st_size for p in files if p.is_file())
        return CacheStats(entries=int(entries), size_bytes=size, hits=hits, misses=misses)

    def clear(self) -> int:
        """Delete every entry; returns how many there were."""
        return int(self.db.conn().execute("DELETE FROM replies").rowcount)

    def close(self) -> None:
        """Close the database connections (of every thread that used the cache)."""
        self.db.close()

    def __enter__(self) -> ReplyCache:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
