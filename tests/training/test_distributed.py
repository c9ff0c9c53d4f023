"""Training, scoring and drift on Dask: the single-process results, from partitions.

A LocalCluster of two worker processes (LightGBM's network training needs one process per
worker), and one test with separate `dask scheduler` and `dask worker` processes reached
through `churn score --engine dask --scheduler tcp://...`.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("distributed", reason="the dask extra is not installed")

from distributed import Client, LocalCluster

from features.derive import FeatureSpec
from features.settings import Settings
from features.tables import load_tables
from models.bundle import ChurnModel
from tests.conftest import free_port, stop
from training.dataset import SPLITS, SplitPlan
from training.distributed import drift, prepare_partitioned, write_scores
from training.params import TrainParams
from training.pipeline import Prepared, Trained, fit_and_evaluate, prepare_events
from training.progress import Steps
from training.scoring import drift_frame, event_columns, score_frame

pytestmark = pytest.mark.quality  # two trainings and a cluster: minutes on 2 cores
AS_OF = dt.date(2025, 3, 1)
PARAMS = TrainParams()  # the same on both paths
SETTINGS = Settings(engine="dask", dask_partitions=3)
QUIET = Steps(enabled=False)


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, memory_limit="1.5GiB", dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def single(demo_data: Path) -> tuple[Prepared, Trained]:
    tables = load_tables(demo_data)
    prepared = prepare_events(tables, SETTINGS.horizon_days, horizons=SETTINGS.horizons)
    return prepared, fit_and_evaluate(prepared, PARAMS, QUIET)


@pytest.fixture(scope="module")
def on_dask(client: Client, demo_data: Path) -> tuple[Prepared, Trained]:
    prepared = prepare_partitioned(client, demo_data, SETTINGS, "MS", None, SplitPlan(), QUIET)
    return prepared, fit_and_evaluate(prepared, PARAMS, QUIET)


def by_account(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(["as_of", "account_id"], ignore_index=True)


def test_splits_and_feature_spec_equal_single_process(single, on_dask) -> None:
    (local, _), (partitioned, _) = single, on_dask
    pd.testing.assert_frame_equal(partitioned.summary, local.summary)
    for split in SPLITS:  # the whole training window here: it is under the sample size
        pd.testing.assert_frame_equal(
            partitioned.frames[split], by_account(local.frames[split]), check_like=True
        )
    columns = local.columns("train")
    assert partitioned.spec == FeatureSpec.fit(columns, columns["account_id"])
    assert partitioned.tags["window.data_end"] == local.tags["window.data_end"]


def test_training_on_dask_reaches_the_single_process_test_roc_auc(single, on_dask) -> None:
    (_, local), (_, partitioned) = single, on_dask
    # Not bit-identical: each worker bins the features it is given from its own rows.
    assert abs(partitioned.metrics["test_roc_auc"] - local.metrics["test_roc_auc"]) <= 0.01
    assert partitioned.metrics["test_roc_auc"] > partitioned.baseline_metrics["test_roc_auc"] - 0.02
    assert partitioned.model.card.window == local.model.card.window  # the same model card


def outcomes_by_account(prepared: Prepared, split: str) -> pd.DataFrame:
    frame = prepared.frames[split]
    churn = prepared.outcomes[split].churn
    return by_account(frame[["as_of", "account_id"]].assign(churn=churn))


def test_training_on_dask_fits_the_time_to_churn_model_on_the_same_outcomes(
    single, on_dask
) -> None:
    (local_prepared, local), (dask_prepared, partitioned) = single, on_dask
    for split in SPLITS:
        pd.testing.assert_frame_equal(
            outcomes_by_account(dask_prepared, split), outcomes_by_account(local_prepared, split)
        )
    assert partitioned.model.hazard is not None
    assert partitioned.model.horizons == local.model.horizons == tuple(SETTINGS.horizons)
    concordance = "test_hazard_concordance"
    assert abs(partitioned.metrics[concordance] - local.metrics[concordance]) <= 0.02


def test_batch_scores_on_dask_equal_single_process(
    client: Client, on_dask, demo_data: Path, tmp_path: Path
) -> None:
    model = on_dask[1].model
    out = tmp_path / "scores"
    rows, day, top = write_scores(client, model, demo_data, AS_OF, 3, out, SETTINGS, QUIET)
    columns, _ = event_columns(model, demo_data, AS_OF)
    local = score_frame(model, columns, 3).sort_values("account_id", ignore_index=True)
    scored = pd.read_parquet(out).sort_values("account_id", ignore_index=True)
    assert rows == len(local) == len(scored) and day == AS_OF
    assert list(scored["account_id"]) == list(local["account_id"])
    assert np.abs(scored["churn_probability"] - local["churn_probability"]).max() <= 1e-6
    assert (scored["risk_tier"] == local["risk_tier"]).all()
    assert scored["driver_1"].fillna("").tolist() == local["driver_1"].fillna("").tolist()
    assert top["churn_probability"].iloc[0] == pytest.approx(local["churn_probability"].max())


def test_drift_tallied_per_partition_equals_single_process(
    client: Client, on_dask, demo_data: Path
) -> None:
    model = on_dask[1].model
    found = drift(client, model, demo_data, AS_OF, SETTINGS, QUIET)
    columns, _ = event_columns(model, demo_data, AS_OF)
    local = drift_frame(model, columns)
    merged = found.report.merge(local, on="feature", suffixes=("", "_local"))
    assert len(merged) == len(local)
    assert np.allclose(merged["psi"], merged["psi_local"], atol=1e-12)
    assert np.allclose(merged["missing_now"], merged["missing_now_local"])
    assert found.accounts == len(columns["account_id"])
    assert found.mean_probability == pytest.approx(model.predict_proba(columns).mean())


def start(command: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        command, stdout=log.open("w"), stderr=subprocess.STDOUT, env={**os.environ}
    )


def test_churn_score_reaches_separate_scheduler_and_worker_processes(
    on_dask, demo_data: Path, tmp_path: Path
) -> None:
    model = on_dask[1].model
    bundle = model.save(tmp_path / "bundle.churn")
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    dask = [sys.executable, "-m", "dask"]
    scheduler = start(
        [*dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
        tmp_path / "scheduler.log",
    )
    worker = None
    try:
        workers = ("--nworkers", "2", "--nthreads", "1", "--memory-limit", "1GiB")
        worker = start([*dask, "worker", address, *workers, "--no-dashboard"], tmp_path / "w.log")
        with Client(address, timeout="60s") as watcher:
            watcher.wait_for_workers(2, timeout=300)
        out = tmp_path / "scores"
        options = {
            "--engine": "dask",
            "--scheduler": address,
            "--data": str(demo_data),
            "--model": str(bundle),
            "--as-of": AS_OF.isoformat(),
            "--out": str(out),
        }
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "service.cli",
                "score",
                *(x for o in options.items() for x in o),
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "CHURN_HOME": str(tmp_path / "home"), "CHURN_DASK_PARTITIONS": "3"},
            timeout=1200,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        assert f"Dask: 2 workers at {address}" in done.stderr
    finally:
        for process in (worker, scheduler):
            if process is not None:
                stop(process)
    loaded = ChurnModel.load(bundle)
    columns, _ = event_columns(loaded, demo_data, AS_OF)
    local = score_frame(loaded, columns, 3).sort_values("account_id", ignore_index=True)
    scored = pd.read_parquet(out).sort_values("account_id", ignore_index=True)
    assert list(scored["account_id"]) == list(local["account_id"])
    assert np.abs(scored["churn_probability"] - local["churn_probability"]).max() <= 1e-6
    assert len(list(out.glob("*.parquet"))) == 3  # a file per account partition
