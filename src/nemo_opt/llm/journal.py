"""The reply journal: every reply a run received, in order per stream, replayed when the run is resumed.

Why not the reply cache. The cache is keyed by a hash of the whole request, which suits re-running a problem
at temperature 0, but not resuming a killed run: replies sampled at a non-zero temperature must never be
served to another run, and an agent's later requests carry the output of the commands it ran (pytest's
timings, solver logs), which differs slightly between the original run and the resumed one, so their hashes
would never match again and every agent turn would be asked anew.

The journal is keyed by ``(run id, stream, ordinal)`` instead. A *stream* is the stage a
:class:`~nemo_opt.llm.recorder.RecordedLLM` is bound to (``extract``, ``judge``, ``recommend``, ``simulator``,
``optimizer_<k>``); each stream makes its calls one after another, so "the k-th call of this stream" names
the same step of the same conversation in both runs, whatever the temperature. Every reply is committed to
the run store before the caller sees it, so a ``kill -9`` loses at most the call in flight.

When a resumed run makes the k-th call of a stream and the journal holds a reply for it, that reply is
returned (marked cached, no cost) and no request is sent. A guard keeps the replay honest: each entry stores
the hash of the request's first two messages (the system prompt and the task, or the extraction prompt);
when a resumed request's prefix differs, the stream is doing something else than before (a different spec
or task), so its remaining entries are dropped and the model is asked from there on. Small differences later
in the conversation (command output) are tolerated by design: the replayed reply is the one the model gave.

A stream whose earlier part was loaded from a checkpoint (e.g. an accepted simulator) is positioned after it
with :meth:`ReplyJournal.seek`, so its next call maps to the reply that followed.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Sequence

from nemo_opt.llm.base import Completion, Message
from nemo_opt.store import RunStore

__all__ = ["ReplyJournal", "prefix_hash"]


def prefix_hash(messages: Sequence[Message]) -> str:
    """SHA-256 of the first two messages of a request (what identifies the conversation)."""
    payload = json.dumps([m.to_dict() for m in messages[:2]], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class ReplyJournal:
    """Records the replies of one run; with ``replay`` it first serves the replies recorded earlier."""

    def __init__(self, store: RunStore, run_id: str, *, replay: bool = False) -> None:
        self.store = store
        self.run_id = run_id
        self._lock = threading.Lock()
        self._next: dict[str, int] = {}
        self._recorded = store.recorded_replies(run_id) if replay else {}
        self.replayed = 0
        self.diverged: list[str] = []

    def begin(self, stream: str, messages: Sequence[Message]) -> tuple[int, Completion | None]:
        """Take the next ordinal of ``stream``; the recorded reply for it when there is one to replay."""
        digest = prefix_hash(messages)
        with self._lock:
            ordinal = self._next.get(stream, 0)
            self._next[stream] = ordinal + 1
            entry = self._recorded.get((stream, ordinal))
            if entry is None:
                return ordinal, None
            if entry[0] != digest:
                self._forget(stream, ordinal)
                return ordinal, None
            self.replayed += 1
        try:
            return ordinal, Completion.from_dict(json.loads(entry[1]), cached=True, seconds=0.0, cost_usd=0.0)
        except (ValueError, KeyError, TypeError):
            with self._lock:
                self._forget(stream, ordinal)
            return ordinal, None

    def _forget(self, stream: str, ordinal: int) -> None:
        """Drop ``stream``'s entries from ``ordinal`` on (caller holds the lock)."""
        for key in [k for k in self._recorded if k[0] == stream and k[1] >= ordinal]:
            del self._recorded[key]
        self.diverged.append(f"{stream}#{ordinal}")
        self.store.drop_replies(self.run_id, stream, ordinal)

    def record(self, stream: str, ordinal: int, messages: Sequence[Message], completion: Completion) -> None:
        """Commit the reply ``stream`` got for its ``ordinal``-th call."""
        reply = json.dumps(completion.to_dict(), ensure_ascii=False)
        self.store.record_reply(self.run_id, stream, ordinal, prefix_hash(messages), reply)

    def position(self, stream: str) -> int:
        """How many calls ``stream`` has made (or skipped) so far."""
        with self._lock:
            return self._next.get(stream, 0)

    def seek(self, stream: str, ordinal: int) -> None:
        """Continue ``stream`` at ``ordinal`` (its calls before that belong to a checkpoint already loaded)."""
        with self._lock:
            self._next[stream] = ordinal
