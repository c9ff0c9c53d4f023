"""`churn serve`'s parent process: workers' environment, the model publisher, the supervisor.

The parent binds the sockets, starts the model publisher thread (the only place MLflow is
imported, ``service.publisher``) and meanwhile the worker processes (``service.worker:app``),
one after another, so resolving the model and starting the workers overlap. Workers
load the bundle the parent publishes in a per-run serving directory, which also holds the
Prometheus multiprocess files; the directory is removed when the server stops.

Each worker listens on a socket of its own, all bound to the same port with
``SO_REUSEPORT``: the kernel spreads new connections over the workers. With one shared
socket, whichever worker woke first took a whole burst of connections (16 keep-alive
clients on one worker, the other idle; ``UV_TCP_SINGLE_ACCEPT`` only narrows that).

Every worker is bounded (``service.limits``): at most ``CONNECTIONS`` connections (503
above), request heads within a deadline and a size (``service.protocol``), idle
keep-alive connections closed after ``KEEP_ALIVE_SECONDS``. Without API keys the server
starts on a loopback address only, unless ``CHURN_ALLOW_ANONYMOUS`` (``service.auth``).
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any

from features.errors import ChurnError
from features.settings import Settings
from service.pointer import SERVING_DIR_ENV

log = logging.getLogger("churn.serve")
STAGGER_SECONDS = 10.0  # longest wait for one worker to start before the next one starts


def worker_environment(settings: Settings, serving_dir: Path, metrics_dir: Path) -> dict[str, str]:
    """What the workers inherit: their settings (flags included) and runtime knobs."""
    return {
        "CHURN_MODEL_URI": settings.resolved_model_uri,
        "CHURN_TRACKING_URI": settings.resolved_tracking_uri,
        SERVING_DIR_ENV: str(serving_dir),
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        # One OpenMP thread by default (LightGBM's threads spin between predictions and
        # starve the other worker); large batches ask for two explicitly. PASSIVE: an idle
        # OpenMP thread sleeps at once instead of spinning after such a batch.
        "OMP_NUM_THREADS": "1",
        "OMP_WAIT_POLICY": "PASSIVE",
        "OPENBLAS_NUM_THREADS": "1",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",  # the parent's downloads: no bars in the log
        # libuv (uvloop) accepts one connection per wake-up and lets other processes take
        # turns: what kept one worker from taking a whole burst when all shared a socket,
        # and still matters where they do (uvicorn's SIGHUP restarts hand every socket over).
        "UV_TCP_SINGLE_ACCEPT": "1",
        # glibc: buffers of 128 KiB and more (a batch body, its columns) are mapped apart and
        # unmapped when freed. Its default raises that threshold after the first large free,
        # and a worker kept ~50 MB for good after one 20 MB body.
        "MALLOC_MMAP_THRESHOLD_": str(128 * 1024),
    }


def run(settings: Settings) -> bool:
    """Serve until SIGINT/SIGTERM; False if the workers could not start.

    In order: bind (fail fast), start resolving the model (the critical path of a cold
    start: MLflow's import and store), then bring up the workers while it runs.
    """
    import logging.config

    from service.auth import check_exposure
    from service.logs import log_config
    from service.publisher import Publisher
    from service.worker import UNUSED_IN_WORKERS, mark_unavailable

    # MLflow imports pandas opportunistically (its data APIs); resolving a version and
    # downloading a file needs none of it: 0.3 s and ~50 MB less for the parent.
    mark_unavailable([name for name in UNUSED_IN_WORKERS if name not in sys.modules])
    logging.config.dictConfig(log_config(settings.log_level))
    check_exposure(settings)
    if not settings.signing_key_values():
        log.warning(
            "no signing key (CHURN_SIGNING_KEY / CHURN_SIGNING_KEY_FILE): model bundles are "
            "checked for integrity (SHA-256) but not authenticated; whoever can write to the "
            "registry chooses the model served"
        )
    workers = settings.resolved_workers
    sockets = listening_sockets(settings.host, settings.port, workers)
    serving_dir = Path(tempfile.mkdtemp(prefix="churn-serve-"))
    metrics_dir = serving_dir / "metrics"
    metrics_dir.mkdir()
    # The one place that sets environment for child processes (spawned: they inherit it).
    os.environ.update(worker_environment(settings, serving_dir, metrics_dir))
    publisher = Publisher(settings, serving_dir)
    try:
        publisher.start()
        return _supervise(settings, sockets, workers)
    finally:
        publisher.stop()
        shutil.rmtree(serving_dir, ignore_errors=True)
        for sock in sockets:
            sock.close()


def _supervise(settings: Settings, sockets: list[socket.socket], workers: int) -> bool:
    """uvicorn's workers on our sockets until a signal; False if they could not start."""
    import uvicorn
    from uvicorn.config import STARTUP_FAILURE

    from service.limits import CONNECTIONS, HEALTHCHECK_SECONDS, KEEP_ALIVE_SECONDS
    from service.logs import log_config

    config = uvicorn.Config(
        "service.worker:app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=workers,
        loop="uvloop",
        # By name: the workers import it once they answer the supervisor's health checks.
        http="service.protocol:BoundedHttpToolsProtocol",
        limit_concurrency=CONNECTIONS,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        lifespan="on",
        access_log=False,  # service.logs writes one JSON line per request instead
        log_config=log_config(settings.log_level),
        server_header=False,
        timeout_graceful_shutdown=10,
        # A worker busy with a large batch on a crowded host may answer the supervisor's ping
        # late; uvicorn's 5 s would kill it and every request it holds.
        timeout_worker_healthcheck=HEALTHCHECK_SECONDS,
    )
    # Even one worker runs apart from this process: workers never import MLflow.
    supervisor = supervisor_class()(config, sockets=sockets)
    host, port = sockets[0].getsockname()[:2]
    log.info(
        f"listening on http://{host}:{port} with {workers} worker(s); model {settings.resolved_model_uri}"
    )
    supervisor.run()
    return all(p.exitcode != STARTUP_FAILURE for p in supervisor.processes)


def listening_sockets(host: str, port: int, count: int) -> list[socket.socket]:
    """``count`` sockets bound to ``host:port`` with ``SO_REUSEPORT``, one per worker.

    The port is first bound without ``SO_REUSEPORT``: if anything (another `churn serve`
    included) already listens there, this fails as a plain bind would, instead of quietly
    sharing its traffic.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ChurnError(
                    f"cannot listen on {host}:{port}: the address is already in use"
                ) from None
            raise ChurnError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
        port = probe.getsockname()[1]  # port 0: the one the kernel chose, for every worker
    sockets = []
    for _ in range(count):
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.set_inheritable(True)
        sockets.append(sock)
    return sockets


def supervisor_class() -> type[Any]:
    """uvicorn's ``Multiprocess`` supervisor, giving each worker (and its replacement) its own socket."""
    from prometheus_client import multiprocess
    from uvicorn.config import STARTUP_FAILURE
    from uvicorn.supervisors.multiprocess import Multiprocess, Process, logger

    class Supervisor(Multiprocess):  # type: ignore[misc]
        def init_processes(self) -> None:
            """Start the workers one after another. Each imports the web stack and LightGBM
            (about a second of one core); started together on two cores they would leave the
            parent, which is resolving the model meanwhile, two thirds of one, and the first
            prediction would wait for all three."""
            for index, sock in enumerate(self.sockets[: self.processes_num]):
                process = Process(self.config, [sock])
                process.start()
                self.processes.append(process)
                if index < self.processes_num - 1:  # ready, dead or too slow: start the next
                    process.wait_until_ready(STAGGER_SECONDS, self.should_exit)

        def keep_subprocess_alive(self) -> None:
            """uvicorn's, except that a replacement worker takes over the dead one's socket,
            and the dead one's live gauges leave /metrics (a killed worker never removes them)."""
            if self.should_exit.is_set():
                return
            for idx, process in enumerate(self.processes):
                if process.is_alive(timeout=self.config.timeout_worker_healthcheck):
                    continue
                process.kill()
                process.join()
                if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
                    multiprocess.mark_process_dead(process.pid)
                if process.exitcode == STARTUP_FAILURE:
                    logger.error(
                        f"Child process [{process.pid}] failed to start, stopping the parent process."
                    )
                    self.should_exit.set()
                    return
                if self.should_exit.is_set():
                    return
                logger.info(f"Child process [{process.pid}] died")
                sock = self.sockets[idx] if idx < len(self.sockets) else self.sockets[0]
                replacement = Process(self.config, [sock])
                replacement.start()
                self.processes[idx] = replacement

    return Supervisor
