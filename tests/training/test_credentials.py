"""`churn train` against a registry that asks who is calling (`mlflow server --app-name
basic-auth`): credentials from MLflow's own variables work, and are never printed."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from models.registry import Registry
from tests.conftest import ADMIN
from tests.training.test_champion_jobs import environment, run

pytestmark = pytest.mark.quality  # two trainings against a server: with the other job tests
FAST = ("--param", "search_candidates=0", "--param", "num_boost_round=40", "--horizons", "none")
CREDENTIALS = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")


def train(server: str, data: Path, home: Path, name: str, **credentials: str):
    env = environment(server, home, name, OMP_NUM_THREADS="1")
    env = {k: v for k, v in env.items() if k not in CREDENTIALS}
    return run("train", "--data", str(data), *FAST, env={**env, **credentials})


def test_churn_train_with_registry_credentials_registers_the_champion(
    basic_auth_server: str, demo_data: Path, tmp_path: Path, monkeypatch
) -> None:
    name = f"auth-train-{uuid.uuid4().hex[:8]}"
    done = train(
        basic_auth_server,
        demo_data,
        tmp_path,
        name,
        MLFLOW_TRACKING_USERNAME=ADMIN[0],
        MLFLOW_TRACKING_PASSWORD=ADMIN[1],
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert ADMIN[1] not in done.stdout + done.stderr
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", ADMIN[0])
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", ADMIN[1])
    assert Registry(basic_auth_server, basic_auth_server).alias_version(name, "champion") == "1"


def test_churn_train_without_credentials_stops_with_exit_5_and_a_message(
    basic_auth_server: str, demo_data: Path, tmp_path: Path
) -> None:
    done = train(basic_auth_server, demo_data, tmp_path, f"auth-refused-{uuid.uuid4().hex[:8]}")
    assert done.returncode == 5, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert "error: cannot open the experiment" in done.stderr
