"""Batch scoring and drift of a table-mode model: the export as it is, with the stored mapping."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.errors import ModelError
from training.params import TrainParams
from training.pipeline import fit_and_evaluate
from training.progress import Steps
from training.scoring import drift_frame, score_table, table_columns
from training.table import TableMapping, clean_table, prepare_table, read_export

AS_OF = dt.date(2024, 1, 1)


def export(rows: int, seed: int = 0) -> pd.DataFrame:
    """A flat CRM export: short tenure, month-to-month and fibre churn more."""
    rng = np.random.default_rng(seed)
    tenure = rng.integers(0, 72, rows)
    contract = rng.choice(["Month-to-month", "One year", "Two year"], rows, p=[0.55, 0.25, 0.2])
    fibre = rng.random(rows) < 0.4
    logit = -1.0 - 0.04 * tenure + 1.2 * (contract == "Month-to-month") + 0.8 * fibre
    churn = np.where(rng.random(rows) < 1 / (1 + np.exp(-logit)), "Yes", "No")
    charges = np.round(20 + 60 * fibre + rng.normal(0, 5, rows), 2)
    total = np.where(tenure == 0, " ", np.round(charges * tenure, 2).astype(str))
    return pd.DataFrame(
        {
            "customerID": [f"c{i}" for i in range(rows)],
            "tenure": tenure,
            "Contract": contract,
            "InternetService": np.where(fibre, "Fiber optic", "DSL"),
            "MonthlyCharges": charges,
            "TotalCharges": total,
            "Churn": churn,
        }
    )


MAPPING = TableMapping(
    fields={"tenure": "tenure_months", "Contract": "contract_type", "MonthlyCharges": "mrr"},
    id_column="customerID",
    label="Churn",
)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = tmp_path_factory.mktemp("export") / "train.csv"
    export(3000).to_csv(path, index=False)
    clean = clean_table(read_export(path), MAPPING, AS_OF)
    return fit_and_evaluate(
        prepare_table(clean, str(path)), TrainParams(), Steps(enabled=False)
    ).model


def test_scores_every_row_with_reasons_in_words(model, tmp_path: Path) -> None:
    path = tmp_path / "current.csv"
    export(200, seed=1).drop(columns=["Churn"]).to_csv(path, index=False)
    scored = score_table(model, path, AS_OF)
    assert len(scored) == 200 and scored["churn_probability"].between(0, 1).all()
    riskiest = scored.sort_values("churn_probability").iloc[-1]
    reasons = {riskiest["driver_1"], riskiest["driver_2"], riskiest["driver_3"]}
    assert "month-to-month contract" in reasons or any(
        str(r).startswith("tenure ") for r in reasons
    )


def test_a_missing_column_still_scores(model, tmp_path: Path) -> None:
    path = tmp_path / "partial.csv"
    export(50, seed=2).drop(columns=["InternetService", "Churn"]).to_csv(path, index=False)
    scored = score_table(model, path, AS_OF)
    assert len(scored) == 50 and scored["churn_probability"].notna().all()


def test_the_model_records_its_mode_and_mapping(model) -> None:
    assert model.card.mode == "table"
    assert model.card.mapping["fields"]["tenure"] == "tenure_months"
    assert model.card.mapping["attribute_kinds"]["TotalCharges"] == "numeric"


def test_an_event_model_refuses_a_table(model, tmp_path: Path) -> None:
    events = dataclasses.replace(model, card=model.card.replace(mode="events"))
    with pytest.raises(ModelError, match="trained on event tables"):
        score_table(events, tmp_path / "any.csv", AS_OF)


def shifted_export(rows: int, seed: int) -> pd.DataFrame:
    """Customers of another kind: all in their first months."""
    frame = export(rows, seed)
    frame["tenure"] = np.random.default_rng(seed).integers(0, 4, rows)
    return frame


def test_accounts_like_the_training_ones_show_no_drift(model, tmp_path: Path) -> None:
    path = tmp_path / "current.csv"
    export(3000, seed=3).to_csv(path, index=False)
    report = drift_frame(model, table_columns(model, path, AS_OF))
    assert set(report["feature"]) == set(model.spec.names)
    assert (report["level"] == "stable").all(), report


TENURE_FEATURES = {"tenure_days", "lifecycle_stage", "days_to_renewal"}  # all read tenure


def test_only_the_shifted_features_are_reported_as_major_drift(model, tmp_path: Path) -> None:
    path = tmp_path / "current.csv"
    shifted_export(3000, seed=4).to_csv(path, index=False)
    report = drift_frame(model, table_columns(model, path, AS_OF))
    assert set(report.loc[report["level"] == "major", "feature"]) == TENURE_FEATURES
    assert set(report["feature"].head(len(TENURE_FEATURES))) == TENURE_FEATURES


def test_monitor_exits_4_on_major_drift_and_writes_the_report(model, tmp_path: Path) -> None:
    bundle = model.save(tmp_path / "bundle.churn")
    shifted, out = tmp_path / "shifted.csv", tmp_path / "drift.csv"
    shifted_export(500, seed=5).to_csv(shifted, index=False)
    command = [
        sys.executable,
        "-m",
        "service.cli",
        "monitor",
        "--table",
        str(shifted),
        "--as-of",
        AS_OF.isoformat(),
        "--model",
        str(bundle),
        "--out",
        str(out),
    ]
    env = {**os.environ, "CHURN_HOME": str(tmp_path), "MLFLOW_DISABLE_TELEMETRY": "true"}
    failed = subprocess.run(
        [*command, "--fail-on", "major"], capture_output=True, text=True, env=env, timeout=300
    )
    assert failed.returncode == 4 and "drift at or above major" in failed.stderr
    assert set(pd.read_csv(out)["feature"].head(len(TENURE_FEATURES))) == TENURE_FEATURES
    reported = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert reported.returncode == 0 and "tenure_days" in reported.stdout
