"""The safe door between the host and agent-touched folders: symlinks, special files, size, depth, races."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from nemo_opt import door
from nemo_opt.exceptions import DoorRefused


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "ws"
    folder.mkdir()
    (tmp_path / "host.txt").write_text("host secret\n")
    return folder


def test_symlinks_are_refused_at_every_component(root: Path) -> None:
    host = root.parent / "host.txt"
    (root / "sub").mkdir()
    os.symlink(host, root / "link.txt")
    os.symlink(root.parent, root / "sub" / "up")
    os.symlink(root.parent, root / "dirlink")
    for relative in ("link.txt", "sub/up/host.txt", "dirlink/host.txt", "../host.txt", str(host)):
        with pytest.raises(DoorRefused):
            door.read_bytes(root, relative)
    assert not door.exists(root, "link.txt") and not door.is_dir(root, "dirlink")


def test_special_files_are_refused_without_blocking(root: Path) -> None:
    os.mkfifo(root / "fifo")
    with pytest.raises(DoorRefused, match="FIFO"):
        door.read_bytes(root, "fifo")
    if os.getuid() == 0:
        os.mknod(root / "null", 0o600 | stat.S_IFCHR, os.makedev(1, 3))
        with pytest.raises(DoorRefused, match="character device"):
            door.read_bytes(root, "null")
    (root / "folder").mkdir()
    with pytest.raises(DoorRefused, match="directory"):
        door.read_text(root, "folder")


def test_sizes_and_nesting_are_capped(root: Path) -> None:
    (root / "big").write_bytes(b"x" * 2000)
    assert len(door.read_bytes(root, "big", max_bytes=2000)) == 2000
    with pytest.raises(DoorRefused, match="more than the 1999"):
        door.read_bytes(root, "big", max_bytes=1999)
    (root / "deep.json").write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(DoorRefused, match="nests deeper than 64"):
        door.read_json(root, "deep.json")
    # Brackets inside strings are text, not nesting.
    (root / "text.json").write_text('{"note": "' + "[" * 500 + '"}')
    assert door.read_json(root, "text.json")["note"] == "[" * 500
    with pytest.raises(FileNotFoundError, match="missing.json"):
        door.read_json(root, "missing.json")


def test_writes_replace_symlinks_and_never_follow_them(root: Path) -> None:
    host = root.parent / "host.txt"
    os.symlink(host, root / "run.log")
    door.write_text(root, "run.log", "agent output\n")
    assert host.read_text() == "host secret\n"
    assert not (root / "run.log").is_symlink() and (root / "run.log").read_text() == "agent output\n"
    assert stat.S_IMODE((root / "run.log").stat().st_mode) == 0o644
    os.symlink(root.parent, root / "history")
    with pytest.raises(DoorRefused, match="not a plain directory"):
        door.write_text(root, "history/round_0/model.py", "x")
    assert not (root.parent / "round_0").exists()
    door.write_text(root, "new/deeper/file.txt", "made")
    assert (root / "new" / "deeper" / "file.txt").read_text() == "made"


def test_copies_take_regular_files_and_record_the_rest(root: Path, tmp_path: Path) -> None:
    (root / "sim").mkdir()
    (root / "sim" / "simulator.py").write_text("def simulate(): ...\n")
    os.symlink(root.parent / "host.txt", root / "sim" / "__init__.py")
    os.mkfifo(root / "sim" / "pipe.py")
    target = tmp_path / "copy"
    target.mkdir()
    record = door.copy_files(root, "sim", target, "sim")
    assert record.copied == ["simulator.py"]
    assert set(record.refused) == {"__init__.py", "pipe.py"} and "symlink" in record.refused["__init__.py"]
    assert not (target / "sim" / "__init__.py").exists()


def test_a_file_swapped_for_a_symlink_while_read_is_never_followed(root: Path) -> None:
    """An agent's command running at the same time flips the file between a real file and a symlink."""
    host = root.parent / "host.txt"
    stop = threading.Event()

    def flip() -> None:
        while not stop.is_set():
            try:
                os.replace(root / "real", root / "solution.json")
                os.symlink(host, root / "tmp-link")
                os.replace(root / "tmp-link", root / "solution.json")
            except OSError:
                pass
            (root / "real").write_text('{"ok": true}')

    (root / "real").write_text('{"ok": true}')
    thread = threading.Thread(target=flip, daemon=True)
    thread.start()
    seen = set()
    try:
        for _ in range(2000):
            try:
                seen.add(door.read_text(root, "solution.json"))
            except (DoorRefused, FileNotFoundError):
                seen.add("refused")
    finally:
        stop.set()
        thread.join()
    assert "host secret\n" not in seen and seen <= {'{"ok": true}', "refused"}


def test_paths_normalise_inside_the_root_only(root: Path) -> None:
    assert str(door.normalise("optimizers/opt_1/../../simulator/simulator.py", root)) == "simulator/simulator.py"
    assert str(door.normalise(root / "a" / "b", root)) == "a/b"
    with pytest.raises(DoorRefused, match="leads outside"):
        door.normalise("optimizers/../../x", root)
    with pytest.raises(DoorRefused, match="NUL"):
        door.normalise("a\0b", root)
