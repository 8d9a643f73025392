"""The command line as users run it: a real process, its exit code, what it prints."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from nemo_opt.testing import OpenAICompatServer, RoleRouter
from tests.scenarios import EXTRACT, OPTIMIZER, SIMULATOR, product_mix

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "product_mix.md"


def nemo(*args: str, home: Path, stdin: bytes | None = None, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update(
        NEMO_HOME=str(home),
        NEMO_LLM_CACHE="off",
        COLUMNS="200",
        NEMO_EXTRACTIONS="1",
        NEMO_OPTIMIZERS="1",
        NEMO_MEMORY="0",
    )
    return subprocess.run(
        [sys.executable, "-m", "nemo_opt", *args],
        input=stdin.decode() if stdin is not None else None,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def test_solve_then_show(tmp_path: Path) -> None:
    router = RoleRouter(
        {EXTRACT: [product_mix.EXTRACTION], SIMULATOR: product_mix.SIMULATOR, OPTIMIZER: product_mix.OPTIMIZER}
    )
    out_dir = tmp_path / "delivered"
    with OpenAICompatServer(router) as server:
        done = nemo(
            "solve",
            str(EXAMPLE),
            "--model",
            f"openai-compatible:scripted@{server.url}",
            "--out",
            str(out_dir),
            home=tmp_path / "home",
        )
    assert done.returncode == 0, done.stderr
    for stage in ("extract", "recommend", "agents", "consensus", "package"):
        assert f"✓ {stage}" in done.stderr
    assert "verification" in done.stderr and "verified" in done.stderr and "4100" in done.stderr
    # Progress shows each validation round; text from the model is printed literally, not as markup.
    assert "validation round 0: failed: constraint 'finishing_capacity'" in done.stderr
    assert "make[table]" in done.stderr
    assert (out_dir / "model.py").exists() and (out_dir / "test_model.py").exists()

    runs = list((tmp_path / "home" / "runs").iterdir())
    assert len(runs) == 1
    shown = nemo("show", runs[0].name[:15], home=tmp_path / "home")
    assert shown.returncode == 0, shown.stderr
    assert "finishing_capacity" in shown.stdout and "round 1: passed, verified" in shown.stdout
    listed = nemo("runs", home=tmp_path / "home")
    assert listed.returncode == 0 and "verified" in listed.stdout and "4100" in listed.stdout, listed.stdout


def test_no_model_configured_explains_how(tmp_path: Path) -> None:
    done = nemo("solve", str(EXAMPLE), home=tmp_path)
    assert done.returncode == 3
    assert "OPENAI_API_KEY" in done.stderr and "openai-compatible:" in done.stderr
    assert "Traceback" not in done.stderr


def test_missing_key_names_the_variable(tmp_path: Path) -> None:
    done = nemo("solve", str(EXAMPLE), "--model", "openai:gpt-4.1", home=tmp_path)
    assert done.returncode == 3 and "OPENAI_API_KEY" in done.stderr and "Traceback" not in done.stderr


def test_bad_input_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.md"
    empty.write_text("  \n")
    binary = tmp_path / "data.bin"
    binary.write_bytes(bytes(range(256)) * 4)
    for path, message in ((empty, "is empty"), (binary, "binary"), (tmp_path / "nope.md", "does not exist")):
        done = nemo("solve", str(path), "--model", "openai-compatible:x@http://127.0.0.1:9/v1", home=tmp_path)
        assert done.returncode == 2, (path, done.stderr)
        assert message in done.stderr and "Traceback" not in done.stderr
    done = nemo("solve", "-", "--model", "openai-compatible:x@http://127.0.0.1:9/v1", home=tmp_path, stdin=b"")
    assert done.returncode == 2 and "stdin is empty" in done.stderr


def test_unreachable_server_ends_quickly_without_traceback(tmp_path: Path) -> None:
    started = time.monotonic()
    env_home = tmp_path / "home"
    env_home.mkdir()
    (env_home / "nemo.toml").write_text("llm_max_retries = 1\nllm_backoff_max = 0.2\n")
    done = nemo("solve", str(EXAMPLE), "--model", "openai-compatible:qwen@http://127.0.0.1:9/v1", home=env_home)
    assert time.monotonic() - started < 60
    assert done.returncode == 4, done.stderr
    assert "127.0.0.1:9" in done.stderr and "Traceback" not in done.stderr
    assert "Everything produced so far is in" in done.stderr


def test_sigterm_ends_the_run_as_interrupted_with_its_result(tmp_path: Path) -> None:
    """A service manager's or batch system's SIGTERM must not leave a run 'running' without a result.json."""
    import dataclasses
    import json
    import signal

    from nemo_opt.store import RunStore

    slow = dataclasses.replace(product_mix.EXTRACTION, delay=60.0)
    with OpenAICompatServer(RoleRouter({EXTRACT: [slow]})) as server:
        env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
        env.update(NEMO_HOME=str(tmp_path / "home"), NEMO_LLM_CACHE="off", NEMO_EXTRACTIONS="1", NEMO_MEMORY="0")
        command = [sys.executable, "-m", "nemo_opt", "solve", str(EXAMPLE)]
        command += ["--model", f"openai-compatible:scripted@{server.url}"]
        proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        runs = tmp_path / "home" / "runs"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (runs.exists() and any(runs.glob("*/run.json"))):
            time.sleep(0.2)
        time.sleep(1.0)  # inside the extraction call
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    (folder,) = runs.iterdir()
    result = json.loads((folder / "result.json").read_text())
    assert result["status"] == "failed" and result["error_kind"] == "interrupted"
    row = RunStore(tmp_path / "home" / "nemo.db").get_run(folder.name)
    assert row is not None and row["status"] == "failed"


def test_sigterm_during_the_agents_stops_them_at_their_next_model_call(tmp_path: Path) -> None:
    """Agents in worker threads must not go on for their whole budget after the run was told to stop."""
    import dataclasses
    import json
    import signal

    def slow(replies: list) -> list:  # type: ignore[type-arg]
        return [dataclasses.replace(r, delay=2.0) for r in replies]

    looping = slow([dataclasses.replace(product_mix.OPTIMIZER[0]) for _ in range(40)])
    router = RoleRouter({EXTRACT: [product_mix.EXTRACTION], SIMULATOR: slow(product_mix.SIMULATOR), OPTIMIZER: looping})
    with OpenAICompatServer(router) as server:
        env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
        env.update(NEMO_HOME=str(tmp_path / "home"), NEMO_LLM_CACHE="off", NEMO_EXTRACTIONS="1", NEMO_MEMORY="0")
        env.update(NEMO_AGENT_MAX_STEPS="40")
        command = [sys.executable, "-m", "nemo_opt", "solve", str(EXAMPLE)]
        command += ["--model", f"openai-compatible:scripted@{server.url}"]
        proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        runs = tmp_path / "home" / "runs"
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not any(runs.glob("*/trajectories/optimizer_1.json")):
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
        _, stderr = proc.communicate(timeout=60)
        waited = time.monotonic() - started
    # 40 replies of 2 s would keep the optimizer going for 80 s; it stops after the call in flight.
    assert proc.returncode == 130 and waited < 30, (waited, stderr[-2000:])
    (folder,) = runs.iterdir()
    assert json.loads((folder / "result.json").read_text())["error_kind"] == "interrupted"
