"""The one door between the host and a folder that agents (or the code they wrote) may have touched.

Everything an agent wrote is untrusted input. It may be a symlink to a host file, a FIFO that blocks a reader
forever, a device, a file of gigabytes or JSON nested 200,000 levels deep, and it may change while the host looks
at it (the agents' own commands run at the same time). So host code never opens a workspace path by name.
Instead:

- paths are taken relative to a root the host made, normalised lexically, and ``..`` may not leave the root;
- every component is opened with ``O_NOFOLLOW`` relative to the directory file descriptor of the one before
  (``openat``), so no symlink is followed anywhere on the way, and nothing is checked first and used later;
- only regular files are read (``fstatat`` before the open, so a device is never opened; ``fstat`` after it,
  with ``O_NONBLOCK`` so a FIFO swapped in between cannot block), each read has a size cap and a time bound;
- JSON is parsed only after its size and nesting depth were checked;
- writes go to a fresh temporary file (``O_EXCL | O_NOFOLLOW``) in the no-follow-opened parent and are renamed
  over the target (which replaces a symlink there instead of writing through it), with mode 0644;
- copies take regular files only and say which entries they refused and why.

A refusal raises :class:`DoorRefused` (a :class:`~nemo_opt.exceptions.NemoError`) with a message that names the
path and the reason; callers turn it into an observation or a validation failure for the agent concerned.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import secrets
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePath, PurePosixPath
from typing import Any

from nemo_opt.exceptions import DoorRefused

__all__ = [
    "MAX_DEPTH",
    "MAX_READ_BYTES",
    "CopyRecord",
    "DoorRefused",
    "copy_file",
    "copy_files",
    "exists",
    "is_dir",
    "list_files",
    "loads_bounded",
    "make_dirs",
    "normalise",
    "open_lock_file",
    "read_bytes",
    "read_json",
    "read_text",
    "remove",
    "write_bytes",
    "write_json",
    "write_text",
]

# Larger than any file a model, simulator or solution legitimately writes here, small enough to hold in memory.
MAX_READ_BYTES = 16 * 1024 * 1024
# Real solution.json files nest 2-5 levels (variables indexed by up to four sets); 64 leaves plenty of room and
# stays far below Python's recursion limit.
MAX_DEPTH = 64
READ_SECONDS = 10.0
FILE_MODE = 0o644
DIR_MODE = 0o755
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
_CHUNK = 1 << 20


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISLNK, "a symlink"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISDIR, "a directory"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def normalise(relative: str | PurePath, root: Path | None = None) -> PurePosixPath:
    """``relative`` as a clean path inside the root (lexically: no ``.``, no ``..``, not absolute).

    An absolute path is accepted when it lies under ``root`` (as the host spells it). Symlinks are not resolved
    here: the walk refuses them, so the lexical path is the path that is opened."""
    text = str(relative)
    if "\0" in text:
        raise DoorRefused(f"{text!r} contains a NUL byte")
    path = PurePosixPath(text)
    if path.is_absolute():
        if root is None or not path.is_relative_to(PurePosixPath(str(root))):
            raise DoorRefused(f"'{text}' is outside the folder {root}; use a path inside it.")
        path = path.relative_to(PurePosixPath(str(root)))
    parts: list[str] = []
    for part in path.parts:
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise DoorRefused(f"'{text}' leads outside the folder {root or ''}; use a path inside it.")
            parts.pop()
            continue
        parts.append(part)
    return PurePosixPath(*parts) if parts else PurePosixPath(".")


def _split(root: Path, relative: str | PurePath) -> tuple[list[str], str]:
    path = normalise(relative, root)
    if path == PurePosixPath("."):
        raise DoorRefused(f"'{relative}' names the folder {root} itself, not a file in it.")
    return list(path.parts[:-1]), path.parts[-1]


def _open_root(root: Path) -> int:
    try:
        return os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise DoorRefused(f"the folder {root} cannot be opened: {exc.strerror}") from exc


def _open_dirs(root: Path, parts: list[str], *, create: bool = False) -> int:
    """A file descriptor of ``root/parts...``, reached without following any symlink (created when asked)."""
    fd = _open_root(root)
    walked = Path(root)
    try:
        for part in parts:
            walked = walked / part
            try:
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                with contextlib.suppress(FileExistsError):  # made meanwhile by someone else: open it below
                    os.mkdir(part, DIR_MODE, dir_fd=fd)
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise DoorRefused(f"{walked} is not a plain directory (a symlink or a file); refused") from exc
                raise
            os.close(fd)
            fd = child
        return fd
    except BaseException:
        os.close(fd)
        raise


@dataclass
class _Parent:
    fd: int
    name: str
    path: Path

    def close(self) -> None:
        os.close(self.fd)


def _parent(root: Path, relative: str | PurePath, *, create: bool = False) -> _Parent:
    parts, name = _split(root, relative)
    try:
        fd = _open_dirs(root, parts, create=create)
    except FileNotFoundError as exc:
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", str(Path(root, *parts, name))) from exc
    return _Parent(fd, name, Path(root, *parts, name))


def _lstat(parent: _Parent) -> os.stat_result:
    return os.stat(parent.name, dir_fd=parent.fd, follow_symlinks=False)


def read_bytes(
    root: Path, relative: str | PurePath, *, max_bytes: int = MAX_READ_BYTES, seconds: float = READ_SECONDS
) -> bytes:
    """The bytes of the regular file ``root/relative``; refuses symlinks, FIFOs, devices and files over the cap.

    Raises FileNotFoundError when there is no such file (so callers can say "was not written")."""
    parent = _parent(root, relative)
    try:
        try:
            info = _lstat(parent)
        except FileNotFoundError as exc:
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", str(parent.path)) from exc
        if not stat.S_ISREG(info.st_mode):
            raise DoorRefused(f"{parent.path} is {_kind(info.st_mode)}, not a regular file; refused")
        if info.st_size > max_bytes:
            raise DoorRefused(f"{parent.path} holds {info.st_size} bytes, more than the {max_bytes} allowed; refused")
        try:
            fd = os.open(parent.name, _READ_FLAGS, dir_fd=parent.fd)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENXIO):
                raise DoorRefused(f"{parent.path} changed into a symlink or a special file; refused") from exc
            raise
        try:
            opened = os.fstat(fd)
            if not stat.S_ISREG(opened.st_mode):
                raise DoorRefused(f"{parent.path} is {_kind(opened.st_mode)}, not a regular file; refused")
            return _read_capped(fd, parent.path, max_bytes, seconds)
        finally:
            os.close(fd)
    finally:
        parent.close()


def _read_capped(fd: int, path: Path, max_bytes: int, seconds: float) -> bytes:
    os.set_blocking(fd, True)
    deadline = time.monotonic() + seconds
    chunks: list[bytes] = []
    total = 0
    while chunk := os.read(fd, min(_CHUNK, max_bytes + 1 - total)):
        chunks.append(chunk)
        total += len(chunk)
        if total > max_bytes:  # it grew while being read
            raise DoorRefused(f"{path} grew past the {max_bytes} bytes allowed while being read; refused")
        if time.monotonic() > deadline:
            raise DoorRefused(f"reading {path} took more than {seconds:g} s; refused")
    return b"".join(chunks)


def read_text(root: Path, relative: str | PurePath, *, max_bytes: int = MAX_READ_BYTES, errors: str = "strict") -> str:
    """A regular file's text (UTF-8), through :func:`read_bytes`."""
    data = read_bytes(root, relative, max_bytes=max_bytes)
    try:
        return data.decode("utf-8", errors=errors)
    except UnicodeDecodeError as exc:
        raise DoorRefused(f"{Path(root, relative)} is not UTF-8 text ({exc.reason} at byte {exc.start})") from exc


# One token at a time: a string (closed, or running to the end of the text, so an unclosed one is consumed once
# instead of being rescanned from every quote inside it, which made the scan quadratic) or a bracket.
_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\Z)|[\[\]{}]', re.DOTALL)


def loads_bounded(text: str, *, max_depth: int = MAX_DEPTH, source: str = "the JSON") -> Any:
    """``json.loads`` after checking that arrays and objects nest at most ``max_depth`` levels.

    Python's parser recurses once per level, so deep nesting would otherwise end in RecursionError."""
    depth = deepest = 0
    for match in _TOKEN.finditer(text):
        token = match.group()
        if token[0] == '"':
            continue
        depth += 1 if token in "[{" else -1
        if depth > deepest:
            deepest = depth
            if deepest > max_depth:
                raise DoorRefused(f"{source} nests deeper than {max_depth} levels; refused")
    try:
        return json.loads(text)
    except RecursionError as exc:  # a nesting the scan above misjudged: still a refusal, never a crash
        raise DoorRefused(f"{source} nests too deeply to parse; refused") from exc
    except ValueError as exc:
        if isinstance(exc, json.JSONDecodeError):
            raise
        # e.g. an integer of thousands of digits (Python's conversion limit): malformed for our purposes.
        raise json.JSONDecodeError(f"unusable value ({exc})", text[:80], 0) from exc


def read_json(
    root: Path, relative: str | PurePath, *, max_bytes: int = MAX_READ_BYTES, max_depth: int = MAX_DEPTH
) -> Any:
    """A regular file's JSON, size- and depth-bounded. Raises ``json.JSONDecodeError`` for malformed JSON."""
    return loads_bounded(
        read_text(root, relative, max_bytes=max_bytes), max_depth=max_depth, source=str(Path(root, relative))
    )


def write_bytes(root: Path, relative: str | PurePath, data: bytes, *, mode: int = FILE_MODE) -> Path:
    """Write ``root/relative`` as a new file renamed into place (missing folders are created, never followed)."""
    parent = _parent(root, relative, create=True)
    temporary = f".{parent.name[:80]}.{secrets.token_hex(6)}.tmp"
    try:
        fd = os.open(
            temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=parent.fd
        )
        try:
            os.fchmod(fd, mode)  # the umask must not make delivered files private
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.rename(temporary, parent.name, src_dir_fd=parent.fd, dst_dir_fd=parent.fd)
        except IsADirectoryError as exc:
            raise DoorRefused(f"{parent.path} is a directory; cannot write a file there") from exc
        return parent.path
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary, dir_fd=parent.fd)
        raise
    finally:
        parent.close()


def write_text(root: Path, relative: str | PurePath, text: str) -> Path:
    """Write UTF-8 text through :func:`write_bytes`."""
    return write_bytes(root, relative, text.encode("utf-8"))


def write_json(root: Path, relative: str | PurePath, data: Any) -> Path:
    """Write ``data`` (already JSON-able) as indented JSON through :func:`write_bytes`."""
    return write_text(root, relative, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def exists(root: Path, relative: str | PurePath) -> bool:
    """Whether a regular file is at ``root/relative`` (reached without following symlinks)."""
    try:
        parent = _parent(root, relative)
    except (FileNotFoundError, DoorRefused):
        return False
    try:
        return stat.S_ISREG(_lstat(parent).st_mode)
    except OSError:
        return False
    finally:
        parent.close()


def is_dir(root: Path, relative: str | PurePath) -> bool:
    """Whether ``root/relative`` is a plain directory (no component a symlink)."""
    path = normalise(relative, root)
    try:
        os.close(_open_dirs(root, list(path.parts) if path != PurePosixPath(".") else []))
    except (OSError, DoorRefused):
        return False
    return True


def make_dirs(root: Path, relative: str | PurePath) -> Path:
    """Create ``root/relative`` and its parents as plain directories (refusing symlinks on the way)."""
    path = normalise(relative, root)
    parts = list(path.parts) if path != PurePosixPath(".") else []
    os.close(_open_dirs(root, parts, create=True))
    return Path(root, *parts)


def open_lock_file(root: Path, relative: str | PurePath) -> int:
    """A read-write descriptor of ``root/relative`` (created empty when missing) for ``flock``; no symlink followed."""
    parent = _parent(root, relative, create=True)
    try:
        fd = os.open(
            parent.name,
            os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
            FILE_MODE,
            dir_fd=parent.fd,
        )
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise DoorRefused(f"{parent.path} is a symlink; refused") from exc
        raise
    finally:
        parent.close()
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise DoorRefused(f"{parent.path} is not a regular file; refused")
    return fd


def remove(root: Path, relative: str | PurePath) -> None:
    """Remove the file (or symlink, or FIFO: the entry itself, never its target) at ``root/relative``."""
    try:
        parent = _parent(root, relative)
    except FileNotFoundError:
        return
    try:
        os.unlink(parent.name, dir_fd=parent.fd)
    except FileNotFoundError:
        pass
    except IsADirectoryError as exc:
        raise DoorRefused(f"{parent.path} is a directory; not removed") from exc
    finally:
        parent.close()


@dataclass
class CopyRecord:
    """What a copy took and what it refused (name -> reason)."""

    copied: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        return "; ".join(f"{name}: {why}" for name, why in self.refused.items())


def _entries(root: Path, relative: str | PurePath) -> Iterator[tuple[str, os.stat_result]]:
    path = normalise(relative, root)
    fd = _open_dirs(root, list(path.parts) if path != PurePosixPath(".") else [])
    try:
        for name in sorted(os.listdir(fd)):  # noqa: PTH208 - listing by descriptor; a path could be swapped
            try:
                yield name, os.stat(name, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                continue
    finally:
        os.close(fd)


def list_files(root: Path, relative: str | PurePath = ".") -> dict[str, str]:
    """Entries of a folder: name -> "file", "dir" or what else it is (a symlink, a FIFO, ...)."""
    out: dict[str, str] = {}
    try:
        for name, info in _entries(root, relative):
            out[name] = (
                "file" if stat.S_ISREG(info.st_mode) else "dir" if stat.S_ISDIR(info.st_mode) else _kind(info.st_mode)
            )
    except FileNotFoundError:
        return {}
    return out


def copy_file(
    source_root: Path,
    source: str | PurePath,
    target_root: Path,
    target: str | PurePath,
    *,
    max_bytes: int = MAX_READ_BYTES,
) -> Path:
    """Copy one regular file through the door on both sides."""
    return write_bytes(target_root, target, read_bytes(source_root, source, max_bytes=max_bytes))


def copy_files(
    source_root: Path,
    source_dir: str | PurePath,
    target_root: Path,
    target_dir: str | PurePath,
    *,
    include: Callable[[str], bool] = lambda name: True,
    max_bytes: int = MAX_READ_BYTES,
    max_files: int = 200,
    max_total_bytes: int = 4 * MAX_READ_BYTES,
) -> CopyRecord:
    """Copy the regular files directly in ``source_dir`` that ``include`` accepts; refuse and record the rest.

    Folders are not descended into (what is copied is a flat set of named files, e.g. a simulator package)."""
    record = CopyRecord()
    total = 0
    try:
        entries = list(_entries(source_root, source_dir))
    except FileNotFoundError:
        return record
    for name, info in entries:
        if not include(name) or name == "__pycache__" or name.endswith(".tmp"):
            continue
        if not stat.S_ISREG(info.st_mode):
            record.refused[name] = f"{_kind(info.st_mode)}, not a regular file"
            continue
        if len(record.copied) >= max_files:
            record.refused[name] = f"more than {max_files} files"
            continue
        try:
            data = read_bytes(source_root, PurePosixPath(str(source_dir)) / name, max_bytes=max_bytes)
        except (DoorRefused, OSError) as exc:
            record.refused[name] = str(exc)
            continue
        total += len(data)
        if total > max_total_bytes:
            record.refused[name] = f"the files together pass {max_total_bytes} bytes"
            continue
        write_bytes(target_root, PurePosixPath(str(target_dir)) / name, data)
        record.copied.append(name)
    return record
