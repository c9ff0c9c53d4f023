"""Batch scoring: a frame of snapshots -> probability, tier, revenue at risk, drivers."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

from features.schema import Columns
from features.timeline import days_to_datetime
from models.bundle import ChurnModel
from models.value import revenue_at_risk


def score_frame(model: ChurnModel, columns: Columns, drivers: int = 3) -> pd.DataFrame:
    """One row per snapshot, riskiest reasons as text columns ``driver_1``.. ``driver_k``."""
    scores = model.score(columns, explain=drivers > 0)
    out = pd.DataFrame(
        {
            "account_id": columns["account_id"],
            "as_of": days_to_datetime(columns["as_of"]),
            "churn_probability": scores.probability,
            "risk_tier": model.risk_tiers(scores.probability),
            "revenue_at_risk": revenue_at_risk(scores.probability, columns.get("mrr", np.full(len(scores.probability), np.nan))),
        }
    )
    if drivers > 0:
        found = model.drivers(columns, scores, drivers)
        for k in range(drivers):
            out[f"driver_{k + 1}"] = [row[k].reason if len(row) > k else None for row in found]
    return out


def score_table(model: ChurnModel, path: str | Path, as_of: dt.date, drivers: int = 3) -> pd.DataFrame:
    """Score a whole labelled-style export with the mapping the model was trained with.

    The label column may be present or not; columns the model needs but the export
    lacks are simply missing values (the model was trained to handle them).
    """
    from features.errors import ModelError
    from features.schema import frame_to_columns
    from training.table import TableMapping, clean_table, read_export

    stored = model.metadata.get("mapping")
    if model.metadata.get("mode") != "table" or not stored:
        raise ModelError("this model was trained on event tables: score it with --data DIR, not --table")
    mapping = TableMapping.from_dict(stored)
    raw = read_export(path)
    present = TableMapping(
        fields={source: target for source, target in mapping.fields.items() if source in raw.columns},
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
    return score_frame(model, frame_to_columns(clean.snapshots), drivers)
