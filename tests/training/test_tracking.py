"""`churn train` against a real `mlflow server` process, checked through MlflowClient."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

PLOTS = {
    "roc.png",
    "pr.png",
    "calibration.png",
    "lift_gain.png",
    "feature_importance.png",
    "shap_summary.png",
}
MODEL = "churn-model"


def churn(
    *args: str, tracking_uri: str, home: Path, **settings: str
) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "CHURN_TRACKING_URI": tracking_uri,
        "CHURN_HOME": str(home),
        "CHURN_HORIZONS": "none",  # the time-to-churn model has its own tests (test_commands)
        "MLFLOW_DISABLE_TELEMETRY": "true",
        **{f"CHURN_{key.upper()}": value for key, value in settings.items()},
    }
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


@pytest.fixture(scope="module")
def first_run(mlflow_server: str, demo_data: Path, tmp_path_factory) -> dict:
    home = tmp_path_factory.mktemp("home")
    done = churn("train", "--data", str(demo_data), tracking_uri=mlflow_server, home=home)
    assert done.returncode == 0, done.stderr[-3000:]
    client = MlflowClient(tracking_uri=mlflow_server, registry_uri=mlflow_server)
    version = client.get_model_version_by_alias(MODEL, "champion")
    return {
        "client": client,
        "version": version,
        "run": client.get_run(version.run_id),
        "home": home,
        "stdout": done.stdout,
    }


def test_run_logs_params_of_model_and_data(first_run) -> None:
    params = first_run["run"].data.params
    for key in (
        "horizon_days",
        "every",
        "learning_rate",
        "num_leaves",
        "calibration",
        "split.test_periods",
        "features",
    ):
        assert key in params
    assert params["horizon_days"] == "90"


def test_run_logs_metric_keys_overall_and_per_stage(first_run) -> None:
    metrics = first_run["run"].data.metrics
    for key in (
        "roc_auc",
        "pr_auc",
        "brier",
        "log_loss",
        "ece",
        "lift_top10",
        "capture_top10",
        "lift_top20",
        "capture_top20",
    ):
        assert f"test_{key}" in metrics
    assert any(k.endswith("_late") for k in metrics) and any(k.endswith("_mid") for k in metrics)


def test_run_logs_tags_and_input_dataset(first_run) -> None:
    run = first_run["run"]
    for tag in (
        "window.data_start",
        "window.data_end",
        "horizon_days",
        "git_commit",
        "code_version",
        "bundle_sha256",
    ):
        assert tag in run.data.tags
    assert [d.dataset.name for d in run.inputs.dataset_inputs] == ["labelled_snapshots"]


def test_run_has_plots_and_tables(first_run) -> None:
    client, run_id = first_run["client"], first_run["run"].info.run_id
    plots = {Path(a.path).name for a in client.list_artifacts(run_id, "plots")}
    tables = {Path(a.path).name for a in client.list_artifacts(run_id, "tables")}
    assert plots >= PLOTS and {"metrics.csv", "split_summary.csv"} <= tables


def test_baseline_is_a_nested_run_with_the_same_metric_keys(first_run) -> None:
    client, run = first_run["client"], first_run["run"]
    children = client.search_runs(
        [run.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{run.info.run_id}'"
    )
    assert len(children) == 1 and children[0].data.tags["role"] == "baseline"
    model_keys = {k for k in run.data.metrics if k.startswith("test_")}
    assert {k for k in children[0].data.metrics if k.startswith("test_")} <= model_keys
    assert "test_roc_auc" in children[0].data.metrics


def test_experiment_is_marked_as_model_training(first_run) -> None:
    experiment = first_run["client"].get_experiment(first_run["run"].info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    assert "`train`" in experiment.tags["mlflow.note.content"]


def test_training_run_is_named_by_its_data_end_and_model_form(first_run) -> None:
    run = first_run["run"]
    tags = run.data.tags
    assert run.info.run_name == f"train {tags['window.data_end']} {tags['model_form']}"


def test_training_run_note_gives_window_rows_and_figures_against_baseline(first_run) -> None:
    run, baseline = first_run["run"], baseline_of(first_run)
    note, tags = run.data.tags["mlflow.note.content"], run.data.tags
    assert f"on events {tags['window.data_start']}..{tags['window.data_end']}" in note
    assert f"test {int(tags['rows.test']):,} (" in note
    model_auc, baseline_auc = (
        run.data.metrics["test_roc_auc"],
        baseline.data.metrics["test_roc_auc"],
    )
    assert f"ROC-AUC {model_auc:.3f} (baseline {baseline_auc:.3f})" in note
    assert f"top-decile lift {run.data.metrics['test_lift_top10']:.2f}" in note


def test_baseline_run_is_named_and_described(first_run) -> None:
    baseline = baseline_of(first_run)
    assert baseline.info.run_name == "baseline"
    auc = baseline.data.metrics["test_roc_auc"]
    assert f"ROC-AUC {auc:.3f}" in baseline.data.tags["mlflow.note.content"]


def test_version_description_is_the_run_note(first_run) -> None:
    assert first_run["version"].description == first_run["run"].data.tags["mlflow.note.content"]


def test_registered_model_says_horizon_features_and_playbook(first_run) -> None:
    description = first_run["client"].get_registered_model(MODEL).description
    features = first_run["run"].data.params["features"]
    assert "within 90 days" in description and f"Features ({features}):" in description
    assert "playbook at service/playbook.toml" in description


def test_per_stage_metrics_are_a_table_the_ui_shows(first_run, tmp_path: Path) -> None:
    client, run = first_run["client"], first_run["run"]
    logged = json.loads(run.data.tags["mlflow.loggedArtifacts"])
    assert {"path": "tables/metrics_by_stage.json", "type": "table"} in logged
    # the file itself: client.load_table searches the process-global store, not the client's
    table = read_table(client, run.info.run_id, tmp_path)
    assert set(table["model"]) == {"lightgbm", "baseline"}
    late = table[(table["model"] == "lightgbm") & (table["stage"] == "late")].iloc[0]
    assert late["roc_auc"] == pytest.approx(run.data.metrics["test_roc_auc_late"], abs=1e-4)


def read_table(client: MlflowClient, run_id: str, into: Path) -> pd.DataFrame:
    path = client.download_artifacts(run_id, "tables/metrics_by_stage.json", str(into))
    return pd.read_json(path, orient="split")


def baseline_of(first_run: dict):
    client, run = first_run["client"], first_run["run"]
    (child,) = client.search_runs(
        [run.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{run.info.run_id}'"
    )
    return child


@pytest.fixture(scope="module")
def evaluated(first_run, mlflow_server: str, demo_data: Path) -> dict:
    """`churn evaluate` of the champion, with the registry as it was before and after."""
    client = first_run["client"]
    before = client.search_model_versions(f"name='{MODEL}'")
    champion = client.get_model_version_by_alias(MODEL, "champion")
    done = churn(
        "evaluate",
        "--data",
        str(demo_data),
        "--last",
        "1",
        tracking_uri=mlflow_server,
        home=first_run["home"],
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (run,) = client.search_runs(
        [first_run["run"].info.experiment_id], filter_string="tags.mode = 'evaluation'"
    )
    return {
        "client": client,
        "run": run,
        "champion": champion,
        "versions_before": len(before),
        "versions_after": len(client.search_model_versions(f"name='{MODEL}'")),
        "champion_after": client.get_model_version_by_alias(MODEL, "champion"),
    }


def test_evaluate_is_a_named_run_with_its_figures(evaluated, first_run) -> None:
    run, champion = evaluated["run"], evaluated["champion"]
    tags = first_run["run"].data.tags
    assert run.info.run_name == (
        f"evaluate {tags['window.data_end']} {tags['model_form']} v{champion.version}"
    )
    assert run.info.experiment_id == first_run["run"].info.experiment_id
    auc = run.data.metrics["eval_roc_auc"]
    note = run.data.tags["mlflow.note.content"]
    assert f"Evaluated {MODEL} version {champion.version}" in note and f"ROC-AUC {auc:.3f}" in note
    assert "At training (its test window): ROC-AUC" in note
    logged = json.loads(run.data.tags["mlflow.loggedArtifacts"])
    assert {"path": "tables/metrics_by_stage.json", "type": "table"} in logged


def test_evaluate_registers_nothing_and_moves_no_alias(evaluated) -> None:
    assert evaluated["versions_after"] == evaluated["versions_before"]
    assert evaluated["champion_after"].version == evaluated["champion"].version
    run = evaluated["run"]
    logged = evaluated["client"].search_logged_models(
        [run.info.experiment_id], filter_string=f"source_run_id = '{run.info.run_id}'"
    )
    assert len(logged) == 0


def test_ui_replaces_a_guessed_experiment_kind_and_links_the_training_runs(
    mlflow_server: str, tmp_path: Path
) -> None:
    client = MlflowClient(tracking_uri=mlflow_server)
    experiment_id = client.create_experiment(
        "guessed", tags={"mlflow.experimentKind": "genai_development_inferred"}
    )
    done = churn("ui", tracking_uri=mlflow_server, home=tmp_path, experiment="guessed")
    assert done.returncode == 0, done.stderr[-2000:]
    tags = client.get_experiment(experiment_id).tags
    assert tags["mlflow.experimentKind"] == "custom_model_development"
    link = f"{mlflow_server}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"
    assert link in done.stdout


def test_first_version_becomes_champion_with_its_checksum(first_run) -> None:
    version = first_run["version"]
    assert version.version == "1" and len(version.tags["bundle_sha256"]) == 64
    assert "version 1 -> @champion" in first_run["stdout"]


def test_pyfunc_from_the_registry_predicts_like_the_bundle(
    first_run, mlflow_server: str, demo_data: Path
) -> None:
    import mlflow.pyfunc

    from features.settings import Settings
    from features.snapshot import active_points, build_snapshots
    from features.tables import load_tables
    from models.registry import load_model

    mlflow.set_tracking_uri(mlflow_server)
    mlflow.set_registry_uri(mlflow_server)
    pyfunc = mlflow.pyfunc.load_model(f"models:/{MODEL}@champion")
    tables = load_tables(demo_data)
    snapshots = build_snapshots(tables, active_points(tables, [pd.Timestamp("2025-03-01")]))
    served = pyfunc.predict(snapshots)["churn_probability"].to_numpy()
    settings = Settings(tracking_uri=mlflow_server)
    bundle = load_model(f"models:/{MODEL}@champion", settings).model
    np.testing.assert_allclose(served, bundle.predict_proba(snapshots), rtol=0, atol=1e-12)


def test_later_versions_take_the_alias_only_with_promote(
    first_run, mlflow_server: str, demo_data: Path
) -> None:
    client, home = first_run["client"], first_run["home"]
    train = ("train", "--data", str(demo_data), "--horizons", "none")  # the alias is the point
    kept = churn(*train, tracking_uri=mlflow_server, home=home)
    assert kept.returncode == 0, kept.stderr[-2000:]
    assert client.get_model_version_by_alias(MODEL, "champion").version == "1"
    promoted = churn(*train, "--promote", tracking_uri=mlflow_server, home=home)
    assert promoted.returncode == 0, promoted.stderr[-2000:]
    latest = max(int(v.version) for v in client.search_model_versions(f"name='{MODEL}'"))
    assert client.get_model_version_by_alias(MODEL, "champion").version == str(latest)


def test_too_little_data_fails_before_any_run(
    first_run, mlflow_server: str, demo_data: Path, tmp_path: Path
) -> None:
    client = first_run["client"]
    accounts = pd.read_parquet(demo_data / "accounts.parquet").head(40)
    small = tmp_path / "small"
    small.mkdir()
    accounts.to_parquet(small / "accounts.parquet")
    usage = pd.read_parquet(demo_data / "usage.parquet")
    usage[usage["account_id"].isin(accounts["account_id"])].to_parquet(small / "usage.parquet")
    experiment = client.get_experiment_by_name("churn")
    runs_before = len(client.search_runs([experiment.experiment_id]))
    champion_before = client.get_model_version_by_alias(MODEL, "champion").version
    failed = churn(
        "train",
        "--data",
        str(small),
        "--promote",
        tracking_uri=mlflow_server,
        home=first_run["home"],
    )
    assert failed.returncode == 2
    assert "split has" in failed.stderr and "labelled rows" in failed.stderr
    assert len(client.search_runs([experiment.experiment_id])) == runs_before
    assert client.get_model_version_by_alias(MODEL, "champion").version == champion_before
