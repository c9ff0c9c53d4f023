"""Batch scoring: a frame of snapshots -> probability, tier, revenue at risk, drivers."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

from features.schema import Columns
from features.timeline import days_to_datetime
from models.bundle import ChurnModel
from models.profile import FeatureProfile, ProfileTally
from models.value import expected_remaining_value, revenue_at_risk


def score_frame(
    model: ChurnModel,
    columns: Columns,
    drivers: int = 3,
    gross_margin: float = 1.0,
    discount_rate: float = 0.0,
) -> pd.DataFrame:
    """One row per snapshot, riskiest reasons as text columns ``driver_1``.. ``driver_k``;
    with a time-to-churn model also ``churn_probability_{H}d`` per horizon,
    ``expected_months_remaining`` and ``expected_remaining_value``."""
    rows = len(columns["account_id"])  # LightGBM cannot explain an empty batch (a partition)
    scores = model.score(columns, explain=drivers > 0 and rows > 0)
    mrr = columns.get("mrr", np.full(len(scores.probability), np.nan))
    out = pd.DataFrame(
        {
            "account_id": columns["account_id"],
            "as_of": days_to_datetime(columns["as_of"]),
            "churn_probability": scores.probability,
            "risk_tier": model.risk_tiers(scores.probability),
            "revenue_at_risk": revenue_at_risk(scores.probability, mrr),
        }
    )
    survival = model.survival(scores.features) if scores.features is not None else None
    if survival is not None:
        within = survival.churn_within(model.horizons)
        for j, horizon in enumerate(model.horizons):
            out[f"churn_probability_{horizon}d"] = within[:, j]
        out["expected_months_remaining"] = survival.expected_months()
        out["expected_remaining_value"] = expected_remaining_value(
            survival.expected_months(discount_rate), mrr, gross_margin
        )
    if drivers > 0:
        found = model.drivers(columns, scores, drivers) if rows else []
        for k in range(drivers):
            reasons = [row[k].reason if len(row) > k else None for row in found]
            out[f"driver_{k + 1}"] = pd.Series(reasons, dtype=str)
    return out


def table_columns(model: ChurnModel, path: str | Path, as_of: dt.date) -> Columns:
    """A whole labelled-style export as snapshot columns, with the mapping the model was
    trained with.

    The label column may be present or not; columns the model needs but the export
    lacks are simply missing values (the model was trained to handle them).
    """
    from features.errors import ModelError
    from features.schema import frame_to_columns
    from training.table import TableMapping, clean_table, read_export

    stored = model.card.mapping
    if model.card.mode != "table" or not stored:
        raise ModelError("this model was trained on event tables: give it --data DIR, not --table")
    mapping = TableMapping.from_dict(stored)
    raw = read_export(path)
    present = TableMapping(
        fields={
            source: target for source, target in mapping.fields.items() if source in raw.columns
        },
        kinds=mapping.kinds,
        id_column=mapping.id_column if mapping.id_column in raw.columns else None,
        label=None,
    )
    label_column = [mapping.label] if mapping.label in raw.columns else []
    clean = clean_table(
        raw.drop(columns=label_column),
        present,
        as_of,
        require_label=False,
        kinds=stored.get("attribute_kinds", {}),
    )
    return frame_to_columns(clean.snapshots)


def score_table(
    model: ChurnModel, path: str | Path, as_of: dt.date, drivers: int = 3
) -> pd.DataFrame:
    """Score a whole export with the mapping the model was trained with."""
    return score_frame(model, table_columns(model, path, as_of), drivers)


def event_columns(
    model: ChurnModel, data: str | Path, as_of: dt.date | None
) -> tuple[Columns, dt.date]:
    """Snapshots of every account active at ``as_of`` (default: the end of the data)."""
    from features.errors import DataError
    from features.schema import frame_to_columns
    from features.snapshot import active_points, build_snapshots
    from features.tables import load_tables

    tables = load_tables(Path(data))
    day = as_of or tables.data_end()
    points = active_points(tables, [day])
    if len(points) == 0:
        raise DataError(f"no account is active on {day}")
    snapshots = build_snapshots(tables, points, exclude_columns=list(model.card.exclude_columns))
    return frame_to_columns(snapshots), day


MODERATE_DRIFT, MAJOR_DRIFT = 0.10, 0.25  # the usual reading of a population stability index
DRIFT_LEVELS = ("stable", "moderate", "major")


def drift_frame(model: ChurnModel, columns: Columns) -> pd.DataFrame:
    """Per model feature: population stability index against the training profile, its
    level, and the missing share then and now; the most shifted first."""
    return drift_report(model, training_profile(model).tally(model.matrix(columns)))


def training_profile(model: ChurnModel) -> FeatureProfile:
    from features.errors import ModelError

    if model.profile is None:
        raise ModelError("this model has no training feature profile to compare against")
    return model.profile


def drift_report(model: ChurnModel, tally: ProfileTally) -> pd.DataFrame:
    """The drift table of :func:`drift_frame` from a tally of today's feature matrix (merged
    across partitions on a cluster)."""
    profile = training_profile(model)
    psi = profile.stability_of(tally)
    frame = pd.DataFrame(
        {
            "feature": list(psi),
            "psi": list(psi.values()),
            "missing_in_training": profile.missing,
            "missing_now": tally.missing_share(),
        }
    )
    frame["level"] = np.select(
        [frame["psi"] >= MAJOR_DRIFT, frame["psi"] >= MODERATE_DRIFT],
        ["major", "moderate"],
        "stable",
    )
    return frame.sort_values("psi", ascending=False, ignore_index=True)
