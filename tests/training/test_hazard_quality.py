"""Quality of the time-to-churn model on demo data (`make quality`): against Cox and
Kaplan-Meier on the same snapshots, and against the horizon model at 90 days."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from features.tables import load_tables
from features.timeline import DEFAULT_HORIZONS
from training.demo import generate_demo
from training.params import TrainParams
from training.pipeline import fit_and_evaluate, prepare_events
from training.progress import Steps

ACCOUNTS, START, END = 5000, dt.date(2023, 1, 1), dt.date(2025, 12, 31)
MAX_ECE = 0.03
HORIZON_MODEL_GAP = 0.02  # the hazard model's 90-day ROC-AUC at most this below the 90-day model's


@pytest.mark.quality
def test_the_hazard_model_beats_cox_and_kaplan_meier_and_stays_calibrated(tmp_path: Path) -> None:
    generate_demo(tmp_path, accounts=ACCOUNTS, start=START, end=END, seed=0, progress=False)
    prepared = prepare_events(load_tables(tmp_path), 90, horizons=DEFAULT_HORIZONS)
    metrics = fit_and_evaluate(prepared, TrainParams(), Steps(enabled=False)).metrics
    for horizon in (30, 90, 180):
        hazard = metrics[f"long_test_hazard_roc_auc_{horizon}d"]
        assert hazard > metrics[f"long_test_cox_roc_auc_{horizon}d"], horizon
        assert hazard > metrics[f"long_test_km_roc_auc_{horizon}d"], horizon
    for horizon in DEFAULT_HORIZONS:
        assert metrics[f"long_test_hazard_ece_{horizon}d"] <= MAX_ECE, horizon
    for window in ("test", "long_test"):
        assert metrics[f"{window}_hazard_concordance"] > metrics[f"{window}_km_concordance"]
    assert metrics["test_hazard_concordance"] > metrics["test_cox_concordance"]
    assert metrics["test_hazard_integrated_brier"] < metrics["test_cox_integrated_brier"]
    assert metrics["test_hazard_roc_auc_90d"] >= metrics["test_roc_auc"] - HORIZON_MODEL_GAP
    assert metrics["test_hazard_ece_90d"] <= MAX_ECE
