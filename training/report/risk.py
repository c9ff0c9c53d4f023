"""With a model: who is at risk now, why, what to do, and how many to expect to lose.

The playbook that turns drivers into actions belongs to the service; the caller passes
its ``recommend`` function in (training never imports the service).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from features.derive import View
from features.schema import Columns
from features.timeline import LIFECYCLE_STAGES, lifecycle_stage_codes
from models.bundle import RISK_TIERS, ChurnModel, Driver
from models.value import revenue_at_risk
from training.report.segments import UNKNOWN, by_segment, level_names, text_labels

Recommend = Callable[
    [Sequence[Sequence[Driver]], Sequence[str], Mapping[str, np.ndarray]],
    list[list[dict[str, Any]]],
]
DRIVERS = 3
SEGMENT_COLUMNS = {
    "risk_tier": "risk tier",
    "lifecycle_stage": "lifecycle stage",
    "plan": "plan",
    "contract_type": "contract type",
}


def scored_accounts(
    model: ChurnModel, columns: Columns, recommend: Recommend | None = None
) -> pd.DataFrame:
    """Every account scored: probability, tier, revenue at risk, segments, reasons and
    actions in words, riskiest revenue first."""
    scores = model.score(columns, explain=True)
    tiers = model.risk_tiers(scores.probability)
    drivers = model.drivers(columns, scores, DRIVERS)
    actions = recommend(drivers, list(tiers), columns) if recommend else [[] for _ in drivers]
    view = View(columns)
    frame = pd.DataFrame(
        {
            "account_id": columns["account_id"],
            "lifecycle_stage": level_names(
                lifecycle_stage_codes(view.tenure_days()), LIFECYCLE_STAGES, UNKNOWN
            ),
            "plan": text_labels(view.text("plan")),
            "contract_type": text_labels(view.text("contract_type")),
            "mrr": view.num("mrr"),
            "churn_probability": scores.probability,
            "risk_tier": tiers,
            "revenue_at_risk": revenue_at_risk(scores.probability, view.num("mrr")),
            "drivers": ["; ".join(d.reason for d in row) for row in drivers],
            "actions": ["; ".join(a["title"] for a in row) for row in actions],
        }
    )
    return frame.sort_values(
        ["revenue_at_risk", "churn_probability"], ascending=False, ignore_index=True
    )


def expected_by_segment(scored: pd.DataFrame) -> pd.DataFrame:
    """Per segment value: accounts, expected churners over the horizon (the sum of the
    probabilities) and the revenue at risk; tiers riskiest first, others largest first."""

    def figures(frame: pd.DataFrame, column: str) -> pd.DataFrame:
        grouped = frame.groupby(column, sort=False)
        return pd.DataFrame(
            {
                "accounts": grouped.size(),
                "expected_churners": grouped["churn_probability"].sum(),
                "mean_probability": grouped["churn_probability"].mean(),
                "revenue_at_risk": grouped["revenue_at_risk"].sum(),
            }
        )

    orders = {"risk_tier": list(reversed(RISK_TIERS))}
    return by_segment(scored, SEGMENT_COLUMNS, figures, orders, "expected_churners")
