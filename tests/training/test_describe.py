"""Run names, notes and descriptions, from plain values (no MLflow)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from training.describe import (
    BACKTEST,
    RETRAIN,
    TRAIN,
    TRAINING_KIND,
    baseline_note,
    evaluation_note,
    experiment_kind_to_set,
    model_description,
    origin_name,
    run_name,
    runs_page,
    training_note,
    trial_name,
    with_decision,
)

EVENTS = {
    "mode": "events",
    "horizon_days": 90,
    "model_form": "linear+trees",
    "window": {
        "data_start": "2023-01-01",
        "data_end": "2025-12-31",
        "first_as_of": "2023-04-01",
        "last_as_of": "2025-10-01",
    },
}
SUMMARY = pd.DataFrame(
    {"rows": [20100, 2600, 3900, 4000], "churned": [1000, 130, 190, 205], "base_rate": 0.05125},
    index=["train", "validation", "calibration", "test"],
)
MODEL = {
    "test_roc_auc": 0.78312,
    "test_pr_auc": 0.2141,
    "test_ece": 0.00412,
    "test_lift_top10": 3.4,
}
BASELINE = {"test_roc_auc": 0.7261, "test_pr_auc": 0.16, "test_ece": 0.0061, "test_lift_top10": 2.8}


def test_a_run_name_says_kind_data_end_and_form() -> None:
    assert run_name(TRAIN, dt.date(2025, 12, 31), "linear+trees") == "train 2025-12-31 linear+trees"


def test_a_run_name_leaves_out_what_is_unknown() -> None:
    assert run_name(RETRAIN, None, "trees", "") == "retrain trees"


def test_a_timestamp_is_named_by_its_day() -> None:
    assert run_name(BACKTEST, pd.Timestamp("2025-12-31")) == "backtest 2025-12-31"


def test_nested_runs_name_their_origin_or_trial() -> None:
    assert origin_name(dt.date(2025, 1, 1)) == "origin 2025-01-01"
    assert trial_name(7) == "trial 7"


@pytest.mark.parametrize(
    "current",
    [
        None,
        "",
        "genai_development_inferred",
        "custom_model_development_inferred",
        "no_inferred_type",
    ],
)
def test_an_unmarked_or_guessed_experiment_is_marked_for_training(current: str | None) -> None:
    assert experiment_kind_to_set(current) == TRAINING_KIND


@pytest.mark.parametrize("current", [TRAINING_KIND, "genai_development", "forecasting"])
def test_a_chosen_experiment_kind_is_kept(current: str) -> None:
    assert experiment_kind_to_set(current) is None


def test_a_training_note_gives_window_rows_and_figures_against_the_baseline() -> None:
    note = training_note(TRAIN, EVENTS, SUMMARY, MODEL, BASELINE, 37)
    assert note.startswith(
        "Trained LightGBM (linear+trees, 37 features) on events 2023-01-01..2025-12-31"
    )
    assert "observation dates 2023-04-01..2025-10-01, 90-day horizon" in note
    assert (
        "train 20,100, validation 2,600, calibration 3,900, test 4,000 (205 churned, 5.1%)" in note
    )
    assert (
        "ROC-AUC 0.783 (baseline 0.726), PR-AUC 0.214 (0.160), ECE 0.0041 (0.0061), "
        "top-decile lift 3.40 (2.80)"
    ) in note


def test_a_table_mode_note_names_the_export() -> None:
    metadata = {
        "mode": "table",
        "source": "telco.csv",
        "as_of": "2025-01-31",
        "split": "stratified hold-out",
    }
    note = training_note(TRAIN, metadata, SUMMARY, MODEL, BASELINE, 19)
    assert "one labelled export telco.csv as of 2025-01-31 (stratified hold-out)" in note


def test_a_missing_figure_reads_not_available() -> None:
    note = training_note(TRAIN, EVENTS, SUMMARY, {"test_roc_auc": 0.7}, BASELINE, 3)
    assert "PR-AUC n/a (0.160)" in note


def test_a_retrain_note_ends_with_its_decision_and_reason() -> None:
    note = training_note(RETRAIN, EVENTS, SUMMARY, MODEL, BASELINE, 37)
    assert note.startswith("Retrained ")
    promoted = with_decision(note, True, "there is no champion yet", "champion", None)
    assert promoted.endswith("\n\nDecision: promoted to @champion: there is no champion yet.")
    replaced = with_decision(note, True, "it wins", "champion", "3")
    assert replaced.endswith("Decision: promoted to @champion (replacing version 3): it wins.")
    kept = with_decision(note, False, "it does not win", "champion", "3")
    assert kept.endswith("Decision: kept the champion (version 3): it does not win.")


def test_the_baseline_note_gives_its_own_figures() -> None:
    assert "ROC-AUC 0.726, PR-AUC 0.160" in baseline_note(BASELINE)


def test_an_evaluation_note_gives_its_data_figures_and_the_training_ones() -> None:
    metadata = {**EVENTS, "metrics": MODEL, "baseline_metrics": BASELINE}
    metrics = {
        "eval_rows": 3000.0,
        "eval_base_rate": 0.05,
        "eval_roc_auc": 0.75,
        "eval_lift_top10": 3.0,
    }
    dates = [dt.date(2026, 1, 1), dt.date(2026, 3, 1)]
    note = evaluation_note(
        "churn-model version 4", metadata, dt.date(2026, 6, 30), dates, 90, metrics
    )
    assert note.startswith(
        "Evaluated churn-model version 4 (LightGBM linear+trees, trained on data to 2025-12-31)"
    )
    assert "on data to 2026-06-30: observation dates 2026-01-01..2026-03-01, 90-day horizon" in note
    assert "3,000 snapshots (5.0% churned)" in note
    assert "ROC-AUC 0.750, PR-AUC n/a, ECE n/a, top-decile lift 3.00." in note
    assert "At training (its test window): ROC-AUC 0.783 (baseline 0.726)" in note


def test_the_model_description_gives_horizon_features_and_playbook() -> None:
    names = [f"feature_{i}" for i in range(15)]
    text = model_description("churn-model", "champion", 90, None, names, "service/playbook.toml")
    assert "churns within 90 days of the scoring date" in text
    assert "Features (15): feature_0, " in text and "feature_11 and 3 more" in text
    assert "`models:/churn-model@champion`" in text and "playbook at service/playbook.toml" in text


def test_a_table_model_description_names_its_label() -> None:
    text = model_description("m", "champion", None, "Churn", ["a"], "p.toml")
    assert "as the export's `Churn` column says (no horizon)" in text


def test_the_runs_page_link_opens_the_model_training_pages() -> None:
    assert (
        runs_page("http://127.0.0.1:5000/", "3")
        == "http://127.0.0.1:5000/#/experiments/3/runs?workflowType=machine_learning"
    )
