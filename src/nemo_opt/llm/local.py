"""Local models: a GGUF file served by llama.cpp as a managed child process, used like any OpenAI-compatible server.

``local:PATH.gguf`` starts ``python -m llama_cpp.server`` (the ``llama-cpp-python[server]`` package, extra
``nemo-opt[local]``) on a free loopback port, waits until it answers ``/v1/models``, and stops it when this
process exits. The server runs under a small watchdog process (:mod:`nemo_opt.llm._watchdog`) that stops it
when its parent goes away, so even a ``kill -9`` of nemo-opt leaves no model server behind.

``local:hf:OWNER/REPO/FILE.gguf`` first downloads the file from the Hugging Face hub (``hf_endpoint``) into
``$NEMO_HOME/models`` (resumable, with an optional ``#sha256=…`` suffix checked after the download).

A llama.cpp server has one slot: requests are served one at a time and each waits for the previous one, so a
local model is called one request at a time from this process, with a long reply timeout. The server reuses
the prompt prefix it evaluated last; its optional RAM cache of older prefixes (``local_cache_mb``) is off by
default because its size cap did not hold (a 1.5B model at 16k context grew to 22 GB and was OOM-killed).
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from nemo_opt.exceptions import ConfigError, ModelNotConfigured
from nemo_opt.fsutil import sha256_file

__all__ = [
    "LLAMA_CPP_BUILD",
    "ManagedServer",
    "download_gguf",
    "llama_server_command",
    "local_server",
    "resolve_gguf",
    "stop_all",
]

# The portable build: a default build compiles for the build machine's CPU (-march=native) and can die with
# SIGILL elsewhere, e.g. in a container on a different host.
LLAMA_CPP_BUILD = (
    'CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON '
    "-DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF -DLLAMA_BUILD_TESTS=OFF "
    '-DLLAMA_BUILD_EXAMPLES=OFF" pip install --no-cache-dir "llama-cpp-python[server]"'
)
HF_ENDPOINT = "https://huggingface.co"
_CHUNK = 1 << 20


@dataclass
class ManagedServer:
    """One model server child process on a loopback port."""

    command: list[str]
    port: int
    log_path: Path
    start_timeout: float = 300.0
    alias: str = "local"
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> ManagedServer:
        """Start the process and wait until it answers; raises :class:`ConfigError` with the log's tail."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        watchdog = [sys.executable, "-m", "nemo_opt.llm._watchdog", str(os.getpid()), "--", *self.command]
        self.process = subprocess.Popen(
            watchdog, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ConfigError(
                    f"The local model server exited with code {self.process.returncode} while starting.\n"
                    f"{self._tail()}\nFull log: {self.log_path}"
                )
            if self.answers():
                return self
            time.sleep(0.5)
        self.stop()
        raise ConfigError(
            f"The local model server did not answer on {self.base_url} within {self.start_timeout:.0f} s "
            f"(setting local_start_timeout).\n{self._tail()}\nFull log: {self.log_path}"
        )

    def answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.base_url}/models", timeout=2) as reply:  # noqa: S310 (loopback)
                return bool(reply.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, grace: float = 10.0) -> None:
        """Stop the watchdog (which stops the server); escalate to SIGKILL of the whole group."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, 9)
                process.wait(5)
        if self._log is not None:
            self._log.close()
            self._log = None

    def _tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_python(configured: str | None) -> str:
    """The interpreter that runs ``llama_cpp.server``: the setting, else this one (which must have it)."""
    if configured:
        if not Path(configured).exists() and shutil.which(configured) is None:
            raise ConfigError(
                f"local_server_python = {configured!r} does not exist. Point it at a Python with "
                "llama-cpp-python[server] installed, or leave it empty to use this interpreter."
            )
        return configured
    if importlib.util.find_spec("llama_cpp") is None:
        raise ConfigError(
            "A local:…gguf model needs llama-cpp-python with its server. Install the portable build:\n"
            f"  {LLAMA_CPP_BUILD}\n"
            "(or pip install 'nemo-opt[local]'; a default build may crash with 'Illegal instruction' on other "
            "CPUs), or set local_server_python to a Python that has it. scripts/quickstart.sh does both."
        )
    return sys.executable


def llama_server_command(
    path: Path, port: int, *, python: str, n_ctx: int, threads: int, alias: str, cache_mb: int
) -> list[str]:
    """The llama-cpp-python server command line for ``path`` on loopback ``port``."""
    command = [
        python, "-m", "llama_cpp.server",
        "--model", str(path), "--model_alias", alias,
        "--host", "127.0.0.1", "--port", str(port),
        "--n_ctx", str(n_ctx), "--verbose", "false",
    ]  # fmt: skip
    # llama-cpp-python's own default generates with half the cores (one of two here). Measured with
    # Qwen2.5-Coder-1.5B Q4_K_M on 2 cores, 160 prompt + 64 completion tokens: 8.3-9.2 s with one thread,
    # 5.0-6.0 s with two. So 0 means every core this process may run on.
    count = threads if threads > 0 else len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 0
    count = count or os.cpu_count() or 1
    command += ["--n_threads", str(count), "--n_threads_batch", str(count)]
    if cache_mb > 0:
        command += ["--cache", "true", "--cache_type", "ram", "--cache_size", str(cache_mb << 20)]
    return command


def download_gguf(ref: str, target_dir: Path, *, endpoint: str = HF_ENDPOINT, timeout: float = 60.0) -> Path:
    """Download ``OWNER/REPO/FILE.gguf[#sha256=HEX]`` from a Hugging Face-style hub; resumes a partial file.

    The file lands in ``target_dir/OWNER__REPO/FILE`` and is only renamed into place once complete (and its
    SHA-256 matches when one is given), so an interrupted download is never mistaken for a model.
    """
    spec, _, fragment = ref.partition("#")
    expected = fragment.removeprefix("sha256=").lower() if fragment else None
    parts = spec.strip("/").split("/")
    if len(parts) < 3 or not parts[-1].endswith(".gguf"):
        raise ModelNotConfigured(
            f"local:hf:{ref} — expected local:hf:OWNER/REPO/FILE.gguf, e.g. "
            "local:hf:Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
        )
    repo, filename = "/".join(parts[:2]), "/".join(parts[2:])
    target = target_dir / repo.replace("/", "__") / filename
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    url = f"{endpoint.rstrip('/')}/{repo}/resolve/main/{filename}"
    have = partial.stat().st_size if partial.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    token = os.environ.get("HF_TOKEN")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:  # noqa: S310 (user-chosen hub)
            resumed = bool(have) and reply.status == 206
            length = reply.headers.get("Content-Length")
            expected_size = (have if resumed else 0) + int(length) if length else None
            with partial.open("ab" if resumed else "wb") as out:
                shutil.copyfileobj(reply, out, _CHUNK)
        size = partial.stat().st_size
        if expected_size is not None and size < expected_size:
            raise OSError(f"connection closed after {size} of {expected_size} bytes")
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # the partial file is already complete
            pass
        else:
            raise ConfigError(
                f"Downloading {url} failed: HTTP {exc.code} {exc.reason}. Check the name "
                "(and HF_TOKEN for gated models), or download the file and pass local:PATH.gguf."
            ) from exc
    except OSError as exc:
        raise ConfigError(
            f"Downloading {url} failed: {exc}. The partial file {partial} is kept; run again to "
            "resume, or download the file yourself and pass local:PATH.gguf."
        ) from exc
    if expected:
        digest = sha256_file(partial)
        if digest != expected:
            partial.unlink()
            raise ConfigError(f"{url}: SHA-256 {digest} does not match the expected {expected}; file removed.")
    partial.replace(target)
    return target


def resolve_gguf(ref: str, *, models_dir: Path, endpoint: str = HF_ENDPOINT) -> Path:
    """A ``local:`` reference → a GGUF file on disk (downloading ``hf:`` references)."""
    if ref.startswith("hf:"):
        return download_gguf(ref[3:], models_dir, endpoint=endpoint)
    path = Path(ref).expanduser()
    if not path.is_file():
        raise ModelNotConfigured(
            f"local:{ref} — no such file. Pass the path of a GGUF model file (e.g. local:models/qwen.gguf); "
            "scripts/assemble_gguf.py assembles one offline, local:hf:OWNER/REPO/FILE.gguf downloads one."
        )
    with path.open("rb") as handle:
        if handle.read(4) != b"GGUF":
            raise ModelNotConfigured(f"local:{ref} is not a GGUF file (it does not start with 'GGUF').")
    return path.resolve()


_SERVERS: dict[tuple[str, ...], ManagedServer] = {}
_LOCK = threading.Lock()


def local_server(
    path: Path,
    *,
    python: str | None,
    n_ctx: int,
    threads: int,
    cache_mb: int,
    log_dir: Path,
    start_timeout: float,
) -> ManagedServer:
    """The running server for ``path`` (started on first use, shared by every caller in this process)."""
    key = (str(path), python or "", str(n_ctx), str(threads), str(cache_mb))
    with _LOCK:
        server = _SERVERS.get(key)
        if server is not None and server.alive():
            return server
        port = free_port()
        alias = path.stem
        command = llama_server_command(
            path, port, python=server_python(python), n_ctx=n_ctx, threads=threads, alias=alias, cache_mb=cache_mb
        )
        server = ManagedServer(command, port, log_dir / f"llama-server-{port}.log", start_timeout, alias)
        server.start()
        _SERVERS[key] = server
        return server


def stop_all() -> None:
    """Stop every server this process started (also registered with :mod:`atexit`)."""
    with _LOCK:
        servers = list(_SERVERS.values())
        _SERVERS.clear()
    for server in servers:
        server.stop()


atexit.register(stop_all)
