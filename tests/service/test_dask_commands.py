"""`churn train --engine dask` end to end: registered in MLflow, served by `churn serve` as is.

Slow (a LocalCluster in the job, a real training, a real server): a quality check.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("distributed", reason="the dask extra is not installed")

from .conftest import snapshot, start_server


@pytest.mark.quality
def test_a_model_trained_on_dask_is_registered_and_served(demo_data: Path, tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CHURN_")},
        "CHURN_HOME": str(tmp_path / "home"),
        "CHURN_DASK_WORKERS": "2",
        "CHURN_DASK_PARTITIONS": "3",
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    train = ["train", "--data", str(demo_data), "--engine", "dask", "--worker-memory", "1.5GiB"]
    done = subprocess.run(
        [sys.executable, "-m", "service.cli", *train],
        capture_output=True,
        text=True,
        env=env,
        timeout=1800,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Dask: 2 workers" in done.stderr and "dashboard" in done.stderr
    assert "version 1 -> @champion" in done.stdout
    served = start_server(tmp_path, "--workers", "2")
    try:
        served.wait_until_every_worker_is_ready(2, timeout=300)
        answer = served.post("/v1/score", json=snapshot())
        assert answer.status_code == 200, answer.text
        assert 0 <= answer.json()["churn_probability"] <= 1
        assert served.get("/v1/model").json()["version"] == "1"
    finally:
        served.stop()
