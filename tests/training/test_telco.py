"""Table mode on the real IBM Telco export (../shared/datasets/telco/), default settings."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from training.compare import references_cross_validated, short_of_references
from training.params import TrainParams
from training.pipeline import fit_and_evaluate
from training.progress import Steps
from training.table import CV_FOLDS, TableMapping, clean_table, prepare_table, read_export

TELCO = (
    Path(__file__).resolve().parents[2]
    / ".."
    / "shared"
    / "datasets"
    / "telco"
    / "WA_Fn-UseC_-Telco-Customer-Churn.csv"
)
MAPPING = TableMapping(
    fields={"tenure": "tenure_months", "Contract": "contract_type", "MonthlyCharges": "mrr"},
    id_column="customerID",
    label="Churn",
)
PARITY = (
    0.002  # 5-fold pooled AUC: LightGBM vs the logistic baseline, measured spread over split seeds
)

pytestmark = [
    pytest.mark.quality,
    pytest.mark.skipif(
        not TELCO.is_file(), reason=f"Telco data set not found at {TELCO.resolve()}"
    ),
]


@pytest.fixture(scope="module")
def telco():
    clean = clean_table(read_export(TELCO), MAPPING, dt.date(2024, 1, 1))
    prepared = prepare_table(clean, source=str(TELCO))
    trained = fit_and_evaluate(prepared, TrainParams(), Steps(enabled=False))
    print(
        {
            k: round(v, 4)
            for k, v in trained.metrics.items()
            if k[5:] in ("roc_auc", "pr_auc", "ece") or k[3:] in ("roc_auc", "pr_auc", "ece")
        }
    )
    return clean, trained


def test_dirty_values_are_repaired_and_reported(telco) -> None:
    clean, _ = telco
    assert len(clean.snapshots) == 7043 and clean.label.sum() == 1869
    assert "TotalCharges: 11 blank value(s) treated as missing" in clean.report


def test_hold_out_auc_reaches_the_floor_and_the_baseline(telco) -> None:
    _, trained = telco
    assert trained.metrics["test_roc_auc"] >= 0.84
    assert trained.metrics["test_roc_auc"] >= trained.baseline_metrics["test_roc_auc"]


def test_cross_validated_auc_reaches_the_floor_at_parity_with_the_baseline(telco) -> None:
    _, trained = telco
    assert trained.metrics["cv_roc_auc"] >= 0.84
    assert trained.metrics["cv_roc_auc"] >= trained.baseline_metrics["cv_roc_auc"] - PARITY


def test_out_of_fold_predictions_are_calibrated(telco) -> None:
    _, trained = telco
    assert trained.metrics["cv_ece"] <= 0.02


def test_cross_validated_model_reaches_lightgbm_defaults_and_logistic_regression(telco) -> None:
    """The folds `churn train --table` cross-validates on; floors of bench/quality.py."""
    clean, trained = telco
    params = TrainParams()
    references = references_cross_validated(
        prepare_table(clean, source=str(TELCO), seed=params.seed), CV_FOLDS, params.seed
    )
    print(references)
    scores = {"roc_auc": trained.metrics["cv_roc_auc"], "pr_auc": trained.metrics["cv_pr_auc"]}
    assert not short_of_references(scores, references), (scores, references)
