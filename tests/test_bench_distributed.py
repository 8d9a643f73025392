"""map_on_cluster on real Dask clusters (a local one, and one started apart and given by address): completion
order, contained failures, the driver's environment on workers, unreachable schedulers, no process left behind.

The cluster tests are skipped without the ``cluster`` extra (``pip install -e '.[cluster]'``)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import pytest

from nemo_opt.bench import distributed
from nemo_opt.bench.distributed import local_layout, map_on_cluster
from nemo_opt.exceptions import MissingExtra, RunFailure

needs_dask = pytest.mark.skipif(
    find_spec("distributed") is None, reason="needs the cluster extra: pip install 'nemo-opt[cluster]'"
)


def task(value: int, seconds: float) -> dict[str, Any]:
    """A bench-like task: waits, then answers; -1 raises, -2 runs a subprocess from a thread of its own."""
    time.sleep(seconds)
    if value == -1:
        raise ValueError("item -1 is broken")
    answer = value * value
    if value == -2:
        with ThreadPoolExecutor(1) as pool:
            command = [sys.executable, "-c", "print(6 * 7)"]
            done = pool.submit(subprocess.run, command, capture_output=True, text=True, check=True).result()
        answer = int(done.stdout)
    return {"value": value, "answer": answer, "pid": os.getpid(), "home": os.environ.get("NEMO_HOME")}


def on_error(call: tuple[Any, ...], text: str) -> dict[str, Any]:
    return {"value": call[0], "error": text}


def _children() -> set[int]:
    """Live processes below this one, without multiprocessing's resource tracker (it lives as long as pytest)."""
    me = os.getpid()
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            state, ppid = stat.rsplit(")", 1)[1].split()[:2]
            if state != "Z":
                parents.setdefault(int(ppid), []).append(int(entry.name))
    found: set[int] = set()
    todo = [me]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return {pid for pid in found if b"resource_tracker" not in _cmdline(pid)}


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


@pytest.fixture
def no_leftovers() -> Iterator[None]:
    """Fails the test if a process it started (a worker, a nanny) is still alive a few seconds after it ends."""
    before = _children()
    yield
    deadline = time.monotonic() + 10
    while (left := _children() - before) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not left, f"processes left behind: {[_cmdline(pid) for pid in left]}"


def test_local_layout_puts_threads_not_processes_beyond_the_cores() -> None:
    assert local_layout(4, cores=2) == (2, 2)
    assert local_layout(32, cores=2) == (2, 16)
    assert local_layout(3, cores=2) == (2, 2)
    assert local_layout(1, cores=8) == (1, 1)
    assert local_layout(0, cores=2) == (1, 1)


def test_missing_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # makes ``import distributed`` raise ImportError
    with pytest.raises(MissingExtra, match=r"nemo-opt\[cluster\]") as caught:
        map_on_cluster(task, [(1, 0.0)], "local", 1)
    assert caught.value.package == "distributed"


@needs_dask
@pytest.mark.usefixtures("no_leftovers")
def test_results_stream_in_completion_order_and_a_failure_stays_contained() -> None:
    calls = [(0, 4.0), (-1, 0.1), (-2, 0.2), *[(i, 0.3) for i in range(1, 6)]]
    started = time.monotonic()
    arrivals: list[tuple[dict[str, Any], float]] = []
    for result in map_on_cluster(task, calls, "local", workers=4, on_error=on_error):
        arrivals.append((result, time.monotonic() - started))
    results = {result["value"]: result for result, _ in arrivals}

    assert sorted(results) == [-2, -1, 0, 1, 2, 3, 4, 5]
    # The slow call comes last and the others did not wait for it.
    assert arrivals[-1][0]["value"] == 0
    assert max(seconds for result, seconds in arrivals if result["value"] != 0) < arrivals[-1][1] - 2
    # The raising call became on_error's dict, with the worker's traceback; every other call succeeded.
    assert "ValueError: item -1 is broken" in results[-1]["error"] and "in task" in results[-1]["error"]
    assert all(results[i]["answer"] == i * i for i in range(6))
    assert results[-2]["answer"] == 42  # a thread and a subprocess inside a task
    # They ran in worker processes (at most one per core), which saw the driver's NEMO_HOME.
    pids = {result["pid"] for result in results.values() if "pid" in result}
    assert os.getpid() not in pids and 1 <= len(pids) <= local_layout(4)[0]
    assert {result["home"] for result in results.values() if "home" in result} == {os.environ["NEMO_HOME"]}


@needs_dask
@pytest.mark.usefixtures("no_leftovers")
def test_without_on_error_a_failure_raises_and_the_rest_is_stopped() -> None:
    started = time.monotonic()
    with pytest.raises(RunFailure, match=r"Dask.*ValueError: item -1 is broken"):
        for _ in map_on_cluster(task, [(-1, 0.0), (7, 60.0), (8, 60.0)], "local", workers=2):
            pass
    assert time.monotonic() - started < 30  # the 60 s calls were cancelled with the cluster, not awaited


@needs_dask
@pytest.mark.usefixtures("no_leftovers")
def test_leaving_the_loop_early_shuts_the_local_cluster_down() -> None:
    results = map_on_cluster(task, [(1, 0.0), (2, 60.0)], "local", workers=2)
    assert next(results)["answer"] == 1
    results.close()  # what a KeyboardInterrupt or a consumer that breaks out does to the generator


@needs_dask
def test_an_unreachable_scheduler_fails_in_bounded_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(distributed, "CONNECT_TIMEOUT", 3.0)
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{probe.getsockname()[1]}"
    started = time.monotonic()
    with pytest.raises(RunFailure, match="Cannot reach the Dask scheduler") as caught:
        list(map_on_cluster(task, [(1, 0.0)], address, workers=2))
    assert address in str(caught.value) and "dask scheduler" in str(caught.value)
    assert time.monotonic() - started < 15


def _wait_for_file(path: Path, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while not path.exists():
        assert process.poll() is None and time.monotonic() < deadline, "the dask scheduler did not start"
        time.sleep(0.1)


@needs_dask
def test_an_existing_cluster_is_used_by_address_and_left_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(distributed, "CONNECT_TIMEOUT", 2.0)
    scheduler_file = tmp_path / "scheduler.json"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    scheduler = subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0"]
        + ["--no-dashboard", "--scheduler-file", str(scheduler_file)],
        **quiet,
    )
    worker: subprocess.Popen[bytes] | None = None
    try:
        _wait_for_file(scheduler_file, scheduler)
        address = json.loads(scheduler_file.read_text())["address"]
        with pytest.raises(RunFailure, match="has no workers") as caught:
            list(map_on_cluster(task, [(3, 0.0)], address, workers=1))
        assert f"dask worker {address}" in str(caught.value)

        worker = subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "2", "--no-dashboard"],
            **quiet,
        )
        monkeypatch.setattr(distributed, "CONNECT_TIMEOUT", 30.0)
        results = list(map_on_cluster(task, [(3, 0.0), (-1, 0.0)], address, workers=1, on_error=on_error))
        assert sorted(result["value"] for result in results) == [-1, 3]
        assert scheduler.poll() is None and worker.poll() is None  # a cluster given by address stays up
    finally:
        for process in (worker, scheduler):
            if process is not None:
                process.terminate()
                process.wait(timeout=30)
