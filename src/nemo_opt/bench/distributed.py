"""Run benchmark items on a Dask distributed cluster: a local one started for the run, or an existing one by address.

Why Dask and not Ray, measured with ``benchmarks/distributed_engines.py`` on a 2-core machine. Bench items mostly
wait on the model service, so what counts is keeping many waiting tasks in flight cheaply:

- Size and start: Dask adds 37 MB of packages, Ray 239 MB. A local Dask cluster starts in 0.9 s and idles at
  200 MB RSS (driver + 2 workers); Ray takes 4-5 s and 0.8-1.5 GB (GCS server, raylet, helpers, workers).
- Concurrency model: Dask runs many tasks per worker process on threads. A plain Ray task takes a worker process
  of its own, so 32 slots meant 32 interpreters each importing nemo-opt: 7.9 GB under load (Dask: 0.58 GB) and
  64 s before the first wave of 2 s tasks was through (Dask: 7 s). Ray's threaded actors avoid that (1.2 GB, 5 s)
  but assign calls to actors up front and need the actor pool sized by hand on a real cluster.
- Once loaded, every variant keeps 32 sleeping tasks at 96-100 % of the ideal wall time. Ray's higher no-op rate
  (850-1450 tasks/s against Dask's 300) is irrelevant for items that take minutes.
- A real multi-machine cluster is ``dask scheduler`` plus ``dask worker ADDRESS`` on each machine, and a driver
  anywhere connects with ``tcp://host:8786``. Ray needs the driver to be a node of the cluster, or the
  ``ray[client]`` gRPC extra for ``ray://``, and its token authentication set up on every side.
- Items start threads and subprocesses (sandboxed solver runs): both work in a Dask worker thread, and the local
  cluster's workers are started non-daemonic so that multiprocessing children work too.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import traceback
from collections.abc import Callable, Iterator
from typing import Any

from nemo_opt.exceptions import MissingExtra, RunFailure

__all__ = ["CONNECT_TIMEOUT", "local_layout", "map_on_cluster"]

# Seconds to reach a scheduler, and to wait for it to have at least one worker, before giving up.
CONNECT_TIMEOUT = 20.0

# Variables a worker of the local cluster must see like the driver does. Spawned workers inherit the driver's
# environment already; these are also handed to each nanny, which re-applies them if it restarts its worker.
_FORWARDED_PREFIXES = ("NEMO_",)

_log = logging.getLogger(__name__)


def local_layout(workers: int, cores: int | None = None) -> tuple[int, int]:
    """Worker processes and threads per process for ``workers`` concurrent items on this machine.

    Items spend nearly all their time waiting on the model service, and a waiting thread holds no GIL, so threads
    are what carries the concurrency. One process per core (never more processes than items) lets the short Python
    CPU bursts of different items use every core; more processes would only add an interpreter with nemo-opt
    imported (about 175 MB) each. Sandboxed solver runs are subprocesses, outside the workers' GIL anyway.
    """
    wanted = max(1, workers)
    processes = max(1, min(wanted, cores or os.cpu_count() or 1))
    return processes, math.ceil(wanted / processes)


def _forwarded_environment() -> dict[str, str]:
    return {name: value for name, value in os.environ.items() if name.startswith(_FORWARDED_PREFIXES)}


def map_on_cluster(
    fn: Callable[..., dict[str, Any]],
    calls: list[tuple[Any, ...]],
    address: str,
    workers: int,
    on_error: Callable[[tuple[Any, ...], str], dict[str, Any]] | None = None,
) -> Iterator[dict[str, Any]]:
    """Run ``fn(*call)`` for every call on a Dask cluster and yield each result as soon as it completes.

    ``address`` is ``"local"`` to start a cluster on this machine sized for ``workers`` concurrent calls (see
    :func:`local_layout`), shut down when the iteration ends, however it ends. Any other value is the address of a
    running scheduler (``tcp://host:8786``), which is left running; its workers' threads decide the concurrency and
    ``workers`` is not used. ``fn`` and the calls are pickled: ``fn`` must be importable on the workers (a
    module-level function of an installed package, like ``solve_item``).

    A call that raises yields ``on_error(call, traceback_text)``, or, without ``on_error``, ends the iteration with
    :class:`RunFailure`; the other calls are never affected by one failing. When the iteration stops early, calls
    still pending are cancelled. A missing ``distributed`` package raises :class:`MissingExtra` right away; an
    unreachable scheduler raises :class:`RunFailure` within about :data:`CONNECT_TIMEOUT` seconds of iterating.
    """
    try:
        import distributed  # noqa: F401  (checked here so the error comes at the call, not at the first result)
    except ImportError as exc:
        raise MissingExtra("distributed", "cluster", "Running benchmarks on a cluster") from exc
    return _run(fn, calls, address, workers, on_error)


def _run(
    fn: Callable[..., dict[str, Any]],
    calls: list[tuple[Any, ...]],
    address: str,
    workers: int,
    on_error: Callable[[tuple[Any, ...], str], dict[str, Any]] | None,
) -> Iterator[dict[str, Any]]:
    from distributed import as_completed

    with _client(address, workers) as client:
        pending = {client.submit(fn, *call, pure=False): call for call in calls}
        try:
            for future in as_completed(list(pending)):
                call = pending.pop(future)
                try:
                    result: dict[str, Any] = future.result()
                except Exception as exc:  # the task's own error, re-raised here with its remote traceback
                    if on_error is None:
                        raise RunFailure(
                            f"A task failed on the Dask cluster at {address}: {type(exc).__name__}: {exc}"
                        ) from exc
                    yield on_error(call, "".join(traceback.format_exception(exc)))
                else:
                    yield result
                finally:
                    future.release()
        finally:
            if pending:  # stopped early (error, interrupt, consumer gone): nothing should keep running for us
                with contextlib.suppress(Exception):
                    client.cancel(list(pending))


@contextlib.contextmanager
def _client(address: str, workers: int) -> Iterator[Any]:
    """A connected ``distributed.Client``; for ``"local"``, on a cluster that lives exactly as long as the block."""
    from distributed import Client

    if address != "local":
        client = _connect(address)
        try:
            yield client
        finally:
            client.close()
        return

    import dask
    from distributed import LocalCluster

    processes, threads = local_layout(workers)
    # worker-saturation 1.0: the scheduler hands a worker only as many items as it has threads. Its default (1.1)
    # queues extra items on a worker, where an item can wait minutes behind a busy thread while another worker
    # idles. Dask starts worker processes as daemons by default, and a daemonic process may not start
    # multiprocessing children; an item may (a solver or library that parallelises with processes). The cluster is
    # always closed below, so no non-daemonic worker outlives the run.
    config = {"distributed.scheduler.worker-saturation": 1.0, "distributed.worker.daemon": False}
    with dask.config.set(config):
        cluster = LocalCluster(
            n_workers=processes,
            threads_per_worker=threads,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            env=_forwarded_environment(),
            silence_logs=logging.ERROR,  # a failing task is reported through on_error, not as worker log noise
        )
    try:
        _log.info("local Dask cluster at %s: %d processes x %d threads", cluster.scheduler_address, processes, threads)
        client = Client(cluster, timeout=CONNECT_TIMEOUT)
        try:
            yield client
        finally:
            client.close()
    finally:
        cluster.close()


def _connect(address: str) -> Any:
    """A client of the scheduler at ``address`` that has at least one worker, or :class:`RunFailure` saying why not."""
    from distributed import Client

    try:
        client = Client(address, timeout=CONNECT_TIMEOUT)
    except Exception as exc:  # refused, timed out, unknown host or scheme: all mean "cannot use this address"
        raise RunFailure(
            f"Cannot reach the Dask scheduler at {address!r} ({type(exc).__name__}: {exc}). Check that "
            "'dask scheduler' runs there, that the address is the one it printed (like tcp://host:8786), and that "
            "this machine can reach that host and port; use --cluster local for a cluster on this machine."
        ) from exc
    try:
        client.wait_for_workers(1, timeout=CONNECT_TIMEOUT)
    except Exception as exc:
        client.close()
        raise RunFailure(
            f"The Dask scheduler at {address!r} has no workers after {CONNECT_TIMEOUT:g} s. Start some with "
            f"'dask worker {address}' on the machines that should run items (nemo-opt must be installed there)."
        ) from exc
    return client
