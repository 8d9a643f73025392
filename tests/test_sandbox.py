"""Sandbox backends against real processes: limits, cleanup, containment, environment and backend choice."""

from __future__ import annotations

import logging
import os
import random
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from nemo_opt.exceptions import SandboxError
from nemo_opt.sandbox import (
    BwrapSandbox,
    Limit,
    Limits,
    PlainSandbox,
    Sandbox,
    SandboxWarning,
    SubprocessSandbox,
    _cgroup,
    bwrap_available,
    bwrap_problem,
    factory,
    make_sandbox,
    sandbox_from_settings,
)
from nemo_opt.sandbox import bwrap as bwrap_module
from nemo_opt.sandbox import local as local_module
from nemo_opt.sandbox._limits import MIB, detect_limit, launcher_argv
from nemo_opt.sandbox._process import ProcessOutcome
from nemo_opt.settings import Settings

BWRAP_OK = bwrap_available()
SKIP_WITHOUT_BWRAP = pytest.mark.skipif(not BWRAP_OK, reason=f"bubblewrap is unusable here: {bwrap_problem()}")
NEEDS_BWRAP = [pytest.mark.bwrap, SKIP_WITHOUT_BWRAP]
BACKENDS = [pytest.param("plain", id="plain"), pytest.param("bwrap", id="bwrap", marks=NEEDS_BWRAP)]
MEMORY_CGROUP = _cgroup.memory_cgroup_root() is not None
NEEDS_MEMORY_CGROUP = pytest.mark.skipif(not MEMORY_CGROUP, reason="no writable memory cgroup on this machine")


@pytest.fixture(params=BACKENDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    path = tmp_path / "ws"
    path.mkdir()
    return path


def sandbox(kind: str, workspace: Path, **limits: float) -> SubprocessSandbox:
    return make_sandbox(kind, workspace, Limits(**{"timeout": 20.0, **limits}))


def token() -> str:
    """A sleep duration nobody else on the machine uses, to find our processes by their command line."""
    return f"{random.randint(100, 999)}.{random.randint(100000, 999999)}"


def running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")  # a zombie has already died


def host_pids_with(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline and running(int(entry.name)):
            found.append(int(entry.name))
    return found


def eventually(check: Callable[[], bool], seconds: float = 3.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


# --- basics ------------------------------------------------------------------------------------------------------


def test_output_exit_code_and_backend(kind: str, workspace: Path) -> None:
    box = sandbox(kind, workspace)
    assert isinstance(box, Sandbox)
    result = box.run("echo hello; echo oops >&2; exit 3", cwd=workspace)
    assert result.exit_code == 3
    assert "hello" in result.output and "oops" in result.output
    assert result.backend == kind == box.name
    assert result.limit_hit is None and not result.ok and not result.truncated
    assert box.run("true", cwd=workspace).ok


def test_cwd_is_honoured(kind: str, workspace: Path) -> None:
    sub = workspace / "sub"
    sub.mkdir()
    box = sandbox(kind, workspace)
    assert box.run("pwd", cwd=sub).output.strip() == str(sub.resolve())
    assert box.run("pwd", cwd=Path("sub")).output.strip() == str(sub.resolve())


def test_cwd_outside_workspace_is_refused(kind: str, workspace: Path, tmp_path: Path) -> None:
    box = sandbox(kind, workspace)
    (workspace / "escape").symlink_to(tmp_path)
    for cwd in (tmp_path, workspace / "..", workspace / "escape", Path("/")):
        with pytest.raises(SandboxError, match="outside the sandbox workspace"):
            box.run("true", cwd=cwd)
    with pytest.raises(SandboxError, match="does not exist"):
        box.run("true", cwd=workspace / "missing")


# --- limits ------------------------------------------------------------------------------------------------------


def test_timeout_kills_children_and_grandchildren(kind: str, workspace: Path) -> None:
    mark = token()
    command = (
        f"sleep {mark} & echo $! >> pids; "
        f"(sleep {mark} & echo $! >> pids; sleep {mark}) & echo $! >> pids; "
        f"bash -c 'sleep {mark} & echo $! >> pids; wait' & echo $! >> pids; "
        f"sleep {mark}"
    )
    started = time.monotonic()
    result = sandbox(kind, workspace).run(command, cwd=workspace, timeout=1.0)
    assert time.monotonic() - started < 10
    assert result.limit_hit is Limit.TIMEOUT
    assert 0.9 <= result.seconds < 5
    assert eventually(lambda: not host_pids_with(f"sleep {mark}")), host_pids_with(f"sleep {mark}")
    if kind == "plain":  # bwrap pids live in their own namespace and mean nothing out here
        pids = [int(line) for line in (workspace / "pids").read_text().split()]
        assert len(pids) == 5  # three sleeps, the subshell and the nested bash
        assert eventually(lambda: not any(running(pid) for pid in pids))


def test_memory_cap_holds(kind: str, workspace: Path) -> None:
    result = sandbox(kind, workspace, memory_mb=256).run(
        "python -c 'b = bytearray(1500 * 1024 * 1024); print(len(b))'", cwd=workspace
    )
    assert result.exit_code != 0
    assert result.limit_hit is Limit.MEMORY, result.output


def test_cpu_limit(kind: str, workspace: Path) -> None:
    result = sandbox(kind, workspace, cpu_seconds=1).run("python -c 'while True: pass'", cwd=workspace)
    assert result.limit_hit is Limit.CPU, result.output
    assert result.seconds < 10


def test_cpu_limit_when_sigxcpu_is_ignored(kind: str, workspace: Path) -> None:
    (workspace / "spin.py").write_text(
        "import signal\nsignal.signal(signal.SIGXCPU, signal.SIG_IGN)\nwhile True: pass\n"
    )
    result = sandbox(kind, workspace, cpu_seconds=1).run("python spin.py", cwd=workspace)
    assert result.exit_code == 137  # the kernel's SIGKILL at the hard limit
    assert result.limit_hit is Limit.CPU
    assert result.seconds < 10


@pytest.mark.parametrize(
    "command",
    [
        pytest.param("head -c 3000000 /dev/zero > big", id="sigxfsz"),
        pytest.param("python -c \"open('big', 'wb').write(bytes(3_000_000))\"", id="efbig"),  # Python ignores SIGXFSZ
    ],
)
def test_file_size_limit(kind: str, workspace: Path, command: str) -> None:
    result = sandbox(kind, workspace, file_size_mb=1).run(command, cwd=workspace)
    assert result.limit_hit is Limit.FILE_SIZE, result.output
    assert (workspace / "big").stat().st_size <= 1024 * 1024


def test_long_output_keeps_head_and_tail(kind: str, workspace: Path) -> None:
    script = "import sys; sys.stdout.write('START\\n' + 'x' * 5_000_000 + '\\nEND\\n')"
    result = sandbox(kind, workspace).run(f'python -c "{script}"', cwd=workspace)
    assert result.ok
    assert result.truncated
    assert result.output_bytes == 5_000_011
    assert result.output.startswith("START\n") and result.output.endswith("\nEND\n")
    assert "bytes of output omitted" in result.output
    assert len(result.output) < 250_000


def test_output_limit_kills(kind: str, workspace: Path) -> None:
    result = sandbox(kind, workspace, max_output_mb=1).run("yes", cwd=workspace)
    assert result.limit_hit is Limit.OUTPUT
    assert result.output_bytes > 1024 * 1024
    assert result.seconds < 10
    assert result.output.startswith("y\ny\n")


@pytest.mark.parametrize(
    ("exit_code", "output", "expected"),
    [
        (0, "MemoryError", None),
        (1, "Traceback ...\nMemoryError", Limit.MEMORY),
        (1, "numpy.core._exceptions._ArrayMemoryError: Unable to allocate 12.0 GiB", Limit.MEMORY),
        (134, "terminate called after throwing an instance of 'std::bad_alloc'", Limit.MEMORY),
        (1, "OpenBLAS error: Memory allocation still failed after 10 retries, giving up.", Limit.MEMORY),
        (254, "bash: fork: retry: Resource temporarily unavailable", Limit.PROCESSES),
        (1, "RuntimeError: can't start new thread", Limit.PROCESSES),
        (1, "BlockingIOError: [Errno 11] Resource temporarily unavailable", None),
        (152, "", Limit.CPU),
        (153, "", Limit.FILE_SIZE),
        (1, "OSError: [Errno 27] File too large", Limit.FILE_SIZE),
        (137, "", None),  # a SIGKILL long before the CPU limit could be reached
        (2, "No such file", None),
    ],
)
def test_limit_detection(exit_code: int, output: str, expected: Limit | None) -> None:
    outcome = ProcessOutcome(exit_code, output, False, len(output), 0.1, False, False, 0.05)
    assert detect_limit(outcome, Limits(cpu_seconds=5)) is expected


@pytest.mark.parametrize("exit_code", [0, 1, 137])
def test_an_oom_kill_is_the_memory_limit(exit_code: int) -> None:
    """The memory cgroup's OOM killer ended a process: memory, even if the command coped, and before the pids cap
    (the kill is what stopped it)."""
    outcome = ProcessOutcome(exit_code, "", False, 0, 0.1, False, False, 0.05, memory_exceeded=True)
    assert detect_limit(outcome, Limits()) is Limit.MEMORY
    capped = ProcessOutcome(exit_code, "", False, 0, 0.1, False, False, 0.05, processes_capped=True)
    assert detect_limit(capped, Limits()) is Limit.PROCESSES
    both = ProcessOutcome(exit_code, "", False, 0, 0.1, False, False, 0.05, processes_capped=True, memory_exceeded=True)
    assert detect_limit(both, Limits()) is Limit.MEMORY


# --- the memory cgroup -------------------------------------------------------------------------------------------

# Three processes of 112 MiB each, far under RLIMIT_AS one by one; each marks that it held its share to the end.
_HOLDERS = """
import os, time
children = []
for _ in range(2):
    pid = os.fork()
    if pid == 0:
        children = None
        break
    children.append(pid)
hoard = [b"x" * (16 << 20) for _ in range(7)]
time.sleep(1)
open(f"held-{os.getpid()}", "w").close()
for pid in children or ():
    os.waitpid(pid, 0)
"""


def _recorded_cgroups(monkeypatch: pytest.MonkeyPatch) -> list[tuple[_cgroup.CommandCgroups, dict[str, str]]]:
    """Every command's cgroups, with their memory limits as the kernel had them (read before they are removed)."""
    made: list[tuple[_cgroup.CommandCgroups, dict[str, str]]] = []
    create = _cgroup.CommandCgroups.create
    names = ("memory.limit_in_bytes", "memory.memsw.limit_in_bytes", "memory.max", "memory.swap.max")

    def recording(*, max_pids: int, memory_bytes: int) -> _cgroup.CommandCgroups:
        groups = create(max_pids=max_pids, memory_bytes=memory_bytes)
        path = groups.memory.path if groups.memory is not None else None
        seen = {name: (path / name).read_text().strip() for name in names if path and (path / name).exists()}
        made.append((groups, seen))
        return groups

    monkeypatch.setattr(_cgroup.CommandCgroups, "create", staticmethod(recording))
    return made


@NEEDS_MEMORY_CGROUP
def test_memory_cgroup_bounds_all_processes_together(
    kind: str, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three processes of 112 MiB each fit RLIMIT_AS one by one, but not a 256 MiB cgroup together."""
    made = _recorded_cgroups(monkeypatch)
    (workspace / "holders.py").write_text(_HOLDERS)
    box = sandbox(kind, workspace, memory_mb=256)
    result = box.run("python holders.py", cwd=workspace)
    assert result.limit_hit is Limit.MEMORY, (result.describe(), result.output)
    assert len(list(workspace.glob("held-*"))) < 3  # the OOM killer ended one before it was done
    assert "a memory cgroup holds all the command's processes together to 256 MiB" in box.describe_containment()
    [(groups, seen)] = made
    assert groups.memory is not None and not groups.memory.path.exists()  # removed after the command
    limit = str(256 * MIB)
    if "memory.limit_in_bytes" in seen:  # cgroup v1; swap cannot extend the limit where the kernel counts it
        assert seen["memory.limit_in_bytes"] == limit and seen.get("memory.memsw.limit_in_bytes", limit) == limit
    else:
        assert seen["memory.max"] == limit and seen.get("memory.swap.max", "0") == "0"


def test_without_a_memory_cgroup_each_process_is_bounded_alone(
    kind: str, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where no memory cgroup can be made, the sandbox behaves as before: RLIMIT_AS per process, so all three hold."""
    monkeypatch.setattr(_cgroup, "memory_cgroup_root", lambda: None)
    monkeypatch.setattr(local_module, "memory_cgroup_root", lambda: None)
    (workspace / "holders.py").write_text(_HOLDERS)
    box = sandbox(kind, workspace, memory_mb=256)
    result = box.run("python holders.py", cwd=workspace)
    assert result.ok and len(list(workspace.glob("held-*"))) == 3, (result.describe(), result.output)
    assert "no memory cgroup is writable" in box.describe_containment()


@NEEDS_MEMORY_CGROUP
def test_page_cache_of_written_files_does_not_kill(kind: str, workspace: Path) -> None:
    """Files the command writes are charged to its memory cgroup as page cache, but the kernel reclaims that at the
    limit (writing dirty pages back): 320 MiB of files under a 256 MiB limit is not an OOM kill."""
    box = sandbox(kind, workspace, memory_mb=256, disk_mb=1024, file_size_mb=64)
    result = box.run(
        "python -c \"import os\nb = os.urandom(32 << 20)\nfor i in range(10): open(f'f{i}', 'wb').write(b)\n"
        "print('wrote', sum(os.path.getsize(f'f{i}') for i in range(10)) >> 20)\"",
        cwd=workspace,
    )
    assert result.ok and "wrote 320" in result.output, (result.describe(), result.output)


@NEEDS_MEMORY_CGROUP
def test_memory_cgroup_counts_memfd_and_tmpfs(kind: str, workspace: Path) -> None:
    """memfd pages and (under bwrap, its private) /tmp files are in no address space, but in the cgroup."""
    memfd = (
        'python -c "import os\nfds = []\nfor i in range(48):\n'
        "    fd = os.memfd_create('m'); os.write(fd, bytes(8 << 20)); fds.append(fd)\nprint('held 384')\""
    )
    box = sandbox(kind, workspace, memory_mb=256, file_size_mb=16)
    result = box.run(memfd, cwd=workspace)
    assert result.limit_hit is Limit.MEMORY and "held 384" not in result.output, (result.describe(), result.output)
    # The next command starts with a fresh cgroup: nothing of the last one is held against it.
    assert box.run("python -c 'b = bytearray(150 << 20)'", cwd=workspace).ok


def test_launcher_joins_no_cgroup_or_one_it_cannot_enter(tmp_path: Path) -> None:
    """The launcher is safe to call with no cgroup, and a cgroup file it cannot write does not stop the command."""
    for procs in ((), (str(tmp_path / "missing" / "cgroup.procs"),)):
        argv = launcher_argv(Limits(), ["/bin/echo", "launched"], procs)
        done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)
        assert done.returncode == 0 and done.stdout == "launched\n", done.stderr


@NEEDS_MEMORY_CGROUP
def test_controllers_of_one_hierarchy_share_one_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    """As on cgroup v2, where a process is in one cgroup only: one directory for both controllers, joined once. (Here
    the memory hierarchy stands in: it has no pids.max, so only the memory limit takes.)"""
    root = _cgroup.memory_cgroup_root()
    monkeypatch.setattr(_cgroup, "pids_cgroup_root", lambda: root)
    groups = _cgroup.CommandCgroups.create(max_pids=10, memory_bytes=64 * MIB)
    try:
        assert groups.pids is None and groups.memory is not None and groups.memory.path.parent == root
        assert groups.procs_files == [str(groups.memory.path / "cgroup.procs")]
        assert not groups.memory_exceeded(sigkilled=True) and not groups.processes_capped()
    finally:
        groups.remove()
    assert groups.memory is not None and not groups.memory.path.exists()
    assert _cgroup.CommandCgroups().procs_files == []


# --- environment -------------------------------------------------------------------------------------------------


def test_environment_is_scrubbed(kind: str, workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-should-not-leak")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-should-not-leak")
    monkeypatch.setenv("MY_TOKEN", "token-should-not-leak")
    monkeypatch.setenv("UNRELATED_SETTING", "not-passed")
    lines = set(sandbox(kind, workspace).run("env", cwd=workspace).output.splitlines())
    text = "\n".join(lines)
    for secret in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "MY_TOKEN", "should-not-leak", "UNRELATED_SETTING"):
        assert secret not in text
    for expected in ("OPENBLAS_NUM_THREADS=1", "OMP_NUM_THREADS=1", f"NEMO_SANDBOX={kind}", f"HOME={workspace}"):
        assert expected in lines
    assert f"PATH={Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin" in lines


def test_passthrough_refuses_secret_names(kind: str, workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_TOKEN", "token-should-not-leak")
    monkeypatch.setenv("SOLVER_THREADS", "3")
    with pytest.warns(SandboxWarning, match="MY_TOKEN"):
        box = make_sandbox(kind, workspace, Limits(), env_passthrough=["SOLVER_THREADS", "MY_TOKEN"])
    assert box.env_passthrough == ("SOLVER_THREADS",)
    with pytest.warns(SandboxWarning, match="db_password"):
        output = box.run("env", cwd=workspace, env={"db_password": "hunter2", "EXTRA": "1"}).output
    assert "SOLVER_THREADS=3" in output and "EXTRA=1" in output
    assert "token-should-not-leak" not in output and "hunter2" not in output


# --- cleanup of escaped processes --------------------------------------------------------------------------------


def test_setsid_daemon_does_not_survive(kind: str, workspace: Path) -> None:
    mark = token()
    result = sandbox(kind, workspace).run(
        f"setsid sleep {mark} > /dev/null 2>&1 < /dev/null & sleep 0.2; echo started", cwd=workspace
    )
    assert result.ok and "started" in result.output
    assert eventually(lambda: not host_pids_with(f"sleep {mark}")), "the setsid daemon outlived the command"


# --- bwrap containment -------------------------------------------------------------------------------------------


@pytest.fixture
def tcp_server() -> Iterator[tuple[int, list[socket.socket]]]:
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.1)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], accepted
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    server.close()


@pytest.mark.bwrap
@SKIP_WITHOUT_BWRAP
def test_bwrap_has_no_network(workspace: Path, tcp_server: tuple[int, list[socket.socket]]) -> None:
    port, accepted = tcp_server
    (workspace / "connect.py").write_text(
        "import socket\n"
        "try:\n"
        f"    socket.create_connection(('127.0.0.1', {port}), timeout=3)\n"
        "    print('CONNECTED')\n"
        "except OSError as exc:\n"
        "    print('FAILED', exc)\n"
    )
    # The control run shows the server is reachable, so the bwrap failure is the sandbox's doing.
    assert "CONNECTED" in sandbox("plain", workspace).run("python connect.py", cwd=workspace).output
    assert eventually(lambda: len(accepted) == 1)
    result = sandbox("bwrap", workspace).run("python connect.py", cwd=workspace)
    assert "FAILED" in result.output and "CONNECTED" not in result.output
    time.sleep(0.2)
    assert len(accepted) == 1


@pytest.mark.bwrap
@SKIP_WITHOUT_BWRAP
def test_bwrap_writes_only_to_the_workspace(workspace: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    home_file = Path("/root") / f"nemo-sandbox-probe-{uuid.uuid4().hex}"
    try:
        result = sandbox("bwrap", workspace).run(
            f"echo x > {outside}/planted; echo x > {home_file}; echo x > {workspace}/inside; echo done",
            cwd=workspace,
        )
        assert "done" in result.output
        assert (workspace / "inside").read_text() == "x\n"
        assert not (outside / "planted").exists()
        assert not home_file.exists()
    finally:
        home_file.unlink(missing_ok=True)


@pytest.mark.bwrap
@SKIP_WITHOUT_BWRAP
def test_bwrap_hides_user_files(workspace: Path, tmp_path: Path) -> None:
    secret = tmp_path / "private.txt"
    secret.write_text("the-private-content\n")
    repo_file = Path(__file__).resolve()
    result = sandbox("bwrap", workspace).run(f"cat {secret}; cat {repo_file}; ls /etc", cwd=workspace)
    assert "the-private-content" not in result.output
    assert "No such file or directory" in result.output
    assert "shadow" not in result.output
    assert "the-private-content" in sandbox("plain", workspace).run(f"cat {secret}", cwd=workspace).output


@pytest.mark.bwrap
@SKIP_WITHOUT_BWRAP
def test_bwrap_memory_filesystems_fit_the_memory_limit(workspace: Path) -> None:
    """/tmp is half of the memory limit and /dev/shm a quarter; the rest of /dev and / store nothing."""
    box = sandbox("bwrap", workspace, memory_mb=256, file_size_mb=64)
    sizes = box.run("df -k --output=target,size /tmp /dev/shm | tail -n +2", cwd=workspace).output.split()
    assert dict(zip(sizes[::2], sizes[1::2], strict=True)) == {"/tmp": str(128 * 1024), "/dev/shm": str(64 * 1024)}
    result = box.run(
        "for i in $(seq 1 12); do head -c 32M /dev/zero > /dev/shm/f$i || break; done; du -sm /dev/shm; "
        "echo x > /dev/planted; echo x > /planted; echo x > /dev/null && echo null-ok; "
        "python -c 'import multiprocessing as m; m.Lock(); print(\"lock-ok\")'",
        cwd=workspace,
    )
    assert "No space left on device" in result.output
    assert "64\t/dev/shm" in result.output
    assert result.output.count("Read-only file system") == 2
    assert "null-ok" in result.output
    # /dev/shm is full here, so the semaphore a Lock needs fails; in a fresh command it works.
    assert (
        "lock-ok"
        in box.run("python -c 'import multiprocessing as m; m.Lock(); print(\"lock-ok\")'", cwd=workspace).output
    )


@pytest.mark.bwrap
@SKIP_WITHOUT_BWRAP
def test_bwrap_refuses_nested_user_namespaces(workspace: Path) -> None:
    box = sandbox("bwrap", workspace)
    assert isinstance(box, BwrapSandbox) and box.userns_disabled
    assert "nested user namespaces refused" in box.describe_containment()
    result = box.run("unshare -rm true && echo unshared", cwd=workspace)
    assert result.exit_code != 0 and "unshared" not in result.output, result.output


@pytest.mark.parametrize("cgroup", [pytest.param(True, id="cgroup"), pytest.param(False, id="no-cgroup")])
def test_deleted_open_files_count_toward_the_disk_quota(
    kind: str, workspace: Path, cgroup: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not cgroup:  # neither cgroup lists the command's processes: they are found from its process tree
        monkeypatch.setattr(_cgroup, "pids_cgroup_root", lambda: None)
        monkeypatch.setattr(_cgroup, "memory_cgroup_root", lambda: None)
    # The quota is polled (every 100 ms): a writer that pauses 50 ms per 4 MiB passes 16 MiB within 0.25 s and
    # reaches 160 MiB only after 2 s, so the check is on what is counted, not on winning a race against a tight
    # loop on a loaded machine (a tight loop once wrote all 160 MiB in 0.3 s before the first poll came round).
    (workspace / "held.py").write_text(
        "import os, time\n"
        "held = []\n"
        "for i in range(40):\n"
        "    f = open(f'held{i}', 'wb'); os.unlink(f.name); f.write(b'x' * (4 << 20)); f.flush(); held.append(f)\n"
        "    time.sleep(0.05)\n"
        "print('wrote 160 MiB'); time.sleep(10)\n"
    )
    result = sandbox(kind, workspace, disk_mb=16, file_size_mb=8).run("python held.py", cwd=workspace)
    assert result.limit_hit is Limit.DISK and "wrote 160 MiB" not in result.output, result.describe()
    assert result.seconds < 5
    # Once the command is gone its deleted files are freed: the next one starts with an empty quota.
    assert sandbox(kind, workspace, disk_mb=16).run("head -c 1048576 /dev/zero > small", cwd=workspace).ok


def test_no_bytecode_is_written(kind: str, workspace: Path) -> None:
    (workspace / "helper.py").write_text("VALUE = 7\n")
    result = sandbox(kind, workspace).run(
        "python -c 'import helper; print(helper.VALUE)'; echo $PYTHONDONTWRITEBYTECODE", cwd=workspace
    )
    assert result.ok and result.output.split() == ["7", "1"], result.output
    assert not list(workspace.rglob("__pycache__")) and not list(workspace.rglob("*.pyc"))


# --- write scopes and relocation ---------------------------------------------------------------------------------


def test_scoped_writes_only_inside_its_folders(kind: str, workspace: Path) -> None:
    for name in ("mine", "also", "theirs"):
        (workspace / name).mkdir()
    (workspace / "theirs" / "kept.txt").write_text("theirs\n")
    box = sandbox(kind, workspace)
    scoped = box.scoped([workspace / "mine", Path("also")])
    assert scoped.writable == (workspace / "mine", workspace / "also") and box.writable is None
    result = scoped.run(
        f"echo a > {workspace}/mine/a; echo b > {workspace}/also/b; cat {workspace}/theirs/kept.txt; "
        f"echo x > {workspace}/theirs/planted; echo x > {workspace}/planted; rm -f {workspace}/theirs/kept.txt; "
        "mkdir -p $TMPDIR/t && echo tmp-ok",
        cwd=workspace / "mine",
    )
    assert "theirs" in result.output and "tmp-ok" in result.output  # the whole workspace is readable, /tmp usable
    assert (workspace / "mine" / "a").is_file() and (workspace / "also" / "b").is_file()
    outside = [workspace / "theirs" / "planted", workspace / "planted"]
    if kind == "bwrap":
        assert scoped.enforces_scope
        assert not any(path.exists() for path in outside) and (workspace / "theirs" / "kept.txt").is_file()
        assert result.output.count("Read-only file system") == 3, result.output
    else:
        assert not scoped.enforces_scope  # the plain backend keeps the scope for the record, and says so
        assert all(path.exists() for path in outside)
        assert "write scopes are not enforced" in box.describe_containment()
        assert f"writes are scoped to {workspace}/mine" in scoped.describe_containment()
        assert "but not enforced" in scoped.describe_containment()
    # The unscoped sandbox it came from still writes everywhere.
    assert box.run(f"echo y > {workspace}/theirs/again", cwd=workspace).ok
    assert (workspace / "theirs" / "again").is_file()


def test_scoped_and_relocated_share_limits_passthrough_and_slots(
    kind: str, workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOLVER_THREADS", "3")
    (workspace / "mine").mkdir()
    box = make_sandbox(kind, workspace, Limits(timeout=9.0, memory_mb=700), env_passthrough=["SOLVER_THREADS"])
    box.slots = threading.BoundedSemaphore(2)
    elsewhere = tmp_path / "referee" / "fresh"
    for twin in (box.scoped([workspace / "mine"]), box.relocated(elsewhere)):
        assert type(twin) is type(box) and twin is not box
        assert twin.limits == box.limits and twin.slots is box.slots
        assert twin.env_passthrough == ("SOLVER_THREADS",)
        assert twin.enforces_scope is box.enforces_scope is (kind == "bwrap")
        assert "SOLVER_THREADS=3" in twin.run("env", cwd=twin.workspace / ("mine" if twin.writable else "")).output


def test_relocated_runs_in_its_own_workspace(kind: str, workspace: Path, tmp_path: Path) -> None:
    (workspace / "mine").mkdir()
    (workspace / "secret.txt").write_text("agent-workspace-content\n")
    box = sandbox(kind, workspace).scoped([workspace / "mine"])
    fresh = tmp_path / "referee"
    moved = box.relocated(fresh)
    assert moved.workspace == fresh.resolve() and fresh.is_dir()
    assert moved.writable is None and box.workspace == workspace.resolve()
    result = moved.run(f"pwd; echo ok > verdict; echo $HOME; cat {workspace}/secret.txt", cwd=fresh)
    assert (fresh / "verdict").read_text() == "ok\n"
    assert result.output.splitlines()[:2] == [str(fresh.resolve())] * 2
    if kind == "bwrap":  # the agents' workspace is not even visible from the relocated sandbox
        assert "agent-workspace-content" not in result.output
    with pytest.raises(SandboxError, match="outside the sandbox workspace"):
        moved.run("true", cwd=workspace)


def test_scoped_refuses_folders_it_cannot_bind(kind: str, workspace: Path, tmp_path: Path) -> None:
    (workspace / "mine").mkdir()
    (workspace / "mine" / "inner").mkdir()
    (workspace / "other").mkdir()
    (workspace / "file.txt").write_text("x")
    (workspace / "escape").symlink_to(tmp_path)
    box = sandbox(kind, workspace)
    with pytest.raises(SandboxError, match="outside the sandbox workspace"):
        box.scoped([tmp_path])
    with pytest.raises(SandboxError, match="outside the sandbox workspace"):
        box.scoped([workspace / "escape"])
    with pytest.raises(SandboxError, match="does not exist"):
        box.scoped([workspace / "missing"])
    assert not (workspace / "missing").exists()  # nothing is created for the caller
    with pytest.raises(SandboxError, match="not a directory"):
        box.scoped([workspace / "file.txt"])
    narrow = box.scoped([workspace / "mine"])
    assert narrow.scoped([workspace / "mine" / "inner"]).writable == (workspace / "mine" / "inner",)
    with pytest.raises(SandboxError, match="a scope only narrows"):
        narrow.scoped([workspace / "other"])
    nothing = box.scoped([])
    assert nothing.writable == ()
    assert "writes are scoped to nothing" in nothing.describe_containment()


@pytest.mark.bwrap
@SKIP_WITHOUT_BWRAP
def test_bwrap_scope_folder_swapped_for_a_symlink_is_refused(workspace: Path) -> None:
    (workspace / "mine").mkdir()
    scoped = sandbox("bwrap", workspace).scoped([workspace / "mine"])
    assert scoped.run("true", cwd=workspace).ok
    (workspace / "mine").rmdir()
    (workspace / "mine").symlink_to(workspace)
    with pytest.raises(SandboxError, match="no longer a directory of the workspace"):
        scoped.run(f"echo x > {workspace}/planted", cwd=workspace)
    assert not (workspace / "planted").exists()


# --- choosing a backend ------------------------------------------------------------------------------------------


@pytest.fixture
def no_bwrap(monkeypatch: pytest.MonkeyPatch) -> None:
    real_which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None if name == "bwrap" else real_which(name, *a, **k))
    monkeypatch.setattr(factory, "_fallback_warned", False)


@pytest.mark.bwrap
@SKIP_WITHOUT_BWRAP
def test_auto_prefers_bwrap(workspace: Path) -> None:
    box = make_sandbox("auto", workspace, Limits())
    assert isinstance(box, BwrapSandbox) and box.name == "bwrap"
    assert "no network" in box.describe_containment()


@pytest.mark.usefixtures("no_bwrap")
def test_auto_falls_back_to_plain_with_a_warning(workspace: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="nemo_opt.sandbox"), pytest.warns(SandboxWarning) as warned:
        box = make_sandbox("auto", workspace, Limits())
    assert isinstance(box, PlainSandbox) and box.name == "plain"
    message = str(warned[0].message)
    for part in ("network", "outside its workspace", "read this user's files", "daemons", "apt install bubblewrap"):
        assert part in message
    assert any("apt install bubblewrap" in record.getMessage() for record in caplog.records)
    assert "network" in box.describe_containment()


@pytest.mark.usefixtures("no_bwrap")
def test_fallback_warns_once(workspace: Path, recwarn: pytest.WarningsRecorder) -> None:
    make_sandbox("auto", workspace, Limits())
    make_sandbox("auto", workspace, Limits())
    assert len([w for w in recwarn if issubclass(w.category, SandboxWarning)]) == 1


@pytest.mark.usefixtures("no_bwrap")
def test_unusable_bwrap_on_path_is_probed(workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "bin" / "bwrap"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: str(fake) if name == "bwrap" else None)
    assert not bwrap_available()
    with pytest.raises(SandboxError, match="No permissions to create new namespace"):
        make_sandbox("bwrap", workspace, Limits())
    with pytest.warns(SandboxWarning, match="No permissions to create new namespace"):
        assert isinstance(make_sandbox("auto", workspace, Limits()), PlainSandbox)


@pytest.mark.bwrap
@SKIP_WITHOUT_BWRAP
def test_bwrap_failing_to_start_is_a_sandbox_error(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    box = make_sandbox("bwrap", workspace, Limits())
    monkeypatch.setattr(bwrap_module, "_system_args", lambda: ("--ro-bind", "/nonexistent-nemo-path", "/x"))
    with pytest.raises(SandboxError, match="bubblewrap could not start the command"):
        box.run("true", cwd=workspace)


@pytest.mark.usefixtures("no_bwrap")
def test_explicit_bwrap_without_bwrap_fails(workspace: Path) -> None:
    with pytest.raises(SandboxError, match="apt install bubblewrap"):
        make_sandbox("bwrap", workspace, Limits())
    with pytest.raises(SandboxError, match="not installed"):
        BwrapSandbox(workspace)


def test_sandbox_from_settings(workspace: Path) -> None:
    settings = Settings(sandbox="plain", sandbox_timeout=7.0, sandbox_memory_mb=512, sandbox_env_passthrough=["X"])
    box = sandbox_from_settings(settings, workspace)
    assert isinstance(box, PlainSandbox)
    assert box.limits == Limits(timeout=7.0, memory_mb=512)
    assert box.env_passthrough == ("X",)
    assert "timeout 7s" in box.describe() and "memory 512 MiB" in box.describe()
