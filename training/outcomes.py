"""Were the predictions right? Logged scores whose horizon has passed, against what happened.

A prediction made at ``as_of`` for a horizon of H days has matured once the data reaches
``as_of + H``; its outcome is whether the account churned in ``(as_of, as_of + H]`` (the
training label, ``features.timeline.churn_label``). Realized ranking (ROC-AUC, lift),
calibration per risk tier and per decile, by model version and score date, are set
beside the figures the model reported on its own test window: a drop says the world
moved away from what the model learnt from.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from features.settings import Settings
from features.tables import Tables, account_days
from features.timeline import MISSING_DAY, churn_label, day_of, to_days
from models.bundle import RISK_TIERS
from training.evaluate import classification_metrics
from training.predictions import LOG_DIR, read_predictions

OUTCOMES_DIR = "outcomes"  # under CHURN_HOME
VERSION = ["model_name", "model_version"]
DECILES = 10
JUDGED_METRIC = "roc_auc"


@dataclass(frozen=True)
class Outcomes:
    """Realized figures of matured predictions, and the rows that could not be judged."""

    predictions: pd.DataFrame  # matured log rows + churned (0/1)
    by_date: pd.DataFrame  # model version x score date
    by_version: pd.DataFrame  # model version, beside its own test figures
    tiers: pd.DataFrame  # model version x risk tier: predicted vs realized
    deciles: pd.DataFrame  # model version x decile of predicted probability
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return len(self.predictions) == 0


def matured(log: pd.DataFrame, tables: Tables, end: dt.date) -> tuple[pd.DataFrame, dict[str, int]]:
    """Log rows whose horizon lies inside the data, with the realized label; counts of the
    rows left out (not matured, unknown account, already gone when scored)."""
    as_of = to_days(log["as_of"])
    ready = as_of + log["horizon_days"].to_numpy(np.int64) <= day_of(end)
    index = pd.Index(tables.accounts["account_id"].astype(object)).get_indexer(
        log["account_id"].astype(object)
    )
    known = index >= 0
    churn = np.where(
        known, account_days(tables.accounts, "churn_date")[np.maximum(index, 0)], MISSING_DAY
    )
    gone = known & (churn != MISSING_DAY) & (churn <= as_of)
    keep = ready & known & ~gone
    rows = log.loc[keep].reset_index(drop=True)
    rows["churned"] = churn_label(
        churn[keep], as_of[keep], rows["horizon_days"].to_numpy(np.int64)
    ).astype(np.int64)
    skipped = {
        "not_matured": int((~ready).sum()),
        "unknown_account": int((ready & ~known).sum()),
        "churned_before_score_date": int((ready & gone).sum()),
    }
    return rows, skipped


def realized_metrics(rows: pd.DataFrame) -> dict[str, float]:
    """The realized figures of one group of matured predictions."""
    label = rows["churned"].to_numpy(np.float64)
    probability = rows["churn_probability"].to_numpy(np.float64)
    metrics = classification_metrics(label, probability)
    return {
        "accounts": float(len(rows)),
        "churners": float(label.sum()),
        "predicted_churners": float(probability.sum()),
        **{
            f"realized_{k}": metrics.get(k, np.nan)
            for k in ("roc_auc", "pr_auc", "lift_top10", "capture_top10", "ece")
        },
    }


def _per_group(rows: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    records = [
        {**dict(zip(keys, key, strict=True)), **realized_metrics(group)}
        for key, group in rows.groupby(keys, sort=True)
    ]
    return pd.DataFrame(records, columns=[*keys, *realized_metrics(rows.head(0)).keys()])


def outcome_figures(rows: pd.DataFrame, skipped: dict[str, int] | None = None) -> Outcomes:
    """Realized figures by version and score date, by version (pooled), per tier, per decile."""
    by_date = _per_group(rows, [*VERSION, "as_of"])
    by_version = _per_group(rows, VERSION)
    spans = rows.groupby(VERSION, sort=True).agg(
        score_dates=("as_of", "nunique"),
        first_as_of=("as_of", "min"),
        last_as_of=("as_of", "max"),
        model_test_roc_auc=("model_test_roc_auc", "last"),
        model_test_lift_top10=("model_test_lift_top10", "last"),
    )
    by_version = by_version.merge(spans.reset_index(), on=VERSION, how="left")
    by_version["roc_auc_drop"] = by_version["model_test_roc_auc"] - by_version["realized_roc_auc"]
    return Outcomes(
        predictions=rows,
        by_date=by_date,
        by_version=by_version,
        tiers=calibration_by_tier(rows),
        deciles=calibration_by_decile(rows),
        skipped=dict(skipped or {}),
    )


def calibration_by_tier(rows: pd.DataFrame) -> pd.DataFrame:
    """Per version and risk tier: mean predicted probability against the realized rate."""
    table = (
        rows.groupby([*VERSION, "risk_tier"], sort=False)
        .agg(
            accounts=("churned", "size"),
            predicted_rate=("churn_probability", "mean"),
            realized_rate=("churned", "mean"),
            predicted_churners=("churn_probability", "sum"),
            realized_churners=("churned", "sum"),
        )
        .reset_index()
    )
    order = {tier: i for i, tier in enumerate(RISK_TIERS)}
    return table.sort_values(
        [*VERSION, "risk_tier"], key=lambda c: c.map(order) if c.name == "risk_tier" else c
    ).reset_index(drop=True)


def calibration_by_decile(rows: pd.DataFrame) -> pd.DataFrame:
    """Per version and decile of predicted probability (10 = riskiest): predicted vs realized."""
    rank = rows.groupby(VERSION)["churn_probability"].rank(method="first", pct=True)
    decile = np.clip(np.ceil(rank.to_numpy() * DECILES), 1, DECILES).astype(np.int64)
    return (
        rows.assign(decile=decile)
        .groupby([*VERSION, "decile"], sort=True)
        .agg(
            accounts=("churned", "size"),
            predicted_rate=("churn_probability", "mean"),
            realized_rate=("churned", "mean"),
        )
        .reset_index()
    )


def outcomes(log: pd.DataFrame, tables: Tables, end: dt.date | None = None) -> Outcomes:
    """Matured predictions of the log joined with the data, and their realized figures."""
    rows, skipped = matured(log, tables, end or tables.data_end())
    return outcome_figures(rows, skipped)


def drops(by_version: pd.DataFrame, max_drop: float, min_churners: int) -> list[str]:
    """Versions whose realized ROC-AUC fell more than ``max_drop`` below their test
    ROC-AUC, in words; versions with too few realized churners to judge are not judged."""
    judged = by_version[by_version["churners"] >= min_churners]
    fallen = judged[judged["roc_auc_drop"] > max_drop]
    return [
        f"{row.model_name} version {row.model_version}: realized ROC-AUC {row.realized_roc_auc:.4f} "
        f"is {row.roc_auc_drop:.4f} below its test ROC-AUC {row.model_test_roc_auc:.4f} "
        f"({int(row.accounts):,} predictions, {int(row.churners)} churners)"
        for row in fallen.itertuples()
    ]


def champion_outcomes(
    settings: Settings, data: Path, end: dt.date | None = None
) -> Callable[[str], dict[str, float]]:
    """For a retrain: the latest realized figures of one version of the configured model
    (its latest score date whose horizon has passed), from the prediction log and the data
    (read only when the log holds predictions of that version)."""

    def realized(version: str) -> dict[str, float]:
        from features.tables import load_tables

        log = read_predictions(settings.resolved_home / LOG_DIR)
        log = log[(log["model_name"] == settings.model_name) & (log["model_version"] == version)]
        if len(log) == 0:
            return {}
        tables = load_tables(data)
        rows, _ = matured(log, tables, end or tables.data_end())
        if len(rows) == 0:
            return {}
        latest = realized_metrics(rows[rows["as_of"] == rows["as_of"].max()])
        named = {k if k.startswith("realized_") else f"realized_{k}": v for k, v in latest.items()}
        return {k: v for k, v in named.items() if np.isfinite(v)}

    return realized
