"""Service fixtures: a small real model, apps on TestClient, and real `churn serve` processes."""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import lightgbm as lgb
import numpy as np
import pytest
from fastapi.testclient import TestClient

from features.derive import FeatureSpec
from features.schema import columns_to_frame
from features.settings import Settings
from models.bundle import ChurnModel
from models.calibration import Calibrator
from models.card import ModelCard
from models.registry import LoadedModel
from service.app import create_app
from service.holder import ModelHolder, RegistrySource

AS_OF = "2025-06-01"
AS_OF_DAY = float((np.datetime64(AS_OF) - np.datetime64("1970-01-01")).astype(int))
KEY = "test-key-0123456789"
ADMIN_KEY = "admin-key-0123456789"


def snapshot_columns(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Training columns with the fields the playbook and the response talk about."""
    rng = np.random.default_rng(seed)
    seats = rng.integers(2, 40, n).astype(float)
    active = np.floor(seats * rng.beta(2, 2, n))
    day = AS_OF_DAY
    return {
        "account_id": np.array([f"t{i}" for i in range(n)], dtype=object),
        "as_of": np.full(n, day),
        "signup_date": day - rng.integers(10, 900, n),
        "plan": rng.choice(np.array(["starter", "growth", "enterprise"], dtype=object), n),
        "contract_type": rng.choice(np.array(["monthly", "annual"], dtype=object), n),
        "renewal_date": day + rng.integers(1, 365, n),
        "seats": seats,
        "mrr": seats * 30.0,
        "mau_0": active,
        "mau_1": np.minimum(seats, active + rng.integers(0, 5, n)),
        "mau_2": np.minimum(seats, active + rng.integers(0, 5, n)),
        "nps_last": rng.integers(0, 11, n).astype(float),
        "contacts_90d": rng.integers(0, 3, n).astype(float),
        "last_contact_date": np.where(rng.random(n) < 0.3, np.nan, day - rng.integers(1, 200, n)),
    }


def fit_model(seed: int = 0, rounds: int = 40) -> ChurnModel:
    columns = snapshot_columns(2000, seed)
    spec = FeatureSpec.fit(columns, columns["account_id"])
    features = spec.matrix(columns)
    rng = np.random.default_rng(seed)
    usage = columns["mau_0"] / columns["seats"]
    risk = 3.5 * usage + 0.15 * columns["nps_last"] - 2.5
    label = (rng.random(len(usage)) < 1 / (1 + np.exp(risk))).astype(int)
    booster = lgb.train(
        {"objective": "binary", "verbose": -1, "num_leaves": 7, "seed": seed, "num_threads": 1},
        lgb.Dataset(features, label, feature_name=spec.names, categorical_feature=spec.categorical),
        num_boost_round=rounds,
    )
    calibrator = Calibrator().fit(booster.predict(features, raw_score=True), label)
    card = ModelCard(
        base_rate=float(label.mean()),
        horizon_days=90,
        window={"data_start": "2023-01-01", "data_end": "2025-05-31"},
        metrics={"test_roc_auc": 0.81, "test_brier": 0.1},
    )
    return ChurnModel(spec, booster, calibrator, card)


def snapshot(account_id: str = "A1", **fields: Any) -> dict[str, Any]:
    """A full request snapshot; override or drop (value None) any field."""
    body: dict[str, Any] = {
        "account_id": account_id,
        "as_of": AS_OF,
        "signup_date": "2024-02-14",
        "plan": "growth",
        "contract_type": "annual",
        "renewal_date": "2026-02-14",
        "seats": 25,
        "mrr": 1250.0,
        "mau": [6, 14, 16],
        "nps_last": 5,
        "contacts_90d": 0,
        "last_contact_date": "2025-01-10",
    }
    body.update(fields)
    return {k: v for k, v in body.items() if v is not None}


def accounts(n: int, seed: int = 1) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        seats = int(rng.integers(2, 40))
        active = int(seats * rng.beta(2, 2))
        out.append(
            snapshot(
                f"acc-{i:04d}",
                seats=seats,
                mrr=float(seats * 30),
                mau=[active, min(seats, active + int(rng.integers(0, 5)))],
                nps_last=int(rng.integers(0, 11)),
                plan=str(rng.choice(["starter", "growth", "enterprise"])),
            )
        )
    return out


@pytest.fixture(scope="session")
def model() -> ChurnModel:
    return fit_model()


@pytest.fixture(scope="session")
def timed_model(model: ChurnModel, with_time_to_churn) -> ChurnModel:
    """The session model with a time-to-churn model (probabilities by horizon) beside it."""
    return with_time_to_churn(model, snapshot_columns(3000, seed=5))


@pytest.fixture(scope="session")
def bundle(model: ChurnModel, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return model.save(tmp_path_factory.mktemp("bundle") / "bundle.churn")


@pytest.fixture(scope="session")
def timed_bundle(timed_model: ChurnModel, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return timed_model.save(tmp_path_factory.mktemp("timed-bundle") / "bundle.churn")


def loaded(model: ChurnModel, version: str = "1") -> LoadedModel:
    return LoadedModel(
        model,
        uri="models:/churn-model@champion",
        name="churn-model",
        version=version,
        run_id=f"run{version}",
    )


class FakeRegistry:
    """What the holder would find in MLflow: a version that can be changed or made to fail."""

    def __init__(self, model: ChurnModel) -> None:
        self.current: LoadedModel | Exception = loaded(model)
        self.version = "1"
        self.loads = 0

    def publish(self, model: ChurnModel | Exception, version: str) -> None:
        self.current = model if isinstance(model, Exception) else loaded(model, version)
        self.version = version

    def load(self, settings: Settings) -> LoadedModel:
        self.loads += 1
        if isinstance(self.current, Exception):
            raise self.current
        return self.current

    def peek(self, settings: Settings) -> str:
        return self.version


@pytest.fixture
def registry(model: ChurnModel) -> FakeRegistry:
    return FakeRegistry(model)


@pytest.fixture
def make_client(registry: FakeRegistry, tmp_path: Path) -> Iterator[Callable[..., TestClient]]:
    """TestClient on create_app with a loaded fake-registry model; settings overridable."""
    clients: list[TestClient] = []

    def make(load: bool = True, **overrides: Any) -> TestClient:
        overrides.setdefault("reload_min_seconds", 0)
        settings = Settings(home=tmp_path, model_poll_seconds=0, **overrides)
        holder = ModelHolder(settings, RegistrySource(settings, registry.load, registry.peek))
        if load:
            holder.load_blocking(force=True)
        client = TestClient(create_app(settings, holder=holder, poll=False))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()


@pytest.fixture
def timed_client(
    make_client: Callable[..., TestClient], registry: FakeRegistry, timed_model: ChurnModel
) -> TestClient:
    """A client serving the model with its time-to-churn model."""
    registry.publish(timed_model, "2")
    return make_client()


# --- real `churn serve` processes -------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Served:
    url: str
    process: subprocess.Popen
    log: Path

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.get(self.url + path, timeout=30, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.post(self.url + path, timeout=60, **kwargs)

    def wait(
        self, check: Callable[[], bool], timeout: float = 60.0, what: str = "condition"
    ) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"churn serve exited ({self.process.returncode}):\n{self.log.read_text()[-3000:]}"
                )
            try:
                if check():
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"{what} not reached in {timeout:.0f}s:\n{self.log.read_text()[-3000:]}")

    def wait_until_every_worker_is_ready(self, workers: int, timeout: float = 60.0) -> None:
        """Until ``workers`` distinct worker pids serve a model (``churn_model_info`` in the
        aggregated /metrics); one worker answering /ready says nothing about the others."""
        self.wait(lambda: len(self.ready_workers()) >= workers, timeout, f"{workers} ready workers")

    def ready_workers(self) -> set[str]:
        text = self.get("/metrics").text
        return set(re.findall(r'^churn_model_info\{[^}]*pid="(\d+)"[^}]*\} 1\.0$', text, re.M))

    def worker_pids(self) -> list[int]:
        """The uvicorn worker processes of this `churn serve` (its spawned children)."""
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                command = (entry / "cmdline").read_bytes()
            except (OSError, IndexError):
                continue
            if parent == self.process.pid and b"spawn_main" in command:
                found.append(int(entry.name))
        return sorted(found)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_server(tmp: Path, *args: str, env: dict[str, str] | None = None) -> Served:
    port = free_port()
    log = tmp / f"serve-{port}.log"
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(("CHURN_", "PROMETHEUS_"))
    }
    environment.update(
        {"CHURN_HOME": str(tmp / "home"), "MLFLOW_DISABLE_TELEMETRY": "true", **(env or {})}
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "service.cli",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            *args,
        ],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        env=environment,
        cwd=tmp,
    )
    served = Served(f"http://127.0.0.1:{port}", process, log)
    served.wait(lambda: served.get("/health").status_code == 200, what="/health")
    return served


def serve_refused(
    tmp: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run `churn serve` that is expected to stop at start-up; its exit code and output."""
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(("CHURN_", "PROMETHEUS_"))
    }
    environment.update({"CHURN_HOME": str(tmp), **(env or {})})
    return subprocess.run(
        [sys.executable, "-m", "service.cli", "serve", "--port", str(free_port()), *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        cwd=tmp,
    )


def today() -> str:
    return dt.datetime.now(dt.UTC).date().isoformat()


# --- a real MLflow store ------------------------------------------------------------------------


def register(model: ChurnModel, home: Path, promote: bool) -> str:
    from training.track import RunRecord, record_run

    columns = snapshot_columns(20)
    frame = columns_to_frame(columns)
    settings = Settings(home=home, experiment="serve-tests")
    artifacts = Path(tempfile.mkdtemp(prefix="artifacts-", dir=home.parent))
    record = RunRecord(
        model=model,
        params={"rounds": 40},
        metrics={"test_roc_auc": 0.8},
        baseline_params={},
        baseline_metrics={},
        tags={},
        artifacts_dir=artifacts,
        input_frame=frame.assign(churned=np.arange(len(frame)) % 2),
        input_example=frame.head(3),
    )
    return record_run(record, settings, promote=promote).version


def corrupt(home: Path, version: str) -> None:
    """Change the registered bundle's bytes after registration: its SHA-256 no longer matches."""
    from mlflow import MlflowClient

    uri = f"sqlite:///{home / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    source = client.get_model_version("churn-model", version).source
    location = client.get_logged_model(source.rsplit("/", 1)[-1]).artifact_location
    (bundle,) = Path(location.removeprefix("file://")).rglob("bundle.churn")
    bundle.write_bytes(bundle.read_bytes() + b"tampered")
