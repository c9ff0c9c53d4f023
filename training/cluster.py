"""The Dask cluster a job runs on: an existing scheduler, or a LocalCluster on this machine.

Workers are memory-capped, and partitions are sized from the smallest worker's limit: a
partition may hold ``limit / threads * PARTITION_SHARE / BYTES_PER_ROW`` rows of all its
tables (limit / 800 bytes per row). bench/scale.py measured a worker's peak at about 570
bytes per row of its partition — the checked rows, the shuffle's buffers, stage 1's
sorted keys and the worker process itself — 3.0 GiB for 5.3M-row partitions under a 4 GiB
limit, which leaves Dask's spilling and pausing thresholds (60-80%) room to work.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterator
from typing import TYPE_CHECKING

from features.errors import ChurnError
from features.settings import Settings

if TYPE_CHECKING:
    from distributed import Client

BYTES_PER_ROW = 200
PARTITION_SHARE = 0.25
QUIET_LOGGERS = ("distributed.shuffle", "distributed.nanny", "distributed.worker.memory")


@contextlib.contextmanager
def dask_client(settings: Settings) -> Iterator[Client]:
    """A client of ``CHURN_DASK_SCHEDULER``, or of a LocalCluster with one single-threaded
    worker per core (``CHURN_DASK_WORKERS``), each capped at ``CHURN_DASK_WORKER_MEMORY``
    (default: this machine's memory shared evenly)."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ChurnError(
            "the dask engine needs the dask extra: pip install 'churn[dask]'"
        ) from None
    for name in QUIET_LOGGERS:  # a shuffle logs a warning per start and stop
        logging.getLogger(name).setLevel(logging.ERROR)
    if settings.dask_scheduler:
        try:
            client = Client(settings.dask_scheduler, timeout="30s")
        except OSError as exc:
            raise ChurnError(
                f"cannot reach the Dask scheduler at {settings.dask_scheduler}: {exc}"
            ) from None
        with client:
            yield client
        return
    workers = settings.dask_workers or local_cores()
    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            memory_limit=settings.dask_worker_memory or "auto",
            dashboard_address=":0",
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def local_cores() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def partition_rows(client: Client) -> int:
    """Rows of all tables one partition may hold, from the smallest worker's memory."""
    workers = client.scheduler_info(n_workers=-1)["workers"].values()
    if not workers:
        raise ChurnError("the Dask cluster has no workers")
    per_thread = min(w["memory_limit"] / max(w["nthreads"], 1) for w in workers)
    return max(1, math.floor(per_thread * PARTITION_SHARE / BYTES_PER_ROW))


def worker_threads(client: Client) -> int:
    """Threads of the smallest worker (LightGBM threads per worker)."""
    workers = client.scheduler_info(n_workers=-1)["workers"].values()
    return max(1, min(w["nthreads"] for w in workers))


def describe(client: Client) -> str:
    """One line for the user: where the cluster is, its workers, and the dashboard."""
    info = client.scheduler_info(n_workers=-1)
    workers = list(info["workers"].values())
    memory = min(w["memory_limit"] for w in workers) / 2**30 if workers else 0.0
    dashboard = client.dashboard_link if "dashboard" in info.get("services", {}) else "off"
    return (
        f"Dask: {len(workers)} workers at {client.scheduler.address}, "
        f"{memory:.1f} GiB each; dashboard {dashboard}"
    )
