"""Embeddings from any OpenAI-compatible ``/embeddings`` endpoint (OpenAI, vLLM, llama.cpp, Ollama, ...)."""

from __future__ import annotations

from functools import partial

import numpy as np
import openai

from nemo_opt.embed.base import Vectors, unit_rows
from nemo_opt.exceptions import LLMError
from nemo_opt.llm.openai_backend import OPENAI_URL, classify_openai_error
from nemo_opt.llm.registry import resolve_endpoint
from nemo_opt.llm.retry import Failure, RetryPolicy, UnusableReply, translate_failure
from nemo_opt.settings import Settings

__all__ = ["RemoteEmbedder"]


class RemoteEmbedder:
    """``embed`` calls ``POST {base_url}/embeddings`` in batches, with the model layer's retry policy."""

    def __init__(
        self, name: str, settings: Settings, *, batch_size: int = 64, policy: RetryPolicy | None = None
    ) -> None:
        ref, key = resolve_endpoint(name)
        self.name = f"remote:{name.strip()}"
        self.model = ref.model
        self.base_url = (ref.base_url or OPENAI_URL).rstrip("/")
        self.key_env = ref.key_env
        self.timeout = settings.llm_timeout
        self.batch_size = batch_size
        self.policy = policy or RetryPolicy.from_settings(settings)
        self._client = openai.OpenAI(api_key=key, base_url=self.base_url, timeout=self.timeout, max_retries=0)
        self.dim = 0  # known after the first call

    def _give_up(self, failure: Failure, retries: int) -> LLMError:
        return translate_failure(
            failure, retries, url=self.base_url, model=self.model, key_env=self.key_env, timeout=self.timeout
        )

    def _call(self, batch: list[str]) -> list[list[float]]:
        response = self._client.embeddings.create(model=self.model, input=batch)
        data = sorted(getattr(response, "data", None) or [], key=lambda item: item.index)
        if len(data) != len(batch):
            raise UnusableReply(f"the server returned {len(data)} embeddings for {len(batch)} texts")
        return [list(item.embedding) for item in data]

    def embed(self, texts: list[str]) -> Vectors:
        """Unit vectors for ``texts``."""
        rows: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            batch = texts[start : start + self.batch_size]
            vectors, _ = self.policy.run(partial(self._call, batch), classify_openai_error, self._give_up)
            rows.extend(vectors)
        if not rows:
            return np.zeros((0, self.dim), dtype=np.float32)
        matrix = unit_rows(np.asarray(rows, dtype=np.float32))
        self.dim = int(matrix.shape[1])
        return matrix
