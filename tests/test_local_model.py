"""The local-model path: GGUF references, the managed llama.cpp server process, its watchdog, downloads.

The llama.cpp server itself is replaced by a stand-in with the same command line (tests/fixtures/fake_llama);
process management, readiness waits, the watchdog and the OpenAI-compatible client run for real.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from nemo_opt.exceptions import ConfigError, ModelNotConfigured
from nemo_opt.llm import local
from nemo_opt.llm.base import Message
from nemo_opt.llm.registry import create_llm
from nemo_opt.settings import load_settings

FAKE_LLAMA = Path(__file__).parent / "fixtures" / "fake_llama"


@pytest.fixture
def gguf(tmp_path: Path) -> Path:
    path = tmp_path / "tiny-model.gguf"
    path.write_bytes(b"GGUF" + bytes(64))
    return path


@pytest.fixture
def fake_llama(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """Put the stand-in ``llama_cpp`` package on the children's path; yield the file it records its pid in."""
    record = tmp_path / "fake-llama.json"
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(FAKE_LLAMA), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("FAKE_LLAMA_RECORD", str(record))
    yield record
    local.stop_all()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purposes
        return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


def _wait_dead(pid: int, seconds: float = 15.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            return True
        time.sleep(0.1)
    return False


def test_gguf_reference_checks(tmp_path: Path, gguf: Path) -> None:
    with pytest.raises(ModelNotConfigured, match="no such file"):
        local.resolve_gguf(str(tmp_path / "missing.gguf"), models_dir=tmp_path)
    not_gguf = tmp_path / "weights.gguf"
    not_gguf.write_text("<html>login required</html>")
    with pytest.raises(ModelNotConfigured, match="not a GGUF file"):
        local.resolve_gguf(str(not_gguf), models_dir=tmp_path)
    assert local.resolve_gguf(str(gguf), models_dir=tmp_path) == gguf.resolve()


def test_local_model_profile_unless_set_explicitly(gguf: Path) -> None:
    profile = load_settings({"model": f"local:{gguf}"}, environ={})
    assert (profile.agent_protocol, profile.llm_concurrency, profile.llm_timeout) == ("files", 1, 1800.0)
    assert (profile.agent_max_steps, profile.repair_rounds, profile.memory_optimizers) == (4, 1, False)
    assert profile.simulator_max_steps == 6
    assert (profile.agent_temperature, profile.memory_extract, profile.extractions) == (0.3, False, 1)
    explicit = load_settings({"model": f"local:{gguf}", "agent_protocol": "tools", "llm_timeout": 60.0}, environ={})
    assert (explicit.agent_protocol, explicit.llm_timeout) == ("tools", 60.0)
    remote = load_settings({"model": "openai:gpt-4.1"}, environ={})
    assert remote.agent_protocol == "tools" and remote.llm_concurrency == 16
    assert (remote.agent_temperature, remote.memory_extract, remote.extractions) == (0.7, True, 5)


@pytest.mark.skipif(
    __import__("importlib.util").util.find_spec("llama_cpp") is not None, reason="llama-cpp-python is installed here"
)
def test_missing_llama_cpp_names_the_portable_build() -> None:
    with pytest.raises(ConfigError, match="GGML_NATIVE=OFF"):
        local.server_python(None)


def test_managed_server_serves_chat_and_stops(tmp_path: Path, gguf: Path, fake_llama: Path) -> None:
    settings = load_settings(
        {"home": str(tmp_path / "home"), "model": f"local:{gguf}", "local_server_python": sys.executable},
        environ={},
    )
    llm = create_llm(settings.model or "", settings)
    reply = llm.complete([Message("user", "hello")])
    assert reply.choices[0].text == "echo from tiny-model: hello"
    argv = json.loads(fake_llama.read_text())["argv"]
    assert argv[argv.index("--host") + 1] == "127.0.0.1"
    assert argv[argv.index("--n_ctx") + 1] == "16384" and "--cache" not in argv  # off by default
    # A second backend for the same file reuses the running server.
    again = create_llm(settings.model or "", settings)
    assert again.complete([Message("user", "x")]).choices[0].text.endswith(": x")
    pid = json.loads(fake_llama.read_text())["pid"]
    local.stop_all()
    assert _wait_dead(pid), "the model server outlived stop_all()"


def test_server_dies_with_its_parent_even_after_kill_9(tmp_path: Path, gguf: Path, fake_llama: Path) -> None:
    script = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from nemo_opt.llm import local
        server = local.local_server(Path({str(gguf)!r}), python=sys.executable, n_ctx=2048, threads=1,
                                    cache_mb=0, log_dir=Path({str(tmp_path)!r}), start_timeout=60)
        print(server.base_url, flush=True)
        time.sleep(600)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        url = (parent.stdout.readline() if parent.stdout else "").strip()
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(f"{url}/models", timeout=5) as answer:
            assert answer.status == 200
        server_pid = json.loads(fake_llama.read_text())["pid"]
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        assert _wait_dead(server_pid), "the model server outlived a kill -9 of nemo-opt"
    finally:
        if parent.poll() is None:
            parent.kill()


def test_server_that_exits_while_starting_is_reported_with_its_log(tmp_path: Path) -> None:
    command = [sys.executable, "-c", "import sys; print('failed to load model: bad magic'); sys.exit(3)"]
    server = local.ManagedServer(command, local.free_port(), tmp_path / "server.log", start_timeout=30)
    with pytest.raises(ConfigError, match=r"(?s)exited with code 3.*bad magic"):
        server.start()


def test_server_that_never_answers_times_out(tmp_path: Path) -> None:
    command = [sys.executable, "-c", "import time; time.sleep(60)"]
    server = local.ManagedServer(command, local.free_port(), tmp_path / "server.log", start_timeout=1.5)
    started = time.monotonic()
    with pytest.raises(ConfigError, match="did not answer"):
        server.start()
    assert time.monotonic() - started < 15
    assert server.process is None


class _Hub(BaseHTTPRequestHandler):
    """A Hugging Face-style ``/OWNER/REPO/resolve/main/FILE`` route with HTTP range support."""

    files: dict[str, bytes] = {}
    drop_after: int | None = None  # close the connection after this many bytes (an interrupted download)

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        data = self.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        start = 0
        if self.headers.get("Range"):
            start = int(self.headers["Range"].removeprefix("bytes=").rstrip("-"))
            if start >= len(data):
                self.send_error(416)
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.drop_after is not None and not self.headers.get("Range"):
            self.wfile.write(body[: self.drop_after])
            self.wfile.flush()
            self.connection.shutdown(2)
            return
        self.wfile.write(body)


@pytest.fixture
def hub() -> Iterator[tuple[str, type[_Hub]]]:
    handler = type("Hub", (_Hub,), {"files": {}, "drop_after": None})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()


def test_download_verifies_and_resumes(tmp_path: Path, hub: tuple[str, type[_Hub]]) -> None:
    endpoint, handler = hub
    weights = b"GGUF" + os.urandom(300_000)
    handler.files["/acme/tiny-GGUF/resolve/main/tiny.gguf"] = weights
    digest = hashlib.sha256(weights).hexdigest()

    handler.drop_after = 100_000  # the first attempt is cut off half way
    with pytest.raises(ConfigError, match="partial file"):
        local.resolve_gguf(f"hf:acme/tiny-GGUF/tiny.gguf#sha256={digest}", models_dir=tmp_path, endpoint=endpoint)
    partial = tmp_path / "acme__tiny-GGUF" / "tiny.gguf.part"
    assert partial.stat().st_size == 100_000

    handler.drop_after = None
    path = local.resolve_gguf(f"hf:acme/tiny-GGUF/tiny.gguf#sha256={digest}", models_dir=tmp_path, endpoint=endpoint)
    assert path.read_bytes() == weights and not partial.exists()

    handler.files["/acme/tiny-GGUF/resolve/main/other.gguf"] = weights
    with pytest.raises(ConfigError, match="does not match"):
        local.resolve_gguf(f"hf:acme/tiny-GGUF/other.gguf#sha256={'0' * 64}", models_dir=tmp_path, endpoint=endpoint)
    assert not (tmp_path / "acme__tiny-GGUF" / "other.gguf").exists()
    with pytest.raises(ConfigError, match="HTTP 404"):
        local.resolve_gguf("hf:acme/tiny-GGUF/missing.gguf", models_dir=tmp_path, endpoint=endpoint)
    with pytest.raises(ModelNotConfigured, match="OWNER/REPO/FILE.gguf"):
        local.resolve_gguf("hf:just-a-name", models_dir=tmp_path, endpoint=endpoint)


def test_the_managed_server_generates_with_every_core_unless_told(tmp_path: Path) -> None:
    import os

    cores = len(os.sched_getaffinity(0))
    command = local.llama_server_command(
        tmp_path / "m.gguf", 8080, python="py", n_ctx=2048, threads=0, alias="m", cache_mb=0
    )
    assert command[command.index("--n_threads") + 1] == str(cores) and "--n_threads_batch" in command
    told = local.llama_server_command(
        tmp_path / "m.gguf", 8080, python="py", n_ctx=2048, threads=3, alias="m", cache_mb=0
    )
    assert told[told.index("--n_threads") + 1] == "3"
