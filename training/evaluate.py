"""Evaluate like a churn practitioner: ranking, calibration and lift, overall and per stage.

Metric keys are fixed (DESIGN.md section 10) so runs compare in the MLflow UI:
``{prefix}_roc_auc``, ``_pr_auc``, ``_brier``, ``_log_loss``, ``_ece``, ``_lift_top10``,
``_capture_top10`` (and ``_top20``), each also per lifecycle stage with the suffix
``_early`` / ``_mid`` / ``_late``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    log_loss,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)

from features.timeline import LIFECYCLE_STAGES

ECE_BINS = 10
TOP_SHARES = (0.10, 0.20)
METRIC_NAMES = (  # the per-stage table's columns: the headline figures first
    "rows",
    "roc_auc",
    "pr_auc",
    "ece",
    "lift_top10",
    "capture_top10",
    "base_rate",
    "brier",
    "log_loss",
    "lift_top20",
    "capture_top20",
)
ALL_STAGES = "all"


def expected_calibration_error(
    label: np.ndarray, probability: np.ndarray, bins: int = ECE_BINS
) -> float:
    """Mean |predicted - observed| over equal-width probability bins, weighted by rows."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, probability, side="right") - 1, 0, bins - 1)
    counts = np.bincount(which, minlength=bins)
    predicted = np.bincount(which, weights=probability, minlength=bins)
    observed = np.bincount(which, weights=label, minlength=bins)
    used = counts > 0
    gap = np.abs(predicted[used] - observed[used]) / counts[used]
    return float(np.sum(gap * counts[used]) / len(label))


def top_share(label: np.ndarray, probability: np.ndarray, share: float) -> tuple[float, float]:
    """(lift, capture) of the riskiest ``share`` of accounts: how much richer in churners
    than average, and which fraction of all churners it holds."""
    n = max(int(np.ceil(share * len(label))), 1)
    top = np.argsort(-probability, kind="stable")[:n]
    rate, base = label[top].mean(), label.mean()
    return float(rate / base) if base > 0 else float("nan"), float(
        label[top].sum() / max(label.sum(), 1)
    )


def classification_metrics(label: np.ndarray, probability: np.ndarray) -> dict[str, float]:
    """The metric set of one population (NaN where a metric is undefined)."""
    label = np.asarray(label, dtype=np.float64)
    probability = np.clip(np.asarray(probability, dtype=np.float64), 1e-7, 1 - 1e-7)
    metrics: dict[str, float] = {
        "rows": float(len(label)),
        "base_rate": float(label.mean()) if len(label) else np.nan,
    }
    if len(label) == 0:
        return metrics
    both = 0 < label.sum() < len(label)
    metrics["roc_auc"] = float(roc_auc_score(label, probability)) if both else np.nan
    metrics["pr_auc"] = float(average_precision_score(label, probability)) if both else np.nan
    metrics["brier"] = float(brier_score_loss(label, probability))
    metrics["log_loss"] = float(log_loss(label, probability, labels=[0, 1]))
    metrics["ece"] = expected_calibration_error(label, probability)
    for share in TOP_SHARES:
        lift, capture = top_share(label, probability, share)
        metrics[f"lift_top{int(share * 100)}"] = lift
        metrics[f"capture_top{int(share * 100)}"] = capture
    return metrics


def evaluate(
    label: np.ndarray,
    probability: np.ndarray,
    stage: np.ndarray | None = None,
    prefix: str = "test",
) -> dict[str, float]:
    """Metrics overall and per lifecycle stage (stage codes 0/1/2), keyed for MLflow."""
    out = {f"{prefix}_{k}": v for k, v in classification_metrics(label, probability).items()}
    if stage is not None:
        for code, name in enumerate(LIFECYCLE_STAGES):
            rows = stage == code
            if rows.any():
                part = classification_metrics(label[rows], probability[rows])
                out.update({f"{prefix}_{k}_{name}": v for k, v in part.items()})
    return out


def finite(metrics: Mapping[str, float]) -> dict[str, float]:
    """Only the metrics MLflow can store (undefined ones are left out, not zero)."""
    return {k: float(v) for k, v in metrics.items() if v is not None and np.isfinite(v)}


def stage_table(models: Mapping[str, Mapping[str, float]], prefix: str = "test") -> pd.DataFrame:
    """One row per model and lifecycle stage (``all`` first), one column per metric.

    The per-stage keys side by side, as a table the MLflow UI shows; a stage absent
    from the window has no row, an undefined metric is empty.
    """
    rows = []
    for model, metrics in models.items():
        for stage in (ALL_STAGES, *LIFECYCLE_STAGES):
            suffix = "" if stage == ALL_STAGES else f"_{stage}"
            values = {name: metrics.get(f"{prefix}_{name}{suffix}") for name in METRIC_NAMES}
            if values["rows"] is not None:
                rows.append({"model": model, "stage": stage, **values})
    columns = ["model", "stage", *METRIC_NAMES]
    table = pd.DataFrame(rows, columns=columns).astype({n: "float64" for n in METRIC_NAMES})
    return table.round(4).astype({"rows": "Int64"})


# --- plots ------------------------------------------------------------------------------------


def plot_evaluation(
    label: np.ndarray,
    curves: Mapping[str, np.ndarray],
    out_dir: Path,
) -> list[Path]:
    """ROC, PR, calibration and cumulative-gain plots, one line per model in ``curves``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    figure, axis = plt.subplots(figsize=(5.5, 5))
    for name, probability in curves.items():
        fpr, tpr, _ = roc_curve(label, probability)
        axis.plot(fpr, tpr, label=f"{name} (AUC {roc_auc_score(label, probability):.3f})")
    axis.plot([0, 1], [0, 1], ":", color="grey")
    _finish(axis, "ROC curve (test window)", "false positive rate", "true positive rate")
    paths.append(_save(figure, out_dir / "roc.png"))

    figure, axis = plt.subplots(figsize=(5.5, 5))
    for name, probability in curves.items():
        precision, recall, _ = precision_recall_curve(label, probability)
        axis.plot(
            recall,
            precision,
            label=f"{name} (AP {average_precision_score(label, probability):.3f})",
        )
    axis.axhline(label.mean(), linestyle=":", color="grey", label=f"base rate {label.mean():.3f}")
    _finish(axis, "Precision-recall (test window)", "recall", "precision")
    paths.append(_save(figure, out_dir / "pr.png"))

    figure, axis = plt.subplots(figsize=(5.5, 5))
    for name, probability in curves.items():
        predicted, observed = reliability(label, probability)
        axis.plot(
            predicted,
            observed,
            "o-",
            label=f"{name} (ECE {expected_calibration_error(label, probability):.3f})",
        )
    top = max(float(np.max(np.concatenate(list(curves.values())))), float(label.mean()) * 2, 0.05)
    axis.plot([0, top], [0, top], ":", color="grey", label="perfect")
    _finish(
        axis,
        "Calibration (deciles of predicted risk)",
        "mean predicted probability",
        "observed churn rate",
    )
    paths.append(_save(figure, out_dir / "calibration.png"))

    figure, (gain_axis, lift_axis) = plt.subplots(1, 2, figsize=(11, 5))
    share = np.linspace(0.01, 1.0, 100)
    for name, probability in curves.items():
        order = np.argsort(-probability, kind="stable")
        cumulative = np.cumsum(label[order]) / max(label.sum(), 1)
        cut = np.maximum((share * len(label)).astype(int), 1) - 1
        gain_axis.plot(share, cumulative[cut], label=name)
        lift_axis.plot(share, cumulative[cut] / share, label=name)
    gain_axis.plot([0, 1], [0, 1], ":", color="grey", label="random")
    lift_axis.axhline(1.0, linestyle=":", color="grey")
    _finish(
        gain_axis,
        "Cumulative gain",
        "share of accounts contacted (riskiest first)",
        "share of churners reached",
    )
    _finish(lift_axis, "Lift", "share of accounts contacted (riskiest first)", "lift over random")
    paths.append(_save(figure, out_dir / "lift_gain.png"))
    return paths


def reliability(
    label: np.ndarray, probability: np.ndarray, bins: int = 10
) -> tuple[np.ndarray, np.ndarray]:
    """Mean predicted vs observed rate per decile of predicted probability."""
    order = np.argsort(probability, kind="stable")
    groups = np.array_split(order, bins)
    return (
        np.array([probability[g].mean() for g in groups if len(g)]),
        np.array([label[g].mean() for g in groups if len(g)]),
    )


def plot_importance(names: list[str], gain: np.ndarray, out_dir: Path, top: int = 25) -> Path:
    order = np.argsort(gain)[::-1][:top][::-1]
    figure, axis = plt.subplots(figsize=(7, 0.3 * len(order) + 1.5))
    axis.barh([names[i] for i in order], gain[order] / max(gain.sum(), 1e-12))
    axis.set_title("Feature importance (share of total gain)")
    axis.set_xlabel("share of gain")
    figure.tight_layout()
    return _save(figure, out_dir / "feature_importance.png")


def plot_shap_summary(
    contributions: np.ndarray, features: np.ndarray, names: list[str], out_dir: Path
) -> Path:
    """SHAP beeswarm from LightGBM's exact tree SHAP values (``pred_contrib``)."""
    import shap

    shap.summary_plot(contributions, features, feature_names=names, show=False, max_display=20)
    figure = plt.gcf()
    figure.suptitle("SHAP summary (log-odds contributions, test window)")
    figure.tight_layout()
    return _save(figure, out_dir / "shap_summary.png")


def _finish(axis: plt.Axes, title: str, xlabel: str, ylabel: str) -> None:
    axis.set_title(title)
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    axis.grid(alpha=0.3)
    axis.legend(loc="best", fontsize=8)


def _save(figure: plt.Figure, path: Path) -> Path:
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
