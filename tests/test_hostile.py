"""The hostile-code suite through both real backends, the disk and process limits it relies on, and the doctor CLI."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from nemo_opt.cli import cli
from nemo_opt.sandbox import (
    Limit,
    Limits,
    PlainSandbox,
    _cgroup,
    bwrap_available,
    bwrap_problem,
    hostile,
    local,
    make_sandbox,
)
from nemo_opt.sandbox.factory import sandbox_from_settings
from nemo_opt.sandbox.hostile import CASES, CaseResult, HostPaths, case_names, known_gap, run_suite
from nemo_opt.settings import Settings

BWRAP_OK = bwrap_available()
MEMORY_CGROUP = _cgroup.memory_cgroup_root() is not None
SKIP_WITHOUT_MEMORY_CGROUP = pytest.mark.skipif(not MEMORY_CGROUP, reason="no writable memory cgroup on this machine")
SKIP_WITHOUT_BWRAP = pytest.mark.skipif(not BWRAP_OK, reason=f"bubblewrap is unusable here: {bwrap_problem()}")
# Small limits keep every case to seconds; the mechanisms are the same at any size. Two CPU seconds, not one: on a
# loaded machine a 384 MiB fill alone can cost a second of CPU and would be cut by the CPU limit instead.
LIMITS = Limits(
    timeout=3.0, memory_mb=256, cpu_seconds=2, max_processes=48, max_output_mb=8, disk_mb=32, file_size_mb=16
)
CASE_IDS = case_names()


def _suite(kind: str, tmp: Path) -> dict[str, CaseResult]:
    workspace, cwd = tmp / "ws", tmp / "host-cwd"
    cwd.mkdir()
    box = make_sandbox(kind, workspace, LIMITS)
    results = run_suite(box, host=HostPaths(cwd=cwd))
    # Every case cleans up after itself: nothing is left in the workspace or beside the host's working directory.
    assert list(workspace.iterdir()) in ([], [workspace / ".tmp"])
    assert list(cwd.iterdir()) == []
    return {result.name: result for result in results}


@pytest.fixture(scope="module")
def bwrap_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, CaseResult]:
    if not BWRAP_OK:
        pytest.skip(f"bubblewrap is unusable here: {bwrap_problem()}")
    return _suite("bwrap", tmp_path_factory.mktemp("bwrap"))


@pytest.fixture(scope="module")
def plain_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, CaseResult]:
    return _suite("plain", tmp_path_factory.mktemp("plain"))


def _host_leftovers() -> list[str]:
    """Sentinels, decoys and cgroups the suite creates, if any were left on the host (by their names: other
    people's files on a shared machine may well mention hostile code too)."""
    places = [Path("/tmp"), Path("/dev/shm"), Path.home(), Path.home() / ".config" / "nemo-opt", Path.home() / ".ssh"]
    patterns = ("*nemo-hostile*", "hostile-decoy-*", "id_hostile_decoy_*")
    return [str(p) for place in places if place.is_dir() for pattern in patterns for p in place.glob(pattern)]


@SKIP_WITHOUT_BWRAP
@pytest.mark.bwrap
@pytest.mark.parametrize("name", CASE_IDS)
def test_bwrap_contains_every_case(bwrap_results: dict[str, CaseResult], name: str) -> None:
    result = bwrap_results[name]
    assert result.contained, result.line()
    assert result.seconds < LIMITS.timeout + 5, result.line()
    assert known_gap(hostile._case(name), "bwrap") is None


@pytest.mark.parametrize("name", CASE_IDS)
def test_plain_reports_what_it_cannot_contain(plain_results: dict[str, CaseResult], name: str) -> None:
    """The plain fallback holds the resource cases and honestly fails the isolation ones (its documented gaps)."""
    result = plain_results[name]
    gap = known_gap(hostile._case(name), "plain")
    assert result.contained is (gap is None), (result.line(), gap)
    assert result.seconds < LIMITS.timeout + 5, result.line()


def test_plain_gaps_are_the_isolation_cases() -> None:
    expected = {"tcp-connect", "dns-lookup", "write-home", "write-cwd", "write-tmp", "symlink-escape"}
    expected |= {"env-secrets", "config-files", "shm-fill", "sysv-shm", "userns-tmpfs", "write-outside-scope"}
    assert {case.name for case in CASES if case.plain_gap} == expected


def test_the_agent_is_told_which_limit_hit(
    plain_results: dict[str, CaseResult], bwrap_results: dict[str, CaseResult]
) -> None:
    for results in (plain_results, bwrap_results):
        assert results["fork-bomb"].limit is Limit.PROCESSES
        assert "stopped: processes limit reached" in results["fork-bomb"].observation
        assert results["disk-fill"].limit is Limit.DISK
        assert "stopped: disk limit reached" in results["disk-fill"].observation
        assert results["deleted-file-disk"].limit is Limit.DISK
        assert "stopped: disk limit reached" in results["deleted-file-disk"].observation
        assert results["memory-bomb"].limit is Limit.MEMORY
        assert results["stdout-flood"].limit is Limit.OUTPUT
        assert results["sigterm-sleepers"].limit is Limit.TIMEOUT
        assert results["cpu-spin"].limit in (Limit.CPU, Limit.TIMEOUT)
        if MEMORY_CGROUP:  # the cgroup's OOM killer ended them, and the agent is told so
            for name in ("many-processes-memory", "sysv-shm", "memfd-fill"):
                assert results[name].limit is Limit.MEMORY, results[name].line()
                assert "stopped: memory limit reached" in results[name].observation


def test_suite_leaves_the_host_clean(
    plain_results: dict[str, CaseResult], bwrap_results: dict[str, CaseResult]
) -> None:
    assert _host_leftovers() == []
    assert "OPENAI_API_KEY" not in os.environ or "env-secret-" not in os.environ["OPENAI_API_KEY"]
    assert "NEMO_TEST_SECRET" not in os.environ


@pytest.fixture
def no_memory_cgroup(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """This machine as it would be without a writable memory cgroup."""
    for module in (_cgroup, hostile, local):
        monkeypatch.setattr(module, "memory_cgroup_root", lambda: None)
    yield


@pytest.fixture
def no_cgroup(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """This machine as it would be without a writable pids cgroup."""
    monkeypatch.setattr(_cgroup, "pids_cgroup_root", lambda: None)
    monkeypatch.setattr(hostile, "pids_cgroup_root", lambda: None)
    monkeypatch.setattr("nemo_opt.sandbox.local.pids_cgroup_root", lambda: None)
    # Keep an uncontained bomb small on a shared machine.
    monkeypatch.setattr(hostile, "_FORK_CEILING", 120)
    yield


@pytest.mark.skipif(os.getuid() != 0, reason="only root is exempt from RLIMIT_NPROC")
def test_without_a_cgroup_root_fork_bomb_is_reported_not_contained(no_cgroup: None, tmp_path: Path) -> None:
    box = make_sandbox("plain", tmp_path / "ws", LIMITS)
    case = hostile._case("fork-bomb")
    gap = known_gap(case, "plain")
    assert gap is not None and "RLIMIT_NPROC" in gap
    assert "no process cap holds" in box.describe_containment()
    [result] = run_suite(box, ["fork-bomb"], host=HostPaths(cwd=tmp_path))
    assert not result.contained and "120 processes forked" in result.evidence, result.line()
    assert _host_leftovers() == []


def test_disk_quota_counts_many_small_files(tmp_path: Path) -> None:
    """RLIMIT_FSIZE caps one file; the quota caps the workspace, and a command that fills it is stopped."""
    box = PlainSandbox(tmp_path / "ws", Limits(timeout=10, disk_mb=8, file_size_mb=4))
    result = box.run("for i in $(seq 1 64); do head -c 1048576 /dev/urandom > f$i; done; echo finished", cwd=Path())
    assert result.limit_hit is Limit.DISK and "finished" not in result.output, result.describe()
    # Over the quota, writing more is stopped at once, but reading and deleting still work.
    again = box.run("head -c 1048576 /dev/urandom > more; sleep 5", cwd=Path())
    assert again.limit_hit is Limit.DISK and again.seconds < 2, again.describe()
    assert box.run("ls | wc -l", cwd=Path()).ok
    assert box.run("rm -f f* more; echo ok", cwd=Path()).ok
    assert box.run("head -c 1048576 /dev/urandom > small", cwd=Path()).ok


def test_bwrap_memory_filesystems_are_bounded(bwrap_results: dict[str, CaseResult]) -> None:
    """/dev/shm holds a quarter of the memory limit, and no tmpfs can be mounted in a nested user namespace."""
    assert f"{LIMITS.memory_mb // 4} MiB held in /dev/shm, 0 MiB left" in bwrap_results["shm-fill"].evidence
    assert bwrap_results["userns-tmpfs"].evidence == "unshare or the tmpfs mount was refused"
    assert "own folder written" in bwrap_results["write-outside-scope"].evidence


def test_plain_shows_its_new_gaps(plain_results: dict[str, CaseResult]) -> None:
    """What the plain backend cannot hold is shown, with what got through, when this machine lets it through."""
    names = ("shm-fill", "sysv-shm", "userns-tmpfs")
    gaps = {name: known_gap(hostile._case(name), "plain") for name in names}
    wheres = {"shm-fill": "held in /dev/shm", "sysv-shm": "held in SysV shared memory", "userns-tmpfs": "held in a"}
    for name in names:
        if gaps[name] is None:
            continue
        evidence = plain_results[name].evidence
        held = re.search(rf"(\d+) MiB {wheres[name]}", evidence)
        assert held is not None, evidence
        if MEMORY_CGROUP:  # the fill stops at the limit, but what it stored outlives the command
            assert name != "userns-tmpfs", gaps[name]
            assert int(held.group(1)) <= LIMITS.memory_mb, evidence
            assert re.search(r", (0 MiB|0 segment\(s\) of 0 MiB) left", evidence) is None, evidence
        else:  # what got through beyond the memory limit; how far past it depends on the machine's load
            assert int(held.group(1)) > LIMITS.memory_mb, evidence
    scope = plain_results["write-outside-scope"]
    assert not scope.contained and "sibling file altered" in scope.evidence, scope.line()
    assert plain_results["deleted-file-disk"].contained


@pytest.mark.parametrize("kind", ["plain", pytest.param("bwrap", marks=[pytest.mark.bwrap, SKIP_WITHOUT_BWRAP])])
def test_deleted_files_are_counted_without_a_cgroup(no_cgroup: None, tmp_path: Path, kind: str) -> None:
    """Without a cgroup the command's processes are its process group and their descendants (bwrap's own
    session included): the deleted files they hold still count."""
    box = make_sandbox(kind, tmp_path / "ws", LIMITS)
    [result] = run_suite(box, ["deleted-file-disk"], host=HostPaths(cwd=tmp_path))
    assert result.contained and result.limit is Limit.DISK, result.line()


@pytest.mark.parametrize("kind", ["plain", pytest.param("bwrap", marks=[pytest.mark.bwrap, SKIP_WITHOUT_BWRAP])])
def test_without_a_memory_cgroup_the_memory_cases_are_gaps(no_memory_cgroup: None, tmp_path: Path, kind: str) -> None:
    """Where no memory cgroup can be made, memory is bounded per process as before: the doctor says which cases
    that leaves open, and they do get through (a generous timeout, so that load cannot end a fill early)."""
    box = make_sandbox(kind, tmp_path / "ws", LIMITS)
    assert "no memory cgroup is writable" in box.describe_containment()
    names = ["many-processes-memory", "memfd-fill", "sysv-shm"]
    for name in names:
        gap = known_gap(hostile._case(name), kind)
        assert gap is not None, name
        assert "without a memory cgroup" in gap or (kind == "plain" and "SysV IPC namespace" in gap)
    results = run_suite(box, names, host=HostPaths(cwd=tmp_path), timeout=30)
    for result in results:
        assert not result.contained, result.line()
        assert result.limit is None, result.line()
    assert "4 of 4 processes held" in results[0].evidence
    assert _host_leftovers() == []


@SKIP_WITHOUT_MEMORY_CGROUP
def test_sysv_segments_a_plain_command_leaves_are_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The plain backend shares the host's SysV IPC namespace: the segments outlive the command (that is the gap
    the case shows), and the suite removes them."""
    used: list[range] = []
    keys = hostile._shm_keys

    def recording(trial: hostile.Trial) -> range:
        used.append(keys(trial))
        return used[-1]

    monkeypatch.setattr(hostile, "_shm_keys", recording)
    [result] = run_suite(make_sandbox("plain", tmp_path / "ws", LIMITS), ["sysv-shm"], host=HostPaths(cwd=tmp_path))
    assert result.limit is Limit.MEMORY, result.line()
    assert (result.contained, known_gap(hostile._case("sysv-shm"), "plain") is None) == (False, False)
    assert re.search(r"[1-9]\d* segment\(s\)", result.evidence), result.evidence
    assert len(used) == 1 and hostile._sysv_segments(used[0]) == {}


def test_disk_setting_is_threaded_through(tmp_path: Path) -> None:
    box = sandbox_from_settings(Settings(sandbox="plain", sandbox_disk_mb=77), tmp_path / "ws")
    assert box.limits.disk_mb == 77 and "workspace disk 77 MiB" in box.describe()


@pytest.mark.skipif(_cgroup.pids_cgroup_root() is None, reason="no writable pids cgroup on this machine")
def test_each_command_gets_its_own_cgroup_and_it_is_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[_cgroup.CommandCgroups] = []
    create = _cgroup.CommandCgroups.create

    def recording(*, max_pids: int, memory_bytes: int) -> _cgroup.CommandCgroups:
        made.append(create(max_pids=max_pids, memory_bytes=memory_bytes))
        return made[-1]

    monkeypatch.setattr(_cgroup.CommandCgroups, "create", staticmethod(recording))
    box = make_sandbox("plain", tmp_path / "ws", LIMITS)
    result = box.run("cat /proc/self/cgroup; (setsid sleep 600 &) ; echo started", cwd=Path())
    assert result.ok and len(made) == 1
    groups = [group for group in (made[0].pids, made[0].memory) if group is not None]
    assert len(groups) == (2 if MEMORY_CGROUP else 1)
    for group in groups:
        assert group.path.name in result.output  # the command ran inside it
        assert not group.path.exists()  # and it is gone, the daemon with it


def test_unknown_case_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="fork-bomb"):
        run_suite(make_sandbox("plain", tmp_path / "ws", LIMITS), ["no-such-case"])


# --- nemo-opt doctor --sandbox ------------------------------------------------------------------------------------

_LINE = re.compile(
    r"^(?P<name>[a-z-]+)\s+(?P<seconds>\d+\.\d\d)s\s+(?P<observation>.+?)\s+(?P<verdict>contained|NOT CONTAINED)$"
)


def _doctor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[int, dict[str, re.Match[str]]]:
    # The autouse fixture already made tmp_path the working directory: the nemo.toml decoy and the write into the
    # host's working directory land there, never in the repository.
    assert Path.cwd() == tmp_path
    monkeypatch.setenv("NEMO_HOME", str(tmp_path / "home"))
    done = CliRunner().invoke(cli, ["doctor", "--sandbox", *args], catch_exceptions=False)
    lines = {m["name"]: m for line in done.output.splitlines() if (m := _LINE.match(line))}
    return done.exit_code, lines


def test_doctor_sandbox_plain_says_what_it_cannot_contain(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, lines = _doctor(
        tmp_path, monkeypatch, "--sandbox-kind", "plain", "--case", "tcp-connect", "--case", "fork-bomb"
    )
    assert code == 1
    assert set(lines) == {"tcp-connect", "fork-bomb"}
    assert lines["tcp-connect"]["verdict"] == "NOT CONTAINED"
    assert lines["fork-bomb"]["verdict"] == "contained"
    assert "stopped: processes limit reached" in lines["fork-bomb"]["observation"]


def test_doctor_sandbox_plain_output_names_the_gaps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert Path.cwd() == tmp_path
    monkeypatch.setenv("NEMO_HOME", str(tmp_path / "home"))
    done = CliRunner().invoke(cli, ["doctor", "--sandbox", "--sandbox-kind", "plain", "--case", "write-home"])
    assert done.exit_code == 1
    assert "The plain backend cannot contain 1 of these cases" in done.output
    assert "write-home: the plain backend has no filesystem isolation" in done.output
    assert "code can reach the network" in done.output  # describe_containment() of the plain backend
    assert "0 of 1 cases contained by the plain sandbox." in done.output


@SKIP_WITHOUT_BWRAP
@pytest.mark.bwrap
def test_doctor_sandbox_bwrap_passes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, lines = _doctor(
        tmp_path, monkeypatch, "--sandbox-kind", "bwrap", "--case", "write-cwd", "--case", "setsid-daemon"
    )
    assert code == 0
    assert {name: m["verdict"] for name, m in lines.items()} == {"write-cwd": "contained", "setsid-daemon": "contained"}


@SKIP_WITHOUT_BWRAP
@pytest.mark.bwrap
def test_doctor_sandbox_bwrap_holds_the_new_cases(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    new = ("shm-fill", "userns-tmpfs", "deleted-file-disk", "write-outside-scope")
    if MEMORY_CGROUP:
        new += ("sysv-shm", "memfd-fill", "many-processes-memory")
    code, lines = _doctor(
        tmp_path, monkeypatch, "--sandbox-kind", "bwrap", *(arg for n in new for arg in ("--case", n))
    )
    assert code == 0
    assert {name: m["verdict"] for name, m in lines.items()} == dict.fromkeys(new, "contained")


def test_doctor_sandbox_plain_lists_the_scope_gap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, lines = _doctor(
        tmp_path, monkeypatch, "--sandbox-kind", "plain", "--case", "write-outside-scope", "--case", "deleted-file-disk"
    )
    assert code == 1
    assert lines["write-outside-scope"]["verdict"] == "NOT CONTAINED"
    assert lines["deleted-file-disk"]["verdict"] == "contained"
    done = CliRunner().invoke(cli, ["doctor", "--sandbox", "--sandbox-kind", "plain", "--case", "write-outside-scope"])
    assert "write-outside-scope: the plain backend cannot enforce write scopes" in done.output
    assert "write scopes are not enforced" in done.output  # describe_containment() of the plain backend
