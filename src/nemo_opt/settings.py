"""One settings object, built from defaults, then ``nemo.toml``, then ``NEMO_*`` variables, then CLI flags.

Later sources win; pydantic-settings does the layering (``_Layers``). Only :func:`load_settings` reads the file and
the environment: ``Settings(...)`` and ``Settings.model_validate(...)`` use nothing but their arguments, so a run
resumed from its saved settings, or a test, is not changed by the shell it runs in.

Secrets (API keys) are never settings: they are read from the environment only (``OPENAI_API_KEY``,
``ANTHROPIC_API_KEY``, ``NEMO_API_KEY``) at the moment a backend needs them.

``nemo.toml`` is looked up at ``$NEMO_CONFIG`` if set, else ``./nemo.toml``, else ``$NEMO_HOME/nemo.toml``.
Keys are the field names below, at top level (``model = "openai:gpt-4.1"``, ``atol = 1e-7``). In the environment
a setting is ``NEMO_`` and its name in capitals (``NEMO_ATOL=1e-7``); a list is JSON or comma-separated, a dict is
JSON, and ``none``, ``null`` or an empty value unsets an optional setting.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from nemo_opt.exceptions import ConfigError

__all__ = ["MODEL_SETTINGS", "SHAPE_SETTINGS", "Settings", "config_path", "load_settings"]

ENV_PREFIX = "NEMO_"
# NEMO_* variables that are not settings fields, so they are not reported as misspelt settings: the nemo.toml
# path and the key of OpenAI-compatible servers (read here and by the backends), the sandbox's process marker
# (sandbox/_env.py), the mutant runner's capture file (evaluation/mutants.py), and the test suite's own
# (tests/conftest.py, tests/test_live_local_model.py, sandbox/hostile.py).
_NON_FIELD_ENV = {
    "NEMO_CONFIG",
    "NEMO_API_KEY",
    "NEMO_SANDBOX_ID",
    "NEMO_CAPTURE",
    "NEMO_LIVE_GGUF",
    "NEMO_TEST_SECRET",
}
# Values of a NEMO_* variable that unset an optional setting (compared stripped and lower-cased).
_NONE_WORDS = {"", "none", "null"}


def _default_home() -> Path:
    return Path(platformdirs.user_data_dir("nemo-opt", appauthor=False))


# Defaults that change when the model is a local GGUF (see Settings._local_model_profile). Measured with
# Qwen2.5-Coder-1.5B Q4_K_M on 2 CPU cores (benchmarks/optimizer_diversity.py, first 5 NL4OPT items):
# - agent_temperature 0.3: at 0.7 only 5 of 10 sampled programs ran at all and 1 was right; at 0.3, 5 of 6 ran
#   and 2 were right (greedy: 8 of 15 right), while the candidates still differed on every item;
# - memory_extract off: the examples made the extraction prompt 5,151 characters longer and the call 2.4x slower
#   (336 s against 139 s for examples/product_mix.md), and the reply was no better (both unusable);
# - extractions 1: with n = 5 the extract stage of examples/product_mix.md took 1,055 s (the five samples 532 s,
#   four repairs 44-175 s each, the judge 67 s) and still chose a P* with invented data, so MBR over five samples
#   costs three times the 8-minute budget of a whole run without a better P* to show for it.
# - agent_protocol files, agent_max_steps 4, repair_rounds 1, no examples in the agents' prompts: each reply is
#   a whole file that the harness saves, runs and checks (see nemo_opt.agent.loop), so an attempt is one call of
#   about 1,000 prompt tokens instead of a bash session of 2-4k-token steps at 140-170 s each.
# - simulator_max_steps 6: the optimizers were done after one reply each on examples/product_mix.md (three runs),
#   while the simulator used all 4 steps in three of four runs (a placeholder left in, then its own tests wrong)
#   and the run ended unverified with the right answer in hand.
# - llm_max_tokens 1536: llama-cpp-python's server otherwise lets a reply run to the context length (16k tokens,
#   about 25 minutes here) when a small model loops (a simulator reply repeated one check until cut at 2,048
#   tokens, 194 s); a whole model file or P* was 300-1,200 tokens on the first NL4OPT items.
# - extract_trace_repair stays off: with the 1.5B model it took 39-71 s and improved neither P* it was tried on
#   (examples/product_mix.md: the same JSON again; NL4OPT item 0: an unparseable reply), and the whole-file
#   agents take their numbers from the text anyway.
# - extract_retry: with one extraction, a reply that stays unusable after its repair ended 3 of the first 3
#   NL4OPT items 10-12 runs (the repair, at temperature 0, repeated the reply); one fresh sample is ~50 s.
LOCAL_MODEL_PROFILE: dict[str, Any] = {
    "llm_max_tokens": 1536,
    "extract_retry": True,
    "agent_protocol": "files",
    "agent_max_steps": 4,
    "simulator_max_steps": 6,
    "repair_rounds": 1,
    "memory_simulator": False,
    "memory_optimizers": False,
    "llm_concurrency": 1,
    "llm_timeout": 1800.0,
    "agent_temperature": 0.3,
    "memory_extract": False,
    "extractions": 1,
}


class Settings(BaseModel):
    """Every knob of nemo-opt. Each field's description is its one-line documentation."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)

    # Not a setting: which nemo.toml load_settings read (see config_file).
    _config_file: Path | None = PrivateAttr(None)

    # --- where things live -------------------------------------------------------------------------------
    home: Path = Field(default_factory=_default_home, description="Run store, caches and memory live here.")
    runs_dir: Path | None = Field(None, description="Where run folders are created (default: $NEMO_HOME/runs).")
    benchmarks_dir: Path | None = Field(None, description="Directory holding the benchmark JSONL files.")
    memory_dir: Path | None = Field(None, description="Directory holding memory corpora (JSONL).")

    # --- models ------------------------------------------------------------------------------------------
    model: str | None = Field(None, description="Default model as provider:name, e.g. openai:gpt-4.1.")
    extract_model: str | None = Field(None, description="Model for extraction (default: model).")
    judge_model: str | None = Field(None, description="Model for the extraction judge (default: extract_model).")
    simulator_model: str | None = Field(None, description="Model for the simulator agent (default: model).")
    optimizer_model: str | None = Field(None, description="Model for the optimizer agents (default: model).")
    llm_timeout: float = Field(180.0, gt=0, description="Seconds to wait for one model reply.")
    llm_max_retries: int = Field(4, ge=0, description="Retries on 429, 5xx, timeouts and refused connections.")
    llm_backoff_max: float = Field(60.0, gt=0, description="Longest single wait between retries, in seconds.")
    llm_cache: Literal["auto", "on", "off"] = Field(
        "auto", description="Reply cache: auto caches temperature-0 calls, on caches all, off caches none."
    )
    llm_max_tokens: int | None = Field(None, gt=0, description="Cap on tokens per reply (None: the server's).")
    max_cost_usd: float | None = Field(None, gt=0, description="Cost ceiling per run in USD (None: no ceiling).")
    llm_concurrency: int = Field(16, ge=1, description="Most calls in flight to one model at once, per process.")
    run_max_seconds: float | None = Field(
        10_800.0,
        gt=0,
        description="Wall-clock limit of one run (or one resume of it), seconds; no model call starts after it "
        "(None: no limit).",
    )
    local_server_python: str | None = Field(
        None, description="Python with llama-cpp-python[server] for local:…gguf models (default: this one)."
    )
    local_n_ctx: int = Field(16384, ge=512, description="Context length of a local model server, tokens.")
    local_threads: int = Field(
        0, ge=0, description="CPU threads of a local model server (0: every core; llama.cpp alone would use half)."
    )
    local_cache_mb: int = Field(
        0,
        ge=0,
        description="llama-cpp-python's RAM prompt cache, MiB (0: off; its cap is not enforced per entry: a 1.5B "
        "model at 16k context grew to 22 GB and was OOM-killed).",
    )
    local_start_timeout: float = Field(300.0, gt=0, description="Seconds to wait for a local model server to start.")
    hf_endpoint: str = Field(
        "https://huggingface.co", description="Hub that local:hf:OWNER/REPO/FILE.gguf downloads from."
    )

    # --- embeddings and memory ----------------------------------------------------------------------------
    embedder: str = Field(
        "auto", description="auto, minilm, lexical, or a model name whose /embeddings endpoint to use."
    )
    embed_model_dir: Path | None = Field(None, description="Folder with the MiniLM files (default: found).")
    embed_cache: Path | None = Field(
        None, description="Embedding cache file (default: $NEMO_HOME/cache/embeddings.db)."
    )
    memory: bool = Field(True, description="Retrieve solved examples for the run at all (off: ablation).")
    memory_extract: bool = Field(
        True, description="Show the extractor the retrieved examples (the judge never sees them; off: ablation)."
    )
    memory_simulator: bool = Field(True, description="Give the simulator agent the retrieved examples (off: ablation).")
    memory_optimizers: bool = Field(
        True, description="Give the optimizer agents the retrieved examples as runnable files (off: ablation)."
    )
    memory_pool: int = Field(20, ge=1, description="Retrieval pool size m (most similar exemplars by cosine).")
    memory_k: int = Field(3, ge=0, description="Exemplars chosen per problem (k).")
    memory_lambda: float = Field(0.5, ge=0, description="Diversity weight λ of the greedy selection.")
    memory_leak_similarity: float = Field(
        0.95, gt=0, le=1, description="Cosine at or above which an exemplar counts as the same problem (leak guard)."
    )
    memory_grow: bool = Field(False, description="Add every verified run to memory automatically.")

    # --- pipeline ----------------------------------------------------------------------------------------
    max_problem_chars: int = Field(
        200_000,
        ge=1_000,
        description="Longest problem description accepted, in characters (its text is resent on every agent turn).",
    )
    extractions: int = Field(5, ge=1, description="Number of sampled extractions (n).")
    mbr: bool = Field(True, description="Choose among extractions by component-wise MBR and a judge (off: first).")
    mbr_top_q: int = Field(3, ge=1, description="Candidates with the highest MBR utility shown to the judge (q).")
    mbr_weights: dict[str, float] = Field(
        default_factory=dict, description="Weight per P* component in the MBR utility (missing: 1.0)."
    )
    extract_temperature: float = Field(0.7, ge=0, le=2, description="Sampling temperature when extractions > 1.")
    extract_retry: bool = Field(
        False,
        description="When no extraction is usable after its repair, draw one fresh sample (temperature 0.5) before "
        "failing the run (on for local models, which extract once).",
    )
    extract_trace_repair: bool = Field(
        False,
        description="When P*'s numbers do not trace to the text (stated numbers missing, unstated ones present), "
        "ask the extractor once to repair them; kept only if it traces better (on for local models).",
    )
    optimizers: int = Field(3, ge=1, description="Number of independent optimizer agents (T).")
    agent_temperature: float = Field(
        0.7,
        ge=0,
        le=2,
        description="Temperature of the simulator agent and of optimizers 2..T (optimizer 1 samples greedily, at 0, "
        "unless optimizer_diversity is off).",
    )
    optimizer_diversity: bool = Field(
        True,
        description="Make the T optimizers differ: optimizer 1 greedy with every example, the others sampled at "
        "agent_temperature, each with its own subset of the examples and the next capable solver (off: every "
        "optimizer gets the same request at agent_temperature; ablation).",
    )
    repair_rounds: int = Field(3, ge=0, description="Validation-repair rounds per optimizer (R).")
    atol: float = Field(1e-6, ge=0, description="Absolute tolerance for objective agreement and feasibility.")
    rtol: float = Field(1e-6, ge=0, description="Relative tolerance for objective agreement and feasibility.")
    simulate: bool = Field(True, description="Run the simulator and the validation loop (off: ablation).")
    solvers: list[str] = Field(
        default_factory=list, description="Solvers the agents may use, by name (empty: every installed one)."
    )
    crosscheck_probes: int = Field(
        24, ge=0, description="Probe points of the feasible-region cross-check after validation passes (0: off)."
    )

    # --- coding agents -----------------------------------------------------------------------------------
    agent_protocol: Literal["tools", "text", "files"] = Field(
        "tools",
        description="tools: native tool calls; text: one fenced bash block per reply; files: every reply is the "
        "whole file(s), which the harness saves, runs and checks (for small local models).",
    )
    agent_backend: Literal["builtin", "mini-swe-agent"] = Field(
        "builtin",
        description="builtin: nemo-opt's agent loop; mini-swe-agent: its loop, same sandbox (minisweagent extra).",
    )
    agent_max_steps: int = Field(40, ge=1, description="Most model turns one agent may take.")
    simulator_max_steps: int | None = Field(
        None, ge=1, description="Most model turns the simulator agent may take (default: agent_max_steps)."
    )
    agent_max_tokens: int = Field(600_000, ge=1, description="Most tokens (in + out) one agent may spend.")
    agent_max_seconds: float = Field(1800.0, gt=0, description="Wall-clock budget of one agent, in seconds.")
    agent_observation_chars: int = Field(12_000, ge=500, description="Longest command output shown to an agent.")

    # --- sandbox -----------------------------------------------------------------------------------------
    sandbox: Literal["auto", "bwrap", "plain"] = Field(
        "auto", description="auto uses bubblewrap when present, else a plain subprocess (with a warning)."
    )
    sandbox_timeout: float = Field(120.0, gt=0, description="Wall-clock limit of one sandboxed command, seconds.")
    sandbox_memory_mb: int = Field(4096, ge=64, description="Address-space limit of a sandboxed command, MiB.")
    sandbox_cpu_seconds: int = Field(300, ge=1, description="CPU-time limit of a sandboxed command, seconds.")
    sandbox_file_size_mb: int = Field(512, ge=1, description="Largest file a sandboxed command may write, MiB.")
    sandbox_max_processes: int = Field(256, ge=8, description="Most processes a sandboxed command may run.")
    sandbox_max_output_mb: int = Field(64, ge=1, description="Output beyond this kills the command, MiB.")
    sandbox_disk_mb: int = Field(
        2048, ge=1, description="Most disk the whole sandbox workspace may use; more kills the command, MiB."
    )
    sandbox_concurrency: int = Field(
        0, ge=0, description="Most sandboxed commands running at once, per process (0: the number of CPUs)."
    )
    sandbox_env_passthrough: list[str] = Field(
        default_factory=list, description="Extra environment variables passed into the sandbox (never secrets)."
    )

    @field_validator("mbr_weights")
    @classmethod
    def _known_components(cls, weights: dict[str, float]) -> dict[str, float]:
        from nemo_opt.stages.mbr import COMPONENTS  # the component names live with the utility that uses them

        unknown = sorted(set(weights) - set(COMPONENTS))
        if unknown:
            raise ValueError(
                f"unknown P* component(s) {', '.join(unknown)}; mbr_weights keys are {', '.join(COMPONENTS)}"
            )
        negative = sorted(k for k, v in weights.items() if v < 0)
        if negative:
            raise ValueError(f"mbr_weights must not be negative ({', '.join(negative)})")
        return weights

    @model_validator(mode="after")
    def _local_model_profile(self) -> Settings:
        """A local llama.cpp model serves one request at a time, slowly, and calls tools unreliably: unless set
        explicitly, use the plain-text agent protocol, one request in flight, a long reply timeout, a cooler
        sampling temperature, one extraction and no examples in its prompt (see LOCAL_MODEL_PROFILE)."""
        if self.model and self.model.strip().startswith("local:"):
            for name, value in LOCAL_MODEL_PROFILE.items():
                if name not in self.model_fields_set:
                    object.__setattr__(self, name, value)
        return self

    @model_validator(mode="after")
    def _resolve_paths(self) -> Settings:
        object.__setattr__(self, "home", self.home.expanduser())
        for name in ("runs_dir", "benchmarks_dir", "memory_dir", "embed_model_dir", "embed_cache"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, Path(value).expanduser())
        return self

    @property
    def config_file(self) -> Path | None:
        """The nemo.toml these settings were read from, absolute (None: no file, or built without load_settings)."""
        return self._config_file

    @property
    def run_root(self) -> Path:
        """Directory under which run folders are created."""
        return self.runs_dir or self.home / "runs"

    @property
    def store_path(self) -> Path:
        """The SQLite run store."""
        return self.home / "nemo.db"

    @property
    def memory_path(self) -> Path:
        """The SQLite memory store."""
        return self.home / "memory" / "memory.db"

    @property
    def embed_cache_path(self) -> Path:
        """The SQLite embedding cache."""
        return self.embed_cache or self.home / "cache" / "embeddings.db"

    @property
    def models_dir(self) -> Path:
        """Where downloaded model files are kept."""
        return self.home / "models"

    @property
    def cache_path(self) -> Path:
        """The SQLite reply cache."""
        return self.home / "cache" / "llm.db"

    def model_for(self, stage: Literal["extract", "judge", "simulator", "optimizer"]) -> str | None:
        """The model name a stage uses, after per-stage overrides."""
        if stage == "judge":
            return self.judge_model or self.extract_model or self.model
        override: str | None = getattr(self, f"{stage}_model")
        return override or self.model


def config_path(environ: Mapping[str, str] | None = None) -> Path | None:
    """The nemo.toml that applies, or None when there is none.

    The first of ``$NEMO_CONFIG``, ``./nemo.toml``, ``$NEMO_HOME/nemo.toml`` wins. Hand-written because
    TomlConfigSettingsSource, given several files, reads every one that exists and merges them; nemo-opt reads one.
    """
    env = os.environ if environ is None else environ
    if env.get("NEMO_CONFIG"):
        path = Path(env["NEMO_CONFIG"]).expanduser()
        if not path.is_file():
            raise ConfigError(f"NEMO_CONFIG points to {path}, which does not exist. Fix the path or unset it.")
        return path
    local = Path("nemo.toml")
    if local.is_file():
        return local
    home = Path(env.get("NEMO_HOME") or _default_home()).expanduser()
    candidate = home / "nemo.toml"
    return candidate if candidate.is_file() else None


_FIELDS = Settings.model_fields


def _name_list(unknown: Iterable[str], valid: Iterable[str]) -> str:
    """``'a' (did you mean 'b'?), 'c'``, followed by every valid name when none of them is close to one."""
    valid = sorted(valid)
    parts, guessed = [], False
    for name in unknown:
        close = difflib.get_close_matches(name, valid, n=1)
        parts.append(f"'{name}' (did you mean '{close[0]}'?)" if close else f"'{name}'")
        guessed = guessed or bool(close)
    listing = "" if guessed else f". Valid names: {', '.join(valid)}"
    return ", ".join(parts) + listing


def _accepts_none(field: FieldInfo) -> bool:
    return type(None) in get_args(field.annotation)


class _EnvLayer(EnvSettingsSource):
    """The ``NEMO_*`` variables of one mapping: ``os.environ``, or the one given to :func:`load_settings`.

    On top of pydantic-settings' reading (JSON for lists and dicts) a list may be comma-separated
    (``NEMO_SOLVERS=highs,scip``), and ``none``, ``null`` or an empty value unsets an optional setting (any case:
    pydantic-settings' ``env_parse_none_str`` takes one exact spelling). A ``NEMO_*`` name that is no setting is
    an error naming the closest one: pydantic-settings skips variables that match no field, so a misspelt
    setting would otherwise be ignored without a word.
    """

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        given = {key: value for key, value in environ.items() if key.startswith(ENV_PREFIX)}
        unknown = [k for k in sorted(given) if k not in _NON_FIELD_ENV and k[len(ENV_PREFIX) :].lower() not in _FIELDS]
        if unknown:
            valid = [ENV_PREFIX + name.upper() for name in _FIELDS]
            raise ConfigError(
                f"Unknown NEMO_* environment variable(s) {_name_list(unknown, valid)}. Each NEMO_ variable names a "
                "setting (see nemo_opt.settings.Settings): fix the name, or unset it for nemo-opt."
            )
        # Variable that sets each field, as spelt in the environment (error messages name it).
        self.variables = {key[len(ENV_PREFIX) :].lower(): key for key in given if key not in _NON_FIELD_ENV}
        self._unset = {
            name: None
            for name, key in self.variables.items()
            if given[key].strip().lower() in _NONE_WORDS and _accepts_none(_FIELDS[name])
        }
        # Only settings reach pydantic-settings: NEMO_API_KEY and the other non-settings stay out of the layer.
        self._given = {key: given[key] for name, key in self.variables.items() if name not in self._unset}
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        # pydantic-settings reads os.environ here; load_settings(environ=...) supplies its own mapping.
        return {key.lower(): value for key, value in self._given.items()}

    def prepare_field_value(self, field_name: str, field: FieldInfo, value: Any, value_is_complex: bool) -> Any:
        is_list = get_origin(field.annotation) is list
        if is_list and isinstance(value, str) and not value.lstrip().startswith("["):
            return [part.strip() for part in value.split(",") if part.strip()]
        try:
            return super().prepare_field_value(field_name, field, value, value_is_complex)
        except ValueError as exc:  # the JSON of a list or dict setting
            variable = self.variables.get(field_name, ENV_PREFIX + field_name.upper())
            expected = "a JSON list or comma-separated names" if is_list else 'a JSON object, e.g. {"objective": 2}'
            raise ConfigError(f"{variable}: expected {expected}, got {value!r} ({exc}).") from exc

    def __call__(self) -> dict[str, Any]:
        return {**super().__call__(), **self._unset}


class _TomlLayer(TomlConfigSettingsSource):
    """One nemo.toml, whose top-level keys must all be setting names."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path) -> None:
        self.path = path = path.absolute()  # messages and Settings.config_file name it whatever the cwd
        # TomlConfigSettingsSource skips a file that does not exist; a file named by --config or load_settings(config=)
        # must be there.
        if not path.is_file():
            raise ConfigError(f"Cannot read {path}: it is not a file. Fix the path or remove the option.")
        try:
            super().__init__(settings_cls, toml_file=path)
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"Cannot read {path}: {exc}. Fix the file or remove it.") from exc
        unknown = sorted(set(self.toml_data) - set(_FIELDS))
        if unknown:
            raise ConfigError(
                f"{path}: unknown setting(s) {_name_list(unknown, _FIELDS)}. Keys are the field names of "
                "nemo_opt.settings.Settings: fix the key or remove it."
            )


# The layers of the load_settings call in progress, below its flags: the environment, then nemo.toml if any.
_LAYERS: ContextVar[tuple[PydanticBaseSettingsSource, ...]] = ContextVar("nemo_settings_layers", default=())


class _Layers(BaseSettings, Settings):
    """Settings read from every layer. load_settings turns them into a plain Settings, so that a Settings built
    anywhere else never reads the environment or a file."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Highest first: the flags (init arguments), then NEMO_*, then nemo.toml; pydantic-settings adds the
        # defaults last. Its own env_settings reads os.environ only, so _EnvLayer replaces it; nemo-opt reads no
        # .env file and no secrets directory.
        return (init_settings, *_LAYERS.get())


def _origin(field: str, flags: Mapping[str, Any], env: _EnvLayer, file: _TomlLayer | None) -> str:
    """Which layer set ``field`` (the highest that has it)."""
    if field in flags:
        return "command line"
    if field in env.variables:
        return env.variables[field]
    if file is not None and field in file.toml_data:
        return str(file.path)
    return "defaults"


def load_settings(
    overrides: Mapping[str, Any] | None = None,
    *,
    config: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Build the settings: defaults, then nemo.toml, then NEMO_* environment, then ``overrides`` (CLI flags).

    ``None`` values in ``overrides`` mean "flag not given" and are skipped. ``config`` replaces the nemo.toml
    lookup; ``environ`` replaces ``os.environ``. The result's ``config_file`` is the nemo.toml that was read.
    """
    env = os.environ if environ is None else environ
    flags = {key: value for key, value in (overrides or {}).items() if value is not None}
    unknown = [key for key in flags if key not in _FIELDS]
    if unknown:
        raise ConfigError(f"Unknown setting(s) {_name_list(unknown, _FIELDS)}.")
    path = config or config_path(env)
    env_layer = _EnvLayer(_Layers, env)
    file_layer = None if path is None else _TomlLayer(_Layers, path)
    token = _LAYERS.set((env_layer,) if file_layer is None else (env_layer, file_layer))
    try:
        layered = _Layers(**flags)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(part) for part in err["loc"]) or "?"
            origin = _origin(str(err["loc"][0]), flags, env_layer, file_layer) if err["loc"] else "defaults"
            problems.append(f"{where} (from {origin}): {err['msg']}, got {err.get('input')!r}")
        raise ConfigError("Invalid settings:\n  " + "\n  ".join(problems)) from exc
    except SettingsError as exc:
        raise ConfigError(f"Cannot read the NEMO_* settings: {exc}.") from exc
    finally:
        _LAYERS.reset(token)
    # Only the fields some layer set, so that Settings knows which were chosen (see _local_model_profile).
    settings = Settings.model_validate(layered.model_dump(exclude_unset=True))
    settings._config_file = None if file_layer is None else file_layer.path
    return settings


# Settings that shape what a run computes: a resumed run takes them from its run.json, so it continues the same
# run, and a benchmark run is identified by them (with the model settings). Everything else (endpoints, limits,
# the sandbox, caches, paths) comes from the configuration in force.
SHAPE_SETTINGS = (
    "memory",
    "memory_k",
    "memory_pool",
    "memory_lambda",
    "memory_extract",
    "memory_simulator",
    "memory_optimizers",
    "embedder",
    "extractions",
    "mbr",
    "mbr_top_q",
    "mbr_weights",
    "extract_temperature",
    "extract_trace_repair",
    "extract_retry",
    "optimizers",
    "optimizer_diversity",
    "agent_temperature",
    "agent_protocol",
    "agent_backend",
    "agent_max_steps",
    "simulator_max_steps",
    "repair_rounds",
    "atol",
    "rtol",
    "simulate",
    "solvers",
    "crosscheck_probes",
)
MODEL_SETTINGS = ("model", "extract_model", "judge_model", "simulator_model", "optimizer_model")
