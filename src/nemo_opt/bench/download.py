"""``nemo-opt bench download``: fetch the public benchmark releases and write them as this project's JSONL files.

Each release is read from its source repository at a pinned commit (raw files under
``<base_url>/<owner>/<repo>/<commit>/<path>``), converted by the converter in :mod:`nemo_opt.bench.sources`, and
written to ``<dest>/<name>.jsonl``; ``<dest>/manifest.json`` gets one entry per file (counts, source, licence and
the SHA-256 of the written bytes). Two releases (NLP4LP, ComplexOR) are folders of many small files that cannot be
fetched without knowing their names, so their folder is listed through GitHub's contents API
(``<api_url>/repos/<owner>/<repo>/contents/<folder>?ref=<commit>``), one request per release.

A mirror or test server given as ``base_url`` must serve both URL forms; ``api_url`` then defaults to it.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from nemo_opt import __version__
from nemo_opt.bench.sources import SOURCES, Source, SourceReader
from nemo_opt.exceptions import BadInput, RunFailure
from nemo_opt.fsutil import atomic_write_json, atomic_write_text

__all__ = ["DEFAULT_API_URL", "DEFAULT_BASE_URL", "SOURCES", "Source", "download", "known_names"]

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://raw.githubusercontent.com"
DEFAULT_API_URL = "https://api.github.com"
# Pauses before the second and third attempt at a transient failure (5xx, 429, timeout, dropped connection).
RETRY_DELAYS: tuple[float, ...] = (1.0, 4.0)
_TRANSIENT_STATUS = {408, 425, 429, 500, 502, 503, 504}
_WORKERS = 8
_LFS_POINTER = b"version https://git-lfs.github.com/spec/"

_T = TypeVar("_T")
_R = TypeVar("_R")


def known_names() -> list[str]:
    """The releases ``download`` can fetch, in the order the benchmarks are usually listed."""
    return list(SOURCES)


def _http_get(url: str, timeout: float) -> bytes | None:
    """The body at ``url``, or ``None`` when the server answers 404. The only function that touches the network.

    Transient failures (5xx, 429, timeouts, dropped connections) are retried after :data:`RETRY_DELAYS`; anything
    else, and a transient failure that outlasts the retries, raises :class:`RunFailure` naming the URL.
    """
    request = urllib.request.Request(url, headers={"User-Agent": f"nemo-opt/{__version__} (bench download)"})
    delays = (*RETRY_DELAYS, None)
    for delay in delays:
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (https or a test server)
                body: bytes = response.read()
                return body
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            if exc.code not in _TRANSIENT_STATUS or delay is None:
                hint = (
                    " GitHub rate-limits unauthenticated clients (60 API requests an hour); wait, then download again."
                    if exc.code in (403, 429)
                    else " Check the URL in a browser, or retry later."
                )
                raise RunFailure(f"Downloading {url} failed: HTTP {exc.code} {exc.reason}.{hint}") from exc
            problem = f"HTTP {exc.code}"
        except urllib.error.URLError as exc:
            if not isinstance(exc.reason, TimeoutError | ConnectionResetError) or delay is None:
                raise RunFailure(
                    f"Could not reach {url}: {exc.reason}. Check the internet connection (or the mirror's base URL, "
                    "if one was given) and run the download again."
                ) from exc
            problem = str(exc.reason)
        except (TimeoutError, ConnectionResetError, http.client.IncompleteRead) as exc:
            if delay is None:
                raise RunFailure(
                    f"Downloading {url} kept failing ({exc!r}). Check the connection and run the download again."
                ) from exc
            problem = repr(exc)
        except (OSError, http.client.HTTPException) as exc:
            raise RunFailure(
                f"Downloading {url} failed: {exc!r}. Check the connection and run the download again."
            ) from exc
        log.warning("GET %s: %s; retrying in %.1f s", url, problem, delay)
        time.sleep(delay)
    raise AssertionError("unreachable: the last attempt returns or raises")


@dataclass(frozen=True)
class _HttpReader:
    """A :class:`SourceReader` over raw-file URLs and GitHub's contents API."""

    base_url: str
    api_url: str
    timeout: float
    repo: str
    commit: str

    def url(self, path: str) -> str:
        return f"{self.base_url}/{self.repo}/{self.commit}/{urllib.parse.quote(path)}"

    def read_optional(self, path: str) -> bytes | None:
        url = self.url(path)
        body = _http_get(url, self.timeout)
        if body is not None and body.startswith(_LFS_POINTER):
            raise RunFailure(
                f"{url} is a Git LFS pointer, not the data. Fetch the file from "
                f"https://media.githubusercontent.com/media/{self.repo}/{self.commit}/{path} instead."
            )
        return body

    def read(self, path: str) -> bytes:
        body = self.read_optional(path)
        if body is None:
            raise RunFailure(
                f"Downloading {self.url(path)} failed: 404 Not Found. The file is not at the pinned commit "
                f"{self.commit} of {self.repo} (the repository may have been removed or rewritten); check "
                f"https://github.com/{self.repo}/tree/{self.commit}, or point the download at a mirror."
            )
        return body

    def list_dir(self, path: str) -> list[tuple[str, str]]:
        url = f"{self.api_url}/repos/{self.repo}/contents/{urllib.parse.quote(path)}?ref={self.commit}"
        why = (
            f"{self.repo}/{path} is a folder of many small files, which cannot be fetched one by one without "
            "a listing of their names"
        )
        body = _http_get(url, self.timeout)
        if body is None:
            raise RunFailure(f"Listing {url} failed: 404 Not Found. {why}; the folder is not at commit {self.commit}.")
        try:
            entries: Any = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RunFailure(f"Listing {url} did not return JSON ({exc}). {why}.") from exc
        if not isinstance(entries, list):
            raise RunFailure(f"Listing {url} did not return a folder listing. {why}.")
        return [
            (str(entry["name"]), str(entry.get("type", "file")))
            for entry in entries
            if isinstance(entry, dict) and "name" in entry
        ]

    def at(self, repo: str, commit: str) -> SourceReader:
        return replace(self, repo=repo, commit=commit)

    def map(self, fn: Callable[[_T], _R], items: Sequence[_T]) -> list[_R]:
        if len(items) <= 1:
            return [fn(item) for item in items]
        with ThreadPoolExecutor(max_workers=min(_WORKERS, len(items)), thread_name_prefix="bench-download") as pool:
            futures = [pool.submit(fn, item) for item in items]
            try:
                return [future.result() for future in futures]
            except BaseException:
                # Stop queued fetches at the first failure instead of downloading the rest for nothing.
                for future in futures:
                    future.cancel()
                raise


def _manifest(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadInput(f"{path} cannot be read as JSON ({exc}); fix or delete it, then download again.") from exc
    if not isinstance(data, list) or not all(isinstance(entry, dict) for entry in data):
        raise BadInput(f"{path} is not a list of file entries; fix or delete it, then download again.")
    return data


def _entry(source: Source, records: list[dict[str, Any]], written: bytes) -> dict[str, Any]:
    return {
        "file": f"{source.name}.jsonl",
        "benchmark": source.benchmark,
        "kind": source.kind,
        "count": len(records),
        "with_answer": sum(1 for record in records if record["answer"] is not None),
        "role": source.role,
        "source_repo": source.repo,
        "source_commit": source.commit,
        "source_paths": list(source.paths),
        # The key is spelt as in the manifest shipped with the prepared benchmark folders, which readers expect.
        "license": source.licence,
        "sha256": hashlib.sha256(written).hexdigest(),
    }


def _selected(names: list[str]) -> list[Source]:
    wanted: list[str] = []
    for name in names:
        for part in known_names() if name.strip().lower() == "all" else [name.strip().lower()]:
            if part not in wanted:
                wanted.append(part)
    unknown = [name for name in wanted if name not in SOURCES]
    if unknown or not wanted:
        what = f"Unknown benchmark release(s): {', '.join(unknown)}." if unknown else "No benchmark named."
        raise BadInput(f"{what} Known: {', '.join(known_names())} (or all).")
    return [SOURCES[name] for name in wanted]


def download(
    names: list[str],
    dest: Path,
    *,
    base_url: str = DEFAULT_BASE_URL,
    api_url: str | None = None,
    timeout: float = 60,
    overwrite: bool = False,
) -> list[Path]:
    """Fetch, convert and write the releases ``names`` (``all`` for every one) into ``dest``.

    Returns the files written. A file already in ``dest`` is kept, and not fetched, unless ``overwrite``.
    ``api_url`` (for listing folders) defaults to GitHub's API with the default ``base_url``, else to ``base_url``.
    Unknown names raise :class:`BadInput`; a failed fetch raises :class:`RunFailure` naming the URL, after the
    files finished before it have been written and recorded in the manifest.
    """
    sources = _selected(names)
    base = base_url.rstrip("/")
    api = (api_url or (DEFAULT_API_URL if base == DEFAULT_BASE_URL else base)).rstrip("/")
    if dest.exists() and not dest.is_dir():
        raise BadInput(f"{dest} is a file; give a folder to download the benchmarks into.")
    manifest_path = dest / "manifest.json"
    manifest = _manifest(manifest_path)
    written: list[Path] = []
    for source in sources:
        target = dest / f"{source.name}.jsonl"
        if target.exists() and not overwrite:
            log.info("%s exists; kept (download with overwrite to replace it)", target)
            continue
        reader = _HttpReader(base, api, timeout, source.repo, source.commit)
        started = time.monotonic()
        records = source.convert(reader)
        text = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
        atomic_write_text(target, text)
        entry = _entry(source, records, text.encode("utf-8"))
        at = next((i for i, existing in enumerate(manifest) if existing.get("file") == entry["file"]), None)
        if at is None:
            manifest.append(entry)
        else:
            manifest[at] = entry
        atomic_write_json(manifest_path, manifest)
        log.info("wrote %s (%d records) in %.1f s", target, len(records), time.monotonic() - started)
        written.append(target)
    return written
