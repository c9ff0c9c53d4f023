"""Plots and the table of the time-to-churn evaluation, for the MLflow run.

``survival_reliability.png``: per origin and horizon, predicted vs observed churn by decile
of predicted risk for the hazard model, Cox and Kaplan-Meier (snapshots whose horizon
lies inside the data). ``survival_curves.png``: Kaplan-Meier curves of the training
snapshots by lifecycle stage and by plan, and the mean predicted survival of each model
against the observed (Kaplan-Meier) curve of the test snapshots.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from training.evaluate import reliability
from training.hazard import MODELS, Judged, SurvivalReport
from training.survival import followup, horizon_scores
from training.survival_baselines import km_curve, stage_of

LABELS = {"hazard": "hazard model (LightGBM)", "cox": "Cox PH", "km": "Kaplan-Meier stage x plan"}
TOP_PLANS = 6


def plot_survival(report: SurvivalReport, out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    return [plot_reliability(report.judged, out_dir), plot_curves(report.judged, out_dir)]


def plot_reliability(judged: list[Judged], out_dir: Path) -> Path:
    horizons = judged[0].horizons
    figure, axes = plt.subplots(
        len(judged), len(horizons), figsize=(3.6 * len(horizons), 3.4 * len(judged)), squeeze=False
    )
    for row, one in enumerate(judged):
        outcomes = one.origin.outcomes["test"]
        for col, horizon in enumerate(horizons):
            axis = axes[row, col]
            column = int(np.searchsorted(one.grid, horizon))
            for name in MODELS:
                label, probability = horizon_scores(
                    outcomes, one.origin.data_end, 1 - one.survival[name][:, column], horizon
                )
                if len(label) == 0:
                    continue
                predicted, observed = reliability(label, probability)
                ece = one.metrics.get(f"{one.origin.name}_{name}_ece_{horizon}d", np.nan)
                axis.plot(predicted, observed, "o-", ms=3, label=f"{name} (ECE {ece:.3f})")
            if not axis.lines:
                axis.text(0.5, 0.5, "horizon past\nthe end of the data", ha="center", va="center")
            top = max(
                [
                    0.05,
                    *(max(line.get_xdata().max(), line.get_ydata().max()) for line in axis.lines),
                ]
            )
            axis.plot([0, top], [0, top], ":", color="grey")
            axis.set_title(f"{one.origin.name}: {horizon} days", fontsize=9)
            axis.set_xlabel("mean predicted", fontsize=8)
            axis.set_ylabel("observed churn", fontsize=8)
            axis.grid(alpha=0.3)
            if axis.lines:
                axis.legend(fontsize=7)
    figure.suptitle("Calibration by horizon (deciles of predicted risk)")
    figure.tight_layout()
    return _save(figure, out_dir / "survival_reliability.png")


def plot_curves(judged: list[Judged], out_dir: Path) -> Path:
    first, last = judged[0], judged[-1]
    figure, (by_stage, by_plan, mean) = plt.subplots(1, 3, figsize=(15, 4.5))
    follow = first.training_followup
    grid = first.grid
    stage = stage_of(first.training_strata)
    for name in np.unique(stage):
        rows = stage == name
        by_stage.step(
            grid, km_curve(follow.take(rows), grid), where="post", label=f"{name} ({rows.sum():,})"
        )
    plans = pd.Series(np.char.partition(first.training_strata.astype(str), " | ")[:, 2])
    for name in plans.value_counts().index[:TOP_PLANS]:
        rows = (plans == name).to_numpy()
        by_plan.step(
            grid, km_curve(follow.take(rows), grid), where="post", label=f"{name} ({rows.sum():,})"
        )
    for axis, title in ((by_stage, "lifecycle stage"), (by_plan, "plan")):
        axis.set_title(f"Kaplan-Meier by {title} (training snapshots)")
    outcomes = last.origin.outcomes["test"]
    observed = km_curve(followup(outcomes, last.origin.data_end, int(grid[-1])), grid)
    mean.step(grid, observed, where="post", color="black", label="observed (Kaplan-Meier)")
    for name in MODELS:
        mean.plot(grid, last.survival[name].mean(axis=0), label=LABELS[name])
    mean.set_title(f"Mean predicted survival vs observed ({last.origin.name} window)")
    for axis in (by_stage, by_plan, mean):
        axis.set_xlabel("days after the snapshot")
        axis.set_ylabel("still a customer")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    figure.tight_layout()
    return _save(figure, out_dir / "survival_curves.png")


def metrics_table(report: SurvivalReport) -> pd.DataFrame:
    """One row per metric (``roc_auc_90d``...), one column per ``{origin}_{model}``."""
    rows: dict[str, dict[str, float]] = {}
    for one in report.judged:
        for model in MODELS:
            prefix = f"{one.origin.name}_{model}_"
            column = prefix[:-1]
            for key, value in one.metrics.items():
                if key.startswith(prefix):
                    rows.setdefault(key[len(prefix) :], {})[column] = value
    return pd.DataFrame(rows).T.rename_axis("metric")


def _save(figure: plt.Figure, path: Path) -> Path:
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
