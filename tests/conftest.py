"""Shared real parts: free ports, a real `mlflow server` process, small demo data."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

# Every `churn train` a test starts (in process or as a subprocess) scores 2 capacity
# candidates instead of 8: the search has its own tests (tests/training/test_search.py,
# test_tune.py), and the suite trains dozens of times on 2 cores. A test may still set it.
os.environ.setdefault("CHURN_SEARCH_CANDIDATES", "2")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(url: str, process: subprocess.Popen, timeout: float = 600.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited with code {process.returncode}")
        try:
            if httpx.get(url, timeout=2.0).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{url} did not come up in {timeout:.0f}s")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextlib.contextmanager
def running_mlflow(
    root: Path, backend: str, *args: str, env: dict[str, str] | None = None
) -> Iterator[tuple[str, subprocess.Popen]]:
    """A real `mlflow server` on ``backend`` (proxied artifacts under ``root``): (url, process)."""
    port = free_port()
    log = (root / f"server-{port}.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            backend,
            "--artifacts-destination",
            str(root / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            *args,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", **(env or {})},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{url}/health", process)
        yield url, process
    finally:
        process.send_signal(signal.SIGCONT)  # a test may have paused it
        stop(process)
        log.close()


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `mlflow server` (SQLite backend, proxied artifacts) in a temp dir."""
    root = tmp_path_factory.mktemp("mlflow-server")
    with running_mlflow(root, f"sqlite:///{root / 'mlflow.db'}") as (url, _):
        yield url


ADMIN = ("admin", "admin-password-for-tests-0123456789")


@pytest.fixture(scope="session")
def basic_auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `mlflow server --app-name basic-auth`; its admin is ``ADMIN``."""
    root = tmp_path_factory.mktemp("mlflow-auth")
    config = root / "basic_auth.ini"
    config.write_text(
        "[mlflow]\ndefault_permission = READ\n"
        f"database_uri = sqlite:///{root / 'auth.db'}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    )
    env = {
        "MLFLOW_AUTH_CONFIG_PATH": str(config),
        "MLFLOW_AUTH_ADMIN_USERNAME": ADMIN[0],
        "MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN[1],
        "MLFLOW_FLASK_SERVER_SECRET_KEY": "a-secret-for-tests",
    }
    backend = f"sqlite:///{root / 'mlflow.db'}"
    with running_mlflow(root, backend, "--app-name", "basic-auth", env=env) as (url, _):
        yield url


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small demo data set (one seed), shared by the tests that train."""
    from training.demo import generate_demo

    out = tmp_path_factory.mktemp("demo")
    import datetime as dt

    generate_demo(
        out,
        accounts=1500,
        start=dt.date(2023, 1, 1),
        end=dt.date(2025, 6, 30),
        seed=0,
        truth_paths=64,
        progress=False,
    )
    return out


def _churn_days(columns: dict[str, np.ndarray], seed: int = 0) -> np.ndarray:
    """A churn day per snapshot: monthly hazard rising as usage falls, none within 2 years."""
    from features.timeline import MISSING_DAY, month_bounds

    rng = np.random.default_rng(seed)
    usage = columns["mau_0"] / columns["seats"]
    hazard = 1 / (1 + np.exp(3.5 - 3 * (1 - usage)))
    month = rng.geometric(hazard) - 1
    bounds = month_bounds(25)
    day = columns["as_of"].astype(np.int64) + bounds[np.minimum(month, 24)] + 5
    return np.where(month < 24, day, MISSING_DAY)


def _with_time_to_churn(model, columns: dict[str, np.ndarray], seed: int = 0):
    """``model`` with a real time-to-churn model (training's own fit) on its features, learnt
    from synthetic churn days; test rows a year after the rest, so training months are observed."""
    from training.hazard import Origin
    from training.hazard import fit_hazard as fit
    from training.params import TrainParams
    from training.survival import Outcomes

    n = len(columns["as_of"])
    split = np.random.default_rng(seed).choice(
        ["train", "validation", "calibration", "test"], n, p=[0.6, 0.15, 0.15, 0.1]
    )
    shifted = {
        **columns,
        "as_of": np.where(split == "test", columns["as_of"] + 400, columns["as_of"]),
    }
    churn = _churn_days(shifted, seed)
    parts = {s: np.flatnonzero(split == s) for s in ("train", "validation", "calibration", "test")}
    origin = Origin(
        "test",
        {s: {k: v[rows] for k, v in shifted.items()} for s, rows in parts.items()},
        {
            s: Outcomes(shifted["as_of"][rows].astype(np.int64), churn[rows])
            for s, rows in parts.items()
        },
        int(shifted["as_of"].max()) + 400,
    )
    params = TrainParams(
        learning_rate=0.1,
        num_boost_round=80,
        early_stopping_rounds=20,
        min_data_in_leaf=20,
        num_threads=1,
    )
    return dataclasses.replace(model, hazard=fit(model.spec, origin, params, (30, 90, 180, 365)))


@pytest.fixture(scope="session")
def with_time_to_churn():
    """``(ChurnModel, snapshot columns) -> ChurnModel`` with a time-to-churn model beside it."""
    return _with_time_to_churn
