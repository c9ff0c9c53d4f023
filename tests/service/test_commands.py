"""The `churn` command line as users run it: real processes, real files, exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pandas as pd
import pytest
from click.testing import Result

from features.schema import AccountSnapshot
from features.snapshot import active_points, build_snapshots
from features.tables import load_tables


def churn(*args: str, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "CHURN_HOME": str(home), "MLFLOW_DISABLE_TELEMETRY": "true"}
    env.pop("CHURN_TRACKING_URI", None)
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


@pytest.fixture(scope="module")
def trained_home(demo_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An embedded MLflow store (SQLite under CHURN_HOME) with a champion trained on demo data."""
    home = tmp_path_factory.mktemp("home")
    # Two short horizons keep the time-to-churn model cheap here; the default four are
    # tested on the models (tests/models/test_hazard.py) and over HTTP (test_horizons.py).
    done = churn("train", "--data", str(demo_data), "--horizons", "30,90", home=home)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (home / "mlflow.db").is_file()
    return home


def test_snapshot_json_lines_validate_as_api_requests(demo_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "snapshots.jsonl"
    done = churn(
        "snapshot",
        "--data",
        str(demo_data),
        "--as-of",
        "2025-03-01",
        "--out",
        str(out),
        home=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    rows = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    tables = load_tables(demo_data)
    assert len(rows) == len(active_points(tables, ["2025-03-01"]))
    for row in rows:
        AccountSnapshot.model_validate(row)
    assert not list(tmp_path.glob(".*.tmp")), "no temp file is left behind"


def test_snapshot_parquet_equals_stage_one(demo_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "snapshots.parquet"
    assert (
        churn(
            "snapshot",
            "--data",
            str(demo_data),
            "--as-of",
            "2025-03-01",
            "--out",
            str(out),
            home=tmp_path,
        ).returncode
        == 0
    )
    tables = load_tables(demo_data)
    expected = build_snapshots(tables, active_points(tables, ["2025-03-01"]))
    written = pd.read_parquet(out)
    assert list(written.columns) == list(expected.columns)
    pd.testing.assert_series_equal(written["mau_0"], expected["mau_0"], check_dtype=False)


def test_bad_data_exits_2_naming_the_problem(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    pd.DataFrame({"account_id": ["a"], "signup_date": ["2024-02-30"]}).to_csv(
        tmp_path / "data" / "accounts.csv", index=False
    )
    done = churn(
        "snapshot",
        "--data",
        str(tmp_path / "data"),
        "--as-of",
        "2024-03-01",
        "--out",
        str(tmp_path / "x.csv"),
        home=tmp_path,
    )
    assert done.returncode == 2
    assert (
        "accounts.signup_date: signup_date is not an ISO date" in done.stderr
        and "'2024-02-30'" in done.stderr
    )
    assert not (tmp_path / "x.csv").exists()


def test_score_writes_probability_tier_revenue_and_reasons(
    trained_home: Path, demo_data: Path, tmp_path: Path
) -> None:
    out = tmp_path / "scores.csv"
    done = churn(
        "score",
        "--data",
        str(demo_data),
        "--as-of",
        "2025-03-01",
        "--out",
        str(out),
        home=trained_home,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    scores = pd.read_csv(out)
    assert {"account_id", "churn_probability", "risk_tier", "revenue_at_risk", "driver_1"} <= set(
        scores.columns
    )
    assert scores["churn_probability"].between(0, 1).all()
    assert set(scores["risk_tier"]) <= {"low", "medium", "high", "critical"}
    assert len(scores) == len(active_points(load_tables(demo_data), ["2025-03-01"]))


def test_score_writes_probabilities_by_horizon_months_and_value(
    trained_home: Path, demo_data: Path, tmp_path: Path
) -> None:
    out = tmp_path / "scores.parquet"
    done = churn("score", "--data", str(demo_data), "--out", str(out), home=trained_home)
    assert done.returncode == 0, done.stderr[-2000:]
    scores = pd.read_parquet(out)
    horizons = ["churn_probability_30d", "churn_probability_90d"]
    assert (scores[horizons].diff(axis=1).iloc[:, 1:] >= 0).all().all()
    assert scores[horizons].stack().between(0, 1).all()
    assert scores["expected_months_remaining"].between(0, 3).all()  # 90 days: three months
    assert (scores["expected_remaining_value"] > 0).all()
    assert "expected_months_remaining" in done.stdout


def test_train_logs_the_time_to_churn_model_beside_cox_and_kaplan_meier(
    trained_home: Path,
) -> None:
    from mlflow import MlflowClient

    uri = f"sqlite:///{trained_home / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    version = client.get_model_version_by_alias("churn-model", "champion")
    metrics = client.get_run(version.run_id).data.metrics
    for model in ("hazard", "cox", "km"):
        for horizon in (30, 90):
            assert 0 <= metrics[f"test_{model}_roc_auc_{horizon}d"] <= 1.0
            assert 0 <= metrics[f"test_{model}_ece_{horizon}d"] <= 1.0
        assert 0 <= metrics[f"test_{model}_concordance"] <= 1.0
        assert 0 < metrics[f"test_{model}_integrated_brier"] < 1.0
    # the leading indicators rank who leaves this month far better than stage x plan does
    assert metrics["test_hazard_roc_auc_30d"] > metrics["test_km_roc_auc_30d"] + 0.1
    plots = {a.path for a in client.list_artifacts(version.run_id, "plots")}
    assert {"plots/survival_reliability.png", "plots/survival_curves.png"} <= plots


def test_evaluate_reports_the_training_metrics(
    trained_home: Path, demo_data: Path, tmp_path: Path
) -> None:
    out = tmp_path / "metrics.json"
    done = churn(
        "evaluate", "--data", str(demo_data), "--last", "3", "--out", str(out), home=trained_home
    )
    assert done.returncode == 0, done.stderr[-2000:]
    metrics = orjson.loads(out.read_bytes())
    assert (
        0.5 < metrics["eval_roc_auc"] <= 1.0
        and "eval_ece" in metrics
        and "eval_lift_top10" in metrics
    )


def test_monitor_reports_the_drift_of_every_model_feature(
    trained_home: Path, demo_data: Path, tmp_path: Path
) -> None:
    out = tmp_path / "drift.csv"
    done = churn(
        "monitor",
        "--data",
        str(demo_data),
        "--as-of",
        "2025-03-01",
        "--out",
        str(out),
        home=trained_home,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = pd.read_csv(out)
    assert report["feature"].is_unique and len(report) > 20
    assert (report["psi"] >= 0).all() and set(report["level"]) <= {"stable", "moderate", "major"}
    assert report["psi"].is_monotonic_decreasing
    assert "mean churn probability" in done.stdout


def test_score_without_a_champion_is_a_clear_error(demo_data: Path, tmp_path: Path) -> None:
    done = churn("score", "--data", str(demo_data), "--out", str(tmp_path / "s.csv"), home=tmp_path)
    assert done.returncode == 3
    assert "has no alias 'champion'" in done.stderr or "churn-model" in done.stderr


# --- bad exports: a clear error, and nothing on disk changes -------------------------------------
# In-process (typer's runner, the same command function and error mapping): a process each
# would cost seconds of imports.


def snapshot_command(data: Path, out: Path) -> Result:
    from typer.testing import CliRunner

    from service.cli import app

    return CliRunner().invoke(
        app, ["snapshot", "--data", str(data), "--as-of", "2024-06-01", "--out", str(out)]
    )


def bad_export(tmp_path: Path, **accounts_columns: list) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    accounts = {"account_id": ["a", "b"], "signup_date": ["2024-01-10", "2024-02-01"]}
    pd.DataFrame({**accounts, **accounts_columns}).to_csv(data / "accounts.csv", index=False)
    return data


@pytest.mark.parametrize(
    ("columns", "said"),
    [
        (
            {"churn_date": ["1600-01-01", None]},
            "accounts.churn_date: churn_date is outside the supported dates 1900-01-01 to "
            "2200-12-31 in 1 row(s); first: row 1: '1600-01-01'",
        ),
        (
            {"mrr": [100.0, float("inf")]},
            "accounts.mrr: mrr is not a finite number in 1 row(s); first: row 2: inf",
        ),
        (
            {"seats": ["3", "1e400"]},
            "accounts.seats: seats is not a finite number in 1 row(s); first: row 2: inf",
        ),
    ],
)
def test_a_bad_export_exits_2_and_leaves_the_output_alone(
    tmp_path: Path, columns: dict, said: str
) -> None:
    out = tmp_path / "snapshots.csv"
    out.write_text("the previous good output\n")
    done = snapshot_command(bad_export(tmp_path, **columns), out)
    assert done.exit_code == 2 and done.stderr == f"error: {said}\n"
    assert out.read_text() == "the previous good output\n"


def test_an_empty_accounts_table_exits_2(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "accounts.csv").write_text("account_id,signup_date\n")
    done = snapshot_command(data, tmp_path / "x.csv")
    assert done.exit_code == 2 and done.stderr.startswith("error: accounts: the table has no rows")
    assert not (tmp_path / "x.csv").exists()


def test_the_never_sentinel_keeps_accounts_active_and_says_so(tmp_path: Path, caplog) -> None:
    data = bad_export(tmp_path, churn_date=["9999-12-31", "9999-12-31"])
    out = tmp_path / "snapshots.csv"
    done = snapshot_command(data, out)
    assert done.exit_code == 0, done.output
    assert "accounts.churn_date: 2 row(s) dated 9999-12-31 read as no date" in caplog.text
    assert len(pd.read_csv(out)) == 2


def test_a_command_given_both_sources_names_the_two_forms(tmp_path: Path) -> None:
    both = churn(
        "score", "--out", "s.csv", "--data", str(tmp_path), "--table", "t.csv", home=tmp_path
    )
    assert both.returncode == 2, both.stderr[-2000:]
    assert "give either --data DIR (event tables) or --table FILE" in both.stderr
