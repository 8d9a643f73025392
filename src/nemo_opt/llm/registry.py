"""Model names (``provider:model``) and the backends they build.

Accepted forms::

    openai:MODEL                   official OpenAI endpoint (OPENAI_API_KEY; OPENAI_BASE_URL honoured)
    openai-compatible:MODEL@URL    any OpenAI-compatible server (NEMO_API_KEY if it needs a key)
    ollama:MODEL                   Ollama's OpenAI-compatible endpoint ($OLLAMA_HOST or 127.0.0.1:11434)
    anthropic:MODEL                Anthropic Messages API (ANTHROPIC_API_KEY; needs the anthropic extra)
    local:PATH.gguf                a GGUF file served by a managed llama.cpp child process (nemo_opt.llm.local)
    local:hf:OWNER/REPO/FILE.gguf  the same, downloaded from the Hugging Face hub first
    scripted:FILE.json             replies read from a file, in order or by role (no model service at all: for
                                   offline demonstrations, ablations and tests; see nemo_opt.testing.scripted)

API keys are read from the environment when a backend is built, never from settings or files.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from nemo_opt.exceptions import ModelNotConfigured
from nemo_opt.llm.anthropic_backend import ANTHROPIC_URL, AnthropicChat
from nemo_opt.llm.base import LLM
from nemo_opt.llm.openai_backend import OPENAI_URL, OpenAIChat
from nemo_opt.settings import Settings

__all__ = ["NO_MODEL_HELP", "PROVIDERS", "ModelRef", "create_llm", "parse_model_name", "resolve_endpoint"]

NO_MODEL_HELP = (
    "No model is configured. Either export an API key and name a model, e.g.\n"
    "  export OPENAI_API_KEY=...   and   nemo-opt solve problem.md --model openai:gpt-4.1\n"
    "or point at a local OpenAI-compatible server (llama.cpp, vLLM, Ollama, LM Studio):\n"
    "  nemo-opt solve problem.md --model openai-compatible:qwen@http://127.0.0.1:8080/v1\n"
    'The model can also be set once with NEMO_MODEL or `model = "..."` in nemo.toml.'
)


PROVIDERS = ("openai", "openai-compatible", "ollama", "anthropic", "local", "scripted")
OLLAMA_URL = "http://127.0.0.1:11434/v1"
# Local servers ignore the key, but the SDK refuses to send a request without one.
_PLACEHOLDER_KEY = "not-needed"
_LOCAL_EXAMPLE = "--model openai-compatible:qwen@http://127.0.0.1:8080/v1"
_KEY_ENV = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}
# Model names may contain "@" themselves, so the URL is recognised by its scheme.
_COMPATIBLE = re.compile(r"^(?P<model>.+?)@(?P<url>[A-Za-z][A-Za-z0-9+.-]*://.*)$")

_FORMS = f"""Use one of:
  openai:MODEL                  e.g. openai:gpt-4.1              (key from OPENAI_API_KEY)
  anthropic:MODEL               e.g. anthropic:claude-sonnet-4-5 (key from ANTHROPIC_API_KEY)
  ollama:MODEL                  e.g. ollama:qwen2.5-coder:32b    (server at $OLLAMA_HOST or {OLLAMA_URL})
  openai-compatible:MODEL@URL   e.g. openai-compatible:qwen@http://127.0.0.1:8080/v1 (NEMO_API_KEY if needed)
  local:PATH.gguf               e.g. local:models/qwen2.5-coder-1.5b-q4_k_m.gguf (managed llama.cpp server)
  scripted:FILE.json            replies read from a file (offline runs without any model service)"""


@dataclass(frozen=True)
class ModelRef:
    """A parsed model name. ``base_url`` None means the provider's official endpoint."""

    provider: str
    model: str
    base_url: str | None = None

    @property
    def key_env(self) -> str:
        """The environment variable the API key is read from."""
        return _KEY_ENV.get(self.provider, "NEMO_API_KEY")


def _bad_name(name: str, why: str) -> ModelNotConfigured:
    hint = ""
    bare = name.strip()
    if bare and ":" not in bare:
        if bare.startswith(("gpt", "o1", "o3", "o4")):
            hint = f" Did you mean openai:{bare}?"
        elif bare.startswith("claude"):
            hint = f" Did you mean anthropic:{bare}?"
    return ModelNotConfigured(f"Model name {name!r}: {why}.{hint}\n{_FORMS}")


def _ollama_url(host: str | None) -> str:
    if not host:
        return OLLAMA_URL
    # OLLAMA_HOST is the server's bind address ("0.0.0.0", "host:port", "http://host:port"); make it a client URL.
    parts = urlsplit(host if "://" in host else f"http://{host}")
    hostname = parts.hostname or "127.0.0.1"
    if hostname in ("0.0.0.0", "::"):
        hostname = "127.0.0.1"
    if ":" in hostname:
        hostname = f"[{hostname}]"
    path = parts.path.rstrip("/")
    if not path.endswith("/v1"):
        path += "/v1"
    return f"{parts.scheme}://{hostname}:{parts.port or 11434}{path}"


def parse_model_name(name: str, *, environ: Mapping[str, str] | None = None) -> ModelRef:
    """Parse ``provider:model`` (see the module docstring); raises :class:`ModelNotConfigured` on a bad name.

    ``environ`` (default ``os.environ``) supplies ``OPENAI_BASE_URL``, ``ANTHROPIC_BASE_URL`` and ``OLLAMA_HOST``.
    """
    env = os.environ if environ is None else environ
    provider, sep, rest = name.strip().partition(":")
    if not sep:
        raise _bad_name(name, "no provider given")
    if provider not in PROVIDERS:
        raise _bad_name(name, f"unknown provider '{provider}'")
    rest = rest.strip()
    if provider == "openai-compatible":
        match = _COMPATIBLE.match(rest)
        if match is None:
            raise _bad_name(name, "openai-compatible needs MODEL@URL")
        url = match["url"].rstrip("/")
        if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
            raise _bad_name(name, f"the server URL {url!r} must start with http:// or https:// and name a host")
        return ModelRef(provider, match["model"], url)
    if not rest:
        raise _bad_name(name, "the model part is empty")
    if provider == "ollama":
        return ModelRef(provider, rest, _ollama_url(env.get("OLLAMA_HOST")))
    base_env = "OPENAI_BASE_URL" if provider == "openai" else "ANTHROPIC_BASE_URL"
    return ModelRef(provider, rest, env.get(base_env) or None)


def resolve_endpoint(name: str, *, environ: Mapping[str, str] | None = None) -> tuple[ModelRef, str]:
    """Parse ``name`` and find its API key (a placeholder for servers that need none).

    Raises :class:`ModelNotConfigured` for a bad name or a missing key of a provider that requires one.
    """
    env = os.environ if environ is None else environ
    if not name or not name.strip():
        raise ModelNotConfigured(f"No model configured. Pass --model or set NEMO_MODEL.\n{_FORMS}")
    ref = parse_model_name(name, environ=env)
    key = env.get(ref.key_env) or ""
    if not key:
        if ref.provider in _KEY_ENV:
            raise ModelNotConfigured(
                f"{name.strip()} needs an API key: export {ref.key_env}=<your key>. "
                f"To use a local OpenAI-compatible server instead, pass e.g. {_LOCAL_EXAMPLE}"
            )
        key = _PLACEHOLDER_KEY
    return ref, key


def create_llm(name: str, settings: Settings, *, environ: Mapping[str, str] | None = None) -> LLM:
    """Build the backend for ``name``, reading its API key from ``environ`` (default ``os.environ``).

    Raises :class:`ModelNotConfigured` for a bad name or a missing key, :class:`MissingExtra` when the
    provider's optional package is not installed.
    """
    ref, key = resolve_endpoint(name, environ=environ)
    label = name.strip()
    if ref.provider == "local":
        return _local_llm(ref, settings, label)
    if ref.provider == "scripted":
        return _scripted_llm(ref, label)
    if ref.provider == "anthropic":
        return AnthropicChat(ref.model, settings, api_key=key, base_url=ref.base_url or ANTHROPIC_URL, name=label)
    return OpenAIChat(
        ref.model,
        settings,
        api_key=key,
        base_url=ref.base_url or OPENAI_URL,
        key_env=ref.key_env,
        official=ref.provider == "openai",
        name=label,
    )


def _scripted_llm(ref: ModelRef, label: str) -> LLM:
    from nemo_opt.testing.scripted import ScriptedLLM, load_script  # only scripted runs need it

    try:
        return ScriptedLLM(load_script(Path(ref.model).expanduser()), name=label)
    except ValueError as exc:
        raise ModelNotConfigured(f"{label}: {exc}") from exc


def _local_llm(ref: ModelRef, settings: Settings, label: str) -> LLM:
    """Start (or reuse) the managed llama.cpp server for the GGUF file and talk to it like any other server."""
    from nemo_opt.llm import local  # imported here: only local models need it

    path = local.resolve_gguf(ref.model, models_dir=settings.models_dir, endpoint=settings.hf_endpoint)
    server = local.local_server(
        path,
        python=settings.local_server_python,
        n_ctx=settings.local_n_ctx,
        threads=settings.local_threads,
        cache_mb=settings.local_cache_mb,
        log_dir=settings.home / "logs",
        start_timeout=settings.local_start_timeout,
    )
    return OpenAIChat(server.alias, settings, api_key=_PLACEHOLDER_KEY, base_url=server.base_url, name=label)
