"""service.worker: what a `churn serve` worker process imports, and when it refuses to start."""

from __future__ import annotations

import os
import subprocess
import sys
import types
from pathlib import Path

import orjson
import pytest

from features.files import file_sha256
from service.pointer import BundleRef, Pointer, publish
from service.worker import mark_unavailable

# Runs the worker factory exactly as uvicorn does in a worker, serves a request through the
# app (lifespan included), then reports which of the heavy packages the process holds.
WORKER = """
import sys, time
import orjson
from service.worker import app
from fastapi.testclient import TestClient

with TestClient(app()) as client:
    deadline = time.monotonic() + 60
    while client.get("/ready").status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.05)
    response = client.post("/v1/score", json={"account_id": "w1", "mau": [3, 5, 8], "seats": 10})
heavy = ("mlflow", "pandas", "sklearn", "lifelines")
print(orjson.dumps({
    "status": response.status_code,
    "version": response.json()["model"]["version"],
    "loaded": [name for name in heavy if sys.modules.get(name) is not None],
    "prefixed": sorted({m.split(".")[0] for m in sys.modules if m.split(".")[0] in heavy and sys.modules[m] is not None}),
}).decode())
"""


def worker_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHURN_", "PROMETHEUS_"))}
    env.update({"CHURN_HOME": str(tmp_path / "home"), "OMP_NUM_THREADS": "1", **extra})
    return env


def test_a_worker_serves_without_mlflow_pandas_or_scikit_learn(
    timed_bundle: Path, tmp_path: Path
) -> None:
    """Probabilities by horizon included: lifelines (Cox, Kaplan-Meier) is training's only."""
    serving = tmp_path / "serving"
    serving.mkdir()
    bundle = timed_bundle
    ref = BundleRef(
        str(bundle), file_sha256(bundle), "models:/churn-model@champion", "churn-model", "7", "run7"
    )
    publish(serving, Pointer(1, ref))
    done = subprocess.run(
        [sys.executable, "-c", WORKER],
        env=worker_env(tmp_path, CHURN_SERVING_DIR=str(serving)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = orjson.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"status": 200, "version": "7", "loaded": [], "prefixed": []}


def test_a_worker_refuses_to_start_outside_churn_serve(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", "from service.worker import app; app()"],
        env=worker_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 3  # uvicorn's STARTUP_FAILURE: the supervisor stops
    assert (
        "cannot start: service.worker runs under `churn serve` (CHURN_SERVING_DIR is not set)"
        in done.stderr
    )


def test_marking_a_package_unavailable_makes_its_import_fail() -> None:
    name = "churn_test_never_imported"
    try:
        mark_unavailable([name])
        with pytest.raises(ImportError):
            __import__(name)
    finally:
        sys.modules.pop(name, None)


def test_marking_refuses_a_package_that_is_already_imported() -> None:
    name = "churn_test_already_imported"
    sys.modules[name] = types.ModuleType(name)
    try:
        with pytest.raises(RuntimeError, match=f"{name} already imported when the worker started"):
            mark_unavailable([name])
    finally:
        sys.modules.pop(name, None)
