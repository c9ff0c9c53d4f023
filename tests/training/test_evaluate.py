"""Metrics on hand-made scores."""

from __future__ import annotations

import numpy as np
import pytest

from training.evaluate import (
    evaluate,
    expected_calibration_error,
    finite,
    stage_table,
    top_share,
)


def test_ece_is_zero_when_each_bin_matches_its_rate() -> None:
    probability = np.array([0.25] * 4 + [0.75] * 4)
    label = np.array([1, 0, 0, 0, 1, 1, 1, 0])
    assert expected_calibration_error(label, probability) == pytest.approx(0.0)


def test_ece_weights_bins_by_rows() -> None:
    probability = np.array([0.05] * 8 + [0.95] * 2)
    label = np.array([0] * 8 + [0, 0])
    # bin 0: predicted 0.05, observed 0 (8 rows); bin 9: predicted 0.95, observed 0 (2 rows)
    assert expected_calibration_error(label, probability) == pytest.approx(
        (8 * 0.05 + 2 * 0.95) / 10
    )


def test_lift_and_capture_of_the_top_share() -> None:
    probability = np.linspace(1, 0, 10)
    label = np.array([1, 0, 1, 0, 0, 0, 0, 0, 0, 1])
    lift, capture = top_share(label, probability, 0.2)
    assert lift == pytest.approx(0.5 / 0.3) and capture == pytest.approx(1 / 3)


def test_metric_keys_overall_and_per_stage() -> None:
    rng = np.random.default_rng(0)
    label = rng.integers(0, 2, 300)
    probability = np.clip(label * 0.3 + rng.random(300) * 0.7, 0, 1)
    stage = np.repeat([0, 1, 2], 100)
    metrics = evaluate(label, probability, stage)
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
        for suffix in ("early", "mid", "late"):
            assert f"test_{key}_{suffix}" in metrics
    assert metrics["test_roc_auc"] > 0.6


def test_undefined_metrics_are_left_out_not_zero() -> None:
    metrics = finite(evaluate(np.zeros(20), np.full(20, 0.1)))
    assert "test_roc_auc" not in metrics and metrics["test_brier"] == pytest.approx(0.01)


def test_stage_table_has_a_row_per_model_and_stage_present() -> None:
    rng = np.random.default_rng(0)
    label = rng.integers(0, 2, 200)
    stage = np.repeat([0, 2], 100)  # no account in the mid stage
    model = evaluate(label, np.clip(label * 0.4 + rng.random(200) * 0.6, 0, 1), stage)
    baseline = evaluate(label, rng.random(200), stage)
    table = stage_table({"lightgbm": model, "baseline": baseline})
    assert list(zip(table["model"], table["stage"], strict=True)) == [
        ("lightgbm", "all"),
        ("lightgbm", "early"),
        ("lightgbm", "late"),
        ("baseline", "all"),
        ("baseline", "early"),
        ("baseline", "late"),
    ]
    late = table[(table["model"] == "lightgbm") & (table["stage"] == "late")].iloc[0]
    assert late["rows"] == 100 and late["roc_auc"] == pytest.approx(
        model["test_roc_auc_late"], abs=1e-4
    )


def test_stage_table_leaves_an_undefined_metric_empty() -> None:
    metrics = finite(evaluate(np.zeros(20), np.linspace(0, 1, 20)))  # one class: no ROC-AUC
    table = stage_table({"model": metrics})
    assert len(table) == 1 and np.isnan(table.loc[0, "roc_auc"]) and table.loc[0, "rows"] == 20
