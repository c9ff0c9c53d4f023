"""What runs and models say about themselves in the MLflow UI: names, notes, descriptions.

A list of twenty runs is read by name, and a run or a registered version by its note,
so both say in words what happened: ``train 2025-12-31 linear+trees``, then the data
window, the rows per split and the test figures against the baseline. Pure functions of
plain values (no MLflow here); ``training.track`` writes what they return.

Run names are ``<kind> <what tells it apart>``: use :func:`run_name` for every new kind
of run (``run_name(BACKTEST, data_end)``, ``origin_name(day)``, ``trial_name(3)``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

TRAIN = "train"
RETRAIN = "retrain"
EVALUATE = "evaluate"
BACKTEST = "backtest"
TUNE = "tune"
BASELINE = "baseline"
TRIAL = "trial"
ORIGIN = "origin"

EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
TRAINING_KIND = "custom_model_development"  # "Machine learning" (not GenAI) in the UI
UI_WORKFLOW = "machine_learning"  # the UI's switch between GenAI and model-training pages
NOTE_TAG = "mlflow.note.content"  # a run's (or experiment's) description in the UI
DEFAULT_PLAYBOOK = "service/playbook.toml (packaged; CHURN_PLAYBOOK names a replacement)"
SHOWN_FEATURES = 12

EXPERIMENT_NOTE = (
    "Churn model runs: `train` and `retrain` fit a calibrated LightGBM with a logistic "
    "baseline nested beside it, `evaluate` scores a registered model on labelled data. "
    "Each run's description gives its data window, rows per split and test figures "
    "against the baseline; `tables/metrics_by_stage.json` splits them by lifecycle stage."
)


def run_name(kind: str, *parts: object) -> str:
    """``kind`` followed by what tells this run apart: ``train 2025-12-31 linear+trees``.

    Dates print as ISO dates; None and empty parts are left out, so callers can pass
    what they have (a table-mode model has no data end, a bundle file no version).
    """
    return " ".join([kind, *(as_text(part) for part in parts if part is not None and part != "")])


def as_text(value: object) -> str:
    """A value as a name or note shows it: dates (and timestamps) as ISO dates."""
    if isinstance(value, dt.datetime):
        value = value.date()
    return value.isoformat() if isinstance(value, dt.date) else str(value)


def origin_name(origin: dt.date | str) -> str:
    """A backtest's nested run for one origin date: ``origin 2025-01-01``."""
    return run_name(ORIGIN, origin)


def trial_name(number: int) -> str:
    """A tuning trial's nested run: ``trial 7``."""
    return run_name(TRIAL, number)


def experiment_kind_to_set(current: str | None) -> str | None:
    """The kind to write on the experiment, or None to leave it as someone chose it.

    The UI guesses a kind for an unmarked experiment and stores the guess with an
    ``_inferred`` suffix (or ``no_inferred_type``); guesses are replaced, choices are kept.
    """
    guessed = not current or current.endswith("_inferred") or current == "no_inferred_type"
    return TRAINING_KIND if guessed else None


def runs_page(ui_url: str, experiment_id: str) -> str:
    """The experiment's runs list in the MLflow UI, on its model-training pages.

    MLflow 3.17's UI chooses between its GenAI and model-training pages with a switch kept
    in the browser (GenAI at first); ``workflowType`` in the link picks model training.
    """
    return f"{ui_url.rstrip('/')}/#/experiments/{experiment_id}/runs?workflowType={UI_WORKFLOW}"


def data_end_of(metadata: Mapping[str, Any]) -> str | None:
    """The last day of data a model learnt from (table mode: the export's date)."""
    window = metadata.get("window") or {}
    return window.get("data_end") or metadata.get("as_of")


def model_form(metadata: Mapping[str, Any]) -> str:
    """``trees`` or ``linear+trees`` (what the validation window chose)."""
    return str(metadata.get("model_form") or "trees")


# --- figures ----------------------------------------------------------------------------------


def figure(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def headline_figures(
    metrics: Mapping[str, float],
    baseline: Mapping[str, float] | None = None,
    prefix: str = "test",
) -> str:
    """``ROC-AUC 0.783 (baseline 0.726), PR-AUC ..., ECE ..., top-decile lift 3.41 (2.80)``."""
    shown = (
        ("ROC-AUC", "roc_auc", 3),
        ("PR-AUC", "pr_auc", 3),
        ("ECE", "ece", 4),
        ("top-decile lift", "lift_top10", 2),
    )
    parts = []
    for i, (label, key, digits) in enumerate(shown):
        text = f"{label} {figure(metrics.get(f'{prefix}_{key}'), digits)}"
        if baseline is not None:
            against = figure(baseline.get(f"{prefix}_{key}"), digits)
            text += f" (baseline {against})" if i == 0 else f" ({against})"
        parts.append(text)
    return ", ".join(parts)


def split_rows(summary: pd.DataFrame) -> str:
    """``train 20,100, validation 2,600, calibration 3,900, test 4,000 (205 churned, 5.1%)``."""
    parts = [f"{split} {int(row['rows']):,}" for split, row in summary.iterrows()]
    if "test" in summary.index:
        test = summary.loc["test"]
        parts[-1] += f" ({int(test['churned']):,} churned, {float(test['base_rate']):.1%})"
    return ", ".join(parts)


def data_window(metadata: Mapping[str, Any]) -> str:
    """Where the rows came from: the event window and observation dates, or the export."""
    window = metadata.get("window")
    if window:
        return (
            f"events {window['data_start']}..{window['data_end']} (observation dates "
            f"{window['first_as_of']}..{window['last_as_of']}, "
            f"{metadata.get('horizon_days')}-day horizon)"
        )
    return (
        f"one labelled export {metadata.get('source', '')} as of {metadata.get('as_of')} "
        f"({metadata.get('split', 'stratified hold-out')})"
    )


# --- notes ------------------------------------------------------------------------------------


def training_note(
    kind: str,
    metadata: Mapping[str, Any],
    summary: pd.DataFrame,
    metrics: Mapping[str, float],
    baseline_metrics: Mapping[str, float],
    features: int,
) -> str:
    """A training run's description (and its registered version's): data, rows, figures."""
    verb = "Retrained" if kind == RETRAIN else "Trained"
    return (
        f"{verb} LightGBM ({model_form(metadata)}, {features} features) on "
        f"{data_window(metadata)}.\n\n"
        f"Rows: {split_rows(summary)}.\n\n"
        f"Test: {headline_figures(metrics, baseline_metrics)}."
    )


def with_decision(
    note: str, promoted: bool, reason: str, alias: str, champion_version: str | None
) -> str:
    """A retrain's note with its verdict: promoted or kept, and why."""
    if promoted:
        replaced = f" (replacing version {champion_version})" if champion_version else ""
        decision = f"promoted to @{alias}{replaced}"
    else:
        decision = f"kept the champion (version {champion_version})"
    return f"{note}\n\nDecision: {decision}: {reason}."


def baseline_note(baseline_metrics: Mapping[str, float]) -> str:
    """The nested baseline run: what it is and its own test figures."""
    return (
        "Logistic-regression baseline of the parent run: same features and windows, "
        f"calibrated the same way.\n\nTest: {headline_figures(baseline_metrics)}."
    )


def evaluation_note(
    model: str,
    model_metadata: Mapping[str, Any],
    data_end: dt.date | str,
    dates: Sequence[dt.date | str],
    horizon_days: int | None,
    metrics: Mapping[str, float],
) -> str:
    """An evaluation run: which model, on which dates, its figures, and how it did at training."""
    rows, base_rate = metrics.get("eval_rows"), metrics.get("eval_base_rate")
    churned = f" ({base_rate:.1%} churned)" if base_rate is not None else ""
    trained = model_metadata.get("metrics") or {}
    note = (
        f"Evaluated {model} (LightGBM {model_form(model_metadata)}, trained on data "
        f"to {data_end_of(model_metadata) or 'unknown'}) on data to {as_text(data_end)}: "
        f"observation dates {as_text(dates[0])}..{as_text(dates[-1])}, "
        f"{horizon_days}-day horizon, {int(rows or 0):,} snapshots{churned}.\n\n"
        f"{headline_figures(metrics, prefix='eval')}."
    )
    if trained:
        baseline = model_metadata.get("baseline_metrics") or {}
        note += f"\n\nAt training (its test window): {headline_figures(trained, baseline)}."
    return note


def model_description(
    model_name: str,
    alias: str,
    horizon_days: int | None,
    label: str | None,
    feature_names: Sequence[str],
    playbook: str,
) -> str:
    """The registered model: what it predicts, from which features, where its actions live."""
    if horizon_days:
        target = f"within {horizon_days} days of the scoring date"
    else:
        target = f"as the export's `{label or 'label'}` column says (no horizon)"
    shown = ", ".join(feature_names[:SHOWN_FEATURES])
    more = len(feature_names) - SHOWN_FEATURES
    if more > 0:
        shown += f" and {more} more"
    return (
        f"Probability that an account churns {target}: a calibrated LightGBM over "
        "point-in-time account snapshots, each version trained with a logistic-regression "
        "baseline beside it.\n\n"
        f"Features ({len(feature_names)}): {shown}; the full list is `feature_spec.json` in "
        "each version's run.\n\n"
        f"Served by `churn serve` from `models:/{model_name}@{alias}`; retention actions come "
        f"from the playbook at {playbook}."
    )
