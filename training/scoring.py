"""Batch scoring: a frame of snapshots -> probability, tier, revenue at risk, drivers."""

from __future__ import annotations

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
